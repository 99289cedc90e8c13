"""The second corpus's metadata table, checked fast (real Chroma, fake embeddings, no model): every document
is read, none is skipped, and title, outlet and date match the table (the gate's metadata_accuracy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.evaluation import EvalSet, metadata_accuracy

pytestmark = pytest.mark.eval

SET = Path(__file__).resolve().parents[2] / "evals" / "user-docs" / "questions.yaml"


def test_every_document_of_the_second_corpus_gets_its_true_title_outlet_and_date(tmp_path: Path) -> None:
    eval_set = EvalSet.load(SET)
    assert eval_set.corpus is not None and eval_set.metadata is not None
    with Assistant.from_settings(Settings(persist_dir=tmp_path / "vs", embedding="fake")) as assistant:
        report = assistant.ingest([eval_set.corpus], progress=False)
        assert report.skipped == []
        accuracy, misses = metadata_accuracy(assistant, eval_set.metadata)
        records = {r.source: r for r in assistant.documents()}
    assert misses == []
    assert accuracy == 1.0
    assert all(r.provenance for r in records.values())  # every field says how it was found
    undated = [r.source for r in records.values() if not r.published]
    assert undated and all("undated" in records[s].flags for s in undated)
