"""What a change will cost a month, as its plugins state it: shown to the approver."""

import logging
from decimal import Decimal

from backend.changes.context import ChangeContext
from backend.changes.model import Change
from backend.cloud.errors import CloudError
from backend.cloud.plugins.base import MonthlyCost

log = logging.getLogger(__name__)
UNSTATED = "插件未提供价格"


def monthly_cost(context: ChangeContext | None, change: Change) -> str:
    """The estimated monthly cost of the resources ``change`` makes, for the approval form.

    Resources whose plugins state no price (a VPC, a vSwitch, a security group: free) add
    nothing; a price the cloud would not give says so, and the approval opens all the same:
    an estimate must never hold a change up.
    """
    if context is None:
        return UNSTATED
    costs: list[MonthlyCost] = []
    for step in change.steps:
        plugin = context.plugins.get(step.type)
        stating = getattr(plugin, "monthly_cost", None)
        try:
            cost = stating(context.cloud, step.spec) if stating else None
        except CloudError as err:
            log.warning("no price for change %s step %s: %s", change.public_id, step.name, err)
            return f"无法估算（云端未给出价格：{err.code or err}）"
        if cost is not None:
            costs.append(cost)
    if not costs or len({cost.currency for cost in costs}) != 1:
        return UNSTATED
    total = MonthlyCost(sum((cost.amount for cost in costs), Decimal(0)), costs[0].currency)
    # Internet traffic is billed by the GiB sent, which no plan can know beforehand.
    public = any(step.spec.get("internet_max_bandwidth_out") for step in change.steps)
    return total.text() + ("，公网流量另计" if public else "")
