"""Scheduled checks: what the runner's timer looks for, recorded once per thing as jobs."""
