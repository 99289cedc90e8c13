"""Re-ranking: the fake reranker re-orders the fused candidates, off changes nothing, model files are checked."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from assistant import embeddings as embeddings_module
from assistant.app import Assistant
from assistant.config import Settings
from assistant.embeddings import (
    ONNX_MODELS,
    ModelFileError,
    OnnxEmbeddings,
    OnnxEncoder,
    make_embeddings,
    verify_model_file,
)
from assistant.lexical import Analyzer
from assistant.rerank import CrossEncoderReranker, FakeReranker, make_reranker
from assistant.retrieval import HybridRetriever
from assistant.store import Store

QUERY = "who was the head of the delegation"
# BM25 (stemmed, no stop words) matches only the first text; the fake reranker (every word) prefers the last.
TEXTS = [
    "Delegation head, delegation head.",
    "Railway inspectors crossed the border in the autumn.",
    "Fishing boats returned to the harbour before the storm.",
    "Who was the one of them, asked the visitor?",
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    settings = Settings(persist_dir=tmp_path / "vs", embedding="fake:16", llm="fake")
    embeddings = DeterministicFakeEmbedding(size=16)
    store = Store(settings, embeddings)
    metas = [{"source": f"doc{i}.txt", "title": "", "published_int": 0} for i in range(len(TEXTS))]
    with store.writing():
        store.add([f"c{i}" for i in range(len(TEXTS))], TEXTS, metas, embeddings.embed_documents(TEXTS))
        store.write_manifest({}, bump=True)
    yield store
    store.close()


def retriever(store: Store, reranker: Any = None, **settings: Any) -> HybridRetriever:
    return HybridRetriever(store, Analyzer(), store.settings.model_copy(update=settings), reranker)


# --- the fake reranker and the factory -------------------------------------------------------------


def test_the_fake_reranker_scores_the_share_of_query_words_and_records_calls() -> None:
    fake = FakeReranker()
    assert fake.score("Who chaired the commission?", ["The commission was chaired by Reyk.", "Rain."]) == [0.75, 0.0]
    assert fake.score("", ["anything"]) == [0.0]
    assert fake.history[0] == ("Who chaired the commission?", ["The commission was chaired by Reyk.", "Rain."])


def test_the_factory_resolves_each_choice_and_builds_no_model() -> None:
    assert make_reranker(Settings(reranker="none")) is None
    assert isinstance(make_reranker(Settings(reranker="fake")), FakeReranker)
    real = make_reranker(Settings(reranker="onnx:ms-marco-MiniLM-L-12-v2", onnx_threads=3))
    assert isinstance(real, CrossEncoderReranker)
    assert real.encoder.threads == 3 and real.encoder._loaded is None  # nothing read until the first score
    with pytest.raises(ValueError, match="choose one of none, onnx:ms-marco-MiniLM-L-12-v2, fake"):
        make_reranker(Settings(reranker="cohere"))


def test_the_assistant_passes_the_configured_reranker_to_its_retriever(tmp_path: Path) -> None:
    settings = Settings(persist_dir=tmp_path / "vs", embedding="fake:16", llm="fake")
    with Assistant.from_settings(settings) as default:
        assert default.retriever.reranker is None  # off by default (see the setting's description)
    real = settings.model_copy(update={"reranker": "onnx:ms-marco-MiniLM-L-12-v2"})
    with Assistant.from_settings(real) as reranked_real:
        assert isinstance(reranked_real.retriever.reranker, CrossEncoderReranker)  # not loaded yet
    with Assistant.from_settings(settings.model_copy(update={"reranker": "fake"})) as reranked:
        assert isinstance(reranked.retriever.reranker, FakeReranker)


# --- the rerank step in HybridRetriever.search -------------------------------------------------------


def test_the_fake_reranker_reorders_the_fused_candidates(store: Store) -> None:
    fused = retriever(store).search(QUERY, 1)
    assert [p.id for p in fused] == ["c0"]  # BM25 and fusion put the 'delegation head' text first

    fake = FakeReranker()
    reranked = retriever(store, fake, rerank_candidates=4).search(QUERY, 2)
    assert [p.id for p in reranked] == ["c3", "c0"]
    assert fake.history == [(QUERY, [p.text for p in retriever(store).search(QUERY, 4)])]  # fused order, deduped
    top = reranked[0]
    assert top.rerank_score == pytest.approx(4 / 6)
    assert top.bm25_rank is None and top.dense_rank is not None and top.score > 0  # fused fields kept


def test_only_rerank_candidates_are_re_ranked(store: Store) -> None:
    fake = FakeReranker()
    assert len(retriever(store, fake, rerank_candidates=2).search(QUERY, 1)) == 1
    assert len(fake.history[0][1]) == 2
    alone = FakeReranker()
    assert [p.id for p in retriever(store, alone, rerank_candidates=1).search(QUERY, 1)] == ["c0"]
    assert alone.history == []  # a single candidate is not scored


def test_without_a_reranker_search_is_unchanged(store: Store) -> None:
    plain = retriever(store).search(QUERY, 3)
    assert plain == retriever(store, None, rerank_candidates=200).search(QUERY, 3)
    assert all(p.rerank_score is None for p in plain)
    assert [p.score for p in plain] == sorted((p.score for p in plain), reverse=True)


# --- model files: missing, wrong, checked once -------------------------------------------------------


def test_a_missing_model_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    reranker = CrossEncoderReranker(tmp_path / "nowhere", cache_dir=tmp_path / "cache")  # nothing read yet
    with pytest.raises(ModelFileError, match=r"nowhere/model.onnx is missing: run `make install`"):
        reranker.score("a question", ["a passage"])
    with pytest.raises(ModelFileError, match=r"model.onnx is missing: run `make install`"):
        OnnxEmbeddings(folder=tmp_path / "nowhere").embed_query("a question")


def test_a_wrong_model_file_is_named_with_its_hash(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not the cross-encoder")
    (tmp_path / "tokenizer.json").write_text("{}")
    wrong = hashlib.sha256(b"not the cross-encoder").hexdigest()
    with pytest.raises(ModelFileError, match=rf"model.onnx has sha256 {wrong}, not the expected .*make install"):
        CrossEncoderReranker(tmp_path).score("a question", ["a passage"])


def test_a_missing_package_says_to_run_make_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings_module.util, "find_spec", lambda name: None)
    with pytest.raises(ModelFileError, match=r"BAAI/bge-small-en-v1.5 model is not installed .*`make install`"):
        make_embeddings("onnx:bge-small-en-v1.5").embed_query("a question")


def test_the_hash_is_checked_once_and_again_when_the_file_changes(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights, version one")
    good = hashlib.sha256(b"weights, version one").hexdigest()
    cache = tmp_path / "cache"
    assert verify_model_file(model, good, cache) == model
    assert len(list((cache / "verified").iterdir())) == 1

    # same size and mtime: the recorded verdict stands, the file is not read again
    stat = model.stat()
    model.write_bytes(b"weights, version two")
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert verify_model_file(model, good, cache) == model
    with pytest.raises(ModelFileError, match="not the expected"):
        verify_model_file(model, good, None)

    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched: hashed again
    with pytest.raises(ModelFileError, match="not the expected"):
        verify_model_file(model, good, cache)


def test_the_model_is_loaded_once_by_concurrent_first_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = OnnxEncoder(ONNX_MODELS["ms-marco-MiniLM-L-12-v2"])
    opened: list[int] = []

    def slow_open() -> tuple[Any, Any]:
        opened.append(1)
        threading.Event().wait(0.05)
        return object(), object()

    monkeypatch.setattr(encoder, "_open", slow_open)
    threads = [threading.Thread(target=encoder.load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opened == [1]


def test_unknown_onnx_embeddings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"onnx:bge-small-en-v1\.5"):
        make_embeddings("onnx:ms-marco-MiniLM-L-12-v2")
