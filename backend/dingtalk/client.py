"""The DingTalk client dingpass uses: access token, start and read approval instances.

The official SDK (alibabacloud-dingtalk) is imported and built on a client's first call, not
at start-up: it costs a fifth of a second and 19 MiB, and most requests never call DingTalk.
So is requests (with urllib3, some 25 ms of start-up), which the old API's calls use.
Every call waits for its turn under DingTalk's per-API limit (backend/dingtalk/limiter.py).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, insert, select

from backend.dingtalk.limiter import CallLimiter
from backend.dingtalk.sdk_errors import from_sdk
from backend.exceptions import (
    DingTalkRateLimited,
    DingTalkRejected,
    DingTalkTokenInvalid,
    DingTalkUnavailable,
)
from backend.storage.database import Database
from backend.storage.schema import dingtalk_tokens

if TYPE_CHECKING:
    import requests

TOKEN_MARGIN = timedelta(minutes=5)
"""A cached token is renewed this long before it expires."""
COMMENT_LENGTH = 1024
"""The longest comment DingTalk takes."""
OAPI_TOKEN_INVALID = (40014, 42001)
OAPI_BUSY = (90002, 143103, 143104, -1)
"""Old-API codes that mean "try again later": throttled, or busy."""
CONNECT_TIMEOUT_MS = 1000
READ_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class InstanceState:
    """Where an approval instance stands: RUNNING, COMPLETED (agree/refuse) or TERMINATED."""

    instance_id: str
    status: str
    result: str
    form: dict[str, str] = field(default_factory=dict)
    originator: str = ""  # the userId it was started as
    form_ids: dict[str, str] = field(default_factory=dict)
    """The same values by component id: labels can be renamed in the admin console, ids not."""
    remarks: tuple[tuple[str, str], ...] = ()
    """The comments on it: (userId, text), oldest first."""


class DingTalkClient:
    """Talks to DingTalk's open API (or the sandbox) for one app."""

    def __init__(
        self,
        api_base: str,
        app_key: str,
        app_secret: str,
        database: Database,
        clock: Callable[[], datetime],
        oapi_base: str | None = None,
        calls_per_second: float = 0,
    ) -> None:
        self.api_base, self.app_key, self._secret = api_base, app_key, app_secret
        self.database, self.clock = database, clock
        self.oapi_base = oapi_base or api_base
        self.limiter = CallLimiter(database, app_key, calls_per_second)
        self._token: tuple[str, datetime] | None = None  # this process's copy of the cache

    @cached_property
    def _session(self) -> "requests.Session":
        import requests

        session = requests.Session()
        session.trust_env = False  # our DingTalk calls leave through the NAT, never a proxy
        return session

    @cached_property
    def _sdk_config(self) -> Any:
        from alibabacloud_tea_openapi import models as open_api

        address = urlsplit(self.api_base)
        return open_api.Config(
            protocol=address.scheme,
            endpoint=address.netloc,
            connect_timeout=CONNECT_TIMEOUT_MS,
            read_timeout=READ_TIMEOUT_MS,
        )

    @cached_property
    def _oauth(self) -> Any:
        from alibabacloud_dingtalk.oauth2_1_0.client import Client as OAuthClient

        return OAuthClient(self._sdk_config)

    @cached_property
    def _workflow(self) -> Any:
        from alibabacloud_dingtalk.workflow_1_0.client import Client as WorkflowClient

        return WorkflowClient(self._sdk_config)

    def access_token(self) -> str:
        """A valid token: this process's while it lasts, else the shared cache's, else a new
        one stored there."""
        now = self.clock()
        if self._token is not None and self._token[1] > now + TOKEN_MARGIN:
            return self._token[0]
        with self.database.transaction() as connection:
            cached = connection.execute(
                select(dingtalk_tokens.c.token, dingtalk_tokens.c.expires_at).where(
                    dingtalk_tokens.c.app_key == self.app_key,
                    dingtalk_tokens.c.expires_at > now + TOKEN_MARGIN,
                )
            ).first()
        if cached is None:
            return self._fetch_token(now)
        self._token = (str(cached.token), cached.expires_at)
        return str(cached.token)

    def start_instance(
        self, process_code: str, originator: str, dept_id: int | None, form: list[tuple[str, str]]
    ) -> str:
        """Open an approval instance with ``form`` as (component name, value) pairs; its id."""
        from alibabacloud_dingtalk.workflow_1_0 import models as wf

        values = [
            wf.StartProcessInstanceRequestFormComponentValues(name=n, value=v) for n, v in form
        ]
        request = wf.StartProcessInstanceRequest(
            process_code=process_code,
            originator_user_id=originator,
            dept_id=dept_id,
            form_component_values=values,
        )

        # The client (its first use imports the SDK) and the token (a database read, or a token
        # call of its own) first, then the turn: a call sent late for its slot bunches with the
        # next ones over DingTalk's count for a second.
        workflow, token = self._workflow, self._token_before_sending(fresh=False)

        def send(token: str) -> Any:
            headers = wf.StartProcessInstanceHeaders(x_acs_dingtalk_access_token=token)
            return workflow.start_process_instance_with_options(request, headers, _runtime())

        try:
            body = self._sdk("start", lambda: send(token))
        except DingTalkTokenInvalid:
            token = self._token_before_sending(fresh=True)
            body = self._sdk("start", lambda: send(token))
        return str(body.instance_id)

    def _token_before_sending(self, fresh: bool) -> str:
        """A token for a call that changes something: failing to get one, nothing was sent."""
        try:
            return self._fetch_token(self.clock()) if fresh else self.access_token()
        except DingTalkUnavailable as err:
            raise DingTalkUnavailable(str(err), err.code, err.status, in_doubt=False) from None

    def get_instance(self, instance_id: str) -> InstanceState:
        """The current state of an approval instance."""
        from alibabacloud_dingtalk.workflow_1_0 import models as wf

        request = wf.GetProcessInstanceRequest(process_instance_id=instance_id)
        body = self._call(
            "get",
            lambda workflow, token: workflow.get_process_instance_with_options(
                request, wf.GetProcessInstanceHeaders(x_acs_dingtalk_access_token=token), _runtime()
            ),
        )
        values = body.result.form_component_values or []
        form = {str(v.name): _text(v.value) for v in values}
        form_ids = {str(v.id): _text(v.value) for v in values if v.id}
        result = body.result
        status, outcome = str(result.status), str(result.result or "")
        originator = str(result.originator_user_id or "")
        remarks = tuple(
            (str(record.user_id or ""), str(record.remark or ""))
            for record in result.operation_records or []
            if record.type == "ADD_REMARK"
        )
        return InstanceState(instance_id, status, outcome, form, originator, form_ids, remarks)

    def add_comment(self, instance_id: str, text: str, user_id: str) -> None:
        """Comment on an approval instance as ``user_id``: how results go back to it."""
        from alibabacloud_dingtalk.workflow_1_0 import models as wf

        request = wf.AddProcessInstanceCommentRequest(
            process_instance_id=instance_id, text=text[:COMMENT_LENGTH], comment_user_id=user_id
        )
        headers = wf.AddProcessInstanceCommentHeaders
        body = self._call(
            "comment",
            lambda workflow, token: workflow.add_process_instance_comment_with_options(
                request, headers(x_acs_dingtalk_access_token=token), _runtime()
            ),
        )
        if not (body.result and _true(body.success)):
            raise DingTalkRejected(f"DingTalk did not add the comment to {instance_id}")

    def send_work_notification(self, agent_id: int, user_id: str, message: dict[str, Any]) -> str:
        """Send ``message`` (a msg object: markdown, text, ...) to one employee; its task id.

        There is no call for it in the official SDK: it is the old API's documented form post.
        """
        body = {"agent_id": agent_id, "userid_list": user_id, "msg": message}
        path = "/topapi/message/corpconversation/asyncsend_v2"
        try:
            answer = self._oapi_post("notify", path, body, self.access_token())
        except DingTalkTokenInvalid:
            answer = self._oapi_post("notify", path, body, self._fetch_token(self.clock()))
        return str(answer.get("task_id"))

    def _oapi_post(self, api: str, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        """A call of the old API: errors come as HTTP 200 with an errcode."""
        import requests  # loaded with the session, on the first call (see the module's docstring)

        self.limiter.wait_turn(api)
        try:
            answer = self._session.post(
                f"{self.oapi_base}{path}",
                params={"access_token": token},
                json=body,
                timeout=(CONNECT_TIMEOUT_MS / 1000, READ_TIMEOUT_MS / 1000),
            )
            reply: dict[str, Any] = answer.json()
        except (requests.RequestException, ValueError) as err:
            raise DingTalkUnavailable(f"DingTalk's {path} cannot be reached: {err}") from None
        code = reply.get("errcode")
        if code in OAPI_TOKEN_INVALID:
            raise DingTalkTokenInvalid(f"DingTalk: {reply.get('errmsg')}", str(code), 401)
        if code in OAPI_BUSY:
            raise DingTalkRateLimited(f"DingTalk is busy: {reply.get('errmsg')}", str(code))
        if code != 0:
            raise DingTalkRejected(
                f"DingTalk: {reply.get('errmsg')}", str(code), answer.status_code
            )
        return reply

    def instance_ids(
        self,
        process_code: str,
        since: datetime,
        originator: str | None = None,
        until: datetime | None = None,
        statuses: list[str] | None = None,
    ) -> list[str]:
        """Ids of the process's instances started between ``since`` and ``until`` (by
        ``originator``; in ``statuses``: RUNNING, COMPLETED, TERMINATED), every page of them."""
        found: list[str] = []
        next_token: int | None = 0
        window = (_ms(since), _ms(until) if until else None)
        who = (originator, statuses)
        while next_token is not None:
            page, next_token = self._instance_id_page(process_code, window, who, next_token)
            found.extend(page)
        return found

    def _instance_id_page(
        self,
        process_code: str,
        window: tuple[int, int | None],
        who: tuple[str | None, list[str] | None],
        next_token: int,
    ) -> tuple[list[str], int | None]:
        from alibabacloud_dingtalk.workflow_1_0 import models as wf

        request = wf.ListProcessInstanceIdsRequest(
            process_code=process_code,
            start_time=window[0],
            end_time=window[1],
            next_token=next_token,
            max_results=20,
            user_ids=[who[0]] if who[0] else None,
            statuses=who[1],
        )
        headers = wf.ListProcessInstanceIdsHeaders
        body = self._call(
            "list",
            lambda workflow, token: workflow.list_process_instance_ids_with_options(
                request, headers(x_acs_dingtalk_access_token=token), _runtime()
            ),
        )
        following = body.result.next_token
        return list(body.result.list or []), int(following) if following else None

    def failed_callbacks(self) -> tuple[list[dict[str, Any]], bool]:
        """A batch of pushes DingTalk gave up on (reading clears them), and whether more wait."""
        import requests  # loaded with the session, on the first call (see the module's docstring)

        token = self.access_token()
        self.limiter.wait_turn("failed")
        try:
            answer = self._session.get(
                f"{self.oapi_base}/call_back/get_call_back_failed_result",
                params={"access_token": token},
                timeout=(CONNECT_TIMEOUT_MS / 1000, READ_TIMEOUT_MS / 1000),
            )
            body = answer.json()
        except (requests.RequestException, ValueError) as err:
            raise DingTalkUnavailable(
                f"DingTalk's failed-callback list cannot be read: {err}"
            ) from None
        if body.get("errcode") in OAPI_TOKEN_INVALID:
            self._token = None  # the next call reads the shared cache again, or renews it
            raise DingTalkTokenInvalid(f"DingTalk: {body.get('errmsg')}", str(body["errcode"]), 401)
        if body.get("errcode") != 0:
            raise DingTalkRejected(
                f"DingTalk: {body.get('errmsg')}",
                str(body.get("errcode")),
                answer.status_code,
            )
        events = [
            item["bpms_instance_change"]["bpmsCallBackData"]
            for item in body.get("failed_list", [])
            if "bpms_instance_change" in item
        ]
        return events, bool(body.get("has_more"))

    def _call(self, api: str, call: Callable[[Any, str], Any]) -> Any:
        """Run a call of ``api`` with the workflow client and the token; on
        InvalidAuthentication, renew the token once and retry."""
        # Both before the turn, as start_instance's: the client's first use imports the SDK.
        workflow, token = self._workflow, self.access_token()
        try:
            return self._sdk(api, lambda: call(workflow, token))
        except DingTalkTokenInvalid:
            token = self._fetch_token(self.clock())
            return self._sdk(api, lambda: call(workflow, token))

    def _fetch_token(self, now: datetime) -> str:
        from alibabacloud_dingtalk.oauth2_1_0 import models as oauth

        request = oauth.GetAccessTokenRequest(app_key=self.app_key, app_secret=self._secret)
        client = self._oauth  # before the turn, as the other calls' clients
        body = self._sdk("token", lambda: client.get_access_token(request))
        expires = now + timedelta(seconds=int(body.expire_in))
        row = {"app_key": self.app_key, "token": body.access_token, "expires_at": expires}

        def store(connection: Connection) -> None:
            # Runners starting together all fetch one: MySQL may pick one as a deadlock victim.
            table = dingtalk_tokens
            connection.execute(delete(table).where(table.c.app_key == self.app_key))
            connection.execute(insert(table).values(row))

        self.database.run(store)
        self._token = (str(body.access_token), expires)
        return str(body.access_token)

    def _sdk(self, api: str, call: Callable[[], Any]) -> Any:
        """Send one SDK call of ``api`` in its turn; its answer's body, or DingTalkError."""
        from Tea.exceptions import TeaException

        self.limiter.wait_turn(api)
        try:
            return call().body
        except TeaException as err:
            raise from_sdk(err) from None
        except OSError as err:  # the sockets below the SDK
            never_sent = isinstance(err, ConnectionRefusedError)
            message = f"DingTalk cannot be reached: {err}"
            raise DingTalkUnavailable(message, in_doubt=not never_sent) from None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _true(value: Any) -> bool:
    """DingTalk's ``success`` is documented as the text "true"; JSON true comes too."""
    return value is True or value == "true"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _runtime() -> Any:
    from alibabacloud_tea_util import models as util

    return util.RuntimeOptions(connect_timeout=CONNECT_TIMEOUT_MS, read_timeout=READ_TIMEOUT_MS)


__all__ = ["DingTalkClient", "InstanceState"]
