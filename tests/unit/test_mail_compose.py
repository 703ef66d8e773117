"""What a composed mail says in its subject and carries in its parts, before any server sees it."""

import pytest

from backend.mail.compose import Attachment, compose

COMMON = {"contact": "张三", "company": "杭州示例科技有限公司", "number": "A2026-0001"}
LICENSE = {
    **COMMON,
    "product_name": "Acme ERP",
    "edition": "enterprise",
    "feature_code": "9F2C-41AB",
    "quantity": 5,
    "license_id": "L1",
    "valid_from": "2026-11-23",
    "valid_until": None,
    "filename": "acme-erp-L1.lic",
}


def mail(kind: str, language: str, facts, attachment: Attachment | None = None):
    return compose(
        kind,
        language,
        facts,
        sender="dingpass@example.com",
        recipient="zhang@example.com",
        message_id="<m@example.com>",
        attachment=attachment,
    )


@pytest.mark.parametrize(
    ("status", "language", "subject"),
    [
        ("refused", "en", "Your license application was not approved (A2026-0001)"),
        ("terminated", "en", "Your license application was withdrawn (A2026-0001)"),
        ("refused", "zh", "您的软件许可申请未获批准（A2026-0001）"),
        ("terminated", "zh", "您的软件许可申请已撤销（A2026-0001）"),
    ],
)
def test_a_refusal_subject_says_what_became_of_the_application(status, language, subject):
    facts = {**COMMON, "product_name": "Acme ERP", "status": status}
    assert mail("refusal", language, facts)["Subject"] == subject


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_html_part_fits_a_phone_screen(language):
    html = mail("license", language, LICENSE).get_body(("html",)).get_content()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_a_text_attachment_declares_its_charset_and_keeps_its_bytes():
    content = "Licensee: 杭州示例科技有限公司\n".encode()
    attachment = Attachment("a.lic", content, "text", "plain", charset="utf-8")
    (part,) = mail("license", "zh", LICENSE, attachment).iter_attachments()
    assert part.get_content_type() == "text/plain" and part.get_content_charset() == "utf-8"
    assert part.get_payload(decode=True) == content
