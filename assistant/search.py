"""Retrieve, rank and select: the chunks for a planned question, and the sentences of them that bear on it.

Retrieval (BM25 + dense, fused, then re-ordered by the cross-encoder when one is configured) is
`HybridRetriever`; the choice of sentences is `EvidenceSelector`. This step runs them per part of a
compound question, adds the chunks of a year the question names, and prefers the newest evidence for a
question about the present.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.config import Settings
from assistant.dates import named_period
from assistant.evidence import Evidence, EvidenceSelector, merge_passages
from assistant.rerank import Reranker
from assistant.retrieval import Filters, HybridRetriever, Passage
from assistant.stages import stage
from assistant.turn import Turn


class SentenceVectors:
    """Cosine similarity of texts to a question vector; sentence vectors cached up to `limit` texts."""

    def __init__(self, embeddings: Embeddings, limit: int) -> None:
        self.embeddings = embeddings
        self.limit = limit
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def similarities(self, vector: Sequence[float], texts: list[str]) -> list[float]:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            embedded = self.embeddings.embed_documents(missing)
            with self._lock:
                if len(self._vectors) > self.limit:
                    self._vectors.clear()
                for text, vec in zip(missing, embedded, strict=True):
                    v = np.asarray(vec, dtype=np.float32)
                    self._vectors[text] = v / (np.linalg.norm(v) or 1.0)
        q = np.asarray(vector, dtype=np.float32)
        q = q / (np.linalg.norm(q) or 1.0)
        with self._lock:
            return [float(self._vectors[t] @ q) if t in self._vectors else 0.0 for t in texts]


class Searcher:
    """Fills a Turn's chunks, evidence and passages."""

    def __init__(
        self,
        settings: Settings,
        retriever: HybridRetriever,
        vectors: SentenceVectors,
        count_tokens: Callable[[str], int],
        answers: Callable[[str, str, str], float],
        leans_back: Callable[[str], bool] | None = None,
        judge: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.vectors = vectors
        self.count_tokens = count_tokens
        self.answers = answers  # (question, sentence, before) -> how surely the sentence holds what is asked
        self.leans_back = leans_back  # whether a sentence opens on a word pointing back ('He said ...')
        self.judge = judge  # the cross-encoder that picks what the model reads (settings.prompt_by_judge)
        self._preloading = threading.Event()

    def preload(self) -> None:
        """Start building the BM25 index and loading the embedding model in the background (once per process),
        so a first question's planning (spaCy) runs meanwhile; both are locked, so the search then waits for
        them or finds them ready. A failure here is the search's to report."""
        if self._preloading.is_set():
            return
        self._preloading.set()

        def work() -> None:
            try:
                self.retriever.lexical_index()
                self.retriever.store.embeddings.embed_query("warm up")
            except Exception:  # the question's own search raises it again
                return

        threading.Thread(target=work, name="search-preload", daemon=True).start()

    def __call__(self, turn: Turn) -> None:
        t = time.perf_counter()
        index = self.retriever.lexical_index()
        turn.idf = index.idf
        turn.selector = selector = EvidenceSelector(
            self.retriever.analyzer,
            index.idf,
            self.leans_back,
            kind_bonus=self.settings.kind_bonus,
            year_bonus=self.settings.year_bonus,
        )
        turn.vector = self.retriever.store.embeddings.embed_query(turn.query)
        if not turn.compound:
            turn.chunks = self.retriever.search(turn.query, self.settings.top_k, turn.filters, turn.vector)
            if not turn.present:  # 'What was the state of the talks in August 2023?': that time's articles too
                turn.chunks += self.of_years(turn.query, turn.vector, turn.filters, turn.chunks)
            recent = self.settings.recency_weight if turn.present and self.settings.prefer_newest else 0.0
            if recent:
                turn.trace["prefer_recent"] = recent
            turn.evidence = self.evidence(
                selector, turn.query, turn.chunks, turn.vector, self.settings.max_evidence_sentences, recent=recent
            )
        else:
            turn.chunks, turn.evidence = self._compound(selector, turn.parts, turn.part_queries, turn.filters)
        turn.timings["retrieve_s"] = time.perf_counter() - t
        turn.trace["retrieved"] = [{"id": c.id, "source": c.source, "score": round(c.score, 5)} for c in turn.chunks]
        turn.passages = turn.evidence.passages
        turn.prompt_passages = turn.evidence.best or list(turn.passages)
        similarity = max((c.similarity for c in turn.chunks), default=0.0)
        strength = turn.evidence.strength + similarity
        turn.trace["evidence"] = {"lexical": round(turn.evidence.strength, 3), "dense": round(similarity, 3)}
        if not turn.passages or strength < self.settings.min_evidence:
            turn.refusal = "evidence too weak for the question (LLM not called)"
            # passages that share too few of the question's words are not "related facts", just noise
            if turn.evidence.strength < self.settings.min_related_evidence:
                turn.passages = turn.prompt_passages = []

    def evidence(
        self,
        selector: EvidenceSelector,
        query: str,
        chunks: list[Passage],
        vector: Sequence[float],
        max_sentences: int,
        focus: str = "",
        recent: float = 0.0,
        years_first: bool = False,
        share: int = 1,
    ) -> Evidence:
        """The evidence for `query`; its `best` is the prompt's share (`share` parts split the budget)."""
        wanted = self.settings.prompt_sentences
        judged = bool(wanted) and self.settings.prompt_by_judge and self.judge is not None
        with stage("select_s"):
            evidence = selector.select(
                query,
                chunks,
                max_sentences,
                self.settings.max_passage_tokens,
                self.count_tokens,
                lambda texts: self.vectors.similarities(vector, texts),
                focus=focus if focus != query else "",
                answers=lambda sentence: self.answers(query, sentence, ""),
                recent=recent,
                years_first=years_first,
                best_sentences=0 if judged else self.prompt_count(share),
                best_tokens=self.settings.prompt_evidence_tokens // share,
            )
        if judged:
            evidence = replace(evidence, best=self.judged(query, evidence.passages, share))
        return evidence

    def prompt_count(self, share: int) -> int:
        """How many evidence passages the model reads for one of `share` parts (at least 2 for a part)."""
        wanted = self.settings.prompt_sentences
        return max(2, -(-wanted // share)) if wanted and share > 1 else wanted

    def judged(self, query: str, passages: Sequence[Passage], share: int = 1) -> list[Passage]:
        """The evidence passages the model reads: the best few by the cross-encoder's relevance to `query`,
        best first, within the token budget (the best one always). The rest still serve the fallback and the
        related facts. The model reads fewer, better sentences: the part of the prompt read fresh for every
        question, and so the wait for the first word, shrinks."""
        if len(passages) <= 1 or self.judge is None:
            return list(passages)
        scores = self.judge.score(query, [p.text for p in passages])
        order = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
        most, budget = self.prompt_count(share), self.settings.prompt_evidence_tokens // share
        kept: list[int] = []
        used = 0
        for i in order:
            cost = self.count_tokens(passages[i].text)
            if kept and (len(kept) >= most or used + cost > budget):
                continue
            kept.append(i)
            used += cost
        return [passages[i] for i in kept]

    def _compound(
        self, selector: EvidenceSelector, parts: list[str], queries: list[str], filters: Filters | None
    ) -> tuple[list[Passage], Evidence]:
        """Evidence for 'X in 2019, and Y in 2020?': each part retrieved on its own, the sentences merged.

        A later part borrows the names of the whole question it lacks ('what was he ...' gets 'Biegun'),
        so it can be retrieved without a model call; the model then answers the whole question at once.
        """
        per_part = max(2, -(-self.settings.max_evidence_sentences // len(parts)))
        chunk_lists: list[list[Passage]] = []
        groups: list[list[Passage]] = []
        bests: list[list[Passage]] = []
        strengths: list[float] = []
        for i in range(len(parts)):
            query = queries[i]
            vector = self.retriever.store.embeddings.embed_query(query)
            chunks = self.retriever.search(query, self.settings.top_k, filters, vector)
            chunks += self.of_years(query, vector, filters, chunks)
            evidence = self.evidence(
                selector, query, chunks, vector, per_part, focus=parts[i], years_first=True, share=len(parts)
            )
            chunk_lists.append(chunks)
            groups.append(evidence.passages)
            bests.append(evidence.best)
            strengths.append(evidence.strength)
        # the parts' retrievals interleaved by rank (the trace and the eval's retrieval metrics read them)
        seen: set[str] = set()
        merged: list[Passage] = []
        for rank in range(max(map(len, chunk_lists), default=0)):
            for found in chunk_lists:
                if rank < len(found) and found[rank].id not in seen:
                    seen.add(found[rank].id)
                    merged.append(found[rank])
        strength = max(strengths, default=0.0)
        return merged, Evidence(merge_passages(groups), strength, [], merge_passages(bests))

    def of_years(
        self, query: str, vector: Sequence[float], filters: Filters | None, found: list[Passage]
    ) -> list[Passage]:
        """The best chunks published in the time a question names ('... in December 2025?': that month and
        the next, see `named_period`; '... in 2021?': that year) not yet `found`.

        'Who holds that role in 2025?' needs the 2025 article even when older ones share more of its words.
        """
        if not self.settings.year_chunks or (filters and (filters.since or filters.until)):
            return []
        period = named_period(query, lag_months=self.settings.period_lag_months)
        if period is None:
            return []
        dated = Filters(outlets=filters.outlets if filters else (), since=period[0], until=period[1])
        have = {c.id for c in found}
        extra = self.retriever.search(query, self.settings.year_chunks, dated, vector)
        return [c for c in extra if c.id not in have]
