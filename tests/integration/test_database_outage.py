"""While the database is out, each function answers 503 (try again), never 500."""

import dataclasses
import socket
from datetime import datetime, timezone

import pytest

from approval.app import create_app as create_approval
from backend.app import create_app
from backend.config import Config
from tests.conftest import CATALOGUE
from tests.integration.conftest import SECRET, LiveServer, SignedClient, a_form
from tests.integration.test_callback import AES_KEY, AGREE, APP_KEY, TOKEN, push
from tests.integration.test_frontend import frontend_for


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["sqlite", "mariadb"])
def unreachable(request, tmp_path) -> Config:
    """Settings whose database cannot be opened: a folder in place of the file, or a port
    nobody serves."""
    url = {
        "sqlite": f"sqlite:///{tmp_path}",
        "mariadb": f"mysql+pymysql://root@127.0.0.1:{closed_port()}/dingpass",
    }[request.param]
    return Config(database_url=url, proxy_secret=SECRET, catalogue_file=CATALOGUE)


def test_the_backend_answers_503_with_retry_after(unreachable):
    answer = SignedClient(create_app(unreachable)).post("/applications", a_form())
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert answer.get_json() == {
        "error": "database_unavailable",
        "message": {
            "zh": "数据库暂时不可用，请稍后再试。",
            "en": "The database is unavailable for a moment; try again shortly.",
        },
    }


def test_the_frontend_passes_the_503_on_with_retry_after(unreachable, tmp_path):
    backend = LiveServer(create_app(unreachable))
    answer = frontend_for(backend.url, tmp_path).post("/api/applications", json=a_form())
    backend.stop()
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert answer.get_json()["error"] == "database_unavailable"


def test_the_callback_answers_503_so_that_dingtalk_sends_it_again(unreachable, clock):
    clock.now = datetime.fromtimestamp(1779512345, timezone.utc)
    settings = dataclasses.replace(
        unreachable,
        dingtalk_callback_token=TOKEN,
        dingtalk_callback_aes_key=AES_KEY,
        dingtalk_app_key=APP_KEY,
    )
    answer = push(create_approval(settings, clock=clock).test_client(), AGREE)
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert answer.get_json()["error"] == "database_unavailable"
