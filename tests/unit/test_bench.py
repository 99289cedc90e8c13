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
from assistant.turn import Answer
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


# --- answers: stages --------------------------------------------------------------------------------


def _staged(first: float | None, **stages: float) -> dict[str, Any]:
    return {**_record("ours", first, 5.0), "stages": stages}


def test_an_answer_record_keeps_the_stages_and_the_answer_calls_own_uncached_tokens() -> None:
    timings = {"first_token_s": 2.0, "total_s": 3.0, "sources_s": 0.4, "prompt_s": 1.5, "rerank_s": 0.05}
    answer = Answer("q", "It was [1].", timings=timings, trace={"prompt_tokens": 900, "cached_tokens": 760})
    rewrite = {"prompt_tokens": 120, "cached_tokens": 0, "completion_tokens": 12}  # an earlier call of the turn
    call = {"prompt_tokens": 900, "cached_tokens": 760, "completion_tokens": 9, "server_timings": {}}
    record = answers.answer_record("ours", 0, answer, 3.1, [rewrite, call])
    assert record["stages"] == {"sources_s": 0.4, "prompt_s": 1.5, "rerank_s": 0.05}  # first/total are not stages
    assert record["uncached_tokens"] == 140  # the answer call's, not the sum over both calls
    assert record["prompt_tokens"] == 1020  # the summed usage stays as it was
    plain = Answer("q", "It was.", timings={"total_s": 2.0})
    baseline = answers.answer_record("baseline", 0, plain, 2.0, [{**call, "cached_tokens": 100}])
    assert baseline["uncached_tokens"] == 800 and baseline["stages"] == {}  # the meter's last call
    assert answers.uncached_tokens(900, None) is None and answers.uncached_tokens(None, 5) is None


def test_stage_figures_count_a_reranker_or_parser_that_did_not_run_as_zero_and_leave_out_other_missing_stages() -> None:
    records = [
        _staged(2.0, retrieve_s=0.1, rerank_s=0.2, parse_s=0.05, verify_s=0.01),
        _staged(3.0, retrieve_s=0.3),  # neither reranker nor parser ran; no verification recorded
    ]
    stages = answers.stage_summary(records)
    assert stages["retrieve_s"]["median"] == pytest.approx(0.2) and stages["retrieve_s"]["n"] == 2
    assert stages["rerank_s"]["n"] == 2 and stages["rerank_s"]["median"] == pytest.approx(0.1)
    assert stages["verify_s"]["n"] == 1
    assert stages["fallback_s"]["n"] == 0
    assert [answers.added_cost(r) for r in records] == [pytest.approx(0.25), 0.0]


def test_the_sources_lead_is_the_first_token_minus_the_sources_over_answers_the_model_wrote() -> None:
    records = [
        _staged(2.0, sources_s=0.5),
        _staged(3.0, sources_s=1.0),
        _staged(1.0, sources_s=1.5),  # the sources came after the first token
        _staged(None, sources_s=0.2),  # refused before the model: no first token
    ]
    lead = answers.sources_lead(records)
    assert lead["n"] == 3 and lead["before_share"] == pytest.approx(2 / 3)
    assert lead["lead_s"]["median"] == pytest.approx(1.5) and lead["lead_s"]["min"] == pytest.approx(-0.5)
    assert answers.sources_lead([])["before_share"] is None


def test_follow_ups_are_summarised_apart_from_the_paired_comparison() -> None:
    records = [_staged(2.0, rerank_s=0.1), _record("baseline", 6.0, 8.0)]
    records.append({**_record(answers.FOLLOW_UP, 4.0, 6.0), "stages": {"rewrite_s": 1.25}})
    s = answers.summarize_records(records)
    assert s["ours"]["answers"] == 1 and s["stages"]["rerank_s"]["n"] == 1
    assert s["follow_up"]["answers"] == 1 and s["follow_up"]["rewrite_s"]["median"] == 1.25
    assert s["follow_up"]["first_token_s"]["median"] == 4.0


def test_cold_process_start_runs_from_the_spawn() -> None:
    assert answers.since_spawn({"spawned_at": 1000.0, "answered_at": 1012.5}) == 12.5
    assert answers.since_spawn({"answered_at": 1012.5}) is None


# --- load --------------------------------------------------------------------------------------------


def test_a_questions_wait_splits_into_queue_and_work_where_processing_began() -> None:
    assert load.queue_and_work(10.0, 14.0, 20.0) == (4.0, 6.0)
    assert load.queue_and_work(10.0, None, 20.0) == (None, None)
    assert load.queue_and_work(10.0, 9.5, 20.0) == (0.0, 10.0)  # a start read before the submit: clamped
    assert load.queue_and_work(10.0, 21.0, 20.0) == (10.0, 0.0)


def test_processing_begins_at_the_time_of_the_status_that_says_so() -> None:
    from datetime import datetime, timedelta

    now_wall = datetime(2026, 12, 1, 12, 0, 0)
    at = load.processing_began("ITERATING", now_wall - timedelta(seconds=0.3), now_wall, 100.0)
    assert at == pytest.approx(99.7)
    assert load.processing_began("IN_QUEUE", now_wall, now_wall, 100.0) is None
    assert load.processing_began("FINISHED", now_wall, now_wall, 100.0) is None  # made up by job.status() at the end
    assert load.processing_began("PROCESSING", None, now_wall, 100.0) == 100.0


def test_no_load_question_is_asked_twice_in_a_full_run() -> None:
    main = {load.question_index(u, j, load.QUESTIONS_PER_USER, len(load.LOAD_QUESTIONS)) for u in range(load.USERS)
            for j in range(load.QUESTIONS_PER_USER)}  # fmt: skip
    checks = load.LOAD_QUESTIONS[-load.CHECK_QUESTIONS :]
    assert len(main) == load.USERS * load.QUESTIONS_PER_USER
    assert not {load.LOAD_QUESTIONS[i] for i in main} & set(checks)
    assert len(set(load.LOAD_QUESTIONS)) == len(load.LOAD_QUESTIONS)
    assert 1 + load.CHECK_OPENAI_CLIENTS <= load.CHECK_QUESTIONS  # one stopper + the OpenAI clients


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


def _checks(errors: int = 0) -> dict[str, Any]:
    return {
        "expected": 1,
        "completed": 1 - errors,
        "errors": errors,
        "latency_by_door_s": {"openai": {"n": 1 - errors, "median": 12.0, "p95": 12.0}},
        "stopped": {"outcome": "stopped", "latency_s": 4.0},
        "disconnected": {"outcome": "disconnected", "latency_s": 2.2},
    }


def test_load_rows_split_the_wait_into_queue_and_work_and_count_the_checks_errors() -> None:
    result = {
        "users": 8,
        "openai_clients": 0,
        "questions_per_user": 2,
        "expected": 16,
        "completed": 16,
        "errors": 0,
        "latency_s": _stat(60.0, 110.0, 16),
        "queue_s": _stat(50.0, 100.0, 16),
        "work_s": _stat(9.0, 12.0, 16),
        "wall_s": 160.0,
        "throughput_answers_per_min": 6.0,
        "checks": _checks(),
    }
    rows = _by_metric(report.load_rows(result))
    assert rows["latency per question, 8 chat users x 2 questions"].met is True
    assert rows["  of which queue wait (submitted until processing)"].median == 50.0
    assert rows["  of which work (processing until answered)"].p95 == 12.0
    assert rows["throughput, 8 chat users x 2 questions"].median == 6.0
    assert rows["errors (the stopped and the abandoned question aside)"].n == 17
    assert rows["checks: latency of an OpenAI API question (streamed)"].median == 12.0
    assert rows["Stop pressed during an answer: stopped"].median == 4.0
    assert "latency per question, OpenAI API (streamed)" not in rows  # no API clients in the main run
    failed = _by_metric(report.load_rows({**result, "checks": _checks(errors=1)}))
    assert failed["latency per question, 8 chat users x 2 questions"].met is False
    assert failed["errors (the stopped and the abandoned question aside)"].median == 1


def test_startup_rows_time_make_run_and_flag_a_failed_first_answer() -> None:
    runs = [
        {"run": "empty store", "page_s": 30.0, "config_s": 30.2, "answer_s": 45.0, "answer_error": None},
        {"run": "store already indexed", "page_s": 20.0, "answer_s": 31.0, "answer_error": "error shown: Oops"},
    ]
    rows = report.startup_rows({"runs": runs})
    assert [(r.metric, r.median, r.met) for r in rows] == [
        ("`make run` to the chat page (HTTP 200), empty store", 30.0, None),
        ("`make run` to the first answer in the chat, empty store", 45.0, None),
        ("`make run` to the chat page (HTTP 200), store already indexed", 20.0, None),
        ("`make run` to the first answer in the chat, store already indexed (FAILED: error shown: Oops)", 31.0, False),
    ]


# --- the table ---------------------------------------------------------------------------------------


def _stat(median: float, p95: float, n: int = 10) -> dict[str, Any]:
    return {"n": n, "median": median, "p95": p95, "min": median, "max": p95}


def fake_stages(rerank_p95: float = 0.2) -> dict[str, Any]:
    stages = {key: _stat(0.01, 0.02) for _, key, _ in answers.STAGES}
    return {
        "stages": {**stages, "rerank_s": _stat(0.1, rerank_p95), "prompt_s": _stat(1.5, 2.0)},
        "added_s": _stat(0.15, rerank_p95 + 0.05),
        "sources": {"n": 10, "before_share": 1.0, "lead_s": _stat(1.4, 1.9)},
        "follow_up": {"answers": 2, "rewrite_s": _stat(1.2, 1.3, 2), "first_token_s": _stat(3.5, 4.0, 2)},
    }


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
                        "ours": {
                            **metric,
                            "first_token_s": _stat(2.5, 4.0),
                            "total_s": _stat(9.0, 12.0),
                            "uncached_tokens": _stat(180, 260),
                        },
                        "baseline": {**metric, "first_token_s": _stat(10.0, 14.0), "uncached_tokens": _stat(790, 840)},
                        "ratio": {"first_token_s": {"median": 0.25, "p95": 0.29}, "total_s": {"median": 0.9, "p95": 1}},
                        **fake_stages(),
                    }
                },
                "cold": {
                    "summary": {
                        "ours": {**metric, "since_start_s": _stat(9, 9, 1), "since_spawn_s": _stat(9.5, 9.8, 3)},
                        "baseline": {**metric, "since_start_s": _stat(7, 7, 1), "since_spawn_s": _stat(12, 13, 3)},
                    }
                },
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
    assert rows["warm: total answer time, ours"].met is False  # 9 s median > 6 s
    assert rows["warm: total answer time, ours"].target == "<= 6 s median"
    assert rows["prompt reading: uncached prompt tokens, ours"].met is True  # 180 median <= 200
    assert rows["prompt reading: uncached prompt tokens, baseline"].met is None
    cold = rows["cold: process start to first answer, ours"]
    assert (cold.median, cold.n, cold.met) == (9.5, 3, True)  # from the spawn, <= 10 s
    assert rows["cold: process start to first answer, baseline"].median == 12
    added = rows["added cost of the reranker + parser per question, ours"]
    assert (added.unit, added.median, added.p95, added.met) == ("ms", 150.0, pytest.approx(250.0), True)
    assert rows["stage: rerank (cross-encoder, summed), ours"].p95 == 200.0  # shown in ms
    assert rows["stage: prompt reading (model call to its first token), ours"].median == 1.5  # shown in s
    sources = rows["sources shown before the first token (share of answers), ours"]
    assert (sources.median, sources.met, sources.n) == (1.0, True, 10)
    assert rows["lead of the sources over the first token, ours"].median == 1.4
    assert rows["stage: rewrite of a follow-up (the model), ours"].n == 2
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


def test_targets_not_met_say_so() -> None:
    results = fake_results()
    warm = results["sections"]["answers"]["warm"]["summary"]
    warm.update(fake_stages(rerank_p95=0.4))  # 450 ms p95 added
    warm["ours"]["uncached_tokens"] = _stat(230, 260)
    warm["sources"]["before_share"] = 0.9
    results["sections"]["answers"]["cold"]["summary"]["ours"]["since_spawn_s"] = _stat(25, 30, 3)
    rows = _by_metric(report.summary_rows(results))
    assert rows["added cost of the reranker + parser per question, ours"].met is False
    assert rows["prompt reading: uncached prompt tokens, ours"].met is False
    assert rows["sources shown before the first token (share of answers), ours"].met is False
    assert rows["cold: process start to first answer, ours"].met is False


def test_a_run_from_before_the_stage_breakdown_still_gives_its_rows() -> None:
    results = fake_results()
    warm = results["sections"]["answers"]["warm"]["summary"]
    for key in ("stages", "added_s", "sources", "follow_up"):
        del warm[key]
    for chain in answers.CHAINS:
        del warm[chain]["uncached_tokens"]
        del results["sections"]["answers"]["cold"]["summary"][chain]["since_spawn_s"]
    rows = _by_metric(report.summary_rows(results))
    assert rows["cold: process start to first answer, ours"].median == 9  # measured inside the process then
    assert "cold: process start to first answer, baseline" not in rows
    assert not [m for m in rows if m.startswith("stage:")]


def test_the_previous_median_is_the_replaced_runs_for_the_same_label() -> None:
    old = fake_results()
    old["summary"] = [r.to_dict() for r in report.summary_rows(old)]
    old["sections"]["answers"]["finished"] = "2026-11-23 12:30:00 +0000"
    old["summary"].append(report.Row("load", "FAILED: RuntimeError", None, None, met=False).to_dict())
    new = fake_results()
    new["sections"]["answers"]["warm"]["summary"]["ours"]["first_token_s"] = _stat(2.0, 3.0)
    previous = report.previous_medians(old, rerun=["answers", "load"])
    # a section's own finish time, else the run's date; a failed row has no median to compare with
    assert previous["dates"] == {"answers": "2026-11-23 12:30:00 +0000", "load": "2026-11-23 12:00:00 +0000"}
    assert not [m for m in previous["medians"] if m["metric"].startswith("FAILED")]
    rows = _by_metric(report.with_previous(report.summary_rows(new), previous))
    assert rows["warm: time to first token, ours"].median == 2.0
    assert rows["warm: time to first token, ours"].previous == 2.5
    assert rows["hybrid, filters on, 1,000 chunks"].previous is None  # retrieval was not re-run, had no previous
    header = report.header_lines({**new, "previous": previous})
    when = "answers 2026-11-23 12:30:00 +0000, load 2026-11-23 12:00:00 +0000"
    assert header[-1] == f"previous median: from the results this run replaced ({when})"
    one = report._previous_line({"dates": {"answers": "D", "load": "D"}})
    assert one == ["previous median: from the results this run replaced (D)"]
    assert report._previous_line({}) == []


def test_a_kept_section_carries_its_earlier_comparison_over() -> None:
    older = fake_results()
    older["summary"] = [r.to_dict() for r in report.summary_rows(older)]
    old = fake_results()  # written by an --only answers run after `older`
    old["previous"] = report.previous_medians(older, rerun=["answers", "retrieval"])
    old["summary"] = [r.to_dict() for r in report.with_previous(report.summary_rows(old), old["previous"])]
    old["generated"] = "2026-11-30 09:00:00 +0000"
    previous = report.previous_medians(old, rerun=["answers"])  # now --only answers again: retrieval is kept
    rows = _by_metric(report.with_previous(report.summary_rows(fake_results()), previous))
    assert rows["hybrid, filters on, 1,000 chunks"].previous == 20  # what retrieval was compared with before
    assert previous["dates"] == {"answers": "2026-11-30 09:00:00 +0000", "retrieval": "2026-11-23 12:00:00 +0000"}
    line = report._previous_line(previous)[0]
    assert "answers 2026-11-30 09:00:00 +0000" in line and "retrieval 2026-11-23 12:00:00 +0000" in line


def test_a_failed_section_is_one_failed_row_and_missing_sections_none() -> None:
    results = fake_results()
    results["sections"] = {"load": {"error": "RuntimeError: the app did not start"}}
    (row,) = report.summary_rows(results)
    assert row.section == "load" and row.met is False and "did not start" in row.metric


def test_the_text_table_is_aligned_and_says_yes_or_no() -> None:
    table = report.text_table(report.summary_rows(fake_results()))
    lines = table.splitlines()
    assert lines[0].split() == ["section", "metric", "median", "p95", "previous", "median", "target", "met?"]
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
    assert "| section | metric | median | p95 | previous median | target | met? |" in md
    assert "| answers | warm: time to first token, ours | 2.50 s | 4.00 s |  | <= 3 s median | yes |" in md
    shown = report.markdown_table([report.Row("answers", "x", 2.0, 3.0, "s", previous=2.75)])
    assert shown.endswith("| answers | x | 2.00 s | 3.00 s | 2.75 s |  |  |")
    assert "**answers**: Cold and warm \\| side by side." not in md  # methods are prose, not table cells
    assert "**answers**: Cold and warm | side by side." in md


@pytest.mark.parametrize(
    ("unit", "value", "shown"),
    [("ms", 12.345, "12.3 ms"), ("s", 3.14159, "3.14 s"), ("MB", 1234.5, "1,234 MB"), ("x", 0.5, "0.50x"),
     ("tokens", 511.5, "512"), ("chunks/s", 28.04, "28.0 chunks/s"), ("s", None, "-"), ("%", 2 / 3, "67%")],
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


def test_write_shows_the_previous_median_beside_the_new_one(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    bench.write(fake_results(), out)  # the run being replaced
    results = fake_results()
    results["sections"]["ingestion"]["summary"]["seeds_chunks_per_s"] = _stat(24, 26)
    results["previous"] = report.previous_medians(bench._old(out, quick=False), rerun=["ingestion"])
    md = bench.write(results, out).read_text()
    assert "| ingestion | seeds (19 chunks), in-process | 24.0 chunks/s | 26.0 chunks/s | 20.0 chunks/s |" in md
    assert "- previous median: from the results this run replaced (2026-11-23 12:00:00 +0000)" in md
    assert bench._old(out, quick=True) == {}  # a quick run never compares with a full one


def test_args() -> None:
    args = bench.parse_args(["--quick", "--only", "retrieval", "--only", "load"])
    assert args.quick and args.only == ["retrieval", "load"] and args.worker is None
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "everything"])


def test_warm_questions_are_never_repeated() -> None:
    # a repeated prompt is restored whole from the model's RAM cache: it would time the cache, not the chain
    assert len(set(answers.ANSWER_QUESTIONS)) == len(answers.ANSWER_QUESTIONS)
    assert answers.WARM_UP not in answers.ANSWER_QUESTIONS
