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
to the last streamed token). Uncached prompt tokens = the answer call's prompt tokens minus those the model
read from its prompt cache. Stages (ours): the seconds our chain records per step of each question (plan,
retrieval with its evidence selection, cross-encoder reranking and spaCy parsing summed over the question
wherever they ran, prompt reading from the model call to its first token, generation, verification,
fallback); the reranker and parser's added cost is their sum per question. Sources: when the chain handed
out the passages it chose, against its first token. Two follow-ups with a fixed history (ours only, after
the paired questions) time the model's rewrite of a follow-up. Cold process start to first answer is timed
from the parent's spawn of the fresh process (interpreter start and imports included).
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
# Follow-ups (ours only, after the paired questions) with a fixed history: they time the model's rewrite.
FOLLOW_UPS: tuple[tuple[tuple[tuple[str, str], ...], str], ...] = (
    (
        (
            ("user", "When did Washington and Seoul set up their North Korea working group?"),
            ("assistant", "The working group was set up in November 2018 to coordinate their North Korea policies."),
        ),
        "Where was its first meeting held?",
    ),
    (
        (
            ("user", "Who proposed a 'Working Group Version 2.0'?"),
            ("assistant", "South Korean Unification Minister Lee In-young proposed it in August 2020."),
        ),
        "Who did he pitch it to?",
    ),
)
FOLLOW_UP = "ours (follow-up)"  # the chain name of the follow-up records (kept out of the paired comparison)
METRICS = (
    "first_token_s",
    "total_s",
    "prompt_tokens",
    "cached_tokens",
    "uncached_tokens",
    "completion_tokens",
    "gen_tok_s",
)
# Our chain's stages: (label, key of Answer.timings, unit shown). A missing key is a stage that did not run:
# reranking and parsing then cost 0; any other stage is left out of that stage's figures.
STAGES = (
    ("plan (question analysis, a rewrite included)", "plan_s", "ms"),
    ("retrieval (embedding, search, evidence selection)", "retrieve_s", "ms"),
    ("evidence selection (part of retrieval)", "select_s", "ms"),
    ("rerank (cross-encoder, summed)", "rerank_s", "ms"),
    ("parse (spaCy, summed; overlaps the other stages)", "parse_s", "ms"),
    ("prompt reading (model call to its first token)", "prompt_s", "s"),
    ("generation (first token to last)", "generation_s", "s"),
    ("verification", "verify_s", "ms"),
    ("fallback", "fallback_s", "ms"),
)
ZERO_WHEN_MISSING = ("rerank_s", "parse_s")
STAGE_KEYS = (*(key for _, key, _ in STAGES), "rewrite_s", "sources_s", "generate_s")


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
    trace = getattr(answer, "trace", {}) or {}
    rates = [r for r in (generation_rate(c) for c in calls) if r is not None]
    server = calls[-1]["server_timings"] if calls else {}
    # the answer call's own usage: our chain records it in the trace; otherwise the last call's
    last = calls[-1] if calls else {}
    prompt = trace.get("prompt_tokens", last.get("prompt_tokens"))
    cached = trace.get("cached_tokens", last.get("cached_tokens"))
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
        "uncached_tokens": uncached_tokens(prompt, cached),
        "answer_prompt_tokens": prompt,
        "answer_cached_tokens": cached,
        "prompt_tokens_estimate": trace.get("prompt_tokens_estimate"),
        "stages": {key: timings[key] for key in STAGE_KEYS if key in timings},
        "refused": bool(getattr(answer, "refused", False)),
        "answer": str(getattr(answer, "text", ""))[:300],
    }


def uncached_tokens(prompt: int | None, cached: int | None) -> int | None:
    """Prompt tokens the model had to read afresh (those not restored from its prompt cache); None if unknown."""
    if prompt is None or cached is None:
        return None
    return max(prompt - cached, 0)


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


def _ask_follow_up(assistant: Any, meter: UsageMeter, index: int) -> dict[str, Any]:
    """Ask FOLLOW_UPS[index] through our chain with its fixed history and record it."""
    turns, question = FOLLOW_UPS[index]
    history = [{"role": role, "content": content} for role, content in turns]
    meter.reset()
    started = time.perf_counter()
    answer = assistant.ask(question, history)
    record = answer_record(FOLLOW_UP, index, answer, time.perf_counter() - started, list(meter.calls))
    record["standalone_question"] = getattr(answer, "standalone_question", "")
    return record


def cold_worker(store: Path, work_dir: Path, chain: str) -> dict[str, Any]:
    """In a fresh process: open everything and answer the first question with one chain."""
    started = time.perf_counter()
    assistant, llm, meter, asks = _open(store, work_dir)
    opened_s = time.perf_counter() - started
    try:
        record = _ask(chain, asks[chain], meter, 0)
        answered_at = time.time()  # wall clock: the parent compares it with the time it spawned this process
    finally:
        assistant.close()
    record.update(
        answered_at=answered_at,
        open_s=round(opened_s, 3),
        since_start_s=round(time.perf_counter() - started, 3),
        model_load_s=getattr(llm, "load_seconds", None),
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
    return record


def warm_worker(store: Path, work_dir: Path, quick: bool) -> dict[str, Any]:
    """In one process: load once, then each fixed question through both chains, back to back, then the
    follow-ups through ours."""
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
                    _log_record(record)
        for i in range(1 if quick else len(FOLLOW_UPS)):
            record = _ask_follow_up(assistant, meter, i)
            records.append(record)
            _log_record(record)
    finally:
        assistant.close()
    return {
        "warm_up_s": round(warm_s, 3),
        "model_load_s": getattr(llm, "load_seconds", None),
        "model": _model_name(llm, assistant.settings),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "records": records,
    }


def _log_record(record: dict[str, Any]) -> None:
    log(
        f"  {record['chain']:8} q{record['question']} first token {_s(record['first_token_s'])}"
        f" total {_s(record['total_s'])} prompt {record['prompt_tokens']} tok ({record['cached_tokens']} cached)"
        + "".join(f" {k} {v:.3f}" for k, v in record.get("stages", {}).items())
    )


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
    ours = [r for r in records if r["chain"] == "ours"]
    out["stages"] = stage_summary(ours)
    out["added_s"] = summarize([added_cost(r) for r in ours])
    out["sources"] = sources_lead(ours)
    follow_ups = [r for r in records if r["chain"] == FOLLOW_UP]
    out["follow_up"] = {
        "answers": len(follow_ups),
        "rewrite_s": summarize([r.get("stages", {}).get("rewrite_s") for r in follow_ups]),
        "first_token_s": summarize([r.get("first_token_s") for r in follow_ups]),
        "total_s": summarize([r.get("total_s") for r in follow_ups]),
    }
    return out


def stage_value(record: dict[str, Any], key: str) -> float | None:
    """One stage's seconds in one record: 0 for a reranker or parser that did not run, else None if missing."""
    stages = record.get("stages") or {}
    if key in stages:
        return float(stages[key])
    return 0.0 if key in ZERO_WHEN_MISSING else None


def stage_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Median / p95 (and n) of each stage of our chain over the records."""
    return {key: summarize([stage_value(r, key) for r in records]) for _, key, _ in STAGES}


def added_cost(record: dict[str, Any]) -> float:
    """What the reranker and the parser add to one question: their seconds, summed (0 when neither ran)."""
    return (stage_value(record, "rerank_s") or 0.0) + (stage_value(record, "parse_s") or 0.0)


def sources_lead(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the answers the model wrote: the share whose sources came out before the model's first token, and
    by how much (first token minus sources, seconds; negative when the sources came later)."""
    leads = [
        r["first_token_s"] - r["stages"]["sources_s"]
        for r in records
        if r.get("first_token_s") is not None and (r.get("stages") or {}).get("sources_s") is not None
    ]
    return {
        "n": len(leads),
        "before_share": sum(1 for lead in leads if lead > 0) / len(leads) if leads else None,
        "lead_s": summarize(leads),
    }


def _ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    def ratio(key: str) -> float | None:
        a, b = ours.get(key), baseline.get(key)
        return a / b if a is not None and b else None

    return {"median": ratio("median"), "p95": ratio("p95")}


def since_spawn(run: dict[str, Any]) -> float | None:
    """Seconds from the parent's spawn of a cold process to its first answer (both wall-clock readings)."""
    spawned, answered = run.get("spawned_at"), run.get("answered_at")
    if spawned is None or answered is None:
        return None
    return float(answered) - float(spawned)


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
    for c in cold:
        c["since_spawn_s"] = since_spawn(c)
    cold_summary = {
        chain: {
            m: summarize([c.get(m) for c in cold if c["chain"] == chain])
            for m in ("first_token_s", "total_s", "since_start_s", "since_spawn_s", "process_wall_s", "peak_rss_mb")
        }
        for chain in CHAINS
    }
    return {
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " ").strip() if __doc__ else "",
        "model": warm["model"],
        "questions": list(ANSWER_QUESTIONS[:2] if bench.quick else ANSWER_QUESTIONS),
        "follow_ups": [q for _, q in (FOLLOW_UPS[:1] if bench.quick else FOLLOW_UPS)],
        "cold": {"runs": cold, "summary": cold_summary},
        "warm": {
            "summary": summarize_records(warm["records"]),
            "records": warm["records"],
            "warm_up_s": warm["warm_up_s"],
            "model_load_s": warm["model_load_s"],
        },
        "peak_rss_mb": warm["peak_rss_mb"],
    }
