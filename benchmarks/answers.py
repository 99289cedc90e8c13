"""Answer latency: our grounded chain against a plain LangChain RAG chain (PlainRag) on the same loaded model.

Cold: a fresh process per run opens the seed store, asks the first question and reports it (model,
embeddings and BM25 are loaded inside that first answer; the model file is in the OS page cache after
the first run). Warm: one process loads everything once, answers one unmeasured question with each
chain, then asks each of 12 distinct questions once with both chains back to back, alternating which
goes first, so a change in the machine's load hits both alike (no question is repeated: the model would
restore a repeated prompt whole from its RAM cache). The model's prompt cache in RAM keeps
each chain's prompt prefix across the alternation (see cached tokens in the raw records), as it would
in a long-running app. Times run from the question to the first streamed token and to the final (for
ours: checked) answer. Prompt and generated token counts are the model's own (usage metadata; prompt
tokens include the cached prefix); generated tokens/s = (generated tokens - 1) / (time from the first
to the last streamed token).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from benchmarks.common import QUESTIONS, Workbench, bench_settings, log, peak_rss_mb, summarize

CHAINS = ("ours", "baseline")
COLD_RUNS = 3
# Each question is asked once per chain: the model's RAM prompt cache restores a whole prompt it has seen,
# so a repeated question would be answered from cache (0.1 s to the first token) and say nothing about speed.
ANSWER_QUESTIONS = (
    *QUESTIONS,
    "What did Harry Harris say about inter-Korean cooperation?",
    "Where was the second Trump-Kim summit going to be held?",
    "What did Kang Kyung-wha say the U.S. was willing to do if talks resumed?",
    "Who is Jeong Yeon-doo?",
    "What did North Korea call the working group?",
    "Which delegation did Vietnam send to Pyongyang?",
)
WARM_UP = "What is the working group for?"  # the first, unmeasured question of each chain
METRICS = ("first_token_s", "total_s", "prompt_tokens", "cached_tokens", "completion_tokens", "gen_tok_s")


class UsageMeter(BaseCallbackHandler):
    """Every LLM call's usage (the model's own token counts) and the times of its first and last token."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._tokens: dict[UUID, list[float]] = {}

    def reset(self) -> None:
        self.calls.clear()
        self._tokens.clear()

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], *, run_id: UUID, **kwargs: Any) -> None:
        if token:
            now = time.perf_counter()
            times = self._tokens.setdefault(run_id, [now, now])
            times[1] = now

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        times = self._tokens.pop(run_id, [])
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                usage = dict(getattr(message, "usage_metadata", None) or {})
                meta = dict(getattr(message, "response_metadata", None) or {})
                self.calls.append(
                    {
                        "prompt_tokens": usage.get("input_tokens"),
                        "completion_tokens": usage.get("output_tokens"),
                        "cached_tokens": (usage.get("input_token_details") or {}).get("cache_read"),
                        "first_token_at": times[0] if times else None,
                        "last_token_at": times[-1] if times else None,
                        "server_timings": meta.get("timings") or {},
                    }
                )


def generation_rate(call: dict[str, Any]) -> float | None:
    """Generated tokens per second of one call: (completion tokens - 1) over first-to-last streamed token."""
    tokens, first, last = call.get("completion_tokens"), call.get("first_token_at"), call.get("last_token_at")
    if not tokens or tokens < 2 or first is None or last is None or last <= first:
        return None
    return float((tokens - 1) / (last - first))


def answer_record(chain: str, question: int, answer: Any, wall_s: float, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """One answer's numbers (the last LLM call's rate; token counts summed over calls)."""

    def total(key: str) -> int | None:
        values = [c[key] for c in calls if c.get(key) is not None]
        return sum(values) if values else None

    timings = getattr(answer, "timings", {}) or {}
    rates = [r for r in (generation_rate(c) for c in calls) if r is not None]
    server = calls[-1]["server_timings"] if calls else {}
    return {
        "chain": chain,
        "question": question,
        "first_token_s": timings.get("first_token_s"),
        "total_s": timings.get("total_s", wall_s),
        "wall_s": wall_s,
        "llm_calls": len(calls),
        "prompt_tokens": total("prompt_tokens"),
        "cached_tokens": total("cached_tokens"),
        "completion_tokens": total("completion_tokens"),
        "gen_tok_s": rates[-1] if rates else None,
        "server_prompt_tok_s": server.get("prompt_per_second"),
        "server_gen_tok_s": server.get("predicted_per_second"),
        "prompt_tokens_estimate": (getattr(answer, "trace", {}) or {}).get("prompt_tokens_estimate"),
        "refused": bool(getattr(answer, "refused", False)),
        "answer": str(getattr(answer, "text", ""))[:300],
    }


def _open(store: Path, work_dir: Path) -> tuple[Any, Any, UsageMeter, dict[str, Callable[[str], Any]]]:
    """The Assistant on the seed store, its model with a UsageMeter, and an ask function per chain."""
    from assistant.app import Assistant
    from assistant.baseline import PlainRag
    from assistant.llm import make_chat_model

    settings = bench_settings(work_dir, "unused", persist_dir=store)
    meter = UsageMeter()
    llm = make_chat_model(settings)
    llm.callbacks = [meter]
    assistant = Assistant.from_settings(settings, llm=llm)
    plain: list[PlainRag] = []

    def baseline(question: str) -> Any:
        if not plain:  # built on first use, as run_baseline does, so a cold run pays its set-up too
            plain.append(PlainRag(assistant.store, assistant.llm, k=max(settings.top_k, 1)))
        return plain[0].ask(question)

    return assistant, llm, meter, {"ours": assistant.ask, "baseline": baseline}


def _ask(chain: str, ask: Callable[[str], Any], meter: UsageMeter, index: int) -> dict[str, Any]:
    """Ask ANSWER_QUESTIONS[index] (-1: the warm-up question) through one chain and record it."""
    meter.reset()
    started = time.perf_counter()
    answer = ask(ANSWER_QUESTIONS[index] if index >= 0 else WARM_UP)
    return answer_record(chain, index, answer, time.perf_counter() - started, list(meter.calls))


def cold_worker(store: Path, work_dir: Path, chain: str) -> dict[str, Any]:
    """In a fresh process: open everything and answer the first question with one chain."""
    started = time.perf_counter()
    assistant, llm, meter, asks = _open(store, work_dir)
    opened_s = time.perf_counter() - started
    try:
        record = _ask(chain, asks[chain], meter, 0)
    finally:
        assistant.close()
    record.update(
        open_s=round(opened_s, 3),
        since_start_s=round(time.perf_counter() - started, 3),
        model_load_s=getattr(llm, "load_seconds", None),
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
    return record


def warm_worker(store: Path, work_dir: Path, quick: bool) -> dict[str, Any]:
    """In one process: load once, then each fixed question through both chains, back to back."""
    assistant, llm, meter, asks = _open(store, work_dir)
    questions = range(2) if quick else range(len(ANSWER_QUESTIONS))
    rounds = 1
    records: list[dict[str, Any]] = []
    try:
        t = time.perf_counter()
        assistant.warm()
        warm_s = time.perf_counter() - t
        for chain in CHAINS:  # the first answer of each chain is not measured
            _ask(chain, asks[chain], meter, -1)
        for r in range(rounds):
            for i in questions:
                for chain in CHAINS if (r + i) % 2 == 0 else CHAINS[::-1]:
                    record = _ask(chain, asks[chain], meter, i)
                    record["round"] = r
                    records.append(record)
                    log(
                        f"  {chain:8} q{i} first token {_s(record['first_token_s'])} total {_s(record['total_s'])}"
                        f" prompt {record['prompt_tokens']} tok ({record['cached_tokens']} cached)"
                    )
    finally:
        assistant.close()
    return {
        "warm_up_s": round(warm_s, 3),
        "model_load_s": getattr(llm, "load_seconds", None),
        "model": _model_name(llm, assistant.settings),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "records": records,
    }


def _model_name(llm: Any, settings: Any) -> str:
    path = getattr(llm, "model_path", None)
    return f"{settings.llm} ({Path(path).name})" if path else str(settings.llm)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def summarize_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Median / p95 of each metric per chain, and the ratios ours / baseline."""
    out: dict[str, Any] = {}
    for chain in CHAINS:
        mine = [r for r in records if r["chain"] == chain]
        out[chain] = {m: summarize([r.get(m) for r in mine]) for m in METRICS}
        out[chain]["answers"] = len(mine)
        out[chain]["llm_not_called"] = sum(1 for r in mine if not r["llm_calls"])
        out[chain]["refused"] = sum(1 for r in mine if r["refused"])
    out["ratio"] = {m: _ratios(out["ours"][m], out["baseline"][m]) for m in ("first_token_s", "total_s")}
    return out


def _ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    def ratio(key: str) -> float | None:
        a, b = ours.get(key), baseline.get(key)
        return a / b if a is not None and b else None

    return {"median": ratio("median"), "p95": ratio("p95")}


def prepare_model() -> None:
    """Assemble and verify the local model's weights now (once per machine), so no cold run pays for it."""
    from assistant.config import Settings

    settings = Settings()
    if settings.llm.strip().lower() == "local":
        from assistant.llm import resolve_model_path

        resolve_model_path(settings)


def run(bench: Workbench) -> dict[str, Any]:
    """The answers section: cold runs (fresh processes), then the warm run (one process)."""
    prepare_model()
    store = bench.seed_store()
    cold_runs = 1 if bench.quick else COLD_RUNS
    cold: list[dict[str, Any]] = []
    for r in range(cold_runs):
        for chain in CHAINS if r % 2 == 0 else CHAINS[::-1]:
            log(f"answers: cold run {r + 1}/{cold_runs}, {chain} ...")
            cold.append(bench.worker("cold", timeout_s=600, store=str(store), chain=chain))
    log("answers: warm run ...")
    warm = bench.worker("warm", timeout_s=3600 if not bench.quick else 900, store=str(store))
    cold_summary = {
        chain: {
            m: summarize([c.get(m) for c in cold if c["chain"] == chain])
            for m in ("first_token_s", "total_s", "since_start_s", "process_wall_s", "peak_rss_mb")
        }
        for chain in CHAINS
    }
    return {
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " ").strip() if __doc__ else "",
        "model": warm["model"],
        "questions": list(ANSWER_QUESTIONS[:2] if bench.quick else ANSWER_QUESTIONS),
        "cold": {"runs": cold, "summary": cold_summary},
        "warm": {
            "summary": summarize_records(warm["records"]),
            "records": warm["records"],
            "warm_up_s": warm["warm_up_s"],
            "model_load_s": warm["model_load_s"],
        },
        "peak_rss_mb": warm["peak_rss_mb"],
    }
