"""Reading documents: decoding, HTML to text, reversible cleaning, de-duplication and metadata."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import yaml

SUPPORTED_EXTENSIONS = (".txt", ".md", ".html", ".htm")
SIDECAR_SUFFIX = ".meta.yaml"

# Whole lines that are site furniture, never article text (compared after stripping).
BOILERPLATE_LINES = frozenset(
    {
        "Go to Contents Go to Navigation",
        "Go to Contents",
        "Go to Navigation",
        "Keywords",
        "HOME TOP",
        "Send Feedback",
        "How can we improve?",
        "Thanks for your feedback!",
        "(END)",
        "TOP STORIES",
        "EDITOR’S CHOICE",
        "EDITOR'S CHOICE",
        "MOST VIEWED",
        "EXPLORE XINHUANET",
        "Video PlayerClose",
        "Share it",
        "Synopsis",
        "Exclusive: Beyond the Covid-19 world's coverage",
        "Exclusive: Beyond the Covid-19 world’s coverage",
    }
)
_TRAILING_DIGITS = re.compile(r"^\d{12,}$")
_EMAIL_LINE = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_BYLINE = re.compile(r"^By ([A-Z][\w'’.-]*(?: [A-Z][\w'’.-]*){0,4})$")
_SECTION_STAMP = re.compile(
    r"^(?:[A-Z][\w.]*(?: [A-Z][\w.]*)*\s+)?(\d{1,2}:\d{2})\s+([A-Z][a-z]+)\.? (\d{1,2}), (\d{4})$"
)
_SOURCE_STAMP = re.compile(
    r"^Source:\s*([^|]+?)\s*\|\s*(\d{4}-\d{2}-\d{2})(?:\s+(\d{2}:\d{2}:\d{2}))?\s*(?:\|\s*Editor:\s*(.+))?$"
)
# "WASHINGTON, Aug. 18 (Yonhap) --", "Seoul, Dec 12 (NationPress)", "WASHINGTON, Feb. 15 (Xinhua) --"
_DATELINE_AGENCY = re.compile(r"^([A-Z][A-Za-z .]+), ([A-Z][a-z]{2,8})\.? (\d{1,2}) \(([A-Z][A-Za-z ]+)\)")
# "SEOUL, Jul 2, 2020, The Korea Herald."
_DATELINE_YEAR = re.compile(
    r"^([A-Z][A-Za-z .]+), ([A-Z][a-z]{2,8})\.? (\d{1,2}), (\d{4}),?\s*((?:The )?[A-Z][A-Za-z ]+?)\."
)
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in names
}
KNOWN_OUTLETS = {
    "yonhap": "Yonhap",
    "xinhua": "Xinhua",
    "nationpress": "NationPress",
    "the korea herald": "The Korea Herald",
    "korea herald": "The Korea Herald",
    "the korea times": "The Korea Times",
    "korea times": "The Korea Times",
}
_HTML_DROPPED = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template"]
# Elements that start a new line of text; every other element (a, b, em, span, ...) stays inline.
_HTML_BLOCKS = [
    *("address", "article", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure", "h1", "h2"),
    *("h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre", "section", "table", "td", "th", "tr"),
    "ul",
]
_MIN_REPEAT_CHARS = 40
_MAX_TITLE_CHARS = 120


class DocumentError(ValueError):
    """A file that cannot be read as a document; the message says why."""


class _SidecarLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text, so a bad date gets our message rather than PyYAML's."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_SidecarLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


@dataclass(frozen=True)
class Removal:
    """A span of the raw text left out of the cleaned text, and why."""

    start: int
    end: int
    reason: str
    text: str

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "reason": self.reason, "text": self.text}


@dataclass(frozen=True)
class DocumentMetadata:
    """What is known about one article, and where each field came from."""

    source: str
    title: str = ""
    outlet: str = ""
    published: str = ""  # ISO date, YYYY-MM-DD
    byline: str = ""
    provenance: dict[str, str] = field(default_factory=dict)

    def to_chroma(self) -> dict[str, str | int]:
        """Flat metadata Chroma can store and filter on (published_int enables date ranges)."""
        return {
            "source": self.source,
            "title": self.title,
            "outlet": self.outlet,
            "published": self.published,
            "published_int": iso_to_int(self.published),
            "byline": self.byline,
        }


@dataclass(frozen=True)
class Document:
    """One cleaned article: the cleaned text, the record of what was removed, and its metadata."""

    path: Path
    raw: str
    text: str
    removals: tuple[Removal, ...]
    metadata: DocumentMetadata

    @property
    def source(self) -> str:
        return self.metadata.source

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def iso_to_int(iso: str) -> int:
    """20200702 for '2020-07-02'; 0 for an unknown date."""
    return int(iso.replace("-", "")) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", iso) else 0


# --- reading -------------------------------------------------------------------------------------


def decode(data: bytes, name: str) -> str:
    """Bytes to text, or a DocumentError that says what is wrong with the file."""
    if not data.strip():
        raise DocumentError(f"{name}: empty file")
    if b"\x00" in data:
        raise DocumentError(f"{name}: binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{name}: not valid UTF-8 (byte {exc.start}); re-save it as UTF-8") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one block per line; scripts, styles and navigation dropped."""
    from bs4 import BeautifulSoup, NavigableString

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_HTML_DROPPED):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    body = soup.body or soup
    # Source line breaks are layout, not text (outside <pre>); inline tags such as <b> stay in their line.
    for node in body.find_all(string=True):
        if type(node) is NavigableString and node.find_parent("pre") is None:
            node.replace_with(re.sub(r"\s+", " ", node))
    for tag in body.find_all("br"):
        tag.replace_with("\n")
    for tag in body.find_all(_HTML_BLOCKS):
        tag.insert_before("\n")
        tag.append("\n")
    lines = [re.sub(r"[ \t]{2,}", " ", line).strip() for line in body.get_text().splitlines()]
    text = "\n".join(line for line in lines if line)
    return f"{title}\n{text}" if title and not text.startswith(title) else text


def read_sidecar(path: Path) -> dict[str, str]:
    """The optional `<file>.meta.yaml` beside a document: title, outlet, published, byline."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.exists():
        return {}
    try:
        data = yaml.load(sidecar.read_text(encoding="utf-8"), Loader=_SidecarLoader) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{sidecar.name}: invalid YAML sidecar ({exc})") from exc
    if not isinstance(data, dict):
        raise DocumentError(f"{sidecar.name}: a sidecar must be a mapping of field: value")
    out: dict[str, str] = {}
    for key in ("title", "outlet", "published", "byline"):
        value = data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise DocumentError(f"{sidecar.name}: {key} must be text, got {value!r}")
        out[key] = str(value).strip()
    if "published" in out:
        out["published"] = _sidecar_date(out["published"], sidecar.name)
    return out


def _sidecar_date(value: str, name: str) -> str:
    """'2020-07-02' (or a date-time starting so) as an ISO date; DocumentError if it is no real date."""
    try:
        parsed = datetime.fromisoformat(value) if re.match(r"\d{4}-\d{2}-\d{2}(?:$|[T ])", value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise DocumentError(f"{name}: published must be a real date written YYYY-MM-DD, got {value!r}")
    return parsed.date().isoformat()


def load_document(path: Path, source: str | None = None, max_bytes: int | None = None) -> Document:
    """Read, clean and describe one file; DocumentError says why a file cannot be used."""
    name = source or path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise DocumentError(f"{name}: unsupported extension {suffix or '(none)'}; use .txt, .md or .html")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise DocumentError(f"{name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit per file")
    raw = decode(path.read_bytes(), name)
    if suffix in (".html", ".htm"):
        raw = html_to_text(raw)
    longest = max((len(line) for line in raw.split("\n")), default=0)
    if longest > 100_000:
        raise DocumentError(f"{name}: a single line of {longest:,} characters; this is not prose")
    text, removals = clean(raw)
    if not text.strip():
        raise DocumentError(f"{name}: nothing left after removing boilerplate")
    metadata = extract_metadata(raw, name, read_sidecar(path))
    return Document(path=path, raw=raw, text=text, removals=tuple(removals), metadata=metadata)


# --- cleaning ------------------------------------------------------------------------------------


def _lines_with_offsets(raw: str) -> Iterator[tuple[int, int, str]]:
    """(start, end including the newline, stripped line) for each line of raw."""
    pos = 0
    for line in raw.splitlines(keepends=True):
        yield pos, pos + len(line), line.strip()
        pos += len(line)


def _normalise_paragraph(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip().lower()


def line_removal_reason(line: str) -> str | None:
    """Why a whole line is boilerplate, or None when it is article text."""
    if line in BOILERPLATE_LINES:
        return "boilerplate"
    if _TRAILING_DIGITS.match(line):
        return "trailing digit string"
    if _EMAIL_LINE.match(line):
        return "reporter e-mail"
    if _BYLINE.match(line):
        return "byline (kept in metadata)"
    if _SECTION_STAMP.match(line) or _SOURCE_STAMP.match(line):
        return "publication stamp (kept in metadata)"
    return None


def clean(raw: str) -> tuple[str, list[Removal]]:
    """Cleaned text and the raw lines removed, with reasons; `restore(text, removals)` gives raw back."""
    removals: list[Removal] = []
    seen: dict[str, int] = {}
    kept: list[tuple[int, int, str]] = []
    for start, end, line in _lines_with_offsets(raw):
        reason = line_removal_reason(line) if line else None
        if reason is None and len(line) >= _MIN_REPEAT_CHARS:
            key = _normalise_paragraph(line)
            if key in seen:
                reason = f"repeated text (first at character {seen[key]})"
            else:
                seen[key] = start
        if reason is None and not line and (not kept or not kept[-1][2]):
            reason = "blank line"  # leading, or a second blank line in a row
        if reason:
            removals.append(Removal(start, end, reason, raw[start:end]))
        else:
            kept.append((start, end, line))
    while kept and not kept[-1][2]:
        start, end, _ = kept.pop()
        removals.append(Removal(start, end, "blank line", raw[start:end]))
    removals.sort(key=lambda r: r.start)
    return "".join(raw[a:b] for a, b, _ in kept), removals


def restore(text: str, removals: Iterable[Removal]) -> str:
    """Undo clean(): re-insert each removed span at its raw offset."""
    out, pos_clean, pos_raw = [], 0, 0
    for removal in sorted(removals, key=lambda r: r.start):
        take = removal.start - pos_raw
        out.append(text[pos_clean : pos_clean + take])
        out.append(removal.text)
        pos_clean += take
        pos_raw = removal.end
    out.append(text[pos_clean:])
    return "".join(out)


# --- metadata ------------------------------------------------------------------------------------


def _month(name: str) -> int | None:
    return _MONTHS.get(name.lower().rstrip("."))


def _iso(year: int, month: int | None, day: int) -> str:
    if month is None:
        return ""
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return ""


def _outlet(name: str) -> str:
    return KNOWN_OUTLETS.get(name.strip().lower(), name.strip())


def extract_metadata(raw: str, source: str, sidecar: dict[str, str] | None = None) -> DocumentMetadata:
    """Title, outlet, date and byline from the text where it says them; the sidecar fills or overrides."""
    found: dict[str, str] = {}
    how: dict[str, str] = {}
    head = [line.strip() for line in raw.split("\n")[:40] if line.strip()]

    def put(key: str, value: str, why: str) -> None:
        if value and key not in found:
            found[key] = value
            how[key] = why

    for line in head:
        if m := _SOURCE_STAMP.match(line):
            put("outlet", _outlet(m.group(1)), f"source stamp {line!r}")
            put("published", m.group(2), f"source stamp {line!r}")
        elif m := _SECTION_STAMP.match(line):
            iso = _iso(int(m.group(4)), _month(m.group(2)), int(m.group(3)))
            put("published", iso, f"publication stamp {line!r}")
        elif m := _BYLINE.match(line):
            put("byline", m.group(1), f"byline {line!r}")
        elif m := _DATELINE_YEAR.match(line):
            put(
                "published",
                _iso(int(m.group(4)), _month(m.group(2)), int(m.group(3))),
                f"dateline {m.group()!r}",
            )
            put("outlet", _outlet(m.group(5)), f"dateline {m.group()!r}")
        elif m := _DATELINE_AGENCY.match(line):
            put("outlet", _outlet(m.group(4)), f"dateline {m.group()!r}")
    first_text = next((line for line in head if line_removal_reason(line) is None), "")
    if first_text and len(first_text) <= _MAX_TITLE_CHARS and not _DATELINE_AGENCY.match(first_text):
        put("title", first_text, "first line of the text")
    for key, value in (sidecar or {}).items():
        if found.get(key) != value:
            found[key] = value
            how[key] = "sidecar " + source + SIDECAR_SUFFIX
    return DocumentMetadata(
        source=source,
        title=found.get("title", ""),
        outlet=found.get("outlet", ""),
        published=found.get("published", ""),
        byline=found.get("byline", ""),
        provenance=how,
    )
