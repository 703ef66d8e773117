"""Robot messages as the chat shows them: the markdown subset DingTalk and WeCom render, to HTML.

Everything is escaped first; only the subset's own constructs become tags: headings, ``>``
quotes, ``-``/``1.`` lists, ``**bold**``, ``*italic*``, links and images with http(s) or
dingtalk URLs, WeCom's ``<font color="info|comment|warning">`` and ``<@userid>``, and line
breaks. No markdown library is a dependency, and this subset is small enough to own.
"""

import re

from markupsafe import Markup, escape

SAFE_SCHEMES = ("http://", "https://", "dingtalk://")
BLOCK = re.compile(
    r"(?P<heading>#{1,6})\s*(?P<title>.*)|>\s?(?P<quote>.*)"
    r"|\s*[-*+]\s+(?P<item>.*)|\s*\d+[.)]\s+(?P<number>.*)"
)
INLINE = re.compile(
    r"\*\*(?P<bold>.+?)\*\*"
    r"|\*(?P<em>[^*\s][^*]*?)\*"
    r"|!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)"
    r"|\[(?P<label>[^\]]+)\]\((?P<href>[^)\s]+)\)"
    r'|<font color="(?P<color>info|comment|warning)">(?P<colored>.*?)</font>'
    r"|<@(?P<userid>[^>\s]+)>"
)


def render_markdown(source: str) -> Markup:
    """The markdown ``source`` as safe HTML."""
    html: list[str] = []
    open_tag = ""
    for line in source.replace("\r\n", "\n").split("\n"):
        tag, inner = _block(line)
        if tag != open_tag:
            html.append(_close(open_tag))
            html.append(_open(tag))
            open_tag = tag
        elif tag in ("p", "blockquote") and inner:
            html.append("<br>")
        html.append(inner)
    html.append(_close(open_tag))
    # Safe: every piece of the source went through escape(); the tags are this module's own.
    return Markup("".join(html))  # noqa: S704


def render_text(source: str) -> Markup:
    """A plain text message as safe HTML: escaped, with its line breaks."""
    return Markup("<p>{}</p>").format(Markup("<br>").join(escape(source).split("\n")))


def _block(line: str) -> tuple[str, str]:
    """The block a line belongs to (a container tag, or "" for a blank line) and its HTML."""
    if not line.strip():
        return "", ""
    found = BLOCK.fullmatch(line)
    if found is None:
        return "p", _inline(line.strip())
    if found["heading"]:
        level = len(found["heading"])
        return "h", f"<h{level}>{_inline(found['title'].strip())}</h{level}>"
    if found["quote"] is not None:
        return "blockquote", _inline(found["quote"].strip())
    if found["item"] is not None:
        return "ul", f"<li>{_inline(found['item'].strip())}</li>"
    return "ol", f"<li>{_inline(found['number'].strip())}</li>"


def _open(tag: str) -> str:
    return f"<{tag}>" if tag in ("p", "blockquote", "ul", "ol") else ""


def _close(tag: str) -> str:
    return f"</{tag}>" if tag in ("p", "blockquote", "ul", "ol") else ""


def _inline(text: str) -> str:
    out: list[str] = []
    end = 0
    for found in INLINE.finditer(text):
        out.append(escape(text[end : found.start()]))
        out.append(_construct(found))
        end = found.end()
    out.append(escape(text[end:]))
    return "".join(out)


def _construct(found: re.Match[str]) -> str:
    if found["bold"] is not None:
        return f"<strong>{_inline(found['bold'])}</strong>"
    if found["em"] is not None:
        return f"<em>{_inline(found['em'])}</em>"
    if found["src"] is not None:
        return _image(found["alt"], found["src"])
    if found["href"] is not None:
        return _link(found["label"], found["href"])
    if found["color"] is not None:
        return f'<span class="font-{found["color"]}">{_inline(found["colored"])}</span>'
    return f'<span class="mention">@{escape(found["userid"])}</span>'


def _link(label: str, href: str) -> str:
    # A javascript: or data: URL stays text: the chat would not open it either.
    if not href.lower().startswith(SAFE_SCHEMES):
        return escape(f"[{label}]({href})")
    return f'<a href="{escape(href)}" rel="noopener noreferrer">{_inline(label)}</a>'


def _image(alt: str, src: str) -> str:
    # The sandbox is offline: an image is shown as a link to it, never fetched by the page.
    if not src.lower().startswith(SAFE_SCHEMES):
        return escape(f"![{alt}]({src})")
    return f'<a class="image" href="{escape(src)}">[图片 {escape(alt)}]</a>'
