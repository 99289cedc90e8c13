"""Sentence-transformers embeddings: a query runs on QUERY_THREADS torch threads, batches on the default."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from assistant.embeddings import QUERY_THREADS, SentenceTransformerEmbeddings

torch = pytest.importorskip("torch")


class StubModel:
    """Stands in for the loaded SentenceTransformer: records torch's thread count at each encode."""

    def __init__(self, fail: bool = False) -> None:
        self.threads: list[int] = []
        self.fail = fail

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.threads.append(torch.get_num_threads())
        if self.fail:
            raise RuntimeError("encode failed")
        return np.full((len(texts), 3), 0.5, dtype=np.float32)


@pytest.fixture
def threads() -> Any:
    """Two torch threads for the test, whatever the machine; the previous count restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(previous)


def embeddings_with(model: StubModel) -> SentenceTransformerEmbeddings:
    embeddings = SentenceTransformerEmbeddings("all-MiniLM-L6-v2")
    embeddings._model = model  # loaded: no weights are read
    return embeddings


def test_a_query_runs_on_query_threads_and_batches_on_the_default(threads: int) -> None:
    model = StubModel()
    embeddings = embeddings_with(model)
    assert embeddings.embed_query("Who is Lee Do-hoon's counterpart?") == [0.5, 0.5, 0.5]
    assert embeddings.embed_documents(["one", "two"]) == [[0.5, 0.5, 0.5]] * 2
    assert model.threads == [QUERY_THREADS, threads]
    assert torch.get_num_threads() == threads


def test_the_thread_count_is_restored_when_encoding_fails(threads: int) -> None:
    embeddings = embeddings_with(StubModel(fail=True))
    with pytest.raises(RuntimeError, match="encode failed"):
        embeddings.embed_query("anything")
    assert torch.get_num_threads() == threads


def test_only_the_onnx_embeddings_say_they_need_no_torch() -> None:
    from langchain_core.embeddings import FakeEmbeddings

    from assistant.embeddings import ExportedOnnxEmbeddings, OnnxEmbeddings, uses_torch

    assert uses_torch(SentenceTransformerEmbeddings("all-MiniLM-L6-v2"))
    assert uses_torch(FakeEmbeddings(size=8))  # an embedding that does not say is taken to need it
    assert not ExportedOnnxEmbeddings.uses_torch and not OnnxEmbeddings.uses_torch
