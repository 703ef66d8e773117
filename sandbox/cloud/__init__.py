"""Alibaba Cloud's VPC, ECS and RAM RPC APIs on loopback, for the resource plugins and their tests.

As strict as the real service where the official SDKs can tell: ACS3 and v1 signatures, replay
and clock checks, documented error codes and shapes, asynchronous states and ClientTokens. It
imports nothing of the project, so a test of the plugins against it means something.
"""

from sandbox.cloud.faults import FAULT_KINDS, Fault, Faults
from sandbox.cloud.server import CloudSandbox
from sandbox.cloud.state import CloudState, Resource

__all__ = ["FAULT_KINDS", "CloudSandbox", "CloudState", "Fault", "Faults", "Resource"]
