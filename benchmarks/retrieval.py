"""Retrieval latency at 1k / 10k / 100k synthetic chunks, and the embedded Chroma against a `chroma run` server.

One measured query = embedding the question (real MiniLM) + HybridRetriever.search (BM25, dense, fusion).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import QUESTIONS, SEEDS_DIR, bench_settings, free_port, summarize
from benchmarks.synthetic import SyntheticChunk, build_chunks, chunk_vectors, make_queries, seed_sentences

SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000,)
SERVER_SIZE = 10_000
QUICK_SERVER_SIZE = 1_000
QUERIES = 50
QUICK_QUERIES = 20
ROUNDS = 2  # each query is asked this many times (after one warm-up pass)
ADD_BATCH = 4_000
FILTER_OUTLETS = ("Yonhap", "The Korea Times")  # 2 of the 6 synthetic outlets, 4 of the 8 years: ~1/6 of chunks
FILTER_SINCE, FILTER_UNTIL = "2019-01-01", "2022-12-31"
CHROMA = Path(sys.executable).with_name("chroma")
SERVER_START_TIMEOUT_S = 60


def load_chunks(store: Any, chunks: Sequence[SyntheticChunk], vectors: np.ndarray) -> None:
    """Add the chunks with their precomputed vectors, in batches Chroma accepts."""
    with store.writing():
        for i in range(0, len(chunks), ADD_BATCH):
            part = chunks[i : i + ADD_BATCH]
            store.add(
                [c.id for c in part], [c.text for c in part], [c.metadata for c in part], vectors[i : i + len(part)]
            )
        store.write_manifest({"synthetic": True}, bump=True)


def time_queries(
    retriever: Any, embeddings: Any, queries: Sequence[str], k: int, filters: Any, rounds: int = ROUNDS
) -> dict[str, Any]:
    """Median / p95 (ms) of embed + search per query, after one unmeasured warm-up pass."""
    for q in queries:
        retriever.search(q, k, filters, embeddings.embed_query(q))
    embed_ms: list[float] = []
    search_ms: list[float] = []
    total_ms: list[float] = []
    hits: list[float] = []
    for _ in range(rounds):
        for q in queries:
            t0 = time.perf_counter()
            vector = embeddings.embed_query(q)
            t1 = time.perf_counter()
            passages = retriever.search(q, k, filters, vector)
            t2 = time.perf_counter()
            embed_ms.append((t1 - t0) * 1000)
            search_ms.append((t2 - t1) * 1000)
            total_ms.append((t2 - t0) * 1000)
            hits.append(len(passages))
    return {
        "total_ms": summarize(total_ms),
        "embed_ms": summarize(embed_ms),
        "search_ms": summarize(search_ms),
        "passages_per_query": summarize(hits),
        "raw_total_ms": [round(v, 3) for v in total_ms],
    }


def measure_store(
    store: Any, settings: Any, embeddings: Any, queries: Sequence[str], filters: Any, rounds: int = ROUNDS
) -> dict[str, Any]:
    """Build the BM25 index of a loaded store, then time filtered and unfiltered queries."""
    from assistant.lexical import Analyzer
    from assistant.retrieval import HybridRetriever

    retriever = HybridRetriever(store, Analyzer(), settings)
    t = time.perf_counter()
    index = retriever.lexical_index()
    build_s = time.perf_counter() - t
    matching = sum(filters.matches(m) for m in index.metas) / max(len(index.metas), 1)
    return {
        "chunks": store.count(),
        "bm25_build_s": round(build_s, 3),
        "filter_share": round(matching, 4),
        "filtered": time_queries(retriever, embeddings, queries, settings.top_k, filters, rounds),
        "unfiltered": time_queries(retriever, embeddings, queries, settings.top_k, None, rounds),
    }


@contextmanager
def chroma_server(path: Path, log: Path) -> Iterator[str]:
    """A `chroma run` server on a free loopback port for the duration of the block; yields its URL."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {proc.returncode}: see {log}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"chroma run gave no heartbeat in {SERVER_START_TIMEOUT_S} s: see {log}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def run(work_dir: Path, quick: bool = False, sizes: Sequence[int] | None = None) -> dict[str, Any]:
    """The retrieval section: every size, filters on and off, then embedded against server."""
    from assistant.embeddings import make_embeddings
    from assistant.retrieval import Filters
    from assistant.store import Store

    sizes = tuple(sizes or (QUICK_SIZES if quick else SIZES))
    server_size = QUICK_SERVER_SIZE if quick else SERVER_SIZE
    n_queries = QUICK_QUERIES if quick else QUERIES
    rounds = 1 if quick else ROUNDS
    base = bench_settings(work_dir, "retrieval")
    embeddings = make_embeddings(base.embedding, base.embedding_batch_size)
    filters = Filters(outlets=FILTER_OUTLETS, since=FILTER_SINCE, until=FILTER_UNTIL)

    sentences = seed_sentences(SEEDS_DIR)
    t = time.perf_counter()
    sentence_vectors = np.asarray(embeddings.embed_documents(sentences), dtype=np.float32)
    sentence_embed_s = time.perf_counter() - t
    queries = make_queries(sentences, n_queries, fixed=QUESTIONS)
    out: dict[str, Any] = {
        "method": (
            f"Synthetic chunks of 3-6 random seed sentences ({len(sentences)} unique sentences), 6 outlets, dates "
            "2018-2025; chunk vectors = normalised mean of the sentences' real "
            f"{base.embedding} vectors (each sentence embedded once). Per query: embed the question "
            f"({base.embedding}) + HybridRetriever.search(k={base.top_k}); {n_queries} queries x {rounds} "
            f"round(s) after a warm-up pass. Filter: outlets {list(FILTER_OUTLETS)}, {FILTER_SINCE}..{FILTER_UNTIL}. "
            "The embedded-versus-server comparison runs the same queries on the same chunks loaded into a "
            "`chroma run` server on loopback."
        ),
        "seed_sentences": len(sentences),
        "sentence_embed_s": round(sentence_embed_s, 3),
        "queries": len(queries) * rounds,
        "filter": {"outlets": list(FILTER_OUTLETS), "since": FILTER_SINCE, "until": FILTER_UNTIL},
        "sizes": {},
    }
    for size in sorted(set(sizes) | {server_size}):
        chunks = build_chunks(sentences, size, seed=size)
        vectors = chunk_vectors(chunks, sentence_vectors)
        settings = bench_settings(work_dir, f"retrieval-{size}")
        store = Store(settings, embeddings)
        try:
            t = time.perf_counter()
            load_chunks(store, chunks, vectors)
            load_s = time.perf_counter() - t
            if size in sizes:
                result = measure_store(store, settings, embeddings, queries, filters, rounds)
                result["load_s"] = round(load_s, 2)
                out["sizes"][str(size)] = result
                _log(f"retrieval {size:>7,} chunks: {_brief(result)}")
            if size == server_size:
                embedded = out["sizes"].get(str(size)) or measure_store(
                    store, settings, embeddings, queries, filters, rounds
                )
        finally:
            store.close()
        if size == server_size:
            out["server"] = _server_comparison(work_dir, size, chunks, vectors, embeddings, queries, filters, rounds)
            out["server"]["embedded"] = {k: embedded[k] for k in ("filtered", "unfiltered")}
            _log(f"chroma run server {size:,} chunks: {_brief(out['server'])}")
    return out


def _server_comparison(
    work_dir: Path,
    size: int,
    chunks: Sequence[SyntheticChunk],
    vectors: np.ndarray,
    embeddings: Any,
    queries: Sequence[str],
    filters: Any,
    rounds: int,
) -> dict[str, Any]:
    from assistant.store import Store

    folder = work_dir / f"chroma-server-{size}"
    with chroma_server(folder, work_dir / "chroma-server.log") as url:
        settings = bench_settings(work_dir, f"unused-{size}", chroma_url=url)
        store = Store(settings, embeddings)
        try:
            t = time.perf_counter()
            load_chunks(store, chunks, vectors)
            load_s = time.perf_counter() - t
            result = measure_store(store, settings, embeddings, queries, filters, rounds)
        finally:
            store.close()
    result["load_s"] = round(load_s, 2)
    result["size"] = size
    return result


def _brief(result: dict[str, Any]) -> str:
    f, u = result["filtered"]["total_ms"], result["unfiltered"]["total_ms"]
    return (
        f"filtered median {f['median']:.1f} ms p95 {f['p95']:.1f} ms; "
        f"unfiltered median {u['median']:.1f} ms p95 {u['p95']:.1f} ms"
    )


def _log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)
