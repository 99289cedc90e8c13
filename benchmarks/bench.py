"""`make bench`: answer latency of the embedded model (median / p95), written to benchmarks/results.json.

Numbers, not asserts: run it on a quiet machine and compare runs side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from assistant import Assistant, Settings

QUESTIONS = [
    "When was the U.S.-South Korea working group set up?",
    "Who is Lee Do-hoon's U.S. counterpart?",
    "Where did Pompeo and Kang Kyung-wha meet in February 2019?",
    "What did Lee In-young propose to improve the working group?",
    "How often was the working group expected to meet?",
    "Who is slated to open the regular consultative meeting for South Korea in December 2025?",
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2, help="Times each question is asked (warm).")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    args = parser.parse_args()

    settings = Settings()
    started = time.perf_counter()
    assistant = Assistant.from_settings(settings)
    assistant.ingest([settings.seeds_dir])
    t = time.perf_counter()
    cold = assistant.ask(QUESTIONS[0])
    cold_total = time.perf_counter() - t
    build_s = t - started
    ttft: list[float] = []
    total: list[float] = []
    prompt_tokens: list[int] = []
    for _ in range(args.repeat):
        for q in QUESTIONS:
            ans = assistant.ask(q)
            total.append(ans.timings["total_s"])
            if "first_token_s" in ans.timings:
                ttft.append(ans.timings["first_token_s"])
                prompt_tokens.append(int(ans.trace.get("prompt_tokens_estimate", 0)))
    assistant.close()
    results = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "settings": {"llm": settings.llm, "threads": settings.llm_threads, "top_k": settings.top_k},
        "build_s": round(build_s, 2),
        "cold": {"first_token_s": cold.timings.get("first_token_s"), "total_s": round(cold_total, 2)},
        "warm": {
            "questions": len(total),
            "first_token_s_median": statistics.median(ttft) if ttft else None,
            "first_token_s_p95": pct(ttft, 95) if ttft else None,
            "total_s_median": statistics.median(total),
            "total_s_p95": pct(total, 95),
            "prompt_tokens_median": statistics.median(prompt_tokens) if prompt_tokens else None,
        },
    }
    args.out.write_text(json.dumps(results, indent=2))
    w = results["warm"]
    print(f"cores: {os.cpu_count()}  model: {settings.llm}  threads: {settings.llm_threads}")
    print(f"start-up (store, embeddings, index check): {build_s:.1f} s")
    print(f"cold first question: first token {cold.timings.get('first_token_s', 0):.2f} s, total {cold_total:.2f} s")
    print(f"warm, {w['questions']} answers:")
    print(f"  time to first token  median {w['first_token_s_median']:.2f} s   p95 {w['first_token_s_p95']:.2f} s")
    print(f"  total answer time    median {w['total_s_median']:.2f} s   p95 {w['total_s_p95']:.2f} s")
    print(f"  prompt tokens        median {w['prompt_tokens_median']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
