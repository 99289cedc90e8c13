"""Reading documents: a file in, clean dated text out, with a reversible record of what was left out.

`DocumentReader.parse` reads one file (any supported format, told by content), finds its chrome and its
metadata; `DocumentReader.finish` turns that into a `Document`, optionally with what only the whole corpus
shows (lines an outlet repeats on its other pages, paragraphs another document already carries).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import yaml

from assistant.boilerplate import ChromeDetector
from assistant.dates import DateFinder, DateFindings
from assistant.formats import Extracted, FormatError, HiddenRules, extract
from assistant.lexicon import DocumentCues, OutletTable
from assistant.lines import is_prose, normalised
from assistant.metadata import FIELDS, DocumentMetadata, FieldValue, MetadataReader, iso_to_int, user_value
from assistant.quarantine import Flagged

SUPPORTED_EXTENSIONS = (".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf")
SIDECAR_SUFFIX = ".meta.yaml"
MAX_LINE_CHARS = 100_000

__all__ = [
    "SIDECAR_SUFFIX",
    "SUPPORTED_EXTENSIONS",
    "Document",
    "DocumentError",
    "DocumentMetadata",
    "DocumentReader",
    "Removal",
    "iso_to_int",
    "load_document",
    "restore",
]


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
class Document:
    """One cleaned document: the cleaned text, the record of what was removed, and its metadata."""

    path: Path
    raw: str
    text: str
    removals: tuple[Removal, ...]
    metadata: DocumentMetadata
    kind: str = "text"
    also_reported_by: tuple[str, ...] = ()  # other documents carrying paragraphs this one is indexed with
    copy_of: str = ""  # the document this one repeats whole (it is then indexed through that one)
    notes: tuple[str, ...] = ()
    quarantined: tuple[Flagged, ...] = ()  # instructions to an AI and hidden text: kept, never used as evidence

    @property
    def source(self) -> str:
        return self.metadata.source

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def flags(self) -> list[str]:
        """Short words for the library view: undated, copy, syndicated, chrome removed, ..."""
        out: list[str] = []
        if self.metadata.undated:
            out.append("undated")
        if self.copy_of:
            out.append(f"copy of {self.copy_of}")
        if any(r.reason.startswith("syndicated") for r in self.removals) and not self.copy_of:
            out.append("shares paragraphs with another document")
        if self.also_reported_by:
            out.append("also reported by " + ", ".join(self.also_reported_by))
        chrome = [
            r
            for r in self.removals
            if r.reason not in ("blank line", "repeated text") and not r.reason.startswith("syndicated")
        ]
        if chrome:
            out.append(f"{len(chrome)} chrome line(s) removed")
        low = [k for k, c in self.metadata.confidence.items() if c < 0.7 and getattr(self.metadata, k, None)]
        if low:
            out.append("unsure: " + ", ".join(sorted(low)))
        if self.quarantined:
            kinds = sorted({f.reason.split(" (")[0].split(":")[0] for f in self.quarantined})
            out.append(f"{len(self.quarantined)} passage(s) quarantined: " + ", ".join(kinds))
        return out


@dataclass(frozen=True)
class Parsed:
    """One file read and judged on its own, before the corpus-wide pass."""

    path: Path
    source: str
    extracted: Extracted
    lines: tuple[str, ...]
    dated_lines: Mapping[int, list[str]]
    metadata: DocumentMetadata
    chrome: Mapping[int, str]

    @property
    def raw(self) -> str:
        return self.extracted.text


def restore(text: str, removals: Iterable[Removal]) -> str:
    """Undo cleaning: re-insert each removed span at its raw offset."""
    out, pos_clean, pos_raw = [], 0, 0
    for removal in sorted(removals, key=lambda r: r.start):
        take = removal.start - pos_raw
        out.append(text[pos_clean : pos_clean + take])
        out.append(removal.text)
        pos_clean += take
        pos_raw = removal.end
    out.append(text[pos_clean:])
    return "".join(out)


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
    for key in FIELDS:
        value = data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise DocumentError(f"{sidecar.name}: {key} must be text, got {value!r}")
        out[key] = str(value).strip()
    if "published" in out:
        out["published"] = user_date(out["published"], sidecar.name)
    return out


def user_date(value: str, where: str) -> str:
    """A date a user gave ('2020-07-02', or a date-time starting so) as an ISO date; DocumentError otherwise.

    Only YYYY-MM-DD is taken: '12/03/2020' could be either of two days."""
    try:
        if re.match(r"\d{4}-\d{2}-\d{2}(?:$|[T ])", value):
            return datetime.fromisoformat(value[:10]).date().isoformat()
    except ValueError:
        pass
    raise DocumentError(f"{where}: published must be a real date written YYYY-MM-DD, got {value!r}")


def _lines_with_offsets(raw: str) -> Iterator[tuple[int, int, str]]:
    """(start, end including the newline, stripped line) for each line of raw."""
    pos = 0
    for line in raw.splitlines(keepends=True):
        yield pos, pos + len(line), line.strip()
        pos += len(line)


class DocumentReader:
    """Reads files into Documents: format, chrome, dates and the other metadata (one per ingest run)."""

    def __init__(
        self, cues: DocumentCues, outlets: OutletTable, max_bytes: int | None = None, hidden: HiddenRules | None = None
    ) -> None:
        self.cues = cues
        self.chrome = ChromeDetector(cues)
        self.dates = DateFinder(cues)
        self.fields = MetadataReader(cues, outlets)
        self.max_bytes = max_bytes
        self.hidden = hidden or HiddenRules()  # what counts as hidden text in a web page

    @property
    def version(self) -> str:
        """Changes when the lexicons the reader judges with change (a record read with others is stale)."""
        data = repr((self.cues, sorted(self.fields.outlets.by_alias.items()), self.hidden))
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    @classmethod
    def default(cls, max_bytes: int | None = None) -> DocumentReader:
        return cls(DocumentCues.load(), OutletTable.load(), max_bytes)

    def load(self, path: Path, source: str | None = None, overrides: Mapping[str, str] | None = None) -> Document:
        """One file read and cleaned on its own."""
        return self.finish(self.parse(path, source, overrides))

    def parse(self, path: Path, source: str | None = None, overrides: Mapping[str, str] | None = None) -> Parsed:
        """Read and judge one file; DocumentError says why a file cannot be used."""
        name = source or path.name
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_EXTENSIONS:
            raise DocumentError(f"{name}: unsupported extension {suffix or '(none)'}; use .txt, .md, .html or .pdf")
        size = path.stat().st_size
        if self.max_bytes is not None and size > self.max_bytes:
            raise DocumentError(f"{name}: {size / 1e6:.1f} MB is over the {self.max_bytes / 1e6:g} MB limit per file")
        try:
            extracted = extract(path.read_bytes(), path.suffix, self.hidden)
        except FormatError as exc:
            raise DocumentError(f"{name}: {exc}") from exc
        lines = tuple(extracted.text.split("\n"))
        longest = max((len(line) for line in lines), default=0)
        if longest > MAX_LINE_CHARS:
            raise DocumentError(f"{name}: a single line of {longest:,} characters; this is not prose")
        findings = self.dates.find(list(lines))
        dated: dict[int, list[str]] = {}
        for d in findings.candidates:
            if d.role in ("stamp", "published", "updated") and not is_prose(d.line):
                dated.setdefault(d.line_no, []).append(d.matched.split(" (")[0])
        first = self.chrome.judge(lines, dated)
        title = self.fields.title(list(lines), extracted.hints, first)
        chrome = self.chrome.judge(lines, dated, title=title.value if title else "")
        metadata = self._metadata(name, path, list(lines), extracted, chrome, findings, title, overrides or {})
        return Parsed(path, name, extracted, lines, dated, metadata, chrome)

    def rejudge(self, parsed: Parsed, shared: Collection[str]) -> Parsed:
        """The same document judged again knowing the lines its outlet prints on other pages."""
        if not shared:
            return parsed
        lines = list(parsed.lines)
        chrome = self.chrome.judge(parsed.lines, parsed.dated_lines, shared=shared)
        metadata = parsed.metadata
        if metadata.provenance.get("title", "").startswith("headline line"):  # read from the text: read again
            title = self.fields.title(lines, parsed.extracted.hints, chrome)
            if title is None and normalised(metadata.title) in shared:  # the "title" was the outlet's tagline
                title = FieldValue("", "", 0.0)
            if title is not None and title.value != metadata.title:
                metadata = replace(
                    metadata,
                    title=title.value,
                    provenance={**metadata.provenance, "title": title.method + ", beside the outlet's own chrome"},
                )
        chrome = self.chrome.judge(parsed.lines, parsed.dated_lines, title=metadata.title, shared=shared)
        return replace(parsed, chrome=chrome, metadata=metadata)

    def finish(
        self,
        parsed: Parsed,
        dropped: Mapping[int, str] | None = None,
        also_reported_by: tuple[str, ...] = (),
        copy_of: str = "",
    ) -> Document:
        """The cleaned Document: chrome lines (and `dropped` lines, e.g. syndicated copies) left out."""
        verdicts = {**parsed.chrome, **(dropped or {})}
        raw = parsed.raw
        removals: list[Removal] = []
        kept: list[tuple[int, int, str]] = []
        for i, (start, end, line) in enumerate(_lines_with_offsets(raw)):
            reason = verdicts.get(i) if line else None
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
        text = "".join(raw[a:b] for a, b, _ in kept)
        if not text.strip() and not copy_of:
            raise DocumentError(f"{parsed.source}: nothing left after removing page chrome")
        return Document(
            path=parsed.path,
            raw=raw,
            text=text,
            removals=tuple(removals),
            metadata=parsed.metadata,
            kind=parsed.extracted.kind,
            also_reported_by=also_reported_by,
            copy_of=copy_of,
            notes=parsed.extracted.notes + parsed.metadata.notes,
        )

    # --- metadata ----------------------------------------------------------------------------------

    def _metadata(
        self,
        name: str,
        path: Path,
        lines: list[str],
        extracted: Extracted,
        chrome: Mapping[int, str],
        findings: DateFindings,
        title: FieldValue | None,
        overrides: Mapping[str, str],
    ) -> DocumentMetadata:
        hints = extracted.hints
        values: dict[str, FieldValue | None] = {
            "title": title,
            "outlet": self.fields.outlet(lines, hints, dict(chrome), findings),
            "published": self._published(findings, hints),
            "byline": self.fields.byline(lines, hints, dict(chrome)),
        }
        updated = findings.updated or (
            FieldValue(hints["updated"].value, hints["updated"].method, hints["updated"].confidence)
            if "updated" in hints
            else None
        )
        for key, value in read_sidecar(path).items():
            values[key] = user_value(value, f"sidecar {name}{SIDECAR_SUFFIX}")
        for key, value in overrides.items():
            if value and key in FIELDS:
                given = user_date(value, "--published") if key == "published" else value
                values[key] = user_value(given, f"given with the document ({key})")
        notes = (findings.note,) if findings.note and not values["published"] else ()
        return DocumentMetadata(
            source=name,
            title=values["title"].value if values["title"] else "",
            outlet=values["outlet"].value if values["outlet"] else "",
            published=values["published"].value if values["published"] else "",
            byline=values["byline"].value if values["byline"] else "",
            updated=updated.iso if hasattr(updated, "iso") else (updated.value if updated else ""),  # type: ignore[union-attr]
            provenance={k: v.method for k, v in values.items() if v},
            confidence={k: v.confidence for k, v in values.items() if v},
            notes=notes,
        )

    @staticmethod
    def _published(findings: DateFindings, hints: Mapping[str, object]) -> FieldValue | None:
        """The markup's date or the text's, whichever is surer (the markup on a tie)."""
        options: list[FieldValue] = []
        hint = hints.get("published")
        if hint is not None:
            options.append(FieldValue(hint.value, hint.method, hint.confidence))  # type: ignore[attr-defined]
        if findings.published is not None:
            p = findings.published
            options.append(FieldValue(p.iso, p.method, p.confidence))
        return max(options, key=lambda f: f.confidence) if options else None


def load_document(path: Path, source: str | None = None, max_bytes: int | None = None) -> Document:
    """Read, clean and describe one file on its own (with the packaged lexicons)."""
    return DocumentReader.default(max_bytes).load(path, source)
