"""DingTalk and mail on loopback, for development and tests.

Imports nothing of the project: what it shares with it (the callback crypto) it
implements again from the protocol reference, so a test of one against the other means
something.
"""
