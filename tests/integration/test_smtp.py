"""Sending over STARTTLS and SSL with a login, to a real TLS mail server on loopback."""

import ipaddress
import smtplib
import ssl
import threading
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509

from backend.mail.compose import compose
from backend.mail.smtp import SmtpSender
from sandbox.mail import MailSandbox
from tests.certificates import self_signed
from tests.conftest import free_port

FACTS = {
    "contact": "张三",
    "company": "示例",
    "number": "A1",
    "product_name": "P",
    "status": "refused",
}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A certificate for 127.0.0.1, and the files a server and a client need."""
    address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    return self_signed(tmp_path_factory.mktemp("tls"), "mail.test", [address])


class Received:
    def __init__(self) -> None:
        self.messages, self.lock = [], threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's name
        with self.lock:
            self.messages.append((session.authenticated, envelope.content))
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    if (auth_data.login, auth_data.password) == (b"dingpass", b"s3cret"):
        return AuthResult(success=True)
    return AuthResult(
        success=False,
        handled=False,
        message="535 5.7.8 Authentication credentials invalid",
    )


def serve(certificate, implicit: bool):
    context, _ = certificate
    received, port = Received(), free_port()
    # aiosmtpd's auth_require_tls (on by default) counts only STARTTLS, not implicit TLS.
    implicit_tls = {"ssl_context": context, "auth_require_tls": False}
    options = implicit_tls if implicit else {"tls_context": context, "require_starttls": True}
    controller = Controller(
        received,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_exclude_mechanism=["LOGIN"],
        server_hostname="mail.test",
        **options,
    )
    controller.start()
    return controller, received, port


def message():
    return compose(
        "refusal",
        "zh",
        FACTS,
        sender="licenses@example.com",
        recipient="z@example.com",
        message_id="<t@x>",
    )


@pytest.mark.parametrize(("security", "implicit"), [("starttls", False), ("ssl", True)])
def test_a_mail_goes_out_over_tls_with_a_login(certificate, security, implicit):
    controller, received, port = serve(certificate, implicit)
    try:
        SmtpSender(
            "127.0.0.1",
            port,
            security,
            "dingpass",
            "s3cret",
            "dingpass.test",
            certificate[1],
        ).send(message(), "z@example.com")
    finally:
        controller.stop()
    ((authenticated, content),) = received.messages
    assert authenticated and b"Message-ID: <t@x>" in content


def test_a_wrong_password_is_an_error_the_job_retries_on(certificate):
    controller, received, port = serve(certificate, implicit=False)
    try:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            SmtpSender(
                "127.0.0.1",
                port,
                "starttls",
                "dingpass",
                "wrong",
                "dingpass.test",
                certificate[1],
            ).send(message(), "z@example.com")
    finally:
        controller.stop()
    assert received.messages == []


def test_an_untrusted_certificate_is_refused(certificate):
    controller, _, port = serve(certificate, implicit=True)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            SmtpSender("127.0.0.1", port, "ssl", "dingpass", "s3cret", "dingpass.test").send(
                message(), "z@example.com"
            )
    finally:
        controller.stop()


def test_the_envelope_names_the_applicant_alone_whatever_the_headers_say():
    mail = MailSandbox().start()
    try:
        sent = message()
        sent.replace_header("To", "z@example.com, postmaster@example.com")
        SmtpSender("127.0.0.1", mail.smtp_port).send(sent, "z@example.com")
    finally:
        mail.stop()
    assert list(mail.mailbox.envelopes.values()) == [["z@example.com"]]


def test_a_line_that_starts_with_a_dot_arrives_whole():
    mail = MailSandbox().start()
    try:
        sent = EmailMessage()
        sent["From"], sent["To"], sent["Subject"] = "a@example.com", "z@example.com", "dots"
        sent.set_content(".hidden\n.\nthe end\n")
        SmtpSender("127.0.0.1", mail.smtp_port).send(sent, "z@example.com")
    finally:
        mail.stop()
    [received] = mail.mailbox.messages.values()
    assert received.get_content().replace("\r\n", "\n") == ".hidden\n.\nthe end\n"


def test_the_mail_is_recorded_as_handed_over_before_the_server_can_commit_it():
    mail, seen = MailSandbox().start(), []
    try:
        record = lambda: seen.append(len(mail.mailbox.messages))  # noqa: E731
        SmtpSender("127.0.0.1", mail.smtp_port).send(message(), "z@example.com", record)
    finally:
        mail.stop()
    assert seen == [0] and len(mail.mailbox.messages) == 1
