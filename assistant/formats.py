"""File formats: tell a file's type from its content and turn it into lines of text plus format metadata.

Plain text and Markdown are read as they are (Markdown rendered and reduced to its text); HTML goes through
trafilatura (main text, title, author, site name) and htmldate (publication date from the page's markup);
PDF through pypdf's text layer.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bs4 import BeautifulSoup

KINDS = ("text", "markdown", "html", "pdf")
_BLOCKS = [
    *("address", "article", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure", "footer", "h1", "h2"),
    *("h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td"),
    *("th", "tr", "ul"),
]
_HTML_SIGNS = re.compile(r"<!doctype html|<html[\s>]|<head[\s>]|<body[\s>]|<meta\s|<(?:p|div|article)[\s>]", re.I)
_MARKDOWN_SIGNS = re.compile(r"^(?:#{1,6} \S|[-*] \S|\d+\. \S|> \S)|\[[^\]]+\]\([^)]+\)|\*\*\S", re.M)
# Byte signatures of formats that are surely not documents (images, archives, office files, executables).
_BINARY_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"PK\x03\x04": "a ZIP archive (or an Office file: save it as PDF, HTML or text)",
    b"\x1f\x8b": "a gzip archive",
    b"\x7fELF": "a program",
    b"\xd0\xcf\x11\xe0": "an old Office file (save it as PDF, HTML or text)",
}


class FormatError(ValueError):
    """The file's content cannot be read as a document; the message says why."""


@dataclass(frozen=True)
class Hint:
    """One metadata value a format itself gave (a meta tag, the PDF's Title), and how it was found."""

    value: str
    method: str
    confidence: float


@dataclass(frozen=True)
class HiddenRules:
    """What counts as hidden text in a page: a font this small or smaller, a box moved this far off the page
    (CSS px; pt, em, rem and % converted at 16 px to the em)."""

    font_px: float = 1.0
    offscreen_px: float = 1000.0


@dataclass(frozen=True)
class Hidden:
    """Text a web page hides from its readers (an HTML comment, display:none, a zero-size font), and how."""

    text: str
    reason: str


@dataclass(frozen=True)
class Extracted:
    """A file reduced to text: the kind read, the text (one block a line) and what the format said."""

    kind: str
    text: str
    hints: dict[str, Hint] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    hidden: tuple[Hidden, ...] = ()  # hidden parts of the page (they may or may not be in `text`)


def sniff(data: bytes, suffix: str) -> str:
    """The kind of a file by its content ('pdf', 'html', 'markdown', 'text'); FormatError for others."""
    head = data[:2048]
    if head.lstrip().startswith(b"%PDF-"):
        return "pdf"
    for signature, what in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise FormatError(f"this is {what}, not a document")
    if suffix == ".pdf":
        raise FormatError("named .pdf but it is not a PDF (no %PDF header)")
    sample = head.decode("utf-8", errors="ignore")
    if _HTML_SIGNS.search(sample):
        return "html"
    if suffix in (".md", ".markdown") or (suffix not in (".txt", ".text") and _MARKDOWN_SIGNS.search(sample)):
        return "markdown"
    return "text"


def decode(data: bytes) -> str:
    """Bytes to text with normalised line ends; FormatError for empty, binary or non-UTF-8 content."""
    if not data.strip():
        raise FormatError("empty file")
    if b"\x00" in data:
        raise FormatError("binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not valid UTF-8 (byte {exc.start}); re-save it as UTF-8") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def extract(data: bytes, suffix: str, hidden: HiddenRules | None = None) -> Extracted:
    """Read a file's bytes as the kind its content shows (`hidden`: what counts as hidden text in a page)."""
    kind = sniff(data, suffix.lower())
    if kind == "pdf":
        return read_pdf(data)
    text = decode(data)
    if kind == "html":
        return read_html(text, hidden)
    if kind == "markdown":
        return read_markdown(text, hidden)
    return Extracted("text", text)


# --- HTML ------------------------------------------------------------------------------------------


def read_html(html: str, hidden: HiddenRules | None = None) -> Extracted:
    """Main text and metadata of a web page (trafilatura), its publication date from the markup (htmldate)."""
    import htmldate
    import trafilatura

    doc = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, include_tables=True, include_images=False, deduplicate=False
    )
    text = (getattr(doc, "text", None) or "").strip() if doc is not None else ""
    notes: list[str] = []
    if not text:
        text = visible_text(html)  # a page trafilatura finds no article in (a list, a tiny page)
        notes.append("no main article found: the page's visible text was used")
    hints: dict[str, Hint] = {}
    if doc is not None:
        for key, attr in (("title", "title"), ("byline", "author"), ("outlet", "sitename")):
            value = (getattr(doc, attr, None) or "").strip()
            if value:
                hints[key] = Hint(value, f"web page metadata ({attr})", 0.9)
        host = (getattr(doc, "hostname", None) or "").strip()
        if host:
            hints["host"] = Hint(host, "web page address", 0.6)
    published = htmldate.find_date(html, original_date=True, extensive_search=False, outputformat="%Y-%m-%d")
    if published:
        hints["published"] = Hint(published, "web page markup (htmldate, original date)", 0.9)
    updated = htmldate.find_date(html, original_date=False, extensive_search=False, outputformat="%Y-%m-%d")
    if updated and updated != published:
        hints["updated"] = Hint(updated, "web page markup (htmldate, last modified)", 0.8)
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")  # once, for what trafilatura does not report
    site = _site_from_title_tag(soup, hints["title"].value if "title" in hints else "")
    if site:
        hints["site"] = Hint(site, "web page <title> (the part beside the headline, or the whole)", 0.8)
    footer = _footer_text(soup)
    if footer:
        hints["footer"] = Hint(footer, "web page footer", 0.5)
    return Extracted("html", text, hints, tuple(notes), hidden_parts(soup, hidden))


def visible_text(html: str) -> str:
    """Visible text of an HTML fragment, one block per line (scripts, styles and hidden parts dropped).

    One walk over the tree: editing it node by node (bs4's replace_with, insert_before) costs time linear in the
    number of siblings each, so a page of many inline elements in one paragraph took minutes.
    """
    from bs4 import BeautifulSoup, NavigableString

    soup = BeautifulSoup(html, "html.parser")
    parts: list[str] = []
    stack: list[tuple[Any, bool]] = [(soup, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            parts.append("\n")
        elif isinstance(node, NavigableString):
            parts.append(str(node).replace("\n", " "))  # source line breaks are layout, not text
        elif node.name in _SKIPPED:
            continue
        elif node.name == "br":
            parts.append("\n")
        else:
            if node.name in _BLOCK_SET:  # a block starts a line; inline tags (a, b, em, span) stay in it
                parts.append("\n")
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line)


_SKIPPED = frozenset(["script", "style", "noscript", "template", "head"])
_BLOCK_SET = frozenset(_BLOCKS)
_HIDING_STYLES = (
    (re.compile(r"(?<![\w-])display\s*:\s*none", re.I), "display:none"),
    (re.compile(r"(?<![\w-])visibility\s*:\s*(?:hidden|collapse)", re.I), "visibility:hidden"),
    (re.compile(r"(?<![\w-])opacity\s*:\s*0*(?:\.0*)?\s*(?:;|$|!)", re.I), "opacity:0"),
)
_FONT_SIZE = re.compile(r"(?<![\w-])font-size\s*:\s*(\d*\.?\d+)\s*(px|pt|em|rem|%)?", re.I)
_OFFSCREEN = re.compile(
    r"(?<![\w-])(left|top|right|text-indent|margin-left|margin-top)\s*:\s*-(\d*\.?\d+)\s*(px|pt|em|rem)?", re.I
)
_PX_PER = {"px": 1.0, "pt": 4 / 3, "em": 16.0, "rem": 16.0, "%": 0.16, "": 1.0}
_NOT_TEXT = frozenset(["script", "style", "noscript", "template", "head", "title", "meta", "link"])
_CSS_RULE = re.compile(r"([^{}@;]+)\{([^{}]*)\}")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
# an @media / @supports block: its rules hide only sometimes (when printing, on a narrow screen)
_CSS_AT_BLOCK = re.compile(r"@[^{};]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}")
_SIMPLE_SELECTOR = re.compile(r"^[a-z0-9]*([.#])([\w-]+)$", re.I)


def hidden_parts(soup: BeautifulSoup, rules: HiddenRules | None = None) -> tuple[Hidden, ...]:
    """The text a page hides from its readers: HTML comments, and elements hidden by an attribute (`hidden`,
    aria-hidden), an inline style or a page stylesheet's rule for their class or id (display:none,
    visibility:hidden, opacity:0, a tiny font, a box moved off the page; see `HiddenRules`).

    An element or comment inside a hidden element is not reported again.
    """
    from bs4 import Comment, Tag

    rules = rules or HiddenRules()
    sheet = _stylesheet(soup, rules)
    out: list[Hidden] = []
    stack: list[Any] = [soup]
    while stack:
        node = stack.pop()
        if isinstance(node, Comment):
            text = " ".join(str(node).split())
            if text:
                out.append(Hidden(text, "an HTML comment"))
            continue
        if not isinstance(node, Tag) or node.name in _NOT_TEXT:
            continue
        reason = _hides(node, rules, sheet)
        if reason:
            text = " ".join(node.get_text(" ").split())
            if text:
                out.append(Hidden(text, reason))
            continue
        stack.extend(reversed(node.contents))
    return tuple(out)


def _hides(el: Any, rules: HiddenRules, sheet: dict[tuple[str, str], str]) -> str:
    """Why an element is hidden ('' when it is not)."""
    attrs = el.attrs or {}
    if "hidden" in attrs:
        return "the hidden attribute"
    if str(attrs.get("aria-hidden", "")).strip().lower() == "true":
        return "aria-hidden"
    inline = _style_hides(str(attrs.get("style", "") or ""), rules)
    if inline:
        return inline
    classes = attrs.get("class") or []
    for key in [("#", str(attrs.get("id", ""))), *((".", str(c)) for c in classes)]:
        if key in sheet:
            return f"{sheet[key]}, by the page's rule for {key[0]}{key[1]}"
    return ""


def _style_hides(style: str, rules: HiddenRules) -> str:
    """How a CSS declaration block hides what it styles ('' when it does not)."""
    for pattern, what in _HIDING_STYLES:
        if pattern.search(style):
            return what
    for m in _FONT_SIZE.finditer(style):
        if float(m.group(1)) * _PX_PER[(m.group(2) or "").lower()] <= rules.font_px:
            return f"font-size {m.group(1)}{m.group(2) or ''}"
    for m in _OFFSCREEN.finditer(style):
        if float(m.group(2)) * _PX_PER[(m.group(3) or "").lower()] >= rules.offscreen_px:
            return f"moved off the page ({m.group(1)}: -{m.group(2)}{m.group(3) or ''})"
    return ""


def _stylesheet(soup: BeautifulSoup, rules: HiddenRules) -> dict[tuple[str, str], str]:
    """The classes ('.', name) and ids ('#', name) that the page's <style> rules hide, and how."""
    out: dict[tuple[str, str], str] = {}
    for tag in soup.find_all("style"):
        css = _CSS_AT_BLOCK.sub(" ", _CSS_COMMENT.sub(" ", tag.get_text()))
        for m in _CSS_RULE.finditer(css):
            how = _style_hides(m.group(2), rules)
            if not how:
                continue
            for selector in m.group(1).split(","):
                simple = _SIMPLE_SELECTOR.match(selector.strip())
                if simple:
                    out.setdefault((simple.group(1), simple.group(2)), how)
    return out


def _site_from_title_tag(soup: BeautifulSoup, headline: str) -> str:
    """The site's name from <title>: the part beside the headline ('Headline - Site'), or a whole <title>
    that is not the headline (a page titled with the site's name only)."""
    tag = soup.title
    title = " ".join(tag.get_text(" ").split()) if tag else ""
    if not title or not headline:
        return ""
    if title == headline:
        return ""
    if title.startswith(headline) or title.endswith(headline):
        rest = title.replace(headline, "", 1).strip(" |-–—:·")
        return rest if 0 < len(rest.split()) <= 6 else ""
    return title if len(title.split()) <= 5 else ""


def _footer_text(soup: BeautifulSoup) -> str:
    """The text of the page's <footer> elements (where a copyright line names the publisher)."""
    parts = [" ".join(f.get_text(" ").split()) for f in soup.find_all("footer")]
    return "\n".join(p for p in parts if p)


# --- Markdown ----------------------------------------------------------------------------------------


def read_markdown(text: str, hidden: HiddenRules | None = None) -> Extracted:
    """Markdown rendered (markdown-it) and reduced to its text, one block per line; the first heading is the title."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(text)
    body = visible_text(rendered)
    hints: dict[str, Hint] = {}
    heading = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.M)
    if heading:
        hints["title"] = Hint(heading.group(1).strip(), "first Markdown heading", 0.9)
    from bs4 import BeautifulSoup

    parts = hidden_parts(BeautifulSoup(rendered, "html.parser"), hidden) if "<" in text else ()
    return Extracted("markdown", body, hints, (), parts)


# --- PDF -----------------------------------------------------------------------------------------------


def read_pdf(data: bytes) -> Extracted:
    """The text layer of a PDF, page after page; FormatError for an encrypted or image-only PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise FormatError("the PDF is encrypted; save an unprotected copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except FormatError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FormatError(f"not a readable PDF ({exc})") from exc
    text = "\n".join(_pdf_page_lines(p) for p in pages).strip()
    if not text:
        raise FormatError(
            f"the PDF has no text layer ({len(pages)} page(s) of images, e.g. a scan): run OCR on it first"
        )
    hints: dict[str, Hint] = {}
    info = reader.metadata
    title = str(info.title).strip() if info and info.title else ""
    if title and not re.fullmatch(r"(?i)untitled|microsoft word.*|document\d*|.*\.(?:docx?|pdf)", title):
        hints["title"] = Hint(title, "PDF document properties (Title)", 0.85)
    author = str(info.author).strip() if info and info.author else ""
    if author:
        hints["byline"] = Hint(author, "PDF document properties (Author)", 0.6)
    return Extracted("pdf", text, hints, (f"{len(pages)} page(s)",))


def _pdf_page_lines(page: str) -> str:
    """A page's text with the lines of one paragraph joined (a PDF breaks lines by layout, not by meaning).

    A line as long as the page's longest lines was wrapped by the layout, so the next line continues it; so
    does a lowercase line after one that ends no sentence. A page's first and last lines (running headers,
    page numbers) are never joined, so cleaning can judge them alone.
    """
    lines = [" ".join(raw.split()) for raw in page.splitlines()]
    width = max((len(line) for line in lines), default=0)
    out: list[str] = []
    for i, line in enumerate(lines):
        prev = out[-1] if out else ""
        if not line or not prev or i in (1, len(lines) - 1):  # a page's first and last lines stand alone
            out.append(line)
        elif prev.endswith("-") and line[:1].islower():
            out[-1] = prev[:-1] + line
        elif (
            len(prev) >= 0.7 * width
            or (not re.search(r"[.!?:\"”’)]$", prev) and line[:1].islower())
            or re.search(r"\s[a-z]+$", prev)  # a line ending in a lowercase word goes on ('... the Road to')
        ):
            out[-1] = f"{prev} {line}"
        else:
            out.append(line)
    return "\n".join(out)
