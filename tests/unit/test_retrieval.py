"""Hybrid retrieval's filters: the vectorised metadata mask and the post-filtered dense search."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from assistant import retrieval
from assistant.config import Settings
from assistant.lexical import Analyzer
from assistant.retrieval import Filters, HybridRetriever, MetadataColumns
from assistant.store import Store

OUTLETS = ("Yonhap", "Xinhua", "The Korea Times", "")
SENTENCES = [
    f"The {w1} working group met in {city} to discuss {topic} with {who}."
    for w1 in ("first", "second", "regular", "special")
    for city in ("Seoul", "Washington", "Warsaw", "Hanoi")
    for topic in ("sanctions", "railways", "denuclearization")
    for who in ("Biegun", "Lee Do-hoon")
]


def random_metas(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Metadata as the store holds it, with some outlets and dates missing."""
    rng = random.Random(seed)
    metas: list[dict[str, Any]] = []
    for _ in range(n):
        meta: dict[str, Any] = {}
        if rng.random() > 0.1:
            meta["outlet"] = rng.choice(OUTLETS)
        if rng.random() > 0.1:
            meta["published_int"] = rng.choice([0, 20181120, 20190215, 20200702, 20251212])
        metas.append(meta)
    return metas


FILTERS = [
    Filters(),
    Filters(outlets=("Yonhap",)),
    Filters(outlets=("Yonhap", "Xinhua")),
    Filters(outlets=("Nobody",)),
    Filters(outlets=("",)),
    Filters(since="2019-01-01"),
    Filters(until="2019-12-31"),
    Filters(since="2019-01-01", until="2020-12-31"),
    Filters(outlets=("The Korea Times", "Nobody"), since="2018-11-20", until="2018-11-20"),
]


@pytest.mark.parametrize("filters", FILTERS, ids=str)
def test_the_mask_says_what_matches_says_for_every_chunk(filters: Filters) -> None:
    metas = random_metas(500)
    mask = MetadataColumns(metas).mask(filters)
    if not filters.active:
        assert mask is None
        return
    assert mask is not None
    assert mask.tolist() == [filters.matches(m) for m in metas]


def test_masks_are_cached_per_filter_and_read_only() -> None:
    columns = MetadataColumns(random_metas(50))
    first = columns.mask(Filters(outlets=("Yonhap",), since="2019-01-01"))
    assert first is columns.mask(Filters(outlets=("Yonhap",), since="2019-01-01"))
    assert first is not None and not first.flags.writeable
    assert columns.mask(Filters(outlets=("Xinhua",))) is not first


def test_no_chunks_give_empty_masks() -> None:
    mask = MetadataColumns([]).mask(Filters(outlets=("Yonhap",)))
    assert mask is not None and mask.shape == (0,)


# --- filtered dense search against Chroma's own filter --------------------------------------------


@pytest.fixture
def loaded(tmp_path: Path) -> Any:
    """A store of 300 chunks with varied outlets and dates, and its retriever."""
    settings = Settings(persist_dir=tmp_path / "vs", embedding="fake:32", llm="fake")
    embeddings = DeterministicFakeEmbedding(size=32)
    store = Store(settings, embeddings)
    rng = random.Random(1)
    ids, texts, metas = [], [], []
    pairs = rng.sample([(a, b) for a in SENTENCES for b in SENTENCES if a != b], 300)  # no ties
    for i, pair in enumerate(pairs):
        text = " ".join(pair)
        day = rng.choice([20181120, 20190215, 20200702, 20251212])
        ids.append(f"c{i:03d}")
        texts.append(text)
        metas.append(
            {
                "source": f"doc{i // 5}.txt",
                "outlet": rng.choice(OUTLETS[:3]),
                "published_int": day,
                "published": f"{day // 10000}-{day // 100 % 100:02d}-{day % 100:02d}",
            }
        )
    with store.writing():
        store.add(ids, texts, metas, embeddings.embed_documents(texts))
        store.write_manifest({}, bump=True)
    yield store, HybridRetriever(store, Analyzer(), settings)
    store.close()


def _reference(store: Store, vector: list[float], k: int, filters: Filters) -> list[str]:
    return [chunk_id for chunk_id, _ in store.dense_search(vector, k, filters.where())]


@pytest.mark.parametrize("overfetch", [2.0, 0.01], ids=["post-filtered", "too-few-survive-fallback"])
@pytest.mark.parametrize("filters", [f for f in FILTERS if f.active], ids=str)
def test_filtered_dense_search_finds_what_chromas_filter_finds(
    loaded: Any, filters: Filters, overfetch: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retrieval, "_OVERFETCH", overfetch)
    store, retriever = loaded
    index = retriever.lexical_index()
    for query in ("railways in Seoul", "Biegun in Warsaw", "sanctions"):
        vector = store.embeddings.embed_query(query)
        got = [chunk_id for chunk_id, _ in retriever._dense_ranking(index, vector, 20, filters)]
        assert got == _reference(store, vector, 20, filters)


def test_a_filter_too_narrow_to_overfetch_uses_chromas_filter(loaded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store, retriever = loaded
    monkeypatch.setattr(retrieval, "_MAX_OVERFETCH", 5)
    calls: list[dict[str, Any] | None] = []
    search = store.dense_search

    def spy(vector: Any, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        calls.append(where)
        return search(vector, k, where)

    monkeypatch.setattr(store, "dense_search", spy)
    filters = Filters(outlets=("Yonhap",), since="2019-01-01", until="2019-12-31")
    vector = store.embeddings.embed_query("railways")
    got = retriever._dense_ranking(retriever.lexical_index(), vector, 20, filters)
    assert calls == [filters.where()]
    assert [c for c, _ in got] == _reference(store, vector, 20, filters)


def test_a_filter_that_admits_nothing_finds_nothing(loaded: Any) -> None:
    _, retriever = loaded
    assert retriever.search("railways", 4, Filters(outlets=("Nobody",))) == []


def test_search_with_filters_returns_only_matching_passages(loaded: Any) -> None:
    store, retriever = loaded
    filters = Filters(outlets=("Xinhua", "Yonhap"), since="2019-01-01")
    passages = retriever.search("Biegun railways Seoul", 8, filters)
    assert passages
    got = store.collection.get(ids=[p.id for p in passages], include=["metadatas"])
    assert all(filters.matches(m) for m in got["metadatas"])


def test_the_index_keeps_each_chunks_position(loaded: Any) -> None:
    _, retriever = loaded
    index = retriever.lexical_index()
    assert [index.position[c] for c in index.ids] == list(range(len(index.ids)))
    assert len(index.columns) == len(index.ids)
    assert np.array_equal(index.columns.published, [m["published_int"] for m in index.metas])
