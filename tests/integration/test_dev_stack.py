"""`dingpass dev` (what `make run` starts) serves the page at the URL it prints, backend behind."""

import re
import secrets
import signal
import time

import pytest
import requests

from tests.conftest import running_dev


def test_the_printed_apply_url_serves_the_page_and_takes_an_application(dev_stack):
    url = re.search(r"Apply page\s+(\S+)", dev_stack).group(1)
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and '<div id="app">' in page.text
    base = url.split("/apply")[0]
    form = {
        "product": "acme-erp",
        "feature_code": "9F2C-41AB-77D0-E5C3",
        "company": "示例科技",
        "contact": "张三",
        "email": "z@example.com",
        "quantity": 5,
        "validity": "1y",
    }
    answer = requests.post(f"{base}/api/applications", json=form, timeout=5)
    assert answer.status_code == 201
    status_api = answer.json()["status_url"].replace("/status/", "/api/applications/")
    assert requests.get(status_api, timeout=5).json()["status"] == "pending"  # open in the sandbox


def test_the_backend_it_starts_refuses_unsigned_requests(dev_stack):
    backend = re.search(r"Backend\s+(\S+)", dev_stack).group(1)
    assert requests.get(f"{backend}/applications/abcdefghijklmnop", timeout=5).status_code == 401


def test_approving_in_the_sandbox_console_approves_the_application(dev_stack):
    base = re.search(r"Apply page\s+(\S+)", dev_stack).group(1).split("/apply")[0]
    console = re.search(r"Approver\s+(\S+)", dev_stack).group(1).rstrip("/")
    form = {
        "product": "acme-erp",
        "feature_code": "9F2C-41AB-77D0-E5C3",
        "company": "示例科技",
        "contact": "张三",
        "email": "z@example.com",
        "quantity": 5,
        "validity": "1y",
    }
    token = requests.post(f"{base}/api/applications", json=form, timeout=5).json()["token"]
    instance = re.search(r'data-instance="([^"]+)"', requests.get(console, timeout=5).text).group(1)
    requests.post(f"{console}/console/{instance}/approve", timeout=5).raise_for_status()
    deadline, seen = time.monotonic() + 5, []
    while time.monotonic() < deadline and "approved" not in seen:
        timeline = requests.get(f"{base}/api/applications/{token}", timeout=5).json()["timeline"]
        seen = [event["status"] for event in timeline]
        time.sleep(0.1)
    assert "approved" in seen  # and the runner carries it on to delivered


def ignore_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_it_stops_on_ctrl_c_or_sigterm_even_when_started_with_ctrl_c_ignored(tmp_path, number):
    # What a non-interactive shell does to a command it starts in the background.
    with running_dev(tmp_path, preexec_fn=ignore_ctrl_c) as (process, _):
        process.send_signal(number)
        assert process.wait(timeout=10) == 0


def test_its_request_lines_carry_only_the_start_of_a_status_token(tmp_path):
    token = secrets.token_urlsafe(24)
    with (
        (tmp_path / "stderr.log").open("w") as log,
        running_dev(tmp_path, stderr=log) as (_, printed),
    ):
        base = re.search(r"Apply page\s+(\S+)", printed).group(1).split("/apply")[0]
        requests.get(f"{base}/status/{token}", timeout=5)
        requests.get(f"{base}/api/applications/{token}", timeout=5)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", (tmp_path / "stderr.log").read_text())  # no colours
    assert f'"GET /status/{token[:4]}… HTTP/1.1" 200' in lines
    assert f'"GET /api/applications/{token[:4]}… HTTP/1.1" 404' in lines
    assert f'"GET /applications/{token[:4]}… HTTP/1.1" 404' in lines  # the backend's
    assert token not in lines
