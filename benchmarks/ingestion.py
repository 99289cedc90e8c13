"""Ingestion throughput (chunks/s) of the seeds and of a synthetic corpus, and the no-change re-ingest.

In-process numbers time `Indexer.ingest` with the embedding model already loaded; whole-process numbers
time `assistant ingest seeds/` from start to exit (imports included).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import SEEDS_DIR, Workbench, bench_settings, log, summarize

SEED_RUNS = 3
REINGEST_RUNS = 5
CLI_REINGEST_RUNS = 3
SYNTHETIC_CHUNKS = 10_000
QUICK_SYNTHETIC_CHUNKS = 1_000


def _indexer(settings: Any, embeddings: Any, count_tokens: Callable[[str], int]) -> tuple[Any, Any]:
    from assistant.ingest import Indexer
    from assistant.store import Store

    store = Store(settings, embeddings)
    return store, Indexer(store, settings, count_tokens, progress=False)


def _rate(report: Any) -> float | None:
    return report.added / report.seconds if report.added and report.seconds else None


def worker(work_dir: Path, quick: bool) -> dict[str, Any]:
    """In one process: the seeds into fresh stores, no-change re-ingests, then the synthetic corpus."""
    from assistant.chunking import chunk_text
    from assistant.embeddings import make_embeddings
    from assistant.tokens import get_encoding
    from benchmarks.synthetic import seed_sentences, write_documents

    base = bench_settings(work_dir, "ingest-seeds-0")
    encoding = get_encoding(base.tokenizer)

    def count_tokens(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    embeddings = make_embeddings(base.embedding, base.embedding_batch_size)
    t = time.perf_counter()
    embeddings.embed_query("warm up")  # the model's load time is not ingestion throughput
    embedding_load_s = time.perf_counter() - t

    seeds: list[dict[str, Any]] = []
    for r in range(1 if quick else SEED_RUNS):
        settings = bench_settings(work_dir, f"ingest-seeds-{r}")
        store, indexer = _indexer(settings, embeddings, count_tokens)
        try:
            report = indexer.ingest([SEEDS_DIR])
            seeds.append({"chunks": report.added, "seconds": report.seconds, "chunks_per_s": _rate(report)})
            if r == 0:
                reingest = [indexer.ingest([SEEDS_DIR]) for _ in range(REINGEST_RUNS)]
        finally:
            store.close()
    log(f"  seeds: {seeds[0]['chunks']} chunks at {seeds[0]['chunks_per_s'] or 0:.1f} chunks/s")

    target = QUICK_SYNTHETIC_CHUNKS if quick else SYNTHETIC_CHUNKS
    folder = work_dir / "synthetic-documents"
    shutil.rmtree(folder, ignore_errors=True)

    def count_chunks(text: str) -> int:
        return len(chunk_text(text, "x", count_tokens, base.chunk_size, base.chunk_overlap))

    files, expected = write_documents(seed_sentences(SEEDS_DIR), folder, target, count_chunks)
    log(f"  synthetic: {files} files, {expected} chunks expected; embedding them (about {expected / 25 / 60:.0f} min)")
    settings = bench_settings(work_dir, "ingest-synthetic")
    store, indexer = _indexer(settings, embeddings, count_tokens)
    try:
        indexer.progress = True
        report = indexer.ingest([folder])
        indexer.progress = False
        again = indexer.ingest([folder])
    finally:
        store.close()
    synthetic = {
        "files": files,
        "chunks": report.added,
        "seconds": report.seconds,
        "chunks_per_s": _rate(report),
        "no_change_reingest_s": again.seconds,
    }
    log(f"  synthetic: {report.added} chunks at {synthetic['chunks_per_s'] or 0:.1f} chunks/s")
    return {
        "embedding": base.embedding,
        "embedding_batch_size": base.embedding_batch_size,
        "embedding_load_s": round(embedding_load_s, 3),
        "seeds": seeds,
        "no_change_reingest_s": [r.seconds for r in reingest],
        "no_change_reingest_changed": sum(r.added + r.removed + r.updated for r in reingest),
        "synthetic": synthetic,
    }


def run(bench: Workbench) -> dict[str, Any]:
    """The ingestion section: whole `assistant ingest` processes, then the in-process worker."""
    store = bench.work_dir / "ingest-cli"
    shutil.rmtree(store, ignore_errors=True)
    log("ingestion: `assistant ingest seeds/` into a fresh store, then no-change re-runs ...")
    first = bench.cli_ingest(store)
    again = [bench.cli_ingest(store) for _ in range(1 if bench.quick else CLI_REINGEST_RUNS)]
    log("ingestion: in-process runs ...")
    inner = bench.worker("ingestion", timeout_s=900 if bench.quick else 3600)
    seeds_rates = [s["chunks_per_s"] for s in inner["seeds"]]
    return {
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " ").strip() if __doc__ else "",
        **inner,
        "cli_first_ingest_s": first,
        "cli_no_change_reingest_s": again,
        "summary": {
            "seeds_chunks_per_s": summarize(seeds_rates),
            "synthetic_chunks_per_s": summarize([inner["synthetic"]["chunks_per_s"]]),
            "no_change_reingest_s": summarize(inner["no_change_reingest_s"]),
            "cli_no_change_reingest_s": summarize(again),
        },
    }
