"""The real embedded model on the seeds: answers with verified quotes, refusals, follow-ups, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant, Settings, Sources
from assistant.corpus import load_document

pytestmark = pytest.mark.integration

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
YONHAP = "001_fd24264b0bd6d25d.txt"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vs")


@pytest.fixture(scope="module")
def assistant(index_dir: Path) -> Iterator[Assistant]:
    a = Assistant.from_settings(Settings(persist_dir=index_dir))
    a.ingest([SEEDS])
    a.warm()
    yield a
    a.close()


def assert_quotes_verbatim(ans) -> None:  # type: ignore[no-untyped-def]
    for c in ans.citations:
        assert load_document(SEEDS / c.source).text[c.start : c.end] == c.quote


def test_working_group_date_is_answered_from_yonhap(assistant: Assistant) -> None:
    ans = assistant.ask("When was the U.S.-South Korea working group set up?")
    assert not ans.refused, ans.trace
    assert "November 2018" in ans.text
    assert any(c.source == YONHAP and "November 2018" in c.quote for c in ans.citations)
    assert_quotes_verbatim(ans)
    assert ans.timings["first_token_s"] > 0 and ans.timings["total_s"] >= ans.timings["first_token_s"]


def test_unanswerable_question_is_refused(assistant: Assistant) -> None:
    ans = assistant.ask("What is the population of Pyongyang?")
    assert ans.refused
    assert ans.text.startswith("The articles I have do not answer this question.")
    assert_quotes_verbatim(ans)


def test_follow_up_is_resolved_from_history(assistant: Assistant) -> None:
    history = [
        {"role": "user", "content": "Who leads the working group meetings for South Korea?"},
        {"role": "assistant", "content": "South Korea's nuclear envoy Lee Do-hoon leads them [1]."},
    ]
    ans = assistant.ask("And who is his U.S. counterpart?", history=history)
    assert ans.trace["rewrite"]["from"] == "And who is his U.S. counterpart?"
    assert "Lee Do-hoon" in ans.standalone_question or "Lee" in ans.standalone_question
    assert not ans.refused, ans.trace
    assert "Biegun" in ans.text
    assert_quotes_verbatim(ans)


def test_every_answer_sentence_is_cited(assistant: Assistant) -> None:
    ans = assistant.ask("Where did Pompeo and Kang Kyung-wha meet in February 2019?")
    assert not ans.refused, ans.trace
    assert "Warsaw" in ans.text
    numbers = {c.n for c in ans.citations}
    assert numbers and all(f"[{n}]" in ans.text for n in numbers)
    assert_quotes_verbatim(ans)


def test_streaming_and_no_reload(assistant: Assistant) -> None:
    llm = assistant.llm
    loaded_in = getattr(llm, "load_seconds", None)
    parts = list(assistant.stream("Who did Pompeo meet in Warsaw?"))
    assert isinstance(parts[0], Sources) and parts[0].passages  # the passages first, then the model's words
    assert len(parts) > 3 and isinstance(parts[-1], type(assistant.ask("Who did Pompeo meet in Warsaw?")))
    assert assistant.llm is llm and getattr(llm, "load_seconds", None) == loaded_in


def test_cli_ask_json_and_text(assistant: Assistant, index_dir: Path) -> None:
    assistant.close()  # the CLI is another process: release the embedded store
    env = {**os.environ, "ASSISTANT_PERSIST_DIR": str(index_dir)}
    cli = [sys.executable, "-m", "assistant.cli"]
    out = subprocess.run(
        [*cli, "ask", "--json", "When was the U.S.-South Korea working group set up?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["refused"] is False and "November 2018" in data["answer"]
    assert {"n", "source", "title", "outlet", "published", "quote", "start", "end"} <= set(data["citations"][0])
    out = subprocess.run(
        [*cli, "ask", "What is the population of Pyongyang?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "do not answer this question" in out.stdout
