"""The DingTalk sandbox's approver console, as chromium draws it."""

import pytest
import requests

from sandbox.server import Sandbox, SandboxSettings

PROCESS_CODE = "PROC-CONSOLE"
COLOURS = {
    "running": "rgb(20, 86, 240)",  # blue
    "approve": "rgb(46, 161, 33)",  # green
    "refuse": "rgb(216, 57, 49)",  # red
    "terminate": "rgb(100, 106, 115)",  # grey
}


@pytest.fixture
def console():
    server = Sandbox(SandboxSettings("console-key", "console-secret", PROCESS_CODE)).start()
    yield server
    server.stop()


def an_instance(console: Sandbox, action: str) -> str:
    """An instance, approved, refused or terminated in the console (or left running)."""
    instance = console.state.start(PROCESS_CODE, "manager01", 1, [])
    if action != "running":
        requests.post(f"{console.url}/console/{instance.id}/{action}", timeout=5).raise_for_status()
    return instance.id


def test_each_instance_shows_in_the_colour_of_its_outcome(browser, console):
    instances = {action: an_instance(console, action) for action in COLOURS}
    page = browser.new_page()
    page.goto(console.url)
    shown = {
        action: page.locator(f'[data-instance="{instance}"] .status').evaluate(
            "element => getComputedStyle(element).color"
        )
        for action, instance in instances.items()
    }
    page.close()
    assert shown == COLOURS
