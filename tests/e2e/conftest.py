"""A live stack (frontend + backend on loopback, SQLite) and Debian's chromium via Playwright."""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.app import create_app
from backend.config import Config
from backend.storage import migrate
from backend.storage.database import make_engine
from frontend.app import create_app as create_frontend
from frontend.config import STATIC_DIR, FrontendConfig
from tests.conftest import CATALOGUE, ROOT
from tests.integration.conftest import SECRET, LiveServer

CHROMIUM = "/usr/bin/chromium"
# Chromium's own calls home are refused on a closed network; these keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
ARTIFACTS = ROOT / "test-artifacts" / "e2e"


@dataclass(frozen=True)
class Stack:
    """A running frontend and backend: the frontend's URL and the backend's database URL."""

    url: str
    database: str


@pytest.fixture
def stack(live_stack: Stack) -> str:
    """The frontend's URL, with a backend behind it on a fresh SQLite database."""
    return live_stack.url


@pytest.fixture
def live_stack(tmp_path) -> Iterator[Stack]:
    """The frontend and backend on a fresh SQLite database, which a test may read and change."""
    if not (STATIC_DIR / "index.html").exists():
        pytest.fail("the page is not built: run `make test`, which builds vue-app first")
    database = f"sqlite:///{tmp_path}/dingpass.db"
    migrate.upgrade(make_engine(database))
    backend = LiveServer(
        create_app(Config(database_url=database, proxy_secret=SECRET, catalogue_file=CATALOGUE))
    )
    front_config = FrontendConfig(
        backend_url=backend.url, proxy_secret=SECRET, catalogue_file=CATALOGUE
    )
    frontend = LiveServer(create_frontend(front_config))
    yield Stack(frontend.url, database)
    frontend.stop()
    backend.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser, request):
    """A phone-sized page in Chinese; its screenshots go to test-artifacts/e2e/<test>-<step>.png."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, locale="zh-CN", is_mobile=True
    )
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.shot = lambda step: page.screenshot(
        path=ARTIFACTS / f"{request.node.name}-{step}.png", full_page=True
    )
    yield page
    context.close()


@pytest.fixture
def english_desktop(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    yield context.new_page()
    context.close()


def node_available() -> bool:
    return shutil.which("node") is not None
