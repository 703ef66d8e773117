"""How an API action is declared, called and made idempotent with a ClientToken.

Each product module (vpc, ecs, ram) keeps a ``Registry`` of its actions; a handler takes a
``Call`` and returns the answer's fields (the app adds ``RequestId``) or raises ApiError.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.cloud.auth import V2_ONLY, Caller
from sandbox.cloud.errors import ApiError, dry_run
from sandbox.cloud.faults import Faults
from sandbox.cloud.params import Params
from sandbox.cloud.state import CloudState

REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
TOKEN = re.compile(r"[\x20-\x7e]{1,64}")
"""A ClientToken: at most 64 printable ASCII characters."""


@dataclass(frozen=True)
class Product:
    """One product's API: its name (in error links) and the host it answers as."""

    name: str
    version: str
    host: str


VPC = Product("Vpc", "2016-04-28", "vpc.aliyuncs.com")
ECS = Product("Ecs", "2014-05-26", "ecs.aliyuncs.com")
RAM = Product("Ram", "2015-05-01", "ram.aliyuncs.com")
PRODUCTS = {product.version: product for product in (VPC, ECS, RAM)}


@dataclass
class Call:
    """One authenticated call, as a handler sees it."""

    action: str
    params: Params
    caller: Caller
    state: CloudState
    faults: Faults

    def region(self, required: bool = True) -> str | None:
        """``RegionId``, checked to look like a region."""
        region = self.params.required("RegionId") if required else self.params.get("RegionId")
        if region is not None and not REGION.fullmatch(region):
            raise ApiError(404, "InvalidRegionId.NotFound", "The specified region does not exist.")
        return region

    def stuck(self) -> bool:
        """Whether what this call creates stays Pending (the ``stuck`` fault, one use spent)."""
        return self.faults.take("stuck", self.action) is not None

    def stop_if_dry_run(self, code: str = "DryRunOperation") -> None:
        """Answer a ``DryRun=true`` call, every check passed, before anything changes."""
        if self.params.boolean("DryRun"):
            raise dry_run(code)


Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    """An API action: product version, name, handler, and whether it takes a ClientToken."""

    version: str
    name: str
    handler: Handler
    client_token: bool = False


class Registry:
    """The actions of one product, registered with ``@registry.action("Name")``."""

    def __init__(self, product: Product) -> None:
        self.product = product
        self.actions: dict[str, Action] = {}

    def action(self, name: str, client_token: bool = False) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of action ``name``."""

        def register(handler: Handler) -> Handler:
            self.actions[name] = Action(self.product.version, name, handler, client_token)
            return handler

        return register

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions.values())


def run(action: Action, call: Call) -> dict[str, Any]:
    """Call the handler under the state's lock, replaying a ClientToken's first answer."""
    token = call.params.get("ClientToken") if action.client_token else None
    with call.state.lock:
        if token is None:
            return action.handler(call)
        if not TOKEN.fullmatch(token):
            raise ApiError(
                400,
                "InvalidClientToken.ValueNotSupported",
                "The ClientToken must be 1 to 64 printable ASCII characters.",
            )
        key = (call.caller.account, action.version, action.name, token)
        fingerprint = call.params.fingerprint(ignore=V2_ONLY)
        seen = call.state.recall(key)
        if seen is not None:
            if seen.fingerprint != fingerprint:
                raise ApiError(
                    400,
                    "IdempotentParameterMismatch",
                    "The specified parameters are different from before for this ClientToken.",
                )
            return dict(seen.answer)
        answer = action.handler(call)
        call.state.remember(key, fingerprint, answer)
        return answer
