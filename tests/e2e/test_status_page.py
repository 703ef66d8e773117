"""The status page at phone size: each outcome in its own colour, the number on one line."""

from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from backend.applications.status import ApplicationStatus as Status
from backend.storage.applications import by_token, transition
from backend.storage.database import make_engine
from backend.storage.schema import applications
from tests.conftest import a_form
from tests.e2e.conftest import ARTIFACTS, PHONE

BREAKABLE = "A20261130-KQ7WMX"
"""A number whose suffix starts with a letter: a line may break after the hyphen before it."""
PATHS = {
    Status.PENDING: [Status.PENDING],
    Status.DELIVERED: [Status.PENDING, Status.APPROVED, Status.ISSUED, Status.DELIVERED],
    Status.REFUSED: [Status.PENDING, Status.REFUSED],
    Status.TERMINATED: [Status.PENDING, Status.TERMINATED],
}
"""The moves that bring a submitted application to each status."""


def application_in(live_stack, page, status: Status, number: str | None = None) -> str:
    """The status page of a new application, moved through the real storage to ``status``."""
    answer = page.request.post(live_stack.url + "/api/applications", data=a_form())
    token = answer.json()["token"]
    engine = make_engine(live_stack.database)
    with engine.begin() as connection:
        application = by_token(connection, token)
        if number:  # numbers are random; a test of how one wraps needs a known one
            connection.execute(
                update(applications).where(applications.c.token == token).values(number=number)
            )
        before = Status.SUBMITTED
        for after in PATHS[status]:
            transition(connection, application.id, before, after, datetime.now(timezone.utc))
            before = after
    engine.dispose()
    return f"{live_stack.url}/status/{token}"


COLOURS = """e => {
    const style = (element) => getComputedStyle(element);
    let under = e;  // the nearest box with a background of its own is what the text is on
    while (style(under).backgroundColor === "rgba(0, 0, 0, 0)") under = under.parentElement;
    return [style(e).color, style(under).backgroundColor];
}"""


def colours(page) -> tuple[str, str]:
    """The status line's text colour and the colour behind it, as the browser computed them."""
    return page.get_by_test_id("status").evaluate(COLOURS)


def luminance(css: str) -> float:
    """WCAG 2's relative luminance of an opaque rgb() colour."""
    channels = [int(part) / 255 for part in css[css.index("(") + 1 : -1].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_refused_is_not_shown_in_the_colour_of_license_sent(live_stack, phone):
    phone.goto(application_in(live_stack, phone, Status.DELIVERED))
    expect(phone.get_by_test_id("status")).to_have_text("许可已发送")
    sent = colours(phone)
    phone.goto(application_in(live_stack, phone, Status.REFUSED))
    expect(phone.get_by_test_id("status")).to_have_text("未获批准")
    phone.shot("refused")
    refused = colours(phone)
    assert refused[0] != sent[0]
    red, green, blue = map(int, refused[0][4:-1].split(","))
    assert red > 2 * max(green, blue)  # red: it did not go through


@pytest.mark.parametrize("status", list(PATHS))
def test_every_status_reads_at_an_accessible_contrast(live_stack, phone, status):
    phone.goto(application_in(live_stack, phone, status))
    expect(phone.get_by_test_id("status")).not_to_have_text("")
    phone.shot(status.value)
    text, background = colours(phone)
    assert contrast(text, background) >= 4.5  # WCAG 2 AA for normal text


def test_terminated_and_refused_look_different_from_waiting(live_stack, phone):
    seen = {}
    for status in (Status.PENDING, Status.TERMINATED, Status.REFUSED):
        phone.goto(application_in(live_stack, phone, status))
        expect(phone.get_by_test_id("status")).not_to_have_text("")
        seen[status] = colours(phone)[0]
    assert len(set(seen.values())) == 3


def one_line_high(element) -> bool:
    """Whether an inline element takes one line, not two."""
    line = element.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    return element.bounding_box()["height"] < 1.5 * line


@pytest.mark.parametrize("language", ["zh-CN", "en-GB"])
def test_the_application_number_stays_on_one_line_at_every_phone_width(
    live_stack, browser, language
):
    context = browser.new_context(viewport=PHONE, locale=language, is_mobile=True)
    page = context.new_page()
    page.goto(application_in(live_stack, page, Status.PENDING, number=BREAKABLE))
    number = page.locator(".number strong")
    expect(number).to_have_text(BREAKABLE)
    broken = []
    for width in range(300, 432, 2):
        page.set_viewport_size({"width": width, "height": PHONE["height"]})
        if not one_line_high(number):
            broken.append(width)
    page.set_viewport_size({"width": 320, "height": PHONE["height"]})
    page.screenshot(path=ARTIFACTS / f"status-number-{language}-320.png", full_page=True)
    context.close()
    assert broken == []
