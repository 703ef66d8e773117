"""Group robots: DingTalk custom robots and WeCom group robots, told of events as jobs."""
