"""RAM 2015-05-01: users and the policies attached to them. Global, synchronous, no ClientToken.

A system policy exists when it is one of Alibaba's well-known names (``AdministratorAccess``,
``Aliyun<Product>FullAccess``/``ReadOnlyAccess``...); a custom one when the sandbox was given
it (``CloudSandbox(custom_policies=...)``).
"""

import re
import secrets
from typing import Any

from sandbox.cloud.actions import RAM, Call, Registry
from sandbox.cloud.errors import ApiError
from sandbox.cloud.state import Resource, iso

actions = Registry(RAM)
USER_NAME = re.compile(r"[A-Za-z0-9._-]+")
SYSTEM_POLICIES = frozenset({"AdministratorAccess", "ReadOnlyAccess", "AliyunSTSAssumeRoleAccess"})
SYSTEM_POLICY = re.compile(r"Aliyun[A-Za-z0-9]+(FullAccess|ReadOnlyAccess)")
POLICY_TYPES = ("System", "Custom")


def _user_not_found() -> ApiError:
    return ApiError(404, "EntityNotExist.User", "The user does not exist.")


def _user_name(call: Call) -> str:
    name = call.params.required("UserName")
    if len(name) > 64:
        raise ApiError(
            400, "InvalidParameter.UserName.Length", "UserName must be 1 to 64 characters."
        )
    if not USER_NAME.fullmatch(name):
        raise ApiError(
            400,
            "InvalidParameter.UserName.InvalidChars",
            "UserName may hold only letters, digits, '.', '_' and '-'.",
        )
    return name


def _user(call: Call) -> Resource:
    user = call.state.get("user", _user_name(call))
    if user is None:
        raise _user_not_found()
    return user


def _limited(call: Call, name: str, most: int) -> str:
    value = call.params.get(name) or ""
    if len(value) > most:
        raise ApiError(
            400, f"InvalidParameter.{name}.Length", f"{name} must be at most {most} characters."
        )
    return value


def _user_fields(user: Resource) -> dict[str, Any]:
    return {
        "UserId": user.attrs["user_id"],
        "UserName": user.name,
        "DisplayName": user.attrs["display_name"],
        "MobilePhone": user.attrs["mobile_phone"],
        "Email": user.attrs["email"],
        "Comments": user.description,
        "CreateDate": iso(user.created),
    }


@actions.action("CreateUser")
def create_user(call: Call) -> dict[str, Any]:
    name = _user_name(call)
    if call.state.get("user", name) is not None:
        raise ApiError(409, "EntityAlreadyExists.User", "The user does already exist.")
    attrs = {
        "user_id": str(secrets.randbelow(9 * 10**15) + 10**15),
        "display_name": _limited(call, "DisplayName", 128),
        "mobile_phone": call.params.get("MobilePhone") or "",
        "email": call.params.get("Email") or "",
        "policies": {},
    }
    comments = _limited(call, "Comments", 128)
    user = call.state.create("user", name, "", id=name, description=comments, attrs=attrs)
    return {"User": _user_fields(user)}


@actions.action("GetUser")
def get_user(call: Call) -> dict[str, Any]:
    user = _user(call)
    return {"User": {**_user_fields(user), "UpdateDate": iso(user.created), "LastLoginDate": ""}}


@actions.action("DeleteUser")
def delete_user(call: Call) -> dict[str, Any]:
    user = _user(call)
    if user.attrs["policies"]:
        raise ApiError(
            409, "DeleteConflict.User.Policy", "The user has attached policies; detach them first."
        )
    call.state.remove(user)
    return {}


def _policy(call: Call) -> tuple[str, str]:
    """The (type, name) of the policy a call names, which must exist."""
    kind = call.params.required("PolicyType")
    if kind not in POLICY_TYPES:
        raise ApiError(
            400,
            "InvalidParameter.PolicyType.InvalidValue",
            f"PolicyType must be System or Custom (got {kind!r}).",
        )
    name = call.params.required("PolicyName")
    known = (
        name in SYSTEM_POLICIES or SYSTEM_POLICY.fullmatch(name) is not None
        if kind == "System"
        else name in call.state.custom_policies
    )
    if not known:
        raise ApiError(404, "EntityNotExist.Policy", f"The policy {kind}:{name} does not exist.")
    return kind, name


@actions.action("AttachPolicyToUser")
def attach_policy_to_user(call: Call) -> dict[str, Any]:
    policy = _policy(call)
    user = _user(call)
    if policy in user.attrs["policies"]:
        raise ApiError(
            409,
            "EntityAlreadyExists.User.Policy",
            "The policy has already been attached to the user.",
        )
    user.attrs["policies"][policy] = call.state.clock()
    return {}


@actions.action("DetachPolicyFromUser")
def detach_policy_from_user(call: Call) -> dict[str, Any]:
    policy = _policy(call)
    user = _user(call)
    if policy not in user.attrs["policies"]:
        raise ApiError(
            404, "EntityNotExist.User.Policy", "The policy has not been attached to the user."
        )
    del user.attrs["policies"][policy]
    return {}


@actions.action("ListPoliciesForUser")
def list_policies_for_user(call: Call) -> dict[str, Any]:
    user = _user(call)
    policies = [
        {
            "PolicyName": name,
            "PolicyType": kind,
            "Description": "",
            "DefaultVersion": "v1",
            "AttachDate": iso(at),
        }
        for (kind, name), at in user.attrs["policies"].items()
    ]
    return {"Policies": {"Policy": policies}}
