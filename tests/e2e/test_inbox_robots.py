"""The mail sandbox's inbox page with robot messages, as chromium draws it."""

import pytest
import requests

from sandbox.mail import MailSandbox

HOSTILE = (
    "#### 部署 <script>window.ran = true</script>\n"
    '**失败** <img src=x onerror="window.ran = true">\n'
    "[详情](javascript:window.ran=true)"
)


@pytest.fixture
def inbox():
    server = MailSandbox().start()
    server.robots.add_dingtalk("T", name="运维群")
    yield server
    server.stop()


def send_markdown(inbox: MailSandbox, text: str) -> None:
    body = {"msgtype": "markdown", "markdown": {"title": "部署", "text": text}}
    answer = requests.post(f"{inbox.url}/robot/send?access_token=T", json=body, timeout=5)
    assert answer.json()["errcode"] == 0


def test_a_markdown_message_is_drawn_as_the_chat_draws_it(phone, inbox):
    send_markdown(inbox, "#### 杭州天气\n> 9度\n- **一**")
    phone.goto(inbox.url)
    chat = phone.locator('[data-robot="运维群"] .bubble')
    assert chat.locator("h4").inner_text() == "杭州天气"
    assert chat.locator("li strong").inner_text() == "一"
    phone.shot("markdown")


def test_markup_in_a_message_is_shown_as_text_and_never_runs(phone, inbox):
    send_markdown(inbox, HOSTILE)
    phone.goto(inbox.url)
    chat = phone.locator('[data-robot="运维群"] .bubble')
    assert "<script>window.ran = true</script>" in chat.inner_text()
    assert chat.locator("img, a").count() == 0
    assert phone.evaluate("window.ran === undefined")
