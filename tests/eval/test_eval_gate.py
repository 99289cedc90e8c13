"""The eval gate: the full question set through the real embedded model; fails below the thresholds.

Select with `pytest -m eval`, skip with `-m "not eval"`. Reports go to test-artifacts/eval/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.evaluation import EvalSet, run_eval, table, write_reports

pytestmark = pytest.mark.eval

REPO = Path(__file__).resolve().parents[2]


def test_the_grounded_chain_passes_the_gate(tmp_path: Path) -> None:
    eval_set = EvalSet.load(REPO / "evals" / "questions.yaml")
    with Assistant.from_settings(Settings(persist_dir=tmp_path / "vs")) as assistant:
        assistant.ingest([REPO / "seeds"])
        assistant.warm()
        report = run_eval(eval_set, assistant, progress=False)
    write_reports(report, REPO / "test-artifacts" / "eval")
    print("\n" + table(report))
    failures = report.gate_failures()
    assert not failures, "\n".join(failures)
