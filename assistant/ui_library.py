"""The Library tab of the chat UI: upload documents, see what the library holds and how it was read, remove one.

Uploads are checked before anything is read (count, type, size, a safe file name), copied into their own
batch folder under settings.upload_dir and indexed through `Assistant.ingest`, the one ingest path the CLI
and the Python API use too. Everything shown that comes from a document or a file name is inert: the table
is a gr.Dataframe of plain-text cells and every message is HTML-escaped.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
import shutil
import threading
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import gradio as gr
import pandas as pd

from assistant.app import Assistant
from assistant.config import Settings
from assistant.ingest import IngestReport
from assistant.library import DocumentRecord
from assistant.store import StoreError

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
COLUMNS = ("Document", "Title", "Outlet", "Date", "How found", "Chunks", "Flags")
DATATYPES: list[Literal["str", "number"]] = ["str", "str", "str", "str", "str", "number", "str"]
MAX_NAME_CHARS = 150  # longest file name kept (well under the usual 255-byte limit of file systems)
MAX_CELL_CHARS = 300
FALLBACK_STEM = "upload"
# (provenance key, label shown), in the order shown
HOW_FOUND_FIELDS = (("published", "date"), ("outlet", "outlet"), ("title", "title"), ("byline", "byline"))
_METHOD_END = re.compile(r" '| \"| \(|: ")
_SEPARATORS = re.compile(r"[/\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")


# --- pure helpers: names, limits, table rows, messages -----------------------------------------------


def sanitize_name(name: str) -> str:
    """A file name that stays inside its folder: the base name only, no path separators, no leading dots,
    no control or invisible format characters; '' when nothing usable is left."""
    base = _SEPARATORS.split(unicodedata.normalize("NFC", name or ""))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")  # control, format, private, ...
    base = " ".join(base.split())  # no tabs or runs of blanks
    base = base.lstrip(". ").rstrip(" ")
    if base in ("", ".", ".."):
        return ""
    if len(base) > MAX_NAME_CHARS:
        stem, suffix = _split_suffix(base)
        base = stem[: MAX_NAME_CHARS - len(suffix)].rstrip(". ") + suffix
    return base


def escape_reason(name: str) -> str:
    """Why a file name given with an upload points outside the upload folder ('' when it does not): a NUL,
    an absolute path or drive, a '..' or any folder part ('a/b.txt', 'a\\b.txt')."""
    if "\x00" in name:
        return "holds a NUL character"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "is an absolute path"
    parts = _SEPARATORS.split(name)
    if ".." in parts or name.strip() == "..":
        return "climbs out of its folder with '..'"
    if len(parts) > 1:
        return "holds a folder path"
    return ""


def _split_suffix(name: str) -> tuple[str, str]:
    suffix = Path(name).suffix
    return (name[: -len(suffix)], suffix) if suffix and len(suffix) <= 10 else (name, "")


def is_supported(name: str) -> bool:
    return Path(name).suffix.lower() in SUPPORTED_SUFFIXES


def human_size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1e6:.1f} MB"
    if size >= 1000:
        return f"{size / 1e3:.0f} KB"
    return f"{size} bytes"


@dataclass(frozen=True)
class Accepted:
    """One uploaded file that passed the checks: where it is now and the name it is saved under."""

    path: Path
    original: str
    name: str


@dataclass
class UploadPlan:
    """What an upload will add (files and their safe names) and what it turned away, with reasons."""

    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name shown, reason)
    notes: list[str] = field(default_factory=list)


def plan_upload(
    files: Sequence[tuple[Path, int] | tuple[Path, int, str]], max_files: int, max_file_mb: float
) -> UploadPlan:
    """Check an upload before anything is read: at most `max_files` files (the rest are turned away), each a
    supported type and at most `max_file_mb` MB, under a safe and (within the upload) unique name.

    Each file is (path, size) or (path, size, the name its sender gave); a given name that points outside the
    upload folder ('../../x.txt', '/etc/x.txt', 'C:\\x.txt', a NUL) is turned away, not quietly shortened."""
    plan = UploadPlan()
    limit_bytes = max_file_mb * 1e6
    taken: set[str] = set()
    for i, (path, size, *given) in enumerate(files):
        original = str(given[0]) if given else path.name
        shown = sanitize_name(original) or original
        escape = escape_reason(original)
        if escape and i < max_files:
            plan.rejected.append(
                (
                    shown,
                    f"{original!r}: not uploaded: the file name {escape}, which would leave the upload folder; "
                    "rename the file to a plain name",
                )
            )
            continue
        if i >= max_files:
            plan.rejected.append(
                (
                    shown,
                    f"{shown}: not uploaded: at most {max_files} files per upload (this one had {len(files)}); "
                    "upload the rest separately",
                )
            )
            continue
        name = sanitize_name(original)
        if not name:
            plan.rejected.append((original, f"{original!r}: not uploaded: the file name has no usable characters"))
            continue
        if not is_supported(name):
            kinds = ", ".join(SUPPORTED_SUFFIXES)
            plan.rejected.append((name, f"{name}: not uploaded: not a supported type (supported: {kinds})"))
            continue
        if size > limit_bytes:
            plan.rejected.append(
                (name, f"{name}: not uploaded: {human_size(size)} is over the {max_file_mb:g} MB limit per file")
            )
            continue
        unique = unique_name(name, taken)
        taken.add(unique.casefold())
        if unique != name:
            plan.notes.append(f"{name} is saved as {unique}: another file in this upload has the same name")
        elif name != original:
            plan.notes.append(f"{original!r} is saved as {name}")
        plan.accepted.append(Accepted(path, original, unique))
    return plan


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `stem-2.ext`, `stem-3.ext`, ... when a name already taken (compared case-insensitively)."""
    if name.casefold() not in taken:
        return name
    stem, suffix = _split_suffix(name)
    n = 2
    while f"{stem}-{n}{suffix}".casefold() in taken:
        n += 1
    return f"{stem}-{n}{suffix}"


def new_batch_dir(upload_dir: Path) -> Path:
    """A new, empty folder for one upload under upload_dir."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    while True:
        batch = upload_dir / f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        try:
            batch.mkdir()
            return batch
        except FileExistsError:
            continue


def copy_into(batch: Path, accepted: Iterable[Accepted]) -> list[Path]:
    """Copy the accepted files into the batch folder under their safe names; never overwrites a file."""
    root = batch.resolve()
    out: list[Path] = []
    for item in accepted:
        target = root / item.name
        if target.parent != root:  # sanitize_name makes this impossible; refuse rather than trust it
            raise ValueError(f"{item.name!r} would leave the upload folder")
        with item.path.open("rb") as src, target.open("xb") as dst:
            shutil.copyfileobj(src, dst)
        out.append(target)
    return out


def _short_method(how: str) -> str:
    """'dateline \\'SEOUL, Jul 2 ...\\'' -> 'dateline'; 'web page metadata (title)' -> 'web page metadata'."""
    if how.startswith("sidecar"):
        return "sidecar"  # 'sidecar NAME.meta.yaml'
    m = _METHOD_END.search(how)
    short = (how[: m.start()] if m else how).strip() or how.strip()
    return short if len(short) <= 40 else short[:39] + "…"


def how_found(record: DocumentRecord) -> str:
    """How the date, outlet, title and byline were found, short: 'date: stamp (0.85); outlet: dateline (0.85)'."""
    parts = []
    for key, label in HOW_FOUND_FIELDS:
        how = record.provenance.get(key)
        if not how:
            continue
        confidence = record.confidence.get(key)
        parts.append(f"{label}: {_short_method(how)}" + (f" ({confidence:.2f})" if confidence is not None else ""))
    return "; ".join(parts)


def plain_cell(value: object) -> str:
    """A table cell as one line of plain text (no control characters, bounded length)."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in str(value or ""))
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def table_rows(records: Iterable[DocumentRecord]) -> list[list[Any]]:
    """One row per document for the library table, as plain text (the Dataframe shows it as text, never HTML)."""
    rows: list[list[Any]] = []
    for r in records:
        rows.append(
            [
                plain_cell(r.source),
                plain_cell(r.title),
                plain_cell(r.outlet),
                plain_cell(r.published) or "undated",
                plain_cell(how_found(r)),
                int(r.chunks),
                plain_cell("; ".join(r.flags)),
            ]
        )
    return rows


def table_value(records: Iterable[DocumentRecord]) -> pd.DataFrame:
    return pd.DataFrame(table_rows(records), columns=list(COLUMNS))


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def message_html(kind: str, label: str, paragraphs: Sequence[str] = (), items: Sequence[str] = ()) -> str:
    """A labelled box ('notice' or 'error') of escaped text."""
    body = "".join(f"<p>{_esc(p)}</p>" for p in paragraphs if p.strip())
    if items:
        body += "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>"
    return f'<div class="ka-{kind} ka-library-message"><div class="ka-label">{_esc(label)}</div>{body}</div>'


@dataclass
class UploadOutcome:
    """What one upload did, in the user's terms."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one sentence per file not added, naming it
    notes: list[str] = field(default_factory=list)
    summary: str = ""  # the ingest report's first line

    def to_html(self) -> str:
        if not (self.added or self.unchanged or self.problems):
            return message_html("notice", "Nothing uploaded", ["Choose or drop files of the supported types."])
        head = []
        if self.added:
            head.append(f"Added or updated {len(self.added)} document(s): {', '.join(self.added)}.")
        if self.unchanged:
            head.append(f"Unchanged (already in the library): {', '.join(self.unchanged)}.")
        if self.problems:
            head.append(f"{len(self.problems)} file(s) not added:")
        kind = "error" if self.problems and not (self.added or self.unchanged) else "notice"
        label = "Upload finished" if kind == "notice" else "Nothing was added"
        box = message_html(kind, label, head, self.problems)
        tail = "".join(f"<p>{_esc(n)}</p>" for n in [*self.notes, self.summary] if n)
        return box + (f'<div class="ka-muted ka-library-summary">{tail}</div>' if tail else "")


def outcome_of(
    plan: UploadPlan,
    report: IngestReport,
    copied: Sequence[str],
    replaced: dict[str, str],
) -> UploadOutcome:
    """The user's view of an upload: its own files added / unchanged / not added (with reasons), notes."""
    skipped = {name for name, _ in report.skipped}
    changed = set(report.documents_changed)
    out = UploadOutcome(notes=list(plan.notes), summary=report.summary().splitlines()[0])
    out.problems = [reason for _, reason in plan.rejected] + [reason for _, reason in report.skipped]
    for name in copied:
        if name in skipped:
            continue
        (out.added if name in changed else out.unchanged).append(name)
    others = sorted(changed - set(copied))
    if others:
        out.notes.append("Also re-read: " + ", ".join(others))
    out.notes.extend(f"{name} replaces {what}" for name, what in sorted(replaced.items()))
    return out


# --- the tab -------------------------------------------------------------------------------------------


class LibraryActions:
    """What the tab does with the shared Assistant: upload, list, remove; errors become messages."""

    def __init__(self, assistant: Assistant, settings: Settings) -> None:
        self.assistant = assistant
        self.settings = settings
        self.upload_dir = settings.upload_dir.resolve()
        self._write = threading.Lock()  # one upload or removal at a time in this process

    def records(self) -> list[DocumentRecord]:
        return self.assistant.documents()

    def outlets(self) -> list[str]:
        return sorted({r.outlet for r in self.records() if r.outlet})

    def upload(self, paths: Sequence[str | Path] | None, progress: Any = None) -> str:
        """Check, copy and index an upload; the message to show (HTML, escaped)."""
        items = [Path(p) for p in (paths or [])]
        if not items:
            return UploadOutcome().to_html()
        step = progress if callable(progress) else (lambda *a, **k: None)
        step(0.0, desc="Checking the files")
        try:
            sized = [(p, p.stat().st_size) for p in items]
        except (OSError, ValueError) as exc:  # ValueError: a path with a NUL in it
            logger.exception("An uploaded file cannot be read")
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a file name is not usable"
            return message_html("error", "The upload could not be read", [f"Please upload again ({why})."])
        plan = plan_upload(sized, self.settings.max_upload_files, self.settings.max_file_mb)
        if not plan.accepted:
            out = UploadOutcome(problems=[r for _, r in plan.rejected], notes=plan.notes)
            return out.to_html()
        batch: Path | None = None
        try:
            with self._write:
                batch = new_batch_dir(self.upload_dir)
                step(0.1, desc=f"Copying {len(plan.accepted)} file(s)")
                copied = copy_into(batch, plan.accepted)
                before = {r.source: r for r in self.records()}
                step(0.2, desc=f"Reading and indexing {len(copied)} file(s)")
                report = self.assistant.ingest(copied)
                replaced = self._tidy(batch, copied, before, report)
        except StoreError as exc:
            logger.exception("Upload: the index is not available")
            self._discard(batch)
            return message_html("error", "The library could not be changed", [str(exc), "Nothing was added."])
        except Exception as exc:
            logger.exception("Upload failed")
            self._discard(batch)
            return message_html(
                "error",
                "The upload failed",
                [f"Nothing was added ({type(exc).__name__}). The details are in the server log."],
            )
        step(1.0, desc="Done")
        return outcome_of(plan, report, [p.name for p in copied], replaced).to_html()

    def _tidy(
        self, batch: Path, copied: list[Path], before: dict[str, DocumentRecord], report: IngestReport
    ) -> dict[str, str]:
        """After an ingest: drop copies that were not indexed, and the earlier upload a new one replaced."""
        skipped = {name for name, _ in report.skipped}
        replaced: dict[str, str] = {}
        for path in copied:
            if path.name in skipped:
                path.unlink(missing_ok=True)
                continue
            old = before.get(path.name)
            if old is None or Path(old.path) == path:
                continue
            old_path = Path(old.path)
            if self._is_upload(old_path):
                replaced[path.name] = "the earlier upload of the same name"
                old_path.unlink(missing_ok=True)
                self._drop_if_empty(old_path.parent)
            else:
                replaced[path.name] = f"the document of the same name from {old_path.parent.name}/"
        self._drop_if_empty(batch)
        return replaced

    def _is_upload(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.upload_dir)

    def _drop_if_empty(self, folder: Path) -> None:
        if folder.resolve() != self.upload_dir and self._is_upload(folder) and folder.is_dir():
            with contextlib.suppress(OSError):  # not empty
                folder.rmdir()

    def _discard(self, batch: Path | None) -> None:
        if batch is not None and self._is_upload(batch):
            shutil.rmtree(batch, ignore_errors=True)

    def describe(self, name: str | None) -> tuple[str, bool]:
        """(message, whether to ask for confirmation) before removing `name`."""
        if not name:
            return message_html("notice", "Choose a document", ["Pick the document to remove first."]), False
        try:
            record = self.assistant.store.library.get(name)
        except StoreError as exc:
            return message_html("error", "The library is not available", [str(exc)]), False
        if record is None:
            return message_html("notice", "Not in the library", [f"{name} is not in the library."]), False
        where = (
            "Its uploaded file is deleted too."
            if self._is_upload(Path(record.path))
            else f"The file itself stays where it is ({record.path})."
        )
        title = f" ({record.title})" if record.title else ""
        text = f"Remove {name}{title} and its {record.chunks} chunk(s) from the library? {where}"
        return message_html("notice", "Confirm removal", [text]), True

    def remove(self, name: str | None) -> str:
        if not name:
            return message_html("notice", "Choose a document", ["Pick the document to remove first."])
        try:
            with self._write:
                record = self.assistant.store.library.get(name)
                chunks = self.assistant.remove_document(name)
                if record is not None:
                    self._drop_if_empty(Path(record.path).parent)
        except KeyError:
            return message_html("notice", "Not in the library", [f"{name} is not in the library (any more)."])
        except StoreError as exc:
            logger.exception("Removing %r: the index is not available", name)
            return message_html("error", "The library could not be changed", [str(exc), "Nothing was removed."])
        except Exception as exc:
            logger.exception("Removing %r failed", name)
            return message_html(
                "error", "The removal failed", [f"{name} ({type(exc).__name__}): the details are in the server log."]
            )
        return message_html("notice", "Removed", [f"{name} was removed from the library ({chunks} chunk(s))."])


def build_library(
    assistant: Assistant, settings: Settings, tab: gr.Tab | None = None, outlets: gr.Dropdown | None = None
) -> LibraryActions:
    """The Library's components and events, inside the current Blocks context (a tab).

    `tab`: its select event refreshes the table. `outlets`: the chat's outlet filter, whose choices follow
    what the library holds.
    """
    actions = LibraryActions(assistant, settings)
    kinds = ", ".join(SUPPORTED_SUFFIXES)

    def safe_records() -> tuple[list[DocumentRecord], str | None]:
        try:
            return actions.records(), None
        except StoreError as exc:
            logger.exception("Listing the library failed")
            return [], message_html("error", "The library is not available", [str(exc)])
        except Exception as exc:
            logger.exception("Listing the library failed")
            return [], message_html("error", "The library could not be listed", [f"{type(exc).__name__}: see the log."])

    def views(selected_outlets: Sequence[str] | None = None) -> tuple[Any, ...]:
        """(table, document choice, outlet choices, error or None)."""
        records, error = safe_records()
        names = [r.source for r in records]
        choice = gr.update(choices=names, value=None)
        known = sorted({r.outlet for r in records if r.outlet} | set(selected_outlets or []))
        return table_value(records), choice, gr.update(choices=known), error

    def refresh(selected_outlets: list[str] | None = None) -> tuple[Any, ...]:
        table, choice, outlet_choices, error = views(selected_outlets)
        return table, choice, outlet_choices, error if error else gr.skip()

    def on_upload(
        paths: list[str] | None,
        selected_outlets: list[str] | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008
    ) -> tuple[Any, ...]:
        message = actions.upload(paths, progress)
        table, choice, outlet_choices, error = views(selected_outlets)
        return None, message + (error or ""), table, choice, outlet_choices

    def ask_remove(name: str | None) -> tuple[Any, ...]:
        message, confirm = actions.describe(name)
        return message, gr.update(visible=confirm), name if confirm else None

    def confirm_remove(name: str | None, selected_outlets: list[str] | None) -> tuple[Any, ...]:
        message = actions.remove(name)
        table, choice, outlet_choices, error = views(selected_outlets)
        return message + (error or ""), gr.update(visible=False), None, table, choice, outlet_choices

    def cancel_remove() -> tuple[Any, ...]:
        return (
            message_html("notice", "Nothing removed", ["The document stays in the library."]),
            gr.update(visible=False),
            None,
        )

    def pick_row(evt: gr.SelectData) -> Any:
        row = getattr(evt, "row_value", None)
        return gr.update(value=row[0]) if row else gr.skip()

    records, _ = safe_records()
    gr.Markdown(
        f"Add your own documents ({kinds}): drop them below or click to choose. At most "
        f"{settings.max_upload_files} files per upload, each up to {settings.max_file_mb:g} MB. A file with the "
        "name of a document already in the library replaces it.",
        elem_classes=["ka-muted"],
    )
    files = gr.File(
        label="Upload documents",
        file_count="multiple",
        file_types=list(SUPPORTED_SUFFIXES),
        type="filepath",
        height=140,
        elem_id="ka-upload",
    )
    status = gr.HTML("", elem_id="ka-library-status")
    table = gr.Dataframe(
        value=table_value(records),
        headers=list(COLUMNS),
        datatype=DATATYPES,
        interactive=False,
        wrap=True,
        max_height=640,
        column_widths=["15%", "22%", "12%", "9%", "22%", "6%", "14%"],
        label="Library",
        buttons=["fullscreen", "copy"],
        elem_id="ka-library-table",
    )
    with gr.Row(equal_height=True):
        choice = gr.Dropdown(
            choices=[r.source for r in records],
            value=None,
            label="Document to remove",
            info="Or click its row in the table.",
            scale=4,
            elem_id="ka-remove-choice",
        )
        remove = gr.Button("Remove…", variant="secondary", scale=1, min_width=110, elem_id="ka-remove")
        refresh_btn = gr.Button("Refresh", size="sm", scale=1, min_width=90, elem_id="ka-library-refresh")
    with gr.Row(visible=False, elem_id="ka-remove-confirm-row") as confirm_row:
        confirm = gr.Button("Yes, remove it", variant="stop", elem_id="ka-remove-confirm")
        cancel = gr.Button("Cancel", elem_id="ka-remove-cancel")
    pending = gr.State(None)

    # without the chat's outlet filter, a hidden stand-in keeps one signature for every event
    outlet_box = outlets if outlets is not None else gr.Dropdown(choices=[], multiselect=True, visible=False)
    listed = [table, choice, outlet_box, status]
    common: dict[str, Any] = {"concurrency_id": "library", "concurrency_limit": 1}
    files.upload(
        on_upload,
        [files, outlet_box],
        [files, status, table, choice, outlet_box],
        api_name="upload_documents",
        show_progress_on=[status],
        **common,
    )
    remove.click(ask_remove, [choice], [status, confirm_row, pending], queue=False, api_visibility="private")
    confirm.click(
        confirm_remove,
        [pending, outlet_box],
        [status, confirm_row, pending, table, choice, outlet_box],
        api_visibility="private",
        **common,
    )
    cancel.click(cancel_remove, None, [status, confirm_row, pending], queue=False, api_visibility="private")
    refresh_btn.click(refresh, [outlet_box], listed, queue=False, api_name="library")
    table.select(pick_row, None, [choice], queue=False, api_visibility="private")
    if tab is not None:
        tab.select(refresh, [outlet_box], listed, queue=False, api_visibility="private")
    return actions
