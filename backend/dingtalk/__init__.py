"""DingTalk's open API, behind one small client of our own (the official SDK inside)."""
