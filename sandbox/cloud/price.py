"""ECS 2014-05-26 DescribePrice: what an instance costs an hour, pay-as-you-go, from a table.

The sandbox prices ``ResourceType=instance`` (the default) at ``PriceUnit=Hour`` (the
default), for a Linux image, in CNY as the China site answers: the instance type's hour, plus
its system disk's GiB-hours, plus its outbound bandwidth's Mbit/s-hours when that bandwidth
is paid for as such (``PayByBandwidth``); traffic paid by the GiB (``PayByTraffic``, the
default) adds nothing to an hour. Refusals use the codes and messages of DescribePrice's own
error table in the ECS API reference. What the real service would price but the sandbox
cannot (data disks, subscriptions, other resource types, ...) is refused with the documented
``400 PriceNotFound`` rather than priced with a made-up number: the documentation does not
say how the service prices those, so the sandbox stays out of it.
"""

import re
from decimal import Decimal
from typing import Any

from sandbox.cloud.actions import ECS, Call, Registry
from sandbox.cloud.errors import ApiError, invalid

actions = Registry(ECS)

HOURLY = {
    "ecs.t6-c1m1.large": Decimal("0.136"),
    "ecs.c7.large": Decimal("0.451"),
    "ecs.c7.xlarge": Decimal("0.902"),
    "ecs.g7.large": Decimal("0.544"),
    "ecs.g7.xlarge": Decimal("1.088"),
    "ecs.r7.large": Decimal("0.708"),
}
"""CNY an hour for each instance type the sandbox sells (its own numbers, of the real order);
any other type is refused as the service refuses a type it does not sell."""
DISK_GIB_HOURLY = {
    "cloud": Decimal("0.0004"),
    "cloud_efficiency": Decimal("0.0005"),
    "cloud_ssd": Decimal("0.0014"),
    "cloud_essd": Decimal("0.0014"),  # performance level PL1, the default and the only one priced
    "cloud_auto": Decimal("0.0014"),
    "cloud_essd_entry": Decimal("0.0007"),
}
"""CNY an hour for each GiB of a system disk, by category."""
BANDWIDTH_MBPS_HOURLY = Decimal("0.063")
"""CNY an hour for each Mbit/s of outbound bandwidth paid by bandwidth (PayByBandwidth)."""

RESOURCE_TYPES = (
    "instance",
    "disk",
    "diskperformance",
    "bandwidth",
    "ddh",
    "ElasticityAssurance",
    "CapacityReservation",
)
PRICE_UNITS = ("Hour", "Week", "Month", "Year")  # Week: the China site only
DEFAULT_DISK = "cloud_efficiency"  # the documented default for instance types on sale
DEFAULT_DISK_SIZE = 40
"""GiB. The older reference's default (max{40, image size}); the newer says max{20, image
size}, and the sandbox knows no image sizes. The plugins always send a size."""
DISK_SIZES = {"cloud": (20, 500), "cloud_auto": (1, 2048)}
"""GiB a system disk may have, by category (the SDK's reference); the others 20 to 2048."""
PERFORMANCE_LEVELS = ("PL0", "PL1", "PL2", "PL3")
WHOLE = re.compile(r"-?\d{1,9}")
PRICE_PLACES = Decimal("0.0001")


def not_priced(what: str) -> ApiError:
    """The service's answer for a price it does not have; here, one the sandbox does not."""
    return ApiError(
        400,
        "PriceNotFound",
        "The price of your queried resource is not available now, please try other "
        f"resources. (The cloud sandbox does not price {what}.)",
    )


def _whole(call: Call, name: str, default: int, bounds: tuple[int, int], error: ApiError) -> int:
    """A whole-number parameter within ``bounds``, else ``error``."""
    value = call.params.get(name)
    if value is None:
        return default
    if not WHOLE.fullmatch(value) or not bounds[0] <= int(value) <= bounds[1]:
        raise error
    return int(value)


def _price_unit(call: Call) -> None:
    unit = call.params.get("PriceUnit") or "Hour"
    if unit not in PRICE_UNITS:
        raise ApiError(
            400,
            "InvalidPriceUnit.ValueNotSupported",
            "The specified parameter PriceUnit is not valid.",
        )
    if unit != "Hour":
        raise not_priced(f"subscriptions (PriceUnit={unit})")
    period = ApiError(400, "InvalidPeriod", "The specified period is not valid.")
    _whole(call, "Period", 1, (1, 1), period)  # an hour's price is for one hour


def _resource_type(call: Call) -> None:
    kind = call.params.get("ResourceType") or "instance"
    if kind not in RESOURCE_TYPES:
        raise ApiError(
            400,
            "InvalidResourceType.ValueNotSupported",
            "The specified parameter ResourceType is not valid.",
        )
    if kind != "instance":
        raise not_priced(f"ResourceType={kind}")


def _instance_type(call: Call) -> str:
    value = call.params.get("InstanceType")
    if value is None:
        raise ApiError(
            404,
            "InvalidInstanceType.Missing",
            "The InstanceType parameter that is mandatory for processing the request is "
            "not provided.",
        )
    if value not in HOURLY:
        raise ApiError(
            400,
            "InvalidInstanceType.ValueNotSupported",
            f"The specified InstanceType {value!r} does not exist or beyond the permitted range.",
        )
    return value


def _network(call: Call) -> None:
    network = call.params.get("InstanceNetworkType") or "vpc"
    if network == "classic":  # the sandbox is VPC-only, as accounts made today are
        raise ApiError(
            403,
            "OperationDenied",
            "The specified parameter InstanceNetworkType is not authorized.",
        )
    if network != "vpc":
        raise ApiError(
            404,
            "InvalidNetworkType.ValueNotSupported",
            "The specified parameter NetworkType is not valid.",
        )
    optimized = call.params.get("IoOptimized") or "optimized"
    if optimized not in ("none", "optimized"):
        raise ApiError(
            400, "InvalidIoOptimizedValue.ValueNotSupported", "IoOptimized value not supported."
        )
    if optimized == "none":  # every type the sandbox sells is I/O optimized
        raise ApiError(
            404,
            "DependencyViolation.IoOptimized",
            "The specified instancetype must be IoOptimized instance.",
        )


def _bandwidth(call: Call) -> Decimal:
    """The outbound bandwidth's price an hour: nothing when traffic is paid by the GiB."""
    charge = call.params.get("InternetChargeType") or "PayByTraffic"
    if charge not in ("PayByTraffic", "PayByBandwidth"):
        raise ApiError(
            400,
            "InvalidInternetChargeType.ValueNotSupported",
            "The specified InternetChargeType is not valid.",
        )
    bad = ApiError(
        400,
        "InvalidInternetMaxBandwidthOut.ValueNotSupported",
        'The specified parameter "InternetMaxBandwidthOut" is not valid.',
    )
    mbps = _whole(call, "InternetMaxBandwidthOut", 0, (0, 100), bad)
    return BANDWIDTH_MBPS_HOURLY * mbps if charge == "PayByBandwidth" else Decimal(0)


def _disk_category(call: Call) -> str:
    category = call.params.get("SystemDisk.Category") or DEFAULT_DISK
    if category not in DISK_GIB_HOURLY:
        raise ApiError(
            400,
            "InvalidSystemDiskCategory.ValueNotSupported",
            'The specified parameter "SystemDisk.Category" is not valid.',
        )
    level = call.params.get("SystemDisk.PerformanceLevel")
    if category == "cloud_essd" and level is not None:  # the level of an ESSD only
        if level not in PERFORMANCE_LEVELS:
            raise invalid("SystemDisk.PerformanceLevel", level, "It must be PL0 to PL3.")
        if level != "PL1":
            raise not_priced(f"ESSD performance level {level}")
    return category


def _system_disk(call: Call) -> Decimal:
    """The system disk's price an hour."""
    category = _disk_category(call)
    low, high = DISK_SIZES.get(category, (20, 2048))
    value = call.params.get("SystemDisk.Size")
    if value is not None and not WHOLE.fullmatch(value):
        raise ApiError(
            404,
            "InvalidSystemDiskSize.ValueNotSupported",
            "The specified parameter SystemDisk.Size is invalid.",
        )
    size = DEFAULT_DISK_SIZE if value is None else int(value)
    if size < low:
        raise ApiError(
            404,
            "InvalidSystemDiskSize.LessThanMinSize",
            "The specified parameter SystemDisk.Size is less than the minimum size.",
        )
    if size > high:
        raise ApiError(
            404,
            "InvalidSystemDiskSize.MoreThanMaxSize",
            "The specified parameter SystemDisk.Size is more than the maximum size",
        )
    return DISK_GIB_HOURLY[category] * size


def _refuse_what_the_table_lacks(call: Call) -> None:
    """Refuse the parameters that change a price the sandbox has no number for."""
    names = call.params.values
    if any(n.startswith(("DataDisk.", "SchedulerOptions.", "RecurrenceRules.")) for n in names):
        raise not_priced("data disks, dedicated hosts or time-sharing assurances")
    if (call.params.get("SpotStrategy") or "NoSpot") != "NoSpot":
        raise not_priced("spot instances")
    # Alibaba's public Windows images are named win...; every other image is priced as Linux.
    image = (call.params.get("ImageId") or "").lower()
    if call.params.get("Platform") == "Windows" or image.startswith("win"):
        raise not_priced("Windows images")


def _line(resource: str, hourly: Decimal) -> dict[str, Any]:
    """One DetailInfo: a part of the price, without discount."""
    price = float(hourly.quantize(PRICE_PLACES))
    return {
        "Resource": resource,
        "OriginalPrice": price,
        "DiscountPrice": 0.0,
        "TradePrice": price,
        "SubRules": {"Rule": []},
    }


@actions.action("DescribePrice")
def describe_price(call: Call) -> dict[str, Any]:
    call.region()
    _resource_type(call)
    _price_unit(call)
    amount_error = ApiError(
        403, "InvalidAmount.Malformed", "The specified parameter Amount is not valid."
    )
    amount = _whole(call, "Amount", 1, (1, 1000), amount_error)
    instance_type = _instance_type(call)
    _network(call)
    parts = {
        "instanceType": HOURLY[instance_type] * amount,
        "systemDisk": _system_disk(call) * amount,
        "bandwidth": _bandwidth(call) * amount,
    }
    _refuse_what_the_table_lacks(call)
    total = float(sum(parts.values(), Decimal(0)).quantize(PRICE_PLACES))
    return {
        "PriceInfo": {
            "Price": {
                "Currency": "CNY",
                "OriginalPrice": total,
                "DiscountPrice": 0.0,
                "TradePrice": total,
                "DetailInfos": {"DetailInfo": [_line(k, v) for k, v in parts.items()]},
            },
            "Rules": {"Rule": []},
        }
    }
