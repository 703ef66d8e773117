"""`dingpass dev` (what `make run` starts) serves the page at the URL it prints, backend behind."""

import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from dotenv import dotenv_values

from sandbox import callback_crypto as dingtalk
from tests.app_signing import signed_headers
from tests.conftest import DEV_FORM, running_dev, wait_for


def test_the_printed_apply_url_serves_the_page_and_takes_an_application(dev_stack):
    url = re.search(r"Apply page\s+(\S+)", dev_stack).group(1)
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and '<div id="app">' in page.text
    base = url.split("/apply")[0]
    answer = requests.post(f"{base}/api/applications", json=DEV_FORM, timeout=5)
    assert answer.status_code == 201
    status_api = answer.json()["status_url"].replace("/status/", "/api/applications/")
    # The in-process runner, kicked by the intake, opens it in the sandbox a moment later.
    assert wait_for(lambda: requests.get(status_api, timeout=5).json()["status"] == "pending")


def test_the_backend_it_starts_refuses_unsigned_requests(dev_stack):
    backend = re.search(r"Backend\s+(\S+)", dev_stack).group(1)
    assert requests.get(f"{backend}/applications/abcdefghijklmnop", timeout=5).status_code == 401


def test_approving_in_the_sandbox_console_approves_the_application(dev_stack):
    base = re.search(r"Apply page\s+(\S+)", dev_stack).group(1).split("/apply")[0]
    console = re.search(r"Approver\s+(\S+)", dev_stack).group(1).rstrip("/")
    token = requests.post(f"{base}/api/applications", json=DEV_FORM, timeout=5).json()["token"]
    assert wait_for(lambda: "data-instance=" in requests.get(console, timeout=5).text)
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


def lan_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, as the system lists them."""
    try:
        listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        return []
    return [a for a in listed if ipaddress.ip_address(a).version == 4]


def test_on_every_interface_its_links_name_the_lan_address_and_the_page_answers_there(tmp_path):
    lan = lan_addresses()
    if not lan:
        pytest.skip("this machine has no LAN address")
    with running_dev(tmp_path, "--host", "0.0.0.0") as (_, printed):  # noqa: S104 -- what it tests
        url = re.search(r"Apply page\s+(\S+)", printed).group(1)
        base = url.split("/apply")[0]
        assert base.split("//")[1].split(":")[0] in lan, printed
        assert '<div id="app">' in requests.get(url, timeout=5).text
        answer = requests.post(f"{base}/api/applications", json=DEV_FORM, timeout=5)
        assert answer.json()["status_url"].startswith(f"{base}/status/")
        for name in ("Approver", "Inbox"):
            link = re.search(rf"{name}\s+(\S+)", printed).group(1)
            assert link.startswith(base.rsplit(":", 1)[0]) and requests.get(link, timeout=5).ok
        backend = re.search(r"Backend\s+(\S+)", printed).group(1)
        with pytest.raises(requests.ConnectionError):  # only the frontend, on loopback, calls it
            requests.get(backend.replace("127.0.0.1", lan[0]) + "/healthz", timeout=5)


def test_by_default_it_serves_this_machine_only(dev_stack):
    lan = lan_addresses()
    if not lan:
        pytest.skip("this machine has no LAN address")
    url = re.search(r"Apply page\s+(\S+)", dev_stack).group(1)
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(requests.ConnectionError):
        requests.get(url.replace("127.0.0.1", lan[0]), timeout=5)


def check_url(callback: str, token: str, aes_key: str, owner: str) -> str:
    """Push DingTalk's check_url event sealed with these credentials; the decrypted answer."""
    encrypted = dingtalk.seal(aes_key, owner, json.dumps({"EventType": "check_url"}))
    stamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(4)
    query = {
        "msg_signature": dingtalk.msg_signature(token, stamp, nonce, encrypted),
        "timestamp": stamp,
        "nonce": nonce,
    }
    answer = requests.post(callback, params=query, json={"encrypt": encrypted}, timeout=5)
    assert answer.status_code == 200, answer.text
    return dingtalk.unseal(aes_key, owner, answer.json()["encrypt"])


def written_credentials(folder: Path, printed: str, origin: str) -> tuple[str, dict]:
    """The callback's URL and the credentials the banner says are in the file it names."""
    line = re.search(
        rf"Callback\s+(\S+)\s+its token, aes_key and owner key: (\S+) \({origin}\)", printed
    )
    assert line, printed
    assert (folder / line.group(2)).stat().st_mode & 0o777 == 0o600
    return line.group(1), dotenv_values(folder / line.group(2))


def test_the_callback_credentials_it_makes_are_written_where_it_says(tmp_path):
    with running_dev(tmp_path) as (_, printed):
        callback, made = written_credentials(tmp_path, printed, "made for this run")
        assert "success" == check_url(
            callback,
            made["DINGTALK_CALLBACK_TOKEN"],
            made["DINGTALK_CALLBACK_AES_KEY"],
            made["DINGTALK_CALLBACK_OWNER_KEY"],
        )


def test_the_callback_token_and_aes_key_of_the_environment_are_taken_with_the_run_s_owner_key(
    tmp_path, monkeypatch
):
    token, aes_key = "given-token", "G" * 43
    monkeypatch.setenv("DINGTALK_CALLBACK_TOKEN", token)
    monkeypatch.setenv("DINGTALK_CALLBACK_AES_KEY", aes_key)
    with running_dev(tmp_path) as (_, printed):
        callback, written = written_credentials(tmp_path, printed, "from the environment")
        assert (written["DINGTALK_CALLBACK_TOKEN"], written["DINGTALK_CALLBACK_AES_KEY"]) == (
            token,
            aes_key,
        )
        owner = written["DINGTALK_CALLBACK_OWNER_KEY"]
        assert check_url(callback, token, aes_key, owner) == "success"


def test_a_callback_owner_key_of_the_environment_is_the_one_it_takes(tmp_path, monkeypatch):
    monkeypatch.setenv("DINGTALK_CALLBACK_OWNER_KEY", "dinggivenowner")
    with running_dev(tmp_path) as (_, printed):
        callback, written = written_credentials(tmp_path, printed, "made for this run")
        assert written["DINGTALK_CALLBACK_OWNER_KEY"] == "dinggivenowner"
        token, aes_key = written["DINGTALK_CALLBACK_TOKEN"], written["DINGTALK_CALLBACK_AES_KEY"]
        assert check_url(callback, token, aes_key, "dinggivenowner") == "success"


def test_a_new_application_reaches_both_of_its_robots_in_the_inbox(dev_stack):
    base = re.search(r"Apply page\s+(\S+)", dev_stack).group(1).split("/apply")[0]
    inbox = re.search(r"Inbox\s+(\S+)", dev_stack).group(1).rstrip("/")
    requests.post(f"{base}/api/applications", json=DEV_FORM, timeout=5).raise_for_status()

    def told() -> set[str]:
        messages = requests.get(f"{inbox}/robots.json", timeout=5).json()
        return {m["robot"] for m in messages if m["answered"]["errcode"] == 0}

    assert wait_for(lambda: told() == {"approvers", "ops"}, seconds=15)
    assert "示例科技" in requests.get(f"{inbox}/", timeout=5).text


def test_a_change_sent_to_the_printed_api_is_made_in_the_cloud_sandbox(tmp_path):
    with running_dev(tmp_path) as (_, printed):
        api = re.search(r"Changes API\s+(\S+)", printed).group(1)
        cloud = re.search(r"Cloud\s+(\S+)/", printed).group(1)
        key, secret = _new_app(tmp_path, "itsm")
        body = json.dumps({"type": "vpc", "request_id": "dev-1"}).encode()
        headers = signed_headers(key, secret, "POST", api, body, "application/json")
        taken = requests.post(api, data=body, headers=headers, timeout=5)
        assert taken.status_code == 202, taken.text
        progress = f"{api}/{taken.json()['id']}"

        def status() -> str:
            signed = signed_headers(key, secret, "GET", progress)
            return requests.get(progress, headers=signed, timeout=5).json()["status"]

        assert wait_for(lambda: status() == "succeeded", seconds=20)
        vpcs = requests.get(f"{cloud}/_sandbox/resources", timeout=5).json()["counts"]["vpc"]
        assert vpcs == 1


def _new_app(folder: Path, name: str) -> tuple[str, str]:
    """The key and secret `dingpass apps create` prints, in the running stack's database."""
    script = Path(sys.executable).with_name("dingpass")
    env = {**os.environ, "DINGPASS_VAR_DIR": str(folder / "var")}
    made = subprocess.run(
        [script, "apps", "create", name], cwd=folder, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    key = re.search(r"AppKey:\s+(\S+)", made.stdout).group(1)
    return key, re.search(r"AppSecret:\s+(\S+)", made.stdout).group(1)
