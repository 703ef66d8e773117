"""License, refusal and expiry reminder mails: jinja2 text templates per language, an HTML
part made from them."""

import re
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from backend.mail.message import Message

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
FACT = re.compile(r"^\s{2,}(?P<label>[^:：]+)[:：]\s*(?P<value>.*)$")
SUBJECTS = {
    ("license", "zh"): "您的软件许可：{product_name}（{number}）",
    ("license", "en"): "Your license: {product_name} ({number})",
    ("expiry_reminder", "zh"): "您的软件许可将于 {expires} 到期：{product_name}（{license_id}）",
    ("expiry_reminder", "en"): "Your license ends on {expires}: {product_name} ({license_id})",
    ("refused", "zh"): "您的软件许可申请未获批准（{number}）",
    ("refused", "en"): "Your license application was not approved ({number})",
    ("terminated", "zh"): "您的软件许可申请已撤销（{number}）",
    ("terminated", "en"): "Your license application was withdrawn ({number})",
}
"""Subjects by kind (a refusal by the application's status: refused or terminated) and language:
the subject alone says what happened."""


Facts = dict[str, str | int | None]
"""What a mail's templates fill in: names, numbers, dates (None where a value is absent)."""
Block = dict[str, str | list[tuple[str, str]]]
"""A paragraph of the HTML part: {"text": ...}, or {"facts": [(label, value), ...]}."""


@dataclass(frozen=True)
class Attachment:
    """A file to attach, sent in base64 so that every byte arrives as it is."""

    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"
    charset: str | None = None
    """For text: how ``content`` is encoded, so that a mail client shows it rightly."""


def compose(
    kind: str,
    language: str,
    facts: Facts,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    attachment: Attachment | None = None,
) -> Message:
    """A mail of ``kind`` (license | refusal | expiry_reminder) in ``language``, with a plain
    and an HTML part."""
    language = language if language in ("zh", "en") else "zh"
    text = _env.get_template(f"{kind}.{language}.txt").render(**facts)
    subject = _subject(kind, language, facts)
    message = Message()
    message["From"], message["To"], message["Subject"] = sender, recipient, subject
    message["Message-ID"], message["Date"] = message_id, formatdate(localtime=False)
    message.set_content(text)
    html = _env.get_template("message.html").render(
        language=language, subject=subject, blocks=_blocks(text)
    )
    message.add_alternative(html, subtype="html")
    if attachment is not None:
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            params={"charset": attachment.charset} if attachment.charset else {},
        )
    return message


def _subject(kind: str, language: str, facts: Facts) -> str:
    case = str(facts["status"]) if kind == "refusal" else kind
    return SUBJECTS[(case, language)].format(**facts)


def _blocks(text: str) -> list[Block]:
    """Paragraphs of the text version; runs of indented 'label: value' lines become a table."""
    blocks: list[Block] = []
    for paragraph in filter(None, (p.strip("\n") for p in text.split("\n\n"))):
        facts = [FACT.match(line) for line in paragraph.splitlines()]
        if all(facts):
            blocks.append({"facts": [(m["label"].strip(), m["value"]) for m in facts if m]})
        else:
            blocks.append({"text": " ".join(line.strip() for line in paragraph.splitlines())})
    return blocks
