"""Retrieval ablation on both eval sets, no LLM: MiniLM or bge-small embeddings, each with and without the
cross-encoder reranker; hit@1, hit@5 and MRR of the gold source, and the reranker's added time per question.

    .venv/bin/python benchmarks/retrieval_ablation.py                  # both sets, the four variants
    .venv/bin/python benchmarks/retrieval_ablation.py --candidates 10  # fewer chunks re-ranked
    .venv/bin/python benchmarks/retrieval_ablation.py --json out.json  # the numbers as JSON too

Each set's corpus (its `corpus:`, as `assistant eval --fresh` finds it) is indexed into a temporary store per
embedding. Every answerable question goes through the assistant's own chain (`Assistant.ask`) with the scripted
fake LLM, so what is retrieved is what the chain retrieves: compound questions part by part, year-named chunks,
the same top_k. A follow-up's rewrite needs the LLM: with the fake one it falls back to joining the question to
the last user turn (as when the model's rewrite fails). Metrics are assistant.evaluation's (gold_rank,
compute_metrics). The reranker's time is the time spent in its `score` calls while answering a question.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SETS = (HERE.parent / "evals" / "questions.yaml", HERE.parent / "evals" / "user-docs" / "questions.yaml")
EMBEDDINGS = {"MiniLM": "local:all-MiniLM-L6-v2", "bge-small": "onnx:bge-small-en-v1.5"}
RERANKER = "onnx:ms-marco-MiniLM-L-12-v2"


class TimedReranker:
    """Wraps a reranker and adds up the seconds spent in `score`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        started = time.perf_counter()
        try:
            return list(self.inner.score(query, texts))
        finally:
            self.seconds += time.perf_counter() - started


def measure(assistant: Any, eval_set: Any) -> dict[str, Any]:
    """Ask every question of the set; retrieval metrics, and the reranker's ms per question if it has one."""
    from assistant.evaluation import document_texts, run_questions

    reranker = assistant.retriever.reranker
    timed = TimedReranker(reranker) if reranker is not None else None
    assistant.retriever.reranker = timed
    rerank_ms: list[float] = []

    def answer(q: Any) -> Any:
        if timed is not None:
            timed.seconds = 0.0
        result = assistant.ask(q.question, history=list(q.history) or None)
        if timed is not None:
            rerank_ms.append(timed.seconds * 1000)
        return result

    report = run_questions("retrieval", eval_set, answer, document_texts(assistant).get, progress=False)
    errors = [f"{r.id}: {r.error}" for r in report.results if r.error]
    if errors:
        raise RuntimeError("questions failed: " + "; ".join(errors))
    metrics = report.metrics
    return {
        "questions": len(report.results),
        "hit_at_1": metrics["retrieval_hit_at_1"],
        "hit_at_5": metrics["retrieval_hit_at_5"],
        "mrr": metrics["retrieval_mrr"],
        "rerank_ms": rerank_ms,
        "gold_ranks": {r.id: r.gold_rank for r in report.results},
    }


def run_set(path: Path, top_k: int, candidates: int, embeddings: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The four variants on one eval set (its answerable questions); `embeddings` keeps only those labels."""
    from assistant.app import Assistant
    from assistant.evaluation import EvalSet
    from benchmarks.common import bench_settings

    full = EvalSet.load(path)
    if full.corpus is None:
        raise SystemExit(f"{path} names no corpus: add `corpus: FOLDER` to it.")
    eval_set = EvalSet([q for q in full.questions if q.answerable], full.thresholds, full.path, full.corpus)
    rows: list[dict[str, Any]] = []
    for label, embedding in EMBEDDINGS.items():
        if embeddings and label not in embeddings:
            continue
        with tempfile.TemporaryDirectory(prefix="retrieval-ablation-") as tmp:
            settings = bench_settings(
                Path(tmp), "vs", embedding=embedding, llm="fake", top_k=top_k, rerank_candidates=candidates
            )
            for reranker in ("none", RERANKER):
                with Assistant.from_settings(settings.model_copy(update={"reranker": reranker})) as assistant:
                    if reranker == "none":
                        assistant.ingest([full.corpus], progress=False)
                    assistant.warm()
                    if assistant.retriever.reranker is not None:
                        assistant.retriever.reranker.score("warm up", ["the model is read and checked now"])
                    row = measure(assistant, eval_set)
                rows.append({"set": full.name, "embedding": label, "reranker": reranker != "none", **row})
                print(_line(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    from benchmarks.common import summarize

    variant = f"{row['embedding']} {'+ reranker' if row['reranker'] else 'hybrid'}"
    cells = [row["set"], variant, str(row["questions"])]
    cells += [f"{row[key]:.3f}" for key in ("hit_at_1", "hit_at_5", "mrr")]
    if row["reranker"]:
        stats = summarize(row["rerank_ms"])
        cells += [f"{stats['median']:.0f}", f"{stats['p95']:.0f}"]
    else:
        cells += ["-", "-"]
    return "| " + " | ".join(cells) + " |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--top-k", type=int, default=5, help="Chunks retrieved per question (default 5: hit@5).")
    parser.add_argument("--candidates", type=int, default=20, help="Fused chunks the reranker re-orders.")
    parser.add_argument("--json", type=Path, help="Also write the rows (with per-question gold ranks) here.")
    parser.add_argument("--set", type=Path, action="append", help="Only this question set (repeatable).")
    parser.add_argument(
        "--embedding", choices=list(EMBEDDINGS), action="append", help="Only this embedding (repeatable)."
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    rows = [
        row for path in (args.set or SETS) for row in run_set(path, args.top_k, args.candidates, args.embedding or ())
    ]
    print(
        f"top_k {args.top_k}, rerank_candidates {args.candidates}; reranker ms added per question; "
        f"load average {load_before[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end ({os.cpu_count()} cores)"
    )
    print("| set | variant | questions | hit@1 | hit@5 | MRR | rerank ms median | rerank ms p95 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(_line(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    # Run as a file: make the repository importable as `benchmarks`, not this folder as top-level modules.
    sys.path[0] = str(HERE.parent)
    sys.exit(main())
