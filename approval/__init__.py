"""DingTalk events in: callback crypto, Stream mode client, event -> dispatcher."""
