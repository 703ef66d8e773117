"""The mail sandbox's SMTP server: where it listens, and what it logs."""

import logging
import smtplib
from email.message import EmailMessage

import pytest

from sandbox import mail
from sandbox.mail import MailSandbox
from tests.conftest import wait_for


def a_message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "a@example.com",
        "b@example.com",
        "hello",
    )
    message.set_content("hi")
    return message


def test_a_port_taken_before_the_server_binds_it_gives_way_to_another(monkeypatch, taken_port):
    ports = iter([taken_port])
    found_free = mail._free_port
    monkeypatch.setattr(mail, "_free_port", lambda host: next(ports, None) or found_free(host))
    sandbox = MailSandbox()
    try:
        assert sandbox.smtp_port != taken_port
        with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=5) as client:
            client.send_message(a_message())
        assert [m["subject"] for m in sandbox.mailbox.summary()] == ["hello"]
    finally:
        sandbox.stop()


def test_a_port_asked_for_that_is_in_use_is_an_error_not_another_port(taken_port):
    with pytest.raises(OSError, match="in use"):
        MailSandbox(smtp_port=taken_port)


@pytest.fixture
def sandbox():
    server = MailSandbox()
    yield server
    server.stop()


def send_and_let_the_server_finish(sandbox: MailSandbox, caplog) -> None:
    """Send one mail, and wait until the server has logged the connection's end (at DEBUG)."""
    with caplog.at_level(logging.DEBUG):
        with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=5) as client:
            client.send_message(a_message())
        assert wait_for(lambda: any("connection lost" in r.getMessage() for r in caplog.records))


def test_a_mail_leaves_no_smtp_dialogue_in_the_log_at_info(sandbox, caplog):
    send_and_let_the_server_finish(sandbox, caplog)
    assert [m["subject"] for m in sandbox.mailbox.summary()] == ["hello"]
    dialogue = [r for r in caplog.records if r.name.startswith("mail")]
    assert [r.getMessage() for r in dialogue if r.levelno >= logging.INFO] == []


def test_the_smtp_dialogue_is_there_at_debug(sandbox, caplog):
    send_and_let_the_server_finish(sandbox, caplog)
    dialogue = [r for r in caplog.records if r.name == "mail.log"]
    assert any("connection lost" in r.getMessage() for r in dialogue)
    assert {r.levelname for r in dialogue} == {"DEBUG"}
