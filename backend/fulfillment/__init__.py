"""Fulfillment: the jobs that turn a decision into a delivered result."""
