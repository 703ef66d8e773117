"""CIDR blocks of VPCs and vSwitches, checked as the VPC API checks them.

Error codes are those of the CreateVpc / CreateVSwitch error tables, including their
spelling (``InvalidCirdrBlock.MaskLength`` is the documented code, typo and all).
"""

import ipaddress
from collections.abc import Iterable

from sandbox.cloud.errors import ApiError

RESERVED = tuple(
    ipaddress.IPv4Network(block)
    for block in ("100.64.0.0/10", "224.0.0.0/4", "127.0.0.0/8", "169.254.0.0/16")
)
VPC_MASKS = (8, 28)
VSWITCH_MASKS = (16, 29)


def _parse(text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        raise ApiError(
            400, "InvalidCidrBlock.Malformed", f"Specified CIDR block {text!r} is not valid."
        ) from None


def _reserved(block: ipaddress.IPv4Network) -> bool:
    return any(block.overlaps(reserved) for reserved in RESERVED)


def vpc_block(text: str) -> ipaddress.IPv4Network:
    """A VPC's block: mask 8 to 28 bits, outside the reserved ranges."""
    block = _parse(text)
    low, high = VPC_MASKS
    if not low <= block.prefixlen <= high or _reserved(block):
        raise ApiError(
            400,
            "InvalidParameter",
            f"Specified CIDR block {text} is not valid: the mask must be {low} to {high} bits, "
            "outside 100.64.0.0/10, 224.0.0.0/4, 127.0.0.0/8 and 169.254.0.0/16.",
        )
    return block


def vswitch_block(
    text: str, vpc: ipaddress.IPv4Network, siblings: Iterable[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network:
    """A vSwitch's block: mask 16 to 29 bits, inside its VPC's, overlapping no sibling's."""
    block = _parse(text)
    low, high = VSWITCH_MASKS
    if not low <= block.prefixlen <= high:
        raise ApiError(
            400,
            "InvalidCirdrBlock.MaskLength",
            f"The mask of CIDR block {text} must be {low} to {high} bits.",
        )
    if not block.subnet_of(vpc) or _reserved(block):
        raise ApiError(
            400, "InvalidParameter", f"Specified CIDR block {text} is not valid in VPC {vpc}."
        )
    for sibling in siblings:
        if block.overlaps(sibling):
            raise ApiError(
                400,
                "InvalidCidrBlock.Overlapped",
                f"Specified CIDR block {text} overlapped with vSwitch block {sibling}.",
            )
    return block


def free_block(
    vpc: ipaddress.IPv4Network, mask: int, siblings: Iterable[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network:
    """The first block of ``mask`` bits in the VPC that no sibling overlaps (for CidrMask)."""
    low, high = VSWITCH_MASKS
    if not low <= mask <= high or mask < vpc.prefixlen:
        raise ApiError(
            400, "InvalidCirdrBlock.MaskLength", f"CidrMask {mask} must be {low} to {high} bits."
        )
    taken = list(siblings)
    for block in vpc.subnets(new_prefix=mask):
        if not any(block.overlaps(sibling) for sibling in taken):
            return block
    raise ApiError(400, "QuotaExceeded.VSwitch", f"VPC {vpc} has no free /{mask} block left.")
