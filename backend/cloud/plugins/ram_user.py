"""A RAM user with system policies attached: created at once (synchronously).

RAM takes no ClientToken, so the step's token goes into the user's Comments: a re-run that
finds the name taken adopts the user only if it carries the same token.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from backend.cloud.clients import CloudClients
from backend.cloud.errors import CloudError, CloudNotFound, CloudRefused, translated
from backend.cloud.plugins.base import Param, Progress, Results, Started
from backend.cloud.plugins.common import answer, deleting, describing

MARK = "dingpass"
"""How the Comments of a user dingpass made begin: ``dingpass <token of its step>``."""
USER_NOT_FOUND = frozenset({"EntityNotExist.User"})
POLICY_NOT_ATTACHED = frozenset({"EntityNotExist.User.Policy", "EntityNotExist.User"})


class RamUserPlugin:
    """A RAM user (no password, no access key) and the system policies it is given."""

    type = "ram.user"
    asynchronous = False
    parameters: Mapping[str, Param] = {
        "user_name": Param(
            required=True,
            pattern=r"[A-Za-z0-9._-]+",
            low=1,
            high=64,
            help="the user's sign-in name, 1-64 letters, digits, '.', '_' or '-'; "
            "unique in the account",
        ),
        "display_name": Param(low=1, high=128, help="the name people see, 1-128 characters"),
        "policies": Param(
            kind="list",
            default=(),
            pattern=r"[A-Za-z0-9-]+",
            low=1,
            high=128,
            help="system policies to attach by name, e.g. AliyunOSSReadOnlyAccess",
        ),
    }

    def start(
        self, cloud: CloudClients, spec: Mapping[str, Any], token: str, inputs: Mapping[str, Any]
    ) -> Started:
        """CreateUser (or adopt this step's own from an earlier run), then attach its policies."""
        name = str(spec["user_name"])
        user = _create_or_adopt(cloud, name, spec.get("display_name"), f"{MARK} {token}")
        policies = [str(policy) for policy in spec.get("policies") or ()]
        try:
            for policy in policies:
                _attach(cloud, name, policy)
        except CloudError as err:
            err.resource_id = name  # the user exists: the change must know it, cleanup delete it
            raise
        results = {"user_name": name, "user_id": user.get("UserId"), "policies": policies}
        return Started(name, ready=True, results=results)

    def check(self, cloud: CloudClients, resource_id: str) -> Progress:
        """GetUser and its policies: a user that exists is ready."""
        with describing("GetUser", USER_NOT_FOUND):
            user = _get(cloud, resource_id)
        results: Results = {
            "user_name": resource_id,
            "user_id": user.get("UserId"),
            "policies": [name for name, _ in _policies(cloud, resource_id)],
        }
        return Progress(True, "Active", results)

    def delete(self, cloud: CloudClients, resource_id: str) -> None:
        """Detach every policy, then DeleteUser; a user that is gone already is fine.

        A user whose Comments do not say dingpass made it is refused: the name may have been
        reused by someone else since.
        """
        from alibabacloud_ram20150501 import models

        try:
            user = _get(cloud, resource_id)
        except CloudNotFound as gone:
            if gone.code in USER_NOT_FOUND:
                return
            raise
        if not str(user.get("Comments") or "").startswith(f"{MARK} "):
            raise CloudRefused("DeleteUser", None, _not_ours(resource_id, user))
        for name, kind in _policies(cloud, resource_id):
            _detach(cloud, resource_id, name, kind)
        with deleting("DeleteUser", USER_NOT_FOUND):
            cloud.ram().delete_user(models.DeleteUserRequest(user_name=resource_id))


def _create_or_adopt(
    cloud: CloudClients, name: str, display_name: str | None, comments: str
) -> Mapping[str, Any]:
    """The user this step made: created now, or found with the same comments."""
    from alibabacloud_ram20150501 import models

    request = models.CreateUserRequest(user_name=name, display_name=display_name, comments=comments)
    try:
        with translated("CreateUser"):
            return dict(answer(cloud.ram().create_user(request)).get("User") or {})
    except CloudRefused as refused:
        if refused.code != "EntityAlreadyExists.User":
            raise
        user = _get(cloud, name)
        if user.get("Comments") != comments:
            raise CloudRefused(
                "CreateUser", refused.code, _not_ours(name, user), refused.request_id
            ) from refused
        return user


def _not_ours(name: str, user: Mapping[str, Any]) -> str:
    return (
        f"the RAM user name {name!r} is taken by a user this step did not create "
        f"(its comments: {user.get('Comments')!r}): choose another user_name"
    )


def _get(cloud: CloudClients, name: str) -> Mapping[str, Any]:
    from alibabacloud_ram20150501 import models

    with translated("GetUser"):
        found = answer(cloud.ram().get_user(models.GetUserRequest(user_name=name)))
    return dict(found.get("User") or {})


def _policies(cloud: CloudClients, user: str) -> Sequence[tuple[str, str]]:
    """The (name, type) of every policy attached to ``user``."""
    from alibabacloud_ram20150501 import models

    request = models.ListPoliciesForUserRequest(user_name=user)
    with translated("ListPoliciesForUser"):
        listed = answer(cloud.ram().list_policies_for_user(request))
    policies = (listed.get("Policies") or {}).get("Policy") or []
    return [(str(item.get("PolicyName")), str(item.get("PolicyType"))) for item in policies]


def _attach(cloud: CloudClients, user: str, policy: str) -> None:
    """AttachPolicyToUser; one attached already counts as done."""
    from alibabacloud_ram20150501 import models

    request = models.AttachPolicyToUserRequest(
        policy_type="System", policy_name=policy, user_name=user
    )
    try:
        with translated("AttachPolicyToUser"):
            cloud.ram().attach_policy_to_user(request)
    except CloudRefused as refused:
        if refused.code != "EntityAlreadyExists.User.Policy":
            raise


def _detach(cloud: CloudClients, user: str, policy: str, kind: str) -> None:
    from alibabacloud_ram20150501 import models

    request = models.DetachPolicyFromUserRequest(
        policy_type=kind, policy_name=policy, user_name=user
    )
    with deleting("DetachPolicyFromUser", POLICY_NOT_ATTACHED):
        cloud.ram().detach_policy_from_user(request)
