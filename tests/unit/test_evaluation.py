"""Eval metrics, set loading, the gate and the reports, without a real model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.chain import Answer
from assistant.chunking import split_sentences
from assistant.citations import Citation
from assistant.cli import main
from assistant.config import Settings
from assistant.evaluation import (
    CalibrationError,
    CitationCheck,
    EvalQuestion,
    EvalReport,
    EvalSet,
    EvalSetError,
    QuestionResult,
    compute_metrics,
    default_grid,
    fact_found,
    grid_points,
    latency,
    names,
    parse_params,
    score_answer,
    table,
    write_reports,
)
from assistant.llm import ScriptedChatModel, ScriptExhaustedError
from assistant.memo_llm import MemoChatModel

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
                        "question": "The working group of Seoul and Washington: in which month was it set up?",
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


# --- speaker consistency ---------------------------------------------------------------------------

HARBOUR = (
    "Harbour bridge to open in May\n"
    "Mayor Ana Ferro said on Monday that the new harbour bridge would open in May. "
    '"It will carry its first trams before the summer," she told reporters.\n'
    "Councillor Bram Otten warned that the bridge would cost twice its budget. "
    '"Nobody has seen the final bill," he said.\n'
)
COLUMN = "I have walked the harbour for years, and I think the bridge will open on time.\n"
DOCS = {"harbour.txt": HARBOUR, "column.txt": COLUMN}
BYLINES = {"column.txt": "Ana Ferro"}


def cite(n: int, source: str, needle: str) -> Citation:
    """A citation of the (last) sentence of `source` holding `needle`, at its true offsets."""
    text = DOCS[source]
    span = [s for s in split_sentences(text) if needle in s.text][-1]
    return Citation(n, source, "", "", "", span.text, span.start, span.end, f"{source}#0", text)


def speaker_question(**extra: object) -> EvalQuestion:
    fields: dict = {
        "id": "ferro-on-bridge",
        "kind": "single_fact",
        "question": "What did the mayor say about when the harbour bridge opens?",
        "expect": "answer",
        "key_facts": (("May",),),
        "sources": ("harbour.txt",),
        "tags": ("speaker",),
        "speaker": ("Ana Ferro", "Ferro", "the mayor"),
        "wrong_speakers": (("Bram Otten", "Otten"),),
    }
    return EvalQuestion(**{**fields, **extra})


def scored(text: str, citations: list[Citation], refused: bool = False, q: EvalQuestion | None = None):  # type: ignore[no-untyped-def]
    answer = Answer("q?", text, refused=refused, citations=citations)
    return score_answer(q or speaker_question(), answer, DOCS.get, BYLINES.get)


def test_an_answer_that_names_the_speaker_and_cites_her_is_consistent() -> None:
    r = scored(
        "Ana Ferro said the bridge would open in May [1], with its first trams before the summer [2].",
        [cite(1, "harbour.txt", "open in May"), cite(2, "harbour.txt", "first trams")],  # [2] names no one
    )
    assert r.speaker == "Ana Ferro" and r.speaker_issues == []
    assert compute_metrics([r])["speaker_consistency"] == 1.0
    column = scored("Ana Ferro thinks the bridge will open on time [1].", [cite(1, "column.txt", "I think")])
    assert column.speaker_issues == []  # an unattributed first-person line is its byline's


def test_a_swapped_speaker_answer_is_not_consistent() -> None:
    quote_swapped = scored(
        "Ana Ferro said the bridge would cost twice its budget [1].", [cite(1, "harbour.txt", "twice its budget")]
    )
    assert len(quote_swapped.speaker_issues) == 1
    assert "quote [1] (harbour.txt) is Bram Otten's, not Ana Ferro's" in quote_swapped.speaker_issues[0]
    unnamed_quote = scored("Ana Ferro said nobody has seen the bill [1].", [cite(1, "harbour.txt", "final bill")])
    assert "Bram Otten's" in unnamed_quote.speaker_issues[0]  # the name before it is Otten's
    name_swapped = scored("Bram Otten said the bridge would open in May [1].", [cite(1, "harbour.txt", "open in May")])
    assert name_swapped.speaker_issues[:2] == [
        "the answer does not name Ana Ferro",
        "the answer gives it to Bram Otten: 'Bram Otten said the bridge would open in May [1].'",
    ]
    assert compute_metrics([quote_swapped, name_swapped])["speaker_consistency"] == 0.0
    assert any(f.startswith("speaker: ") for f in name_swapped.failures())


def test_a_refused_speaker_question_is_not_counted_and_others_never_are() -> None:
    good = scored("The mayor said it opens in May [1].", [cite(1, "harbour.txt", "open in May")])
    swapped = scored("Ana Ferro said it would cost twice its budget [1].", [cite(1, "harbour.txt", "twice")])
    refused = scored("I could not find that in the documents.", [], refused=True)
    plain = scored("It opens in May [1].", [cite(1, "harbour.txt", "twice")], q=speaker_question(speaker=(), tags=()))
    assert refused.speaker_issues == [] and not refused.speaker_checked and plain.speaker == ""
    metrics = compute_metrics([good, swapped, refused, plain])
    assert metrics["speaker_consistency"] == pytest.approx(1 / 2)
    assert compute_metrics([refused, plain])["speaker_consistency"] is None
    for r in (good, swapped, refused, plain):
        r.gold_sources, r.retrieved_sources = ["harbour.txt"], ["harbour.txt"]
    report = EvalReport("test", [good, swapped, refused], {"speaker_consistency": 1.0})
    (failure,) = report.gate_failures()
    assert failure.startswith("speaker_consistency = 0.500, needs >= 1.0") and failure.endswith(
        "questions: ferro-on-bridge"
    )
    assert "speaker" in table(report).splitlines()[0]


def test_speaker_fields_are_read_and_checked(tmp_path: Path) -> None:
    base = {"id": "a", "kind": "single_fact", "question": "q", "expect": "answer", "key_facts": [["x"]]}
    path = tmp_path / "set.yaml"
    good = {**base, "tags": ["speaker"], "speaker": ["Ana Ferro", "Ferro"], "wrong_speakers": ["Otten", ["B. O."]]}
    path.write_text(yaml.safe_dump({"questions": [good]}))
    (q,) = EvalSet.load(path).questions
    assert q.speaker == ("Ana Ferro", "Ferro") and q.wrong_speakers == (("Otten",), ("B. O.",))
    for body, message in [
        ({**base, "tags": ["speaker"]}, "is tagged speaker but names no `speaker:`"),
        ({**base, "speaker": "Ana Ferro"}, "has 'speaker' but is not tagged speaker"),
        ({**base, "tags": ["speaker"], "speaker": []}, "speaker must be a name or a non-empty list"),
        ({**good, "wrong_speakers": [["Ferro"]]}, r"\['ferro'\] is both the speaker and a wrong speaker"),
        ({**good, "wrong_speakers": "Otten"}, "wrong_speakers must be a list"),
        ({**good, "expect": "refuse", "key_facts": []}, "must expect an answer"),
    ]:
        path.write_text(yaml.safe_dump({"questions": [body]}))
        with pytest.raises(EvalSetError, match=message):
            EvalSet.load(path)


def test_both_shipped_sets_name_the_speaker_of_every_speaker_question() -> None:
    for path in (REPO / "evals" / "questions.yaml", REPO / "evals" / "user-docs" / "questions.yaml"):
        s = EvalSet.load(path)
        tagged = [q for q in s.questions if "speaker" in q.tags]
        assert tagged and all(q.speaker for q in tagged), path
        assert 0 < s.thresholds["speaker_consistency"] <= 1.0
    seeds = EvalSet.load(REPO / "evals" / "questions.yaml")
    for q in seeds.questions:  # the speaker stands in a gold source
        if q.speaker:
            assert names(" ".join((SEEDS / src).read_text() for src in q.sources), q.speaker), q.id


# --- the memo and calibration ----------------------------------------------------------------------


def test_the_memo_serves_a_repeated_prompt_without_calling_the_model() -> None:
    inner = ScriptedChatModel(script=["The bridge opens in May [1]."])  # one reply: a second call would fail
    memo = MemoChatModel(inner=inner)
    prompt = [SystemMessage("Answer from the passages."), HumanMessage("When does the bridge open?")]
    assert memo.invoke(prompt).content == "The bridge opens in May [1]."
    assert memo.invoke(prompt).content == "The bridge opens in May [1]."
    assert "".join(str(c.content) for c in memo.stream(prompt)) == "The bridge opens in May [1]."
    assert (memo.calls, memo.hits, len(inner.history)) == (1, 2, 1)
    with pytest.raises(ScriptExhaustedError):  # other arguments are another call
        memo.invoke(prompt, max_tokens=1)

    streamed = MemoChatModel(inner=ScriptedChatModel(script=["It opens in May."]))
    assert [c.content for c in streamed.stream(prompt)][:3] == ["It ", "opens ", "in "]
    assert [c.content for c in streamed.stream(prompt)][:3] == ["It ", "opens ", "in "]  # replayed as written
    assert streamed.invoke(prompt).content == "It opens in May." and (streamed.calls, streamed.hits) == (1, 2)


TINY_DOCS = {
    "bridge.txt": "Harbour bridge to open in May\n\n" + HARBOUR.split("\n", 1)[1].replace("\n", "\n\n"),
    "ferry.txt": "Ferry service to end after ninety years\n\nThe Port Wellam ferry will make its last crossing "
    "on June 30, its operator said. The ferry has carried passengers across the harbour since 1934.\n",
}


def tiny_set(tmp_path: Path) -> Path:
    """A set of three questions over its own two-document corpus in tmp_path."""
    (tmp_path / "docs").mkdir()
    for name, text in TINY_DOCS.items():
        (tmp_path / "docs" / name).write_text(text)
    path = tmp_path / "tiny.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "corpus": "docs",
                "thresholds": {"answer_correctness": 0.5, "refusal_rate": 1.0},
                "questions": [
                    {
                        "id": "bridge-opening",
                        "kind": "single_fact",
                        "question": "When will the new harbour bridge open, according to the mayor?",
                        "expect": "answer",
                        "key_facts": [["May"]],
                        "sources": ["bridge.txt"],
                        "tags": ["speaker"],
                        "speaker": ["Ana Ferro", "the mayor"],
                        "wrong_speakers": ["Bram Otten"],
                    },
                    {
                        "id": "ferry-last-crossing",
                        "kind": "single_fact",
                        "question": "When will the Port Wellam ferry make its last crossing?",
                        "expect": "answer",
                        "key_facts": [["June 30"]],
                        "sources": ["ferry.txt"],
                    },
                    {
                        "id": "ferry-fare",
                        "kind": "unanswerable",
                        "question": "How much does a ticket for the Port Wellam ferry cost?",
                        "expect": "refuse",
                    },
                ],
            }
        )
    )
    return path


def test_calibrate_gives_one_row_per_grid_point_and_marks_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_EMBEDDING", "fake:64")
    monkeypatch.setenv("ASSISTANT_LLM", "fake")
    current = Settings().min_evidence
    args = ["eval", "--calibrate", "--set", str(tiny_set(tmp_path)), "--param", "min_evidence=0.2,2.0"]
    out = CliRunner().invoke(main, [*args, "--param", "min_support=0.6"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    header = lines.index("[tiny] 3 questions") + 1
    assert lines[header].split() == [
        *("min_evidence", "min_support", "correct", "refusal", "false", "ref", "cite", "P", "speaker", "gates")
    ]
    rows = lines[header + 1 : lines.index("", header)]
    values = sorted({0.2, 2.0, current})
    assert [float(r.lstrip("* ").split()[0]) for r in rows] == values  # the current value is swept too
    assert [r.startswith("*") for r in rows] == [v == current for v in values]
    never = next(r for r in rows if r.lstrip("* ").startswith("2 "))  # all refused without the model
    assert never.split()[2:5] == ["0.00", "1.00", "1.00"] and "fails answer_correctness" in never
    calls = re.search(r"model calls: (\d+) made, (\d+) served from the memo", out.stdout)
    assert calls and int(calls.group(1)) > 0 and int(calls.group(2)) > 0  # same prompts at 0.2 and the current

    as_json = CliRunner().invoke(main, [*args, "--json"])
    data = json.loads(as_json.stdout)
    assert [p["values"]["min_evidence"] for p in data["points"]] == values
    assert [p["current"] for p in data["points"]] == [v == current for v in values]
    assert data["points"][-1]["sets"]["tiny"]["gate_failures"][0].startswith("answer_correctness = 0.000")


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("min_evidence", "write NAME=v1,v2"),
        ("nonsense=1", "not a setting calibrate can sweep"),
        ("chunk_size=100,200", "not a setting calibrate can sweep"),
        ("min_support=0.5,7", "'7' is not a valid value"),
    ],
)
def test_a_bad_param_is_named(param: str, message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        parse_params([param])
    out = CliRunner().invoke(main, ["eval", "--calibrate", "--param", param])
    assert out.exit_code == 2 and message in out.output


def test_the_default_grid_sweeps_fields_settings_has() -> None:
    grid = default_grid()
    assert grid and set(grid) <= set(Settings.model_fields)
    points = grid_points(grid, {name: getattr(Settings(), name) for name in grid})
    assert len(points) == len(set(map(str, points))) >= 2 ** len(grid)
