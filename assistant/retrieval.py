"""Hybrid retrieval: BM25 and dense search fused by weighted reciprocal rank, with metadata filters."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.corpus import iso_to_int
from assistant.lexical import Analyzer, idf_function
from assistant.store import Store

_DUPLICATE_JACCARD = 0.8


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some outlets and a published-date range (inclusive, ISO dates)."""

    outlets: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        for value in (self.since, self.until):
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError as exc:
                    raise ValueError(f"Dates must be YYYY-MM-DD, got {value!r}") from exc

    @property
    def active(self) -> bool:
        return bool(self.outlets or self.since or self.until)

    def where(self) -> dict[str, Any] | None:
        """The same filter as a Chroma `where` clause."""
        clauses: list[dict[str, Any]] = []
        if self.outlets:
            clauses.append({"outlet": {"$in": list(self.outlets)}})
        if self.since:
            clauses.append({"published_int": {"$gte": iso_to_int(self.since)}})
        if self.until:
            clauses.append({"published_int": {"$lte": iso_to_int(self.until)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def matches(self, meta: dict[str, Any]) -> bool:
        if self.outlets and meta.get("outlet") not in self.outlets:
            return False
        published = int(meta.get("published_int", 0))
        if self.since and published < iso_to_int(self.since):
            return False
        return not (self.until and published > iso_to_int(self.until))


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with where it stands in its document and how it scored."""

    id: str
    text: str
    source: str
    title: str
    outlet: str
    published: str
    start: int
    end: int
    score: float = 0.0
    bm25_rank: int | None = None
    dense_rank: int | None = None
    similarity: float = 0.0
    context: str = ""  # the whole chunk a trimmed passage was cut from (for showing a quote in its paragraph)

    @classmethod
    def from_record(cls, chunk_id: str, text: str, meta: dict[str, Any], **scores: Any) -> Passage:
        return cls(
            id=chunk_id,
            text=text,
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            outlet=str(meta.get("outlet", "")),
            published=str(meta.get("published", "")),
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            **scores,
        )


@dataclass
class _LexicalIndex:
    version: int
    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any]]
    bm25: Any
    terms: list[set[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.idf = idf_function(self.terms)


class HybridRetriever:
    """BM25 (built once per index version, kept in memory) + Chroma dense search, fused with weighted RRF."""

    def __init__(self, store: Store, analyzer: Analyzer, settings: Settings) -> None:
        self.store = store
        self.analyzer = analyzer
        self.settings = settings
        self._index: _LexicalIndex | None = None
        self._lock = threading.Lock()

    def lexical_index(self) -> _LexicalIndex:
        """The BM25 index of the current store version (rebuilt only when the store changed)."""
        version = self.store.version
        with self._lock:
            if self._index is None or self._index.version != version:
                self._index = self._build(version)
            return self._index

    def _build(self, version: int) -> _LexicalIndex:
        import bm25s

        ids, texts, metas = [], [], []
        for chunk_id, text, meta in self.store.all_chunks():
            ids.append(chunk_id)
            texts.append(text)
            metas.append(meta)
        tokens = [self.analyzer.terms(f"{m.get('title', '')}\n{t}") for t, m in zip(texts, metas, strict=True)]
        bm25 = bm25s.BM25()
        if texts:
            bm25.index(tokens, show_progress=False)
        return _LexicalIndex(version, ids, texts, metas, bm25, [set(t) for t in tokens])

    def search(
        self, query: str, k: int, filters: Filters | None = None, vector: Sequence[float] | None = None
    ) -> list[Passage]:
        """The k best passages for `query` (its embedding `vector` if already computed), duplicates collapsed."""
        if k <= 0 or not query.strip():
            return []
        filters = filters or Filters()
        index = self.lexical_index()
        if not index.ids:
            return []
        fetch = max(self.settings.fetch_k, k)
        lexical = self._bm25_ranking(index, query, fetch, filters)
        dense = self._dense_ranking(query if vector is None else vector, fetch, filters)
        fused: dict[str, float] = {}
        dense_ids = [chunk_id for chunk_id, _ in dense]
        for weight, ranking in (
            (self.settings.bm25_weight, lexical),
            (self.settings.dense_weight, dense_ids),
        ):
            for rank, chunk_id in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (self.settings.rrf_k + rank + 1)
        position = {chunk_id: i for i, chunk_id in enumerate(index.ids)}
        similarity = dict(dense)
        passages: list[Passage] = []
        kept_terms: list[set[str]] = []
        for chunk_id, score in sorted(fused.items(), key=lambda kv: -kv[1]):
            i = position.get(chunk_id)
            if i is None:
                continue  # indexed after the BM25 snapshot; picked up at the next version
            terms = index.terms[i]
            if any(_jaccard(terms, other) >= _DUPLICATE_JACCARD for other in kept_terms):
                continue
            kept_terms.append(terms)
            passages.append(
                Passage.from_record(
                    chunk_id,
                    index.texts[i],
                    index.metas[i],
                    score=score,
                    bm25_rank=_rank_of(lexical, chunk_id),
                    dense_rank=_rank_of(dense_ids, chunk_id),
                    similarity=similarity.get(chunk_id, 0.0),
                )
            )
            if len(passages) == k:
                break
        return passages

    def _bm25_ranking(self, index: _LexicalIndex, query: str, k: int, filters: Filters) -> list[str]:
        terms = self.analyzer.terms(query)
        if not terms:
            return []
        scores = np.asarray(index.bm25.get_scores(terms), dtype=float)
        if filters.active:
            mask = np.fromiter((filters.matches(m) for m in index.metas), dtype=bool, count=len(index.metas))
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [index.ids[i] for i in top if scores[i] > 0]

    def _dense_ranking(self, query: str | Sequence[float], k: int, filters: Filters) -> list[tuple[str, float]]:
        vector = self.store.embeddings.embed_query(query) if isinstance(query, str) else query
        hits = self.store.dense_search(vector, k, filters.where())
        return [(chunk_id, 1.0 - distance) for chunk_id, distance in hits]


def _rank_of(ranking: list[str], chunk_id: str) -> int | None:
    try:
        return ranking.index(chunk_id) + 1
    except ValueError:
        return None


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
