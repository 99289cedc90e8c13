"""The benchmark's pure helpers: statistics, the synthetic corpus, token metering and the summary table."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from assistant.corpus import load_document
from assistant.llm import ScriptedChatModel
from benchmarks import answers, bench, load, report
from benchmarks.common import percentile, summarize
from benchmarks.synthetic import (
    CHUNKS_PER_DOCUMENT,
    OUTLETS,
    build_chunks,
    chunk_vectors,
    make_queries,
    seed_sentences,
    write_documents,
)

SENTENCES = [f"Sentence number {i} says the working group met in city {i % 7}." for i in range(40)]


# --- statistics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pct", [0, 5, 50, 90, 95, 99, 100])
def test_percentile_is_numpys_linear_percentile(pct: float) -> None:
    rng = random.Random(3)
    values = [rng.uniform(0, 100) for _ in range(37)]
    assert percentile(values, pct) == pytest.approx(float(np.percentile(values, pct)))


def test_percentile_of_one_value_and_of_none() -> None:
    assert percentile([4.2], 95) == 4.2
    assert percentile([1, 2], 50) == 1.5
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_skips_missing_values() -> None:
    s = summarize([3.0, None, 1.0, 2.0])
    assert s == {"n": 3, "median": 2.0, "p95": pytest.approx(2.9), "min": 1.0, "max": 3.0}
    assert summarize([None]) == {"n": 0, "median": None, "p95": None, "min": None, "max": None}


# --- the synthetic corpus --------------------------------------------------------------------------


def test_seed_sentences_are_unique_cleaned_sentences(seeds_dir: Path) -> None:
    sentences = seed_sentences(seeds_dir)
    assert len(sentences) > 50
    assert len(set(sentences)) == len(sentences)
    assert all("\n" not in s and s == s.strip() for s in sentences)
    assert "By Kim Bo-eun" not in sentences  # the byline is cleaned away, not a sentence


def test_chunks_are_deterministic_with_varied_metadata() -> None:
    chunks = build_chunks(SENTENCES, 200, seed=7)
    assert chunks == build_chunks(SENTENCES, 200, seed=7)
    assert chunks != build_chunks(SENTENCES, 200, seed=8)
    assert len({c.id for c in chunks}) == 200
    for c in chunks:
        assert 3 <= len(c.sentences) <= 6 and len(set(c.sentences)) == len(c.sentences)
        assert c.text == " ".join(SENTENCES[i] for i in c.sentences)
        meta = c.metadata
        assert meta["outlet"] in OUTLETS
        assert meta["published_int"] == int(meta["published"].replace("-", ""))
        assert "2018-01-01" <= meta["published"] <= "2025-12-31"
        assert all(isinstance(v, str | int) for v in meta.values())  # Chroma takes flat scalars
    assert {c.metadata["outlet"] for c in chunks} == set(OUTLETS)
    assert len({c.metadata["source"] for c in chunks}) == 200 // CHUNKS_PER_DOCUMENT
    with pytest.raises(ValueError):
        build_chunks(SENTENCES[:5], 1)


def test_chunk_vectors_are_normalised_means_of_sentence_vectors() -> None:
    rng = np.random.default_rng(0)
    sentence_vectors = rng.normal(size=(len(SENTENCES), 16))
    chunks = build_chunks(SENTENCES, 20)
    vectors = chunk_vectors(chunks, sentence_vectors)
    assert vectors.shape == (20, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    mean = sentence_vectors[list(chunks[0].sentences)].mean(axis=0)
    np.testing.assert_allclose(vectors[0], mean / np.linalg.norm(mean), rtol=1e-4)


def test_queries_start_with_the_fixed_ones_then_fragments() -> None:
    queries = make_queries(SENTENCES, 10, fixed=("When?", "Who?"))
    assert queries[:2] == ["When?", "Who?"] and len(queries) == 10
    for q in queries[2:]:
        assert 1 <= len(q.split()) <= 8
        assert any(q in s for s in SENTENCES)
    assert make_queries(SENTENCES, 1, fixed=("When?", "Who?")) == ["When?"]


def test_written_documents_reach_the_target_and_load_with_their_metadata(tmp_path: Path) -> None:
    def count_chunks(text: str) -> int:
        return 3

    files, chunks = write_documents(SENTENCES, tmp_path, 10, count_chunks, sentences_per_document=12)
    assert (files, chunks) == (4, 12)
    docs = sorted(tmp_path.glob("*.txt"))
    assert len(docs) == 4 and len(list(tmp_path.glob("*.meta.yaml"))) == 4
    doc = load_document(docs[0])
    assert doc.metadata.outlet in OUTLETS
    assert doc.metadata.title == "Synthetic article 0"
    assert doc.metadata.published >= "2018-01-01"
    lines = doc.raw.splitlines()
    assert len(lines) == len(set(lines)) == 3  # 12 sentences, 4 a paragraph; nothing repeated to be cleaned
    assert doc.text == doc.raw


# --- answers: token metering -----------------------------------------------------------------------


def test_usage_meter_records_each_calls_tokens_and_token_times() -> None:
    meter = answers.UsageMeter()
    llm = ScriptedChatModel(script=["one two three four"])
    llm.callbacks = [meter]
    text = "".join(str(chunk.content) for chunk in llm.stream([HumanMessage("a question of five words")]))
    assert text == "one two three four"
    (call,) = meter.calls
    assert call["completion_tokens"] == 4 and call["prompt_tokens"] > 0
    assert call["first_token_at"] is not None and call["last_token_at"] >= call["first_token_at"]
    meter.reset()
    assert meter.calls == []


def test_generation_rate_counts_tokens_after_the_first() -> None:
    assert answers.generation_rate({"completion_tokens": 11, "first_token_at": 1.0, "last_token_at": 3.0}) == 5.0
    assert answers.generation_rate({"completion_tokens": 1, "first_token_at": 1.0, "last_token_at": 1.0}) is None
    assert answers.generation_rate({"completion_tokens": None, "first_token_at": None, "last_token_at": None}) is None


def _record(chain: str, first: float | None, total: float, prompt: int = 500) -> dict[str, Any]:
    return {
        "chain": chain,
        "first_token_s": first,
        "total_s": total,
        "prompt_tokens": prompt,
        "cached_tokens": 0,
        "completion_tokens": 40,
        "gen_tok_s": 20.0,
        "llm_calls": 1 if first is not None else 0,
        "refused": first is None,
    }


def test_summarized_records_give_ratios_ours_over_baseline() -> None:
    records = [_record("ours", 2.0, 4.0), _record("ours", 4.0, 6.0), _record("ours", None, 0.1)]
    records += [_record("baseline", 8.0, 10.0), _record("baseline", 8.0, 12.0)]
    s = answers.summarize_records(records)
    assert s["ours"]["first_token_s"]["median"] == 3.0
    assert s["ours"]["llm_not_called"] == 1 and s["ours"]["answers"] == 3
    assert s["ratio"]["first_token_s"]["median"] == pytest.approx(3.0 / 8.0)
    assert s["ratio"]["total_s"]["median"] == pytest.approx(4.0 / 11.0)


# --- load --------------------------------------------------------------------------------------------


def test_a_load_request_fails_on_the_uis_error_box_or_a_strange_result() -> None:
    ok = ("", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "It was set up [1]."}])
    assert load.failure_of(ok) is None
    error = ("", [{"role": "assistant", "content": '<div class="ka-error"><div class="ka-label">Oops</div></div>'}])
    assert "error shown" in str(load.failure_of(error))
    assert "unexpected result" in str(load.failure_of(None))
    draft = ("", [{"role": "assistant", "content": '<div class="ka-drafting">Drafting…</div>\n\nIt was'}])
    assert "unfinished answer" in str(load.failure_of(draft))
    notice = '<div class="ka-notice"><div class="ka-label">Stopped</div></div>'
    stopped = ("", [{"role": "assistant", "content": notice}])
    assert load.was_stopped(stopped) and not load.was_stopped(ok)


def test_load_rows_name_both_doors_and_what_became_of_the_stop_and_the_disconnect() -> None:
    stat = {"n": 18, "median": 40.0, "p95": 80.0, "min": 5.0, "max": 90.0}
    result = {
        "users": 16,
        "openai_clients": 4,
        "questions_per_user": 1,
        "expected": 18,
        "completed": 18,
        "errors": 0,
        "latency_s": stat,
        "latency_by_door_s": {"chat": {**stat, "n": 15}, "openai": {**stat, "n": 3}},
        "stopped": {"outcome": "stopped", "latency_s": 30.0},
        "disconnected": {"outcome": "disconnected", "latency_s": 2.1},
        "wall_s": 300.0,
        "throughput_answers_per_min": 3.6,
    }
    rows = {r.metric: r for r in report.load_rows(result)}
    first = rows["latency per question, 16 chat users + 4 OpenAI clients x 1 questions"]
    assert (first.median, first.p95, first.met) == (40.0, 80.0, True)
    assert rows["latency per question, OpenAI API (streamed)"].n == 3
    assert rows["Stop pressed during an answer: stopped"].median == 30.0
    assert rows["client gone mid-stream: disconnected"].median == 2.1
    assert report.load_rows({**result, "completed": 17, "errors": 1})[0].met is False


# --- the table ---------------------------------------------------------------------------------------


def _stat(median: float, p95: float, n: int = 10) -> dict[str, Any]:
    return {"n": n, "median": median, "p95": p95, "min": median, "max": p95}


def fake_results() -> dict[str, Any]:
    metric = {m: _stat(1.0, 2.0) for m in answers.METRICS}
    return {
        "generated": "2026-11-23 12:00:00 +0000",
        "quick": False,
        "machine": {"cores": 2, "cpu": "Test CPU", "memory_gb": 8, "python": "3.11.7"},
        "settings": {"model": "local (model.gguf)", "llm_threads": 2, "embedding": "fake:8", "top_k": 4},
        "sections": {
            "answers": {
                "method": "Cold and warm | side by side.",
                "model": "local (model.gguf)",
                "warm": {
                    "summary": {
                        "ours": {**metric, "first_token_s": _stat(2.5, 4.0), "total_s": _stat(9.0, 12.0)},
                        "baseline": {**metric, "first_token_s": _stat(10.0, 14.0)},
                        "ratio": {"first_token_s": {"median": 0.25, "p95": 0.29}, "total_s": {"median": 0.9, "p95": 1}},
                    }
                },
                "cold": {"summary": {c: {**metric, "since_start_s": _stat(9, 9, 1)} for c in answers.CHAINS}},
                "peak_rss_mb": 2100.0,
            },
            "retrieval": {
                "sizes": {
                    size: {
                        "filtered": {"total_ms": _stat(20, p95), "search_ms": _stat(5, 8)},
                        "unfiltered": {"total_ms": _stat(10, 15)},
                    }
                    for size, p95 in (("1000", 30.0), ("100000", 60.0))
                },
                "server": {
                    "size": 1000,
                    "filtered": {"total_ms": _stat(25, 35)},
                    "unfiltered": {"total_ms": _stat(15, 20)},
                },
            },
            "ingestion": {
                "seeds": [{"chunks": 19}],
                "synthetic": {"chunks": 10000, "no_change_reingest_s": 0.5},
                "cli_first_ingest_s": 12.0,
                "summary": {
                    "seeds_chunks_per_s": _stat(20, 22),
                    "synthetic_chunks_per_s": _stat(28, 28, 1),
                    "no_change_reingest_s": _stat(0.02, 0.03),
                    "cli_no_change_reingest_s": _stat(2.5, 2.6),
                },
            },
            "load": {
                "users": 8,
                "questions_per_user": 3,
                "completed": 24,
                "errors": 0,
                "latency_s": _stat(30, 55),
                "wall_s": 150.0,
                "throughput_answers_per_min": 9.6,
                "server_peak_rss_mb": 2300.0,
            },
        },
    }


def _by_metric(rows: list[report.Row]) -> dict[str, report.Row]:
    return {r.metric: r for r in rows}


def test_summary_rows_carry_the_targets_and_whether_they_are_met() -> None:
    rows = _by_metric(report.summary_rows(fake_results()))
    assert rows["warm: time to first token, ours"].met is True  # 2.5 s median <= 3 s
    assert rows["warm: total answer time, ours"].met is False  # 9 s median > 8 s
    assert rows["first token ours / baseline"].met is True  # 0.25 <= 0.5
    assert rows["hybrid, filters on, 100,000 chunks"].met is False  # 60 ms p95 > 50 ms
    assert rows["hybrid, filters on, 1,000 chunks"].met is None  # no target at 1k
    assert rows["search only (question embedded apart), filters on, 100,000 chunks"].p95 == 8  # largest size only
    assert "search only (question embedded apart), filters on, 1,000 chunks" not in rows
    retrieval = [r.metric for r in report.summary_rows(fake_results()) if r.section == "retrieval"]
    assert retrieval[:4] == [
        "hybrid, filters on, 1,000 chunks",
        "hybrid, filters off, 1,000 chunks",
        "same via a `chroma run` server, filters on, 1,000 chunks",
        "same via a `chroma run` server, filters off, 1,000 chunks",
    ]
    assert rows["seeds (19 chunks), in-process"].met is False  # 20 < 25 chunks/s
    assert rows["synthetic corpus (10,000 chunks), in-process"].met is True
    assert rows["no-change re-ingest of the seeds, Indexer call"].met is True
    assert rows["no-change re-ingest of the seeds, whole `assistant ingest`"].met is False
    assert rows["latency per question, 8 chat users x 3 questions"].met is True  # a run from before the API load
    assert rows["peak RSS of the answering process"].median == 2100.0


def test_a_failed_section_is_one_failed_row_and_missing_sections_none() -> None:
    results = fake_results()
    results["sections"] = {"load": {"error": "RuntimeError: the app did not start"}}
    (row,) = report.summary_rows(results)
    assert row.section == "load" and row.met is False and "did not start" in row.metric


def test_the_text_table_is_aligned_and_says_yes_or_no() -> None:
    table = report.text_table(report.summary_rows(fake_results()))
    lines = table.splitlines()
    assert lines[0].split() == ["section", "metric", "median", "p95", "target", "met?"]
    assert set(lines[1]) <= {"-", " "}
    column = lines[0].index("median")
    assert all(line[column - 2 : column] == "  " for line in lines[2:])
    row = next(line for line in lines if "warm: total answer time, ours" in line)
    assert "9.00 s" in row and "12.00 s" in row and row.endswith("NO")
    assert "2,100 MB" in table and "0.25x" in table and "60.0 ms" in table


def test_markdown_has_header_table_and_methods_with_pipes_escaped() -> None:
    md = report.markdown(fake_results())
    assert md.startswith("# Benchmark results\n")
    assert "- machine: 2 cores (Test CPU), 8 GB, Python 3.11.7" in md
    assert "| section | metric | median | p95 | target | met? |" in md
    assert "| answers | warm: time to first token, ours | 2.50 s | 4.00 s | <= 3 s median | yes |" in md
    assert "**answers**: Cold and warm \\| side by side." not in md  # methods are prose, not table cells
    assert "**answers**: Cold and warm | side by side." in md


@pytest.mark.parametrize(
    ("unit", "value", "shown"),
    [("ms", 12.345, "12.3 ms"), ("s", 3.14159, "3.14 s"), ("MB", 1234.5, "1,234 MB"), ("x", 0.5, "0.50x"),
     ("tokens", 511.5, "512"), ("chunks/s", 28.04, "28.0 chunks/s"), ("s", None, "-")],
)  # fmt: skip
def test_fmt(unit: str, value: float | None, shown: str) -> None:
    assert report.fmt(value, unit) == shown


# --- the command line --------------------------------------------------------------------------------


def test_only_keeps_the_other_sections_of_a_run_of_the_same_kind(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"quick": False, "sections": {"load": {"errors": 0}}}))
    assert bench._previous(out, quick=False) == {"load": {"errors": 0}}
    assert bench._previous(out, quick=True) == {}
    assert bench._previous(tmp_path / "missing.json", quick=False) == {}


def test_write_puts_results_md_beside_the_json(tmp_path: Path) -> None:
    results = fake_results()
    results["machine"]["load_average_at_start"] = [0.1, 0.1, 0.1]
    md = bench.write(results, tmp_path / "out" / "results.json")
    assert md == tmp_path / "out" / "RESULTS.md"
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(saved["summary"]) == len(report.summary_rows(results)) and saved["notes"] == []


def test_args() -> None:
    args = bench.parse_args(["--quick", "--only", "retrieval", "--only", "load"])
    assert args.quick and args.only == ["retrieval", "load"] and args.worker is None
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "everything"])


def test_warm_questions_are_never_repeated() -> None:
    # a repeated prompt is restored whole from the model's RAM cache: it would time the cache, not the chain
    assert len(set(answers.ANSWER_QUESTIONS)) == len(answers.ANSWER_QUESTIONS)
    assert answers.WARM_UP not in answers.ANSWER_QUESTIONS
