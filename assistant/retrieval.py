"""Hybrid retrieval: BM25 and dense search fused by weighted reciprocal rank, with metadata filters.

With a reranker, the best fused chunks are re-ordered by it (a cross-encoder) before the top k are kept.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.config import Settings
from assistant.corpus import iso_to_int
from assistant.lexical import Analyzer, idf_function
from assistant.quarantine import mask_text, spans_of
from assistant.store import Store

if TYPE_CHECKING:
    from assistant.rerank import Reranker

_DUPLICATE_JACCARD = 0.8
# Filtered dense search: take the nearest chunks unfiltered and keep those the filter admits (Chroma's own
# metadata filter scans every record: ~0.5 s at 100k chunks). Ask for enough to expect OVERFETCH times the
# candidates needed at the filter's share of the index, at most MAX_OVERFETCH; else, or when too few
# survive, fall back to Chroma's filtered query.
_OVERFETCH = 2.0
_MAX_OVERFETCH = 1000


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


class MetadataColumns:
    """The filterable metadata of many chunks as numpy columns: `mask(filters)` is `matches` for all at once."""

    def __init__(self, metas: Sequence[dict[str, Any]]) -> None:
        self.outlet_codes: dict[str, int] = {}
        outlets = [meta.get("outlet") for meta in metas]
        self.outlet = np.fromiter(
            (-1 if o is None else self.outlet_codes.setdefault(str(o), len(self.outlet_codes)) for o in outlets),
            dtype=np.int32,
            count=len(metas),
        )
        self.published = np.fromiter(
            (int(meta.get("published_int", 0)) for meta in metas), dtype=np.int64, count=len(metas)
        )
        self._masks: dict[tuple[Any, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.published)

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Boolean array: which chunks the filters admit (None when no filter is set)."""
        if not filters.active:
            return None
        key = (tuple(filters.outlets), filters.since, filters.until)
        cached = self._masks.get(key)
        if cached is not None:
            return cached
        mask = np.ones(len(self), dtype=bool)
        if filters.outlets:
            codes = [self.outlet_codes[o] for o in filters.outlets if o in self.outlet_codes]
            mask &= np.isin(self.outlet, np.asarray(codes, dtype=np.int32))
        if filters.since:
            mask &= self.published >= iso_to_int(filters.since)
        if filters.until:
            mask &= self.published <= iso_to_int(filters.until)
        mask.flags.writeable = False
        if len(self._masks) >= 32:  # a handful of filters in use at a time: keep the cache small
            self._masks.clear()
        self._masks[key] = mask
        return mask


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
    rerank_score: float | None = None  # the reranker's score, when one re-ordered the fused candidates
    context: str = ""  # the whole chunk a trimmed passage was cut from (for showing a quote in its paragraph)
    also_reported_by: str = ""  # other documents carrying the same (syndicated) text, "; "-separated
    # quarantined spans (document offsets: instructions to an AI, hidden text), blanked in `text`; and their words
    quarantined: tuple[tuple[int, int], ...] = ()
    withheld: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, chunk_id: str, text: str, meta: dict[str, Any], **scores: Any) -> Passage:
        """The passage of a stored chunk, its quarantined spans blanked (`quarantine.mask_text`)."""
        start = int(meta.get("start", 0))
        spans = spans_of(meta)
        local = [(a - start, b - start) for a, b in spans]
        return cls(
            id=chunk_id,
            text=mask_text(text, local) if spans else text,
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            outlet=str(meta.get("outlet", "")),
            published=str(meta.get("published", "")),
            start=start,
            end=int(meta.get("end", 0)),
            also_reported_by=str(meta.get("also_reported_by", "")),
            quarantined=spans,
            withheld=tuple(text[max(a, 0) : b] for a, b in local if a < b),
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
        self.position = {chunk_id: i for i, chunk_id in enumerate(self.ids)}
        self.columns = MetadataColumns(self.metas)


class HybridRetriever:
    """BM25 (built once per index version, kept in memory) + Chroma dense search, fused with weighted RRF.

    With a `reranker`, the best `settings.rerank_candidates` fused chunks are re-ordered by it.
    """

    def __init__(self, store: Store, analyzer: Analyzer, settings: Settings, reranker: Reranker | None = None) -> None:
        self.store = store
        self.analyzer = analyzer
        self.settings = settings
        self.reranker = reranker
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

        ids, texts, metas, searched = [], [], [], []
        for chunk_id, text, meta in self.store.all_chunks():
            spans = spans_of(meta)  # quarantined text is not searched for either
            start = int(meta.get("start", 0))
            ids.append(chunk_id)
            texts.append(text)
            metas.append(meta)
            searched.append(mask_text(text, [(a - start, b - start) for a, b in spans]) if spans else text)
        tokens = [self.analyzer.terms(f"{m.get('title', '')}\n{t}") for t, m in zip(searched, metas, strict=True)]
        bm25 = bm25s.BM25()
        if texts:
            bm25.index(tokens, show_progress=False)
        return _LexicalIndex(version, ids, texts, metas, bm25, [set(t) for t in tokens])

    def search(
        self, query: str, k: int, filters: Filters | None = None, vector: Sequence[float] | None = None
    ) -> list[Passage]:
        """The k best passages for `query` (its embedding `vector` if already computed), duplicates collapsed.

        The fused scores (score, ranks, similarity) are kept on each passage whether or not it was re-ranked.
        """
        if k <= 0 or not query.strip():
            return []
        filters = filters or Filters()
        index = self.lexical_index()
        if not index.ids:
            return []
        wanted = max(k, self.settings.rerank_candidates) if self.reranker is not None else k
        fetch = max(self.settings.fetch_k, k)
        lexical = self._bm25_ranking(index, query, fetch, filters)
        dense = self._dense_ranking(index, query if vector is None else vector, fetch, filters)
        fused: dict[str, float] = {}
        dense_ids = [chunk_id for chunk_id, _ in dense]
        for weight, ranking in (
            (self.settings.bm25_weight, lexical),
            (self.settings.dense_weight, dense_ids),
        ):
            for rank, chunk_id in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (self.settings.rrf_k + rank + 1)
        position = index.position
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
            if len(passages) == wanted:
                break
        if self.reranker is not None and len(passages) > 1:
            passages = self._rerank(query, passages)
        return passages[:k]

    def _rerank(self, query: str, passages: list[Passage]) -> list[Passage]:
        """The passages by the reranker's score (fused order among equal scores), each with its rerank_score."""
        assert self.reranker is not None
        scores = self.reranker.score(query, [p.text for p in passages])
        order = sorted(range(len(passages)), key=lambda i: -scores[i])
        return [replace(passages[i], rerank_score=scores[i]) for i in order]

    def _bm25_ranking(self, index: _LexicalIndex, query: str, k: int, filters: Filters) -> list[str]:
        terms = self.analyzer.terms(query)
        if not terms:
            return []
        scores = np.asarray(index.bm25.get_scores(terms), dtype=float)
        mask = index.columns.mask(filters)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [index.ids[i] for i in top if scores[i] > 0]

    def _dense_ranking(
        self, index: _LexicalIndex, query: str | Sequence[float], k: int, filters: Filters
    ) -> list[tuple[str, float]]:
        vector = self.store.embeddings.embed_query(query) if isinstance(query, str) else query
        mask = index.columns.mask(filters)
        if mask is None:
            hits = self.store.dense_search(vector, k)
        else:
            hits = self._filtered_dense(index, vector, k, filters, mask)
        return [(chunk_id, 1.0 - distance) for chunk_id, distance in hits]

    def _filtered_dense(
        self, index: _LexicalIndex, vector: Sequence[float], k: int, filters: Filters, mask: np.ndarray
    ) -> list[tuple[str, float]]:
        """The k nearest chunks the filters admit: post-filtered nearest overall, else Chroma's filtered query.

        If at least k of the n nearest chunks pass the filter, they are the k nearest that pass.
        """
        admitted = int(mask.sum())
        if admitted == 0:
            return []
        n = min(len(index.ids), math.ceil(k * len(index.ids) / admitted * _OVERFETCH))
        if n <= _MAX_OVERFETCH:
            hits = self.store.dense_search(vector, n)
            kept = [
                (chunk_id, distance)
                for chunk_id, distance in hits
                if (i := index.position.get(chunk_id)) is not None and mask[i]
            ]
            if len(kept) >= k or len(hits) < n or n == len(index.ids):
                return kept[:k]
        return self.store.dense_search(vector, k, filters.where())


def _rank_of(ranking: list[str], chunk_id: str) -> int | None:
    try:
        return ranking.index(chunk_id) + 1
    except ValueError:
        return None


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
