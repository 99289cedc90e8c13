"""The eval gate: both question sets through the real embedded model, each over its own corpus in its own
store; fails when any metric of either set is on the wrong side of its threshold.

The sets: `evals/questions.yaml` (the five seeds) and `evals/user-docs/questions.yaml` (an invented corpus in
another field, in the shapes real sites publish, with a metadata table). Select with `pytest -m eval`, skip
with `-m "not eval"`. Reports go to test-artifacts/eval/<set>/ and a side-by-side table to the output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.evaluation import EvalReport, EvalSet, run_eval, side_by_side, table, write_reports

pytestmark = pytest.mark.eval

REPO = Path(__file__).resolve().parents[2]
SETS = {"seeds": REPO / "evals" / "questions.yaml", "user-docs": REPO / "evals" / "user-docs" / "questions.yaml"}


def run_set(name: str, path: Path, store: Path) -> EvalReport:
    eval_set = EvalSet.load(path)
    assert eval_set.corpus is not None, f"{path} names no corpus"
    with Assistant.from_settings(Settings(persist_dir=store)) as assistant:
        ingest = assistant.ingest([eval_set.corpus], progress=False)
        assert not ingest.skipped, ingest.summary()
        assistant.warm()
        report = run_eval(eval_set, assistant, progress=False)
    write_reports(report, REPO / "test-artifacts" / "eval" / name)
    print(f"\n[{name}]\n" + table(report))
    return report


def test_the_grounded_chain_passes_the_gate_on_both_sets(tmp_path: Path) -> None:
    reports = {name: run_set(name, path, tmp_path / name) for name, path in SETS.items()}
    summary = side_by_side(reports)
    (REPO / "test-artifacts" / "eval" / "side-by-side.txt").write_text(summary + "\n", encoding="utf-8")
    print("\n" + summary)
    failures = [f"[{name}] {failure}" for name, report in reports.items() for failure in report.gate_failures()]
    assert not failures, "\n".join(failures)
