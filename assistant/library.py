"""The library: one record per document (its metadata, how each field was found, flags, chunk count, the
cleaned text and what the user said about it), kept in a Chroma collection beside the chunks."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.corpus import Document
from assistant.store import StoreError

LIBRARY_SUFFIX = "__library"


class DamagedRecordError(StoreError):
    """A document record of the library cannot be read; the next ingest reads its document again."""


@dataclass
class DocumentRecord:
    """What the library knows of one document."""

    source: str
    path: str
    kind: str
    title: str
    outlet: str
    published: str
    byline: str
    updated: str
    chunks: int
    provenance: dict[str, str] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)  # reason -> lines removed
    also_reported_by: list[str] = field(default_factory=list)
    copy_of: str = ""
    overrides: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    quarantined: list[dict[str, object]] = field(default_factory=list)  # start, end, reason, text of each
    text: str = ""
    # what the corpus-wide pass needs to judge this document again without reading its file (see ingest.py)
    file_hash: str = ""  # of the file, its sidecar and the reader's lexicons: unchanged means the same reading
    line_keys: list[str] = field(default_factory=list)  # its lines, normalised
    paragraphs: list[tuple[int, str]] = field(default_factory=list)  # its kept lines by position, before syndication
    shared_hits: list[str] = field(default_factory=list)  # its lines its outlet prints on other pages
    dropped: dict[str, str] = field(default_factory=dict)  # line -> why syndication left it out

    @classmethod
    def of(
        cls,
        doc: Document,
        chunks: int,
        overrides: dict[str, str] | None = None,
        trace: dict[str, Any] | None = None,
    ) -> DocumentRecord:
        meta = doc.metadata
        removed: dict[str, int] = {}
        for r in doc.removals:
            if r.reason != "blank line":
                key = r.reason.split(":")[0] if r.reason.startswith("syndicated") else r.reason
                removed[key] = removed.get(key, 0) + 1
        return cls(
            source=doc.source,
            path=str(doc.path.resolve()),
            kind=doc.kind,
            title=meta.title,
            outlet=meta.outlet,
            published=meta.published,
            byline=meta.byline,
            updated=meta.updated,
            chunks=chunks,
            provenance=dict(meta.provenance),
            confidence=dict(meta.confidence),
            flags=doc.flags,
            removed=removed,
            also_reported_by=list(doc.also_reported_by),
            copy_of=doc.copy_of,
            overrides=dict(overrides or {}),
            notes=list(doc.notes),
            quarantined=[f.to_dict() for f in doc.quarantined],
            text=doc.text,
            **(trace or {}),
        )

    def to_dict(self, with_text: bool = False) -> dict[str, Any]:
        """The record as data; without the text and the corpus pass's working data unless `with_text`."""
        out = asdict(self)
        if not with_text:
            for key in ("text", "line_keys", "paragraphs", "shared_hits", "dropped", "file_hash"):
                out.pop(key)
        return out


class Library:
    """The document records of one store (a second Chroma collection, so it works with a server too)."""

    def __init__(self, client: Any, collection: str, location: str = "") -> None:
        self.collection = client.get_or_create_collection(collection + LIBRARY_SUFFIX, embedding_function=None)
        self.location = location

    def all(self) -> dict[str, DocumentRecord]:
        """Every record by name; DamagedRecordError when one cannot be read."""
        records, damaged = self.readable()
        if damaged:
            raise self._damaged(damaged)
        return records

    def readable(self) -> tuple[dict[str, DocumentRecord], dict[str, str]]:
        """(the records that can be read, by name; name -> why, for those that cannot)."""
        out: dict[str, DocumentRecord] = {}
        damaged: dict[str, str] = {}
        offset = 0
        while True:
            got = self.collection.get(include=["documents"], limit=1000, offset=offset)
            if not got["ids"]:
                return out, damaged
            for name, body in zip(got["ids"], got["documents"], strict=True):
                try:
                    out[name] = _record(body)
                except (ValueError, TypeError, KeyError) as exc:
                    damaged[name] = f"{type(exc).__name__}: {exc}"
            offset += len(got["ids"])

    def get(self, source: str) -> DocumentRecord | None:
        got = self.collection.get(ids=[source], include=["documents"])
        if not got["ids"]:
            return None
        try:
            return _record(got["documents"][0])
        except (ValueError, TypeError, KeyError) as exc:
            raise self._damaged({source: f"{type(exc).__name__}: {exc}"}) from exc

    def _damaged(self, damaged: dict[str, str]) -> DamagedRecordError:
        first, why = next(iter(damaged.items()))
        more = f" and {len(damaged) - 1} more" if len(damaged) > 1 else ""
        where = f" in {self.location}" if self.location else ""
        return DamagedRecordError(
            f"The library record of {first}{more}{where} is damaged ({why[:120]}): run `assistant ingest` on your "
            "documents again to read them again from their files."
        )

    def put(self, records: list[DocumentRecord]) -> None:
        for i in range(0, len(records), 500):
            part = records[i : i + 500]
            self.collection.upsert(
                ids=[r.source for r in part],
                documents=[json.dumps(r.to_dict(with_text=True), ensure_ascii=False) for r in part],
                metadatas=[{"title": r.title, "outlet": r.outlet, "published": r.published} for r in part],
                embeddings=[[0.0] for _ in part],  # records are looked up by name, never by vector
            )

    def delete(self, sources: list[str]) -> None:
        for i in range(0, len(sources), 500):
            self.collection.delete(ids=sources[i : i + 500])

    def clear(self) -> None:
        ids = self.collection.get(include=[])["ids"]
        self.delete(list(ids))


def _record(body: str) -> DocumentRecord:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise TypeError(f"a record is an object, not {type(data).__name__}")
    known = DocumentRecord.__dataclass_fields__
    record = DocumentRecord(**{k: v for k, v in data.items() if k in known})
    record.paragraphs = [(int(i), str(t)) for i, t in record.paragraphs]
    return record
