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
from assistant.corpus import SIDECAR_SUFFIX, Document, DocumentError, load_document
from assistant.store import Store

# Bump when cleaning or chunking changes in a way that changes chunk text: forces a rebuild.
PIPELINE_VERSION = 2


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
    total_chunks: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"Indexed {self.documents} documents in {self.seconds:.1f} s: {self.added} chunks added, "
            f"{self.unchanged} unchanged, {self.removed} removed"
            + (f", {self.updated} re-labelled" if self.updated else "")
            + f"; {self.total_chunks} chunks in the index."
        ]
        if self.rebuilt:
            lines.append("The chunking or embedding settings changed: the index was rebuilt.")
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
    """Brings the store in line with a set of files: adds, replaces and removes chunks."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        count_tokens: Callable[[str], int],
        progress: bool | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.count_tokens = count_tokens
        self.progress = progress

    @property
    def _max_bytes(self) -> int:
        return int(self.settings.max_file_mb * 1e6)

    def ingest(self, paths: Iterable[Path]) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files, folders, report.skipped = discover(paths)
        documents = self._load(files, report)
        with self.store.writing():
            fingerprint = index_fingerprint(self.settings)
            indexed = self.store.documents()
            manifest = self.store.manifest
            if indexed and manifest.get("fingerprint") != fingerprint["fingerprint"]:
                documents = self._rebuild(indexed, documents, report)
                indexed = {}
            loaded = {d.source for d in documents}
            report.skipped = [
                (name, f"{reason} (its previously indexed version is kept)")
                if name in indexed and name not in loaded
                else (name, reason)
                for name, reason in report.skipped
            ]
            changed = self._sync(documents, indexed, report)
            changed |= self._remove_missing(indexed, folders, loaded, report)
            if changed or report.rebuilt or manifest.get("fingerprint") != fingerprint["fingerprint"]:
                self.store.write_manifest(fingerprint, bump=changed)
            report.total_chunks = self.store.count()
        report.documents = len(documents)
        report.seconds = time.perf_counter() - started
        return report

    def _load(self, files: list[Path], report: IngestReport) -> list[Document]:
        documents: dict[str, Document] = {}
        for path in files:
            try:
                doc = load_document(path, max_bytes=self._max_bytes)
            except DocumentError as exc:
                report.skipped.append((path.name, str(exc)))
                continue
            except OSError as exc:
                report.skipped.append((path.name, f"{path.name}: cannot be read ({exc.strerror})"))
                continue
            if doc.source in documents:
                other = documents[doc.source].path
                report.skipped.append((path.name, f"{path}: same file name as {other}; rename one of them"))
                continue
            documents[doc.source] = doc
        return list(documents.values())

    def _rebuild(self, indexed: dict[str, Any], documents: list[Document], report: IngestReport) -> list[Document]:
        """Drop the index and re-read every document it held whose file still exists."""
        report.rebuilt = True
        given = {d.source for d in documents}
        for source, info in indexed.items():
            path = Path(info.path)
            if source not in given and path.is_file():
                try:
                    documents.append(load_document(path, max_bytes=self._max_bytes))
                except DocumentError as exc:
                    report.skipped.append((source, str(exc)))
                except OSError as exc:
                    report.skipped.append((source, f"{source}: cannot be read ({exc.strerror})"))
        self.store.reset()
        return documents

    def _sync(self, documents: list[Document], indexed: dict[str, Any], report: IngestReport) -> bool:
        to_embed: list[tuple[Chunk, dict[str, Any]]] = []
        stale: list[str] = []
        relabel_ids: list[str] = []
        relabel_meta: list[dict[str, Any]] = []
        for doc in documents:
            doc_hash = _document_hash(doc)
            known = indexed.get(doc.source)
            if known is not None and known.doc_hash == doc_hash:
                report.unchanged += len(known.chunk_ids)
                continue
            report.documents_changed.append(doc.source)
            chunks = chunk_text(
                doc.text, doc.source, self.count_tokens, self.settings.chunk_size, self.settings.chunk_overlap
            )
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
        return bool(to_embed or stale or relabel_ids)

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
        self, indexed: dict[str, Any], folders: list[Path], present: set[str], report: IngestReport
    ) -> bool:
        """Drop documents whose file, inside a folder being ingested, no longer exists."""
        gone: list[str] = []
        for source, info in indexed.items():
            path = Path(info.path)
            if source in present or path.exists():
                continue
            if any(path.is_relative_to(folder) for folder in folders):
                gone.extend(info.chunk_ids)
                report.documents_removed.append(source)
        self.store.delete(gone)
        report.removed += len(gone)
        return bool(gone)


def _document_hash(doc: Document) -> str:
    meta = doc.metadata
    key = json.dumps([doc.text, meta.title, meta.outlet, meta.published, meta.byline, str(doc.path.resolve())])
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
    }
