"""Approvals: DingTalk instances for applications, and the decisions that come back."""
