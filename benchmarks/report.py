"""The summary table (section, metric, median, p95, previous median, target, met?) as text and Markdown, from
results.json; the previous median is that of the results.json the run replaced, for rows of the same label."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

# The targets on 2 cores: reported, never asserted.
TARGET_WARM_TTFT_S = 3.0
TARGET_TOTAL_S = 6.0
TARGET_TTFT_RATIO = 0.5  # ours / baseline: at least 2x faster to first token
TARGET_UNCACHED_TOKENS = 200  # prompt tokens the model reads afresh (not from its prompt cache), median
TARGET_COLD_START_S = 10.0  # process start to first answer
TARGET_ADDED_P95_MS = 300.0  # reranker + parser per question, p95
TARGET_RETRIEVAL_P95_MS = 50.0
TARGET_RETRIEVAL_SIZE = "100000"
TARGET_REINGEST_S = 2.0
TARGET_CHUNKS_PER_S = 25.0


@dataclass(frozen=True)
class Row:
    """One line of the summary."""

    section: str
    metric: str
    median: float | None
    p95: float | None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    n: int | None = None
    previous: float | None = None  # the median of the same row in the run this one replaced

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(value: float | None, unit: str) -> str:
    """A number for the table: precision by unit; '-' when missing."""
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:,.0f} MB"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("tokens", "count"):
        return f"{value:,.0f}"
    if unit in ("tok/s", "chunks/s", "answers/min"):
        return f"{value:.1f} {unit}"
    if unit == "%":
        return f"{100 * value:.0f}%"
    return f"{value:g}"


def met_text(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def _stat(summary: dict[str, Any] | None) -> tuple[float | None, float | None, int | None]:
    if not summary:
        return None, None, None
    return summary.get("median"), summary.get("p95"), summary.get("n")


def _row(section: str, metric: str, summary: dict[str, Any] | None, unit: str, **extra: Any) -> Row:
    median, p95, n = _stat(summary)
    return Row(section, metric, median, p95, unit, n=n, **extra)


def at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def _ms(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """A summary of seconds as one of milliseconds (n kept)."""
    if not summary:
        return summary
    return {
        k: (v * 1000 if isinstance(v, float | int) and k != "n" and v is not None else v) for k, v in summary.items()
    }


def answer_rows(r: dict[str, Any]) -> list[Row]:
    w = r["warm"]["summary"]
    ours, base, ratio = w["ours"], w["baseline"], w["ratio"]
    cold = r["cold"]["summary"]
    rows = [
        _row(
            "answers",
            "warm: time to first token, ours",
            ours["first_token_s"],
            "s",
            target=f"<= {TARGET_WARM_TTFT_S:g} s median",
            met=at_most(ours["first_token_s"]["median"], TARGET_WARM_TTFT_S),
        ),
        _row(
            "answers",
            "warm: total answer time, ours",
            ours["total_s"],
            "s",
            target=f"<= {TARGET_TOTAL_S:g} s median",
            met=at_most(ours["total_s"]["median"], TARGET_TOTAL_S),
        ),
        _row("answers", "warm: time to first token, baseline", base["first_token_s"], "s"),
        _row("answers", "warm: total answer time, baseline", base["total_s"], "s"),
        Row(
            "answers",
            "first token ours / baseline",
            ratio["first_token_s"]["median"],
            ratio["first_token_s"]["p95"],
            "x",
            target=f"<= {TARGET_TTFT_RATIO:g} (>= {1 / TARGET_TTFT_RATIO:g}x faster)",
            met=at_most(ratio["first_token_s"]["median"], TARGET_TTFT_RATIO),
        ),
        Row("answers", "total time ours / baseline", ratio["total_s"]["median"], ratio["total_s"]["p95"], "x"),
        _row("answers", "prompt tokens, ours", ours["prompt_tokens"], "tokens"),
        _row("answers", "prompt tokens, baseline", base["prompt_tokens"], "tokens"),
    ]
    if "uncached_tokens" in ours:  # runs before the stage breakdown lack it
        rows += [
            _row(
                "answers",
                "prompt reading: uncached prompt tokens, ours",
                ours["uncached_tokens"],
                "tokens",
                target=f"<= {TARGET_UNCACHED_TOKENS} median",
                met=at_most(ours["uncached_tokens"]["median"], TARGET_UNCACHED_TOKENS),
            ),
            _row("answers", "prompt reading: cached prompt tokens, ours", ours["cached_tokens"], "tokens"),
            _row("answers", "prompt reading: uncached prompt tokens, baseline", base["uncached_tokens"], "tokens"),
        ]
    rows += [
        _row("answers", "generated tokens/s, ours", ours["gen_tok_s"], "tok/s"),
        _row("answers", "generated tokens/s, baseline", base["gen_tok_s"], "tok/s"),
    ]
    rows += stage_rows(w)
    rows += [
        _row("answers", "cold: time to first token, ours", cold["ours"]["first_token_s"], "s"),
        _row("answers", "cold: total answer time, ours", cold["ours"]["total_s"], "s"),
        _row("answers", "cold: time to first token, baseline", cold["baseline"]["first_token_s"], "s"),
        _row("answers", "cold: total answer time, baseline", cold["baseline"]["total_s"], "s"),
    ]
    # timed from the spawn of the fresh process; runs before that timed it from inside the process
    spawn = "since_spawn_s" in cold["ours"]
    since = cold["ours"]["since_spawn_s" if spawn else "since_start_s"]
    rows.append(
        _row(
            "answers",
            "cold: process start to first answer, ours",
            since,
            "s",
            target=f"<= {TARGET_COLD_START_S:g} s median",
            met=at_most(_stat(since)[0], TARGET_COLD_START_S),
        )
    )
    if spawn:
        rows.append(
            _row("answers", "cold: process start to first answer, baseline", cold["baseline"]["since_spawn_s"], "s")
        )
    rows.append(Row("answers", "peak RSS of the answering process", r.get("peak_rss_mb"), None, "MB", n=1))
    return rows


def stage_rows(w: dict[str, Any]) -> list[Row]:
    """Our chain's cost per stage of each warm question, the reranker and parser's sum, when the sources came
    out against the first token, and the follow-ups' rewrite (nothing for runs made before these were kept)."""
    from benchmarks.answers import STAGES

    rows: list[Row] = []
    stages = w.get("stages") or {}
    for label, key, unit in STAGES:
        if key in stages:
            summary = _ms(stages[key]) if unit == "ms" else stages[key]
            rows.append(_row("answers", f"stage: {label}, ours", summary, unit))
    added = _ms(w.get("added_s"))
    if added:
        rows.append(
            _row(
                "answers",
                "added cost of the reranker + parser per question, ours",
                added,
                "ms",
                target=f"<= {TARGET_ADDED_P95_MS:g} ms p95",
                met=at_most(added.get("p95"), TARGET_ADDED_P95_MS),
            )
        )
    sources = w.get("sources")
    if sources:
        share = sources.get("before_share")
        rows.append(
            Row(
                "answers",
                "sources shown before the first token (share of answers), ours",
                share,
                None,
                "%",
                target="all answers",
                met=None if share is None else share == 1.0,
                n=sources.get("n"),
            )
        )
        rows.append(_row("answers", "lead of the sources over the first token, ours", sources.get("lead_s"), "s"))
    follow = w.get("follow_up")
    if follow and follow.get("answers"):
        rows.append(_row("answers", "stage: rewrite of a follow-up (the model), ours", follow["rewrite_s"], "s"))
        rows.append(_row("answers", "warm: time to first token of a follow-up, ours", follow["first_token_s"], "s"))
    return rows


def retrieval_rows(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    server = r.get("server")
    for size, result in sorted(r.get("sizes", {}).items(), key=lambda kv: int(kv[0])):
        for kind in ("filtered", "unfiltered"):
            summary = result[kind]["total_ms"]
            target, met = "", None
            if kind == "filtered" and size == TARGET_RETRIEVAL_SIZE:
                target = f"<= {TARGET_RETRIEVAL_P95_MS:g} ms p95"
                met = at_most(summary.get("p95"), TARGET_RETRIEVAL_P95_MS)
            label = "filters on" if kind == "filtered" else "filters off"
            rows.append(
                _row("retrieval", f"hybrid, {label}, {int(size):,} chunks", summary, "ms", target=target, met=met)
            )
        if server and int(server["size"]) == int(size):  # beside the embedded rows of the same size
            for kind in ("filtered", "unfiltered"):
                label = "filters on" if kind == "filtered" else "filters off"
                metric = f"same via a `chroma run` server, {label}, {int(size):,} chunks"
                rows.append(_row("retrieval", metric, server[kind]["total_ms"], "ms"))
    if r.get("sizes"):
        size, result = max(r["sizes"].items(), key=lambda kv: int(kv[0]))
        search = result["filtered"].get("search_ms")
        if search:  # the same queries without the question's embedding (MiniLM on the same cores)
            rows.append(
                _row(
                    "retrieval",
                    f"search only (question embedded apart), filters on, {int(size):,} chunks",
                    search,
                    "ms",
                )
            )
    return rows


def ingestion_rows(r: dict[str, Any]) -> list[Row]:
    s = r["summary"]
    seeds, synthetic = s["seeds_chunks_per_s"], s["synthetic_chunks_per_s"]
    chunks = r["synthetic"]["chunks"]
    return [
        _row(
            "ingestion",
            f"seeds ({r['seeds'][0]['chunks']} chunks), in-process",
            seeds,
            "chunks/s",
            target=f">= {TARGET_CHUNKS_PER_S:g} chunks/s",
            met=at_least(seeds["median"], TARGET_CHUNKS_PER_S),
        ),
        _row(
            "ingestion",
            f"synthetic corpus ({chunks:,} chunks), in-process",
            synthetic,
            "chunks/s",
            target=f">= {TARGET_CHUNKS_PER_S:g} chunks/s",
            met=at_least(synthetic["median"], TARGET_CHUNKS_PER_S),
        ),
        _row(
            "ingestion",
            "no-change re-ingest of the seeds, Indexer call",
            s["no_change_reingest_s"],
            "s",
            target=f"<= {TARGET_REINGEST_S:g} s",
            met=at_most(s["no_change_reingest_s"]["median"], TARGET_REINGEST_S),
        ),
        _row(
            "ingestion",
            "no-change re-ingest of the seeds, whole `assistant ingest`",
            s["cli_no_change_reingest_s"],
            "s",
            target=f"<= {TARGET_REINGEST_S:g} s",
            met=at_most(s["cli_no_change_reingest_s"]["median"], TARGET_REINGEST_S),
        ),
        Row(
            "ingestion", "first ingest of the seeds, whole `assistant ingest`", r["cli_first_ingest_s"], None, "s", n=1
        ),
        Row(
            "ingestion",
            f"no-change re-ingest of the synthetic corpus ({chunks:,} chunks), Indexer call",
            r["synthetic"]["no_change_reingest_s"],
            None,
            "s",
            n=1,
        ),
    ]


def startup_rows(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for run in r.get("runs", []):
        name = run["run"]
        rows.append(
            Row("startup", f"`make run` to the chat page (HTTP 200), {name}", run.get("page_s"), None, "s", n=1)
        )
        failed = f" (FAILED: {run['answer_error'][:60]})" if run.get("answer_error") else ""
        rows.append(
            Row(
                "startup",
                f"`make run` to the first answer in the chat, {name}{failed}",
                run.get("answer_s"),
                None,
                "s",
                n=1,
                met=False if failed else None,
            )
        )
    return rows


def load_rows(r: dict[str, Any]) -> list[Row]:
    users, per_user, clients = r["users"], r["questions_per_user"], r.get("openai_clients", 0)
    expected = r.get("expected", (users + clients) * per_user)
    checks = r.get("checks") or {}
    errors = r["errors"] + checks.get("errors", 0)
    all_done = r["completed"] == expected and checks.get("completed", 0) == checks.get("expected", 0)
    label = f"{users} chat users" + (f" + {clients} OpenAI clients" if clients else "") + f" x {per_user} questions"
    rows = [
        _row(
            "load",
            f"latency per question, {label}",
            r["latency_s"],
            "s",
            target="0 errors",
            met=errors == 0 and all_done,
        ),
    ]
    if r.get("queue_s"):
        rows.append(_row("load", "  of which queue wait (submitted until processing)", r["queue_s"], "s"))
        rows.append(_row("load", "  of which work (processing until answered)", r["work_s"], "s"))
    rows.append(Row("load", f"throughput, {label}", r["throughput_answers_per_min"], None, "answers/min", n=1))
    rows.append(Row("load", f"wall time, {label}", r["wall_s"], None, "s", n=1))
    n_expected = expected + checks.get("expected", 0)
    rows.append(
        Row("load", "errors (the stopped and the abandoned question aside)", errors, None, "count", n=n_expected)
    )
    for door, name in (("chat", "chat (gradio_client)"), ("openai", "OpenAI API (streamed)")):
        stat = r.get("latency_by_door_s", {}).get(door)
        if clients and stat and stat.get("n"):
            rows.append(_row("load", f"latency per question, {name}", stat, "s"))
    if checks:
        stat = checks.get("latency_by_door_s", {}).get("openai")
        if stat and stat.get("n"):
            rows.append(_row("load", "checks: latency of an OpenAI API question (streamed)", stat, "s"))
    for key, what in (("stopped", "Stop pressed during an answer"), ("disconnected", "client gone mid-stream")):
        outcome = r.get(key) or checks.get(key)
        if outcome:
            rows.append(Row("load", f"{what}: {outcome.get('outcome')}", outcome.get("latency_s"), None, "s", n=1))
    rows.append(Row("load", "peak RSS of the app process", r.get("server_peak_rss_mb"), None, "MB", n=1))
    return rows


SECTION_ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "answers": answer_rows,
    "startup": startup_rows,
    "retrieval": retrieval_rows,
    "ingestion": ingestion_rows,
    "load": load_rows,
}


def summary_rows(results: dict[str, Any]) -> list[Row]:
    """Every section's rows, in the fixed section order; a failed section gives one row saying so."""
    rows: list[Row] = []
    for name, build in SECTION_ROWS.items():
        section = results.get("sections", {}).get(name)
        if section is None:
            continue
        if "error" in section:
            rows.append(Row(name, f"FAILED: {section['error']}"[:160], None, None, met=False))
            continue
        rows.extend(build(section))
    return rows


def previous_medians(old: dict[str, Any], rerun: Collection[str]) -> dict[str, Any]:
    """What the new run's "previous median" column shows, from the results.json it replaces: for a section the
    new run measures again, the old run's medians (dated when that section finished); for a section it keeps
    as it was (`--only`), the comparison that section already had."""
    summary = old.get("summary") or []
    sections = old.get("sections") or {}
    before = old.get("previous") or {}
    medians: list[dict[str, Any]] = []
    dates: dict[str, str] = {}
    for row in summary:
        name = row.get("section")
        if not name or str(row.get("metric", "")).startswith("FAILED"):
            continue
        if name in rerun:
            value = row.get("median")
            date = (sections.get(name) or {}).get("finished") or old.get("generated")
        else:
            value = row.get("previous")
            date = (before.get("dates") or {}).get(name)
        if value is not None and date:
            medians.append({"section": name, "metric": row["metric"], "median": value})
            dates[name] = str(date)
    return {"medians": medians, "dates": dates}


def with_previous(rows: Sequence[Row], previous: dict[str, Any] | None) -> list[Row]:
    """The rows with the previous median of the row of the same section and label, where there is one."""
    known = {(m["section"], m["metric"]): m["median"] for m in (previous or {}).get("medians", [])}
    return [replace(r, previous=known.get((r.section, r.metric))) for r in rows]


def _cells(r: Row) -> tuple[str, ...]:
    previous = fmt(r.previous, r.unit) if r.previous is not None else ""
    return (r.section, r.metric, fmt(r.median, r.unit), fmt(r.p95, r.unit), previous, r.target, met_text(r.met))


HEADER = ("section", "metric", "median", "p95", "previous median", "target", "met?")


def text_table(rows: Sequence[Row]) -> str:
    """An aligned plain-text table."""
    header = HEADER
    body = [_cells(r) for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) for line in [header]]
    lines.append("  ".join("-" * width for width in widths))
    for line in body:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(_md(c) for c in _cells(r)) + " |")
    return "\n".join(lines)


def header_lines(results: dict[str, Any]) -> list[str]:
    """Date, machine and model, one fact per line."""
    machine, settings = results.get("machine", {}), results.get("settings", {})
    load = machine.get("load_average_at_start")
    return [
        f"date: {results.get('generated', '?')}"
        + ("  (QUICK run: small sizes, few repeats)" if results.get("quick") else ""),
        f"machine: {machine.get('cores', '?')} cores ({machine.get('cpu', '?')}), {machine.get('memory_gb', '?')} GB, "
        f"Python {machine.get('python', '?')}" + (f", load average at start {load}" if load else ""),
        f"model: {settings.get('model', settings.get('llm', '?'))}, {settings.get('llm_threads', '?')} threads, "
        f"max {settings.get('llm_max_tokens', '?')} new tokens; embeddings {settings.get('embedding', '?')}; "
        f"top_k {settings.get('top_k', '?')}",
        *_previous_line(results.get("previous")),
    ]


def _previous_line(previous: dict[str, Any] | None) -> list[str]:
    """When the previous medians were measured (one date, or one per section when they differ)."""
    dates = (previous or {}).get("dates") or {}
    if not dates:
        return []
    if len(set(dates.values())) == 1:
        when = next(iter(dates.values()))
    else:
        when = ", ".join(f"{name} {date}" for name, date in dates.items())
    return [f"previous median: from the results this run replaced ({when})"]


def markdown(results: dict[str, Any]) -> str:
    """RESULTS.md: the header, the table, and how each section was measured."""
    rows = [Row(**d) for d in results.get("summary", [])] or summary_rows(results)
    out = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`benchmarks/bench.py`); raw numbers in `results.json`.",
        "",
    ]
    out += [f"- {line}" for line in header_lines(results)]
    out += ["", markdown_table(rows), "", "## Method", ""]
    out.append(
        "Every figure is the median and the 95th percentile (linear interpolation) over repeated runs; "
        "a single measurement shows only a median. Targets are those of the issue for 2 cores: reported, never "
        "asserted. Other processes running on the same cores slow every figure down: compare runs made on a "
        "quiet machine."
    )
    for name, section in results.get("sections", {}).items():
        method = section.get("method") if isinstance(section, dict) else None
        if method:
            out += ["", f"**{name}**: {method}"]
    notes = results.get("notes") or []
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"
