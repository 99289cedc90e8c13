"""Eval metrics, set loading, the gate and the reports, without a real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from assistant.cli import main
from assistant.evaluation import (
    CitationCheck,
    EvalReport,
    EvalSet,
    EvalSetError,
    QuestionResult,
    compute_metrics,
    fact_found,
    latency,
    write_reports,
)

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"


def result(id: str, expect: str = "answer", refused: bool = False, facts=(True,), cites=(), rank_sources=()):  # type: ignore[no-untyped-def]
    r = QuestionResult(id, "single_fact", "q?", expect, "answer [1].", refused, facts=list(facts))
    r.citations = [CitationCheck(n, s, gold, verbatim) for n, s, gold, verbatim in cites]
    r.sentences, r.grounded_sentences = 1, 1 if cites else 0
    r.retrieved_sources = list(rank_sources)
    r.gold_sources = ["a.txt"]
    r.first_token_s, r.total_s = 1.0, 2.0
    return r


def test_the_shipped_set_is_valid_and_covers_every_kind_and_article() -> None:
    s = EvalSet.load(REPO / "evals" / "questions.yaml")
    assert len(s.questions) >= 45
    assert {q.kind for q in s.questions} >= {
        "single_fact",
        "multi_source",
        "time_dependent",
        "unanswerable",
        "follow_up",
        "false_premise",
        "off_corpus",
    }
    sources = {src for q in s.questions for src in q.sources}
    assert sources == {p.name for p in SEEDS.glob("*.txt")}
    for q in s.questions:  # every key fact stands in a gold source
        texts = " ".join((SEEDS / src).read_text() for src in q.sources)
        assert all(fact_found(texts, variants) for variants in q.key_facts), q.id
    assert s.thresholds["answer_correctness"] >= 0.85


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"questions": [{"id": "a", "kind": "nope", "question": "q", "expect": "answer"}]}, "kind must be"),
        ({"questions": [{"id": "a", "kind": "single_fact", "question": "q", "expect": "answer"}]}, "needs key_facts"),
        ({"questions": [{"id": "a", "kind": "single_fact", "expect": "answer"}]}, "missing or empty 'question'"),
        ({"thresholds": {"speed": 1}, "questions": []}, "unknown thresholds"),
        ({"nothing": 1}, "questions"),
    ],
)
def test_a_malformed_set_names_the_problem(tmp_path: Path, body: dict, message: str) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(EvalSetError, match=message):
        EvalSet.load(path)


def test_fact_matching_is_forgiving_about_case_quotes_and_dashes() -> None:
    assert fact_found("It met in WASHINGTON, D.C.", ["Washington"])
    assert fact_found("Lee Do‑hoon’s counterpart", ["Lee Do-hoon's"])
    assert not fact_found("It met in Seoul.", ["Washington", "D.C."])


def test_metrics() -> None:
    results = [
        result("a", cites=[(1, "a.txt", True, True)], rank_sources=["a.txt"]),
        result("b", facts=(True, False), cites=[(1, "b.txt", False, True)], rank_sources=["b.txt", "a.txt"]),
        result("c", refused=True, rank_sources=["c.txt"]),
        result("d", expect="refuse", refused=True),
        result("e", expect="refuse", refused=False),
    ]
    m = compute_metrics(results)
    assert m["answer_correctness"] == pytest.approx(1 / 3)
    assert m["citation_precision"] == pytest.approx(1 / 2)
    assert m["citation_recall"] == pytest.approx(1 / 2)
    assert m["refusal_rate"] == pytest.approx(1 / 2)
    assert m["false_refusal_rate"] == pytest.approx(1 / 3)
    assert m["retrieval_hit_at_1"] == pytest.approx(1 / 3)
    assert m["retrieval_hit_at_3"] == pytest.approx(2 / 3)
    assert m["retrieval_mrr"] == pytest.approx((1 + 0.5) / 3)
    assert latency(results)["total_s_median"] == 2.0


def test_the_gate_names_the_metric_and_the_questions(tmp_path: Path) -> None:
    results = [
        result("good", cites=[(1, "a.txt", True, True)], rank_sources=["a.txt"]),
        result("bad", refused=True, rank_sources=["a.txt"]),
    ]
    report = EvalReport("test", results, {"false_refusal_rate": 0.1, "answer_correctness": 0.4})
    failures = report.gate_failures()
    assert len(failures) == 1 and failures[0].startswith("false_refusal_rate = 0.500, needs <= 0.1")
    assert "bad" in failures[0] and "good" not in failures[0]
    paths = write_reports(report, tmp_path / "r")
    data = json.loads(paths[0].read_text())
    assert data["gate_failures"] == failures and data["results"][1]["failures"] == ["refused an answerable question"]
    assert "FAIL: false_refusal_rate" in paths[1].read_text()
    assert "<tr class='fail'>" in paths[2].read_text()


def test_cli_eval_fails_loudly_when_retrieval_is_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_PERSIST_DIR", str(tmp_path / "vs"))
    monkeypatch.setenv("ASSISTANT_EMBEDDING", "fake:64")
    monkeypatch.setenv("ASSISTANT_LLM", "fake")
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(SEEDS)]).exit_code == 0
    small = tmp_path / "small.yaml"
    small.write_text(
        yaml.safe_dump(
            {
                "thresholds": {"retrieval_hit_at_5": 0.95},
                "questions": [
                    {
                        "id": "wg",
                        "kind": "single_fact",
                        "question": "When was the U.S.-South Korea working group set up?",
                        "expect": "answer",
                        "key_facts": [["November 2018"]],
                        "sources": ["001_fd24264b0bd6d25d.txt"],
                    }
                ],
            }
        )
    )
    ok = runner.invoke(main, ["eval", "--set", str(small), "--report", str(tmp_path / "r1")])
    assert ok.exit_code == 0, ok.output
    assert "hit@5" in ok.output and (tmp_path / "r1" / "report.html").exists()
    monkeypatch.setenv("ASSISTANT_TOP_K", "0")
    broken = runner.invoke(main, ["eval", "--set", str(small), "--report", str(tmp_path / "r2")])
    assert broken.exit_code == 1
    assert "GATE FAILED: retrieval_hit_at_5 = 0.000, needs >= 0.95" in broken.output and "wg" in broken.output
