"""Alibaba Cloud for the resource plugins: credentials, the official SDK clients, their errors.

Nothing here imports an SDK at start-up; each client is built on first use.
"""
