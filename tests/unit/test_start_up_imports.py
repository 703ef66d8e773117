"""What each function leaves to first use: libraries its start-up (and POST /initialize) does
without, for Function Compute's cold start.

Each function's entry module is imported in a new interpreter, as gunicorn imports it, with
DingTalk and robots configured so that their clients are built.
"""

import subprocess
import sys

import pytest

from tests.conftest import CATALOGUE, ROOT

EVERY_FUNCTION = ("requests", "urllib3", "dotenv", "alibabacloud_dingtalk")
"""HTTP for DingTalk's old API, robots and change callbacks; the .env reader; DingTalk's SDK."""
DEFERRED = {
    "backend": (*EVERY_FUNCTION, "backend.work", "backend.approvals.opener"),
    "approval": (*EVERY_FUNCTION, "backend.changes.service", "backend.cloud.plugins"),
    "runner": EVERY_FUNCTION,
    "frontend": ("requests", "urllib3"),
}
"""Besides: the backend makes its job runner (for redemptions) on its first redemption, and the
approval function queues an agreed change's steps without its planner. The frontend's code
package has neither HTTP library (frontend/backend_pool.py calls the backend)."""


@pytest.fixture
def environment(tmp_path):
    """Every function's settings, DingTalk and robots included, on SQLite."""
    return {
        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path}/dingpass.db",
        "DINGPASS_VAR_DIR": str(tmp_path / "var"),
        "CATALOGUE_FILE": str(CATALOGUE),
        "PROXY_SECRET": "start-up-secret",
        "DINGTALK_APP_KEY": "start-up-key",
        "DINGTALK_APP_SECRET": "start-up-app-secret",
        "DINGTALK_PROCESS_CODE": "PROC-START",
        "DINGTALK_ORIGINATOR_USER_ID": "start-up-approver",
        "DINGTALK_CALLBACK_TOKEN": "start-up-token",
        "DINGTALK_CALLBACK_AES_KEY": "dP7s3kQ9vX2mL8nR4tY6wZ1aB5cD0eF3gH7jK9pQ2rS",
        "ROBOTS_FILE": str(ROOT / "robots.example.toml"),
        "ROBOT_APPROVERS_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=t",
        "ROBOT_APPROVERS_SECRET": "SECstart",
        "ROBOT_OPS_WEBHOOK": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
    }


@pytest.mark.parametrize(("function", "deferred"), sorted(DEFERRED.items()))
def test_a_function_starts_without_what_only_later_requests_need(function, deferred, environment):
    code = f"import sys, {function}.wsgi; print(*sorted(set({deferred!r}) & set(sys.modules)))"
    started = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert started.stdout.split() == []
