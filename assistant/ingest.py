"""Incremental ingestion: files and folders in, only what changed embedded, a summary out."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from assistant.chunking import Chunk, chunk_text
from assistant.config import Settings
from assistant.corpus import SIDECAR_SUFFIX, Document, DocumentError, DocumentReader, Parsed
from assistant.formats import HiddenRules
from assistant.lexicon import DocumentCues, OutletTable
from assistant.library import DocumentRecord
from assistant.lines import normalised
from assistant.quarantine import METADATA_KEY, Quarantine, chunk_flags
from assistant.store import ManifestError, Store
from assistant.syndication import find_syndicated

# Bump when cleaning or chunking changes in a way that changes chunk text: forces a rebuild.
PIPELINE_VERSION = 3


@dataclass
class IngestReport:
    """What one ingest run did."""

    documents: int = 0
    added: int = 0
    unchanged: int = 0
    removed: int = 0
    updated: int = 0
    documents_changed: list[str] = field(default_factory=list)
    documents_removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rebuilt: bool = False
    damaged_manifest: str = ""  # why the manifest could not be read (the index was then rebuilt)
    damaged_records: list[str] = field(default_factory=list)  # library records that could not be read
    total_chunks: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"Indexed {self.documents} documents in {self.seconds:.1f} s: {self.added} chunks added, "
            f"{self.unchanged} unchanged, {self.removed} removed"
            + (f", {self.updated} re-labelled" if self.updated else "")
            + f"; {self.total_chunks} chunks in the index."
        ]
        if self.damaged_manifest:
            lines.append(f"{self.damaged_manifest} It was rebuilt from the documents' files.")
        elif self.rebuilt:
            lines.append("The chunking or embedding settings changed: the index was rebuilt.")
        if self.damaged_records:
            lines.append(
                "Damaged library records, read again from their files where they still exist (what was given with "
                "--title, --outlet or --published for them is lost): " + ", ".join(self.damaged_records)
            )
        if self.documents_changed:
            lines.append("New or changed: " + ", ".join(self.documents_changed))
        if self.documents_removed:
            lines.append("Removed (file gone): " + ", ".join(self.documents_removed))
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} file(s):")
            lines.extend(f"  - {reason}" for _, reason in self.skipped)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "added": self.added,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "updated": self.updated,
            "documents_changed": self.documents_changed,
            "documents_removed": self.documents_removed,
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "rebuilt": self.rebuilt,
            "damaged_manifest": self.damaged_manifest,
            "damaged_records": self.damaged_records,
            "total_chunks": self.total_chunks,
            "seconds": round(self.seconds, 3),
        }


def index_fingerprint(settings: Settings) -> dict[str, Any]:
    """The settings that shape chunks and vectors; a change means a rebuild."""
    values: dict[str, Any] = {
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "tokenizer": settings.tokenizer,
        "embedding": settings.embedding,
        "pipeline_version": PIPELINE_VERSION,
    }
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    return {**values, "fingerprint": digest}


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """(files to read, folders walked, skipped (name, reason)) for the paths a user gave."""
    files: list[Path] = []
    folders: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        if path.is_dir():
            folders.append(path.resolve())
            for item in sorted(path.rglob("*")):
                rel = item.relative_to(path)
                hidden = any(p.startswith(".") for p in rel.parts)
                if item.is_file() and not hidden and not item.name.endswith(SIDECAR_SUFFIX):
                    files.append(item)
        elif path.is_file():
            files.append(path)
        else:
            skipped.append((str(path), f"{path}: no such file or folder"))
    return files, folders, skipped


class Indexer:
    """Brings the store in line with a set of files: adds, replaces and removes chunks and library records."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        count_tokens: Callable[[str], int],
        progress: bool | None = None,
        reader: DocumentReader | None = None,
        quarantine: Quarantine | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.count_tokens = count_tokens
        self.progress = progress
        self.reader = reader or make_reader(settings)
        # instructions to an AI and hidden text, flagged per document (a Language of its own unless given one)
        self.quarantine = quarantine or (Quarantine.from_settings(settings) if settings.quarantine else None)

    def ingest(self, paths: Iterable[Path], overrides: dict[str, str] | None = None) -> IngestReport:
        """Index files and folders; `overrides` (title, outlet, published) apply to every file given."""
        started = time.perf_counter()
        report = IngestReport()
        files, folders, report.skipped = discover(paths)
        given_overrides = {k: v for k, v in (overrides or {}).items() if v}
        with self.store.writing():
            fingerprint = index_fingerprint(self.settings)
            indexed = self.store.documents()
            records, damaged = self.store.library.readable()  # a damaged record: its document is read again
            report.damaged_records = sorted(damaged)
            try:
                manifest = self.store.manifest
            except ManifestError as exc:  # the fingerprint cannot be trusted: rebuild from the files
                report.damaged_manifest, manifest = f"The index manifest was damaged ({exc.problem}).", {}
            known_paths = {s: i.path for s, i in indexed.items()} | {s: r.path for s, r in records.items()}
            if (indexed or records) and manifest.get("fingerprint") != fingerprint["fingerprint"]:
                report.rebuilt = True
                self.store.reset()
                indexed = {}
            # a file given again, unchanged, with nothing new said of it, is judged from its record, unread
            first: dict[str, Path] = {}
            for path in files:
                first.setdefault(path.name, path)
            kept = {
                name for name, path in first.items() if self._unchanged(path, records, indexed, given_overrides, report)
            }
            to_read = [path for path in files if path.name not in kept]
            given = self._parse(to_read, records, given_overrides, report)
            for path in files:
                if path.name in kept and path != first[path.name]:
                    report.skipped.append(
                        (path.name, f"{path}: same file name as {first[path.name]}; rename one of them")
                    )
            names = {p.source for p in given} | kept
            rest = [
                (s, Path(p))
                for s, p in sorted(known_paths.items())
                if s not in names and s not in {f.name for f in files} and Path(p).is_file()
            ]
            # a document read before whose file, sidecar and lexicons are unchanged is judged from its record
            cached = [records[s] for s in sorted(kept)] + [
                records[s]
                for s, path in rest
                if not report.rebuilt and s in records and records[s].file_hash == self._file_hash(path)
            ]
            cached_names = {r.source for r in cached}
            others = self._parse([path for s, path in rest if s not in cached_names], records, {}, report)
            report.documents = len(given) + len(kept) + (len(others) + len(cached) if report.rebuilt else 0)
            report.unchanged += sum(len(indexed[s].chunk_ids) for s in kept if s in indexed)
            documents, traces = self._corpus(given + others, cached, records, report)
            report.skipped = [
                (name, f"{reason} (its previously indexed version is kept)")
                if (name in indexed or name in records) and name not in names and not report.rebuilt
                else (name, reason)
                for name, reason in report.skipped
            ]
            overrides_of = {
                d.source: self._overrides(d.source, records, given_overrides if d.source in names else {})
                for d in documents
            }
            changed, chunk_counts = self._sync(documents, indexed, records, names, report)
            present = {d.source for d in documents} | cached_names
            changed |= self._remove_missing(indexed, records, folders, present, report)
            self.store.library.put(
                [
                    DocumentRecord.of(d, chunk_counts[d.source], overrides_of.get(d.source), traces[d.source])
                    for d in documents
                ]
            )
            rewritten = {d.source for d in documents} | cached_names
            self.store.library.delete([name for name in damaged if name not in rewritten])
            if changed or report.rebuilt or manifest.get("fingerprint") != fingerprint["fingerprint"]:
                self.store.write_manifest(fingerprint, bump=changed)
            report.total_chunks = self.store.count()
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, source: str) -> int:
        """Drop one document (its chunks and its record); the number of chunks removed. KeyError if unknown."""
        with self.store.writing():
            indexed = self.store.documents().get(source)
            record = self.store.library.get(source)
            if indexed is None and record is None:
                raise KeyError(source)
            ids = list(indexed.chunk_ids) if indexed else []
            self.store.delete(ids)
            self.store.library.delete([source])
            self.store.write_manifest({}, bump=True)
        return len(ids)

    # --- reading ---------------------------------------------------------------------------------

    @staticmethod
    def _overrides(source: str, records: dict[str, DocumentRecord], given: dict[str, str]) -> dict[str, str]:
        """What the user said of a document: earlier overrides, updated by the ones given now."""
        known = records[source].overrides if source in records else {}
        return {**known, **given}

    def _unchanged(
        self,
        path: Path,
        records: dict[str, DocumentRecord],
        indexed: dict[str, Any],
        overrides: dict[str, str],
        report: IngestReport,
    ) -> bool:
        """Whether a file given to ingest reads as its record says: same path, same bytes (and sidecar and
        lexicons), no new override, and its chunks all in the index."""
        record = records.get(path.name)
        if report.rebuilt or record is None or Path(record.path) != path.resolve():
            return False
        if any(record.overrides.get(k) != v for k, v in overrides.items()):
            return False
        chunks = len(indexed[path.name].chunk_ids) if path.name in indexed else 0
        if chunks != record.chunks:
            return False
        try:
            return record.file_hash == self._file_hash(path)
        except OSError:
            return False

    def _parse(
        self,
        files: list[Path],
        records: dict[str, DocumentRecord],
        overrides: dict[str, str],
        report: IngestReport | None,
    ) -> list[Parsed]:
        parsed: dict[str, Parsed] = {}
        for path in files:
            try:
                item = self.reader.parse(path, overrides=self._overrides(path.name, records, overrides))
            except DocumentError as exc:
                if report is not None:
                    report.skipped.append((path.name, str(exc)))
                continue
            except OSError as exc:
                if report is not None:
                    report.skipped.append((path.name, f"{path.name}: cannot be read ({exc.strerror})"))
                continue
            if item.source in parsed:
                if report is not None:
                    other = parsed[item.source].path
                    report.skipped.append((path.name, f"{path}: same file name as {other}; rename one of them"))
                continue
            parsed[item.source] = item
        return list(parsed.values())

    def _corpus(
        self,
        parsed: list[Parsed],
        cached: list[DocumentRecord],
        records: dict[str, DocumentRecord],
        report: IngestReport,
    ) -> tuple[list[Document], dict[str, dict[str, Any]]]:
        """What only the whole corpus shows: lines an outlet repeats across its pages, syndicated paragraphs.

        `cached` documents take part through their records; one whose outcome changes is read again.
        """
        shared = shared_lines(
            [(p.metadata.outlet, {normalised(line) for line in p.lines if line.strip()}) for p in parsed]
            + [(r.outlet, set(r.line_keys)) for r in cached]
        )

        def hits(outlet: str, keys: set[str]) -> set[str]:
            return keys & shared.get(outlet, set())

        stale = [r for r in cached if hits(r.outlet, set(r.line_keys)) != set(r.shared_hits)]
        parsed = parsed + self._parse([Path(r.path) for r in stale], records, {}, report)
        cached = [r for r in cached if r not in stale]
        parsed = [self.reader.rejudge(p, shared.get(p.metadata.outlet, set())) for p in parsed]
        kept = [[line if i not in p.chrome else "" for i, line in enumerate(p.lines)] for p in parsed]
        kept += [_lines_of(r.paragraphs) for r in cached]
        meta = [(p.source, p.metadata.outlet, p.metadata.published) for p in parsed]
        meta += [(r.source, r.outlet, r.published) for r in cached]
        order = [(not published, published, source) for source, _, published in meta]
        names = [f"{outlet or 'an unknown outlet'} ({source})" for source, outlet, _ in meta]
        found = find_syndicated(
            kept, order, names, self.settings.syndication_threshold, self.settings.syndication_min_words
        )

        def outcome(d: int) -> tuple[dict[str, str], tuple[str, ...], str]:
            dropped = {str(i): why for i, why in found.dropped.get(d, {}).items()}
            also = tuple(sorted(names[o] for o in found.also_in.get(d, ())))
            return dropped, also, meta[found.copy_of[d]][0] if d in found.copy_of else ""

        changed = [
            r
            for k, r in enumerate(cached)
            if outcome(len(parsed) + k) != (r.dropped, tuple(r.also_reported_by), r.copy_of)
        ]
        if changed:  # read them again and decide once more, now over full readings
            again = self._parse([Path(r.path) for r in changed], records, {}, report)
            return self._corpus(parsed + again, [r for r in cached if r not in changed], records, report)
        documents: list[Document] = []
        traces: dict[str, dict[str, Any]] = {}
        for d, p in enumerate(parsed):
            dropped, also, copy_of = outcome(d)
            try:
                doc = self.reader.finish(p, found.dropped.get(d), also, copy_of)
                documents.append(self.quarantine.apply(doc, p.extracted.hidden) if self.quarantine else doc)
            except DocumentError as exc:
                report.skipped.append((p.source, str(exc)))
                continue
            keys = {normalised(line) for line in p.lines if line.strip()}
            traces[p.source] = {
                "file_hash": self._file_hash(p.path),
                "line_keys": sorted(keys),
                "paragraphs": [(i, line) for i, line in enumerate(kept[d]) if line.strip()],
                "shared_hits": sorted(hits(p.metadata.outlet, keys)),
                "dropped": dropped,
            }
        return documents, traces

    def _file_hash(self, path: Path) -> str:
        """Changes when the file, its sidecar, the lexicons or the reading code change."""
        flags = self.quarantine.version if self.quarantine else "-"
        digest = hashlib.sha256(f"{PIPELINE_VERSION}:{self.reader.version}:{flags}".encode())
        for part in (path, path.with_name(path.name + SIDECAR_SUFFIX)):
            try:
                digest.update(part.read_bytes())
            except OSError:
                digest.update(b"-")
        return digest.hexdigest()[:32]

    # --- the store -------------------------------------------------------------------------------

    def _sync(
        self,
        documents: list[Document],
        indexed: dict[str, Any],
        records: dict[str, DocumentRecord],
        given: set[str],
        report: IngestReport,
    ) -> tuple[bool, dict[str, int]]:
        to_embed: list[tuple[Chunk, dict[str, Any]]] = []
        stale: list[str] = []
        relabel_ids: list[str] = []
        relabel_meta: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        for doc in documents:
            doc_hash = _document_hash(doc)
            known = indexed.get(doc.source)
            record = records.get(doc.source)
            if (known is not None and known.doc_hash == doc_hash) or (
                known is None and doc.copy_of and record is not None and record.copy_of == doc.copy_of
            ):
                counts[doc.source] = len(known.chunk_ids) if known else 0
                if doc.source in given:
                    report.unchanged += counts[doc.source]
                continue
            report.documents_changed.append(doc.source)
            chunks = (
                []
                if doc.copy_of
                else chunk_text(
                    doc.text, doc.source, self.count_tokens, self.settings.chunk_size, self.settings.chunk_overlap
                )
            )
            counts[doc.source] = len(chunks)
            old_ids = set(known.chunk_ids) if known else set()
            for chunk in chunks:
                meta = _chunk_metadata(doc, doc_hash, chunk)
                if chunk.id in old_ids:
                    relabel_ids.append(chunk.id)
                    relabel_meta.append(meta)
                else:
                    to_embed.append((chunk, meta))
            stale.extend(old_ids - {c.id for c in chunks})
        self._embed_and_add(to_embed)
        self.store.update_metadata(relabel_ids, relabel_meta)
        self.store.delete(stale)
        report.added += len(to_embed)
        report.updated += len(relabel_ids)
        report.unchanged += len(relabel_ids)
        report.removed += len(stale)
        return bool(to_embed or stale or relabel_ids), counts

    def _embed_and_add(self, items: list[tuple[Chunk, dict[str, Any]]]) -> None:
        batch = self.settings.embedding_batch_size
        disable = self.progress is False or (self.progress is None and len(items) < 2 * batch)
        with tqdm(total=len(items), desc="Embedding", unit="chunk", disable=disable) as bar:
            for i in range(0, len(items), batch):
                part = items[i : i + batch]
                texts = [c.text for c, _ in part]
                vectors = self.store.embeddings.embed_documents(texts)
                self.store.add([c.id for c, _ in part], texts, [m for _, m in part], vectors)
                bar.update(len(part))

    def _remove_missing(
        self,
        indexed: dict[str, Any],
        records: dict[str, DocumentRecord],
        folders: list[Path],
        present: set[str],
        report: IngestReport,
    ) -> bool:
        """Drop documents whose file, inside a folder being ingested, no longer exists."""
        gone: list[str] = []
        sources: list[str] = []
        paths = {s: Path(i.path) for s, i in indexed.items()} | {s: Path(r.path) for s, r in records.items()}
        for source, path in paths.items():
            if source in present or path.exists():
                continue
            if any(path.is_relative_to(folder) for folder in folders):
                if source in indexed:
                    gone.extend(indexed[source].chunk_ids)
                sources.append(source)
                report.documents_removed.append(source)
        self.store.delete(gone)
        self.store.library.delete(sources)
        report.removed += len(gone)
        return bool(gone or sources)


def make_reader(settings: Settings) -> DocumentReader:
    """The document reader with the lexicons the settings name."""
    cues = DocumentCues.load(settings.document_cues_file) if settings.document_cues_file else DocumentCues.load()
    outlets = OutletTable.load(settings.outlets_file)
    hidden = HiddenRules(settings.hidden_font_px, settings.hidden_offscreen_px)
    return DocumentReader(cues, outlets, int(settings.max_file_mb * 1e6), hidden)


def _lines_of(paragraphs: list[tuple[int, str]]) -> list[str]:
    """Kept lines by position ('' elsewhere) from a record's (position, line) pairs."""
    out = [""] * (max((i for i, _ in paragraphs), default=-1) + 1)
    for i, line in paragraphs:
        out[i] = line
    return out


def shared_lines(documents: list[tuple[str, set[str]]]) -> dict[str, set[str]]:
    """Per outlet, the normalised lines that two or more of its documents print (its pages' chrome).

    `documents` holds (outlet, normalised lines) for each document."""
    seen: dict[str, dict[str, int]] = {}
    for outlet, keys in documents:
        if not outlet:
            continue
        counts = seen.setdefault(outlet, {})
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
    return {outlet: {k for k, n in counts.items() if n >= 2} for outlet, counts in seen.items()}


def _document_hash(doc: Document) -> str:
    meta = doc.metadata
    key = json.dumps(
        [doc.text, meta.title, meta.outlet, meta.published, meta.byline, str(doc.path.resolve()), doc.also_reported_by]
        + ([[f.start, f.end, f.reason] for f in doc.quarantined] if doc.quarantined else [])
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _chunk_metadata(doc: Document, doc_hash: str, chunk: Chunk) -> dict[str, Any]:
    return {
        **doc.metadata.to_chroma(),
        "path": str(doc.path.resolve()),
        "doc_hash": doc_hash,
        "chunk_index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "tokens": chunk.tokens,
        "also_reported_by": "; ".join(doc.also_reported_by),
        METADATA_KEY: chunk_flags(doc.quarantined, chunk.start, chunk.end) if doc.quarantined else "",
    }
