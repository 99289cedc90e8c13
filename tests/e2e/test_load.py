"""The load benchmark's driver (benchmarks/load.py, `make bench`) at a small size against a served app: chat users
(gradio_client) and OpenAI clients (the real `openai` client, streamed) at once over real HTTP, one user pressing
Stop and one client leaving mid-stream; every other question is answered completely, with no error.

The scripted model (slowed, so that the answers overlap and Stop has a draft to stop) stands in for the real one:
this tests the plumbing of both doors under concurrency; `make bench` measures the real model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ui_harness import (
    COUNTERPART,
    SEEDS,
    WARSAW,
    WORKING_GROUP,
    Director,
    SlowScriptedChatModel,
    clean_settings,
    free_port,
)

from assistant.api import AnswerGate
from assistant.app import Assistant
from assistant.openai_api import openai_routes
from assistant.ui import build_app, launch
from benchmarks import load, report

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

UNANSWERED = "What is the population of Pyongyang?"  # refused: a refusal is a complete answer too
QUESTIONS = (WORKING_GROUP, COUNTERPART, WARSAW, UNANSWERED)
CHAT_USERS, OPENAI_CLIENTS = 5, 3


@dataclass
class App:
    url: str
    llm: SlowScriptedChatModel
    director: Director
    gate: AnswerGate


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = clean_settings(
        persist_dir=tmp_path / "vs", embedding="fake:64", feedback_path=tmp_path / "feedback.jsonl", port=free_port()
    )
    director = Director()
    llm = SlowScriptedChatModel(script=director)
    assistant = Assistant.from_settings(settings, llm=llm)
    page = None
    try:
        assistant.ingest([SEEDS], progress=False)
        assistant.warm()
        gate = AnswerGate(settings.api_queue_timeout_s)
        page = build_app(assistant, settings, gate)
        url = launch(page, settings, routes=openai_routes(assistant, settings, gate, None))
        yield App(url, llm, director, gate)
    finally:
        if page is not None:
            page.close()
        assistant.close()


def test_chat_users_and_openai_clients_at_once_with_a_stop_and_a_disconnect(app: App) -> None:
    app.llm.delay_s = 0.08  # ~1 s an answer: the questions queue behind one another
    result = load.drive(
        app.url,
        CHAT_USERS,
        1,
        deadline_s=120,
        openai_clients=OPENAI_CLIENTS,
        stop_one=True,
        disconnect_one=True,
        disconnect_after_s=0.3,
        questions=QUESTIONS,
    )

    errors = [r for r in result["requests"] if r["error"]]
    assert errors == [], errors
    assert result["expected"] == CHAT_USERS + OPENAI_CLIENTS - 2
    assert result["completed"] == result["expected"] and result["errors"] == 0
    assert result["stopped"]["outcome"] == "stopped", result["stopped"]
    assert result["disconnected"]["outcome"] == "disconnected"
    by_door = result["latency_by_door_s"]
    assert (by_door["chat"]["n"], by_door["openai"]["n"]) == (CHAT_USERS - 1, OPENAI_CLIENTS - 1)
    latency = result["latency_s"]
    assert latency["n"] == result["expected"] and 0 < latency["median"] <= latency["p95"] <= latency["max"]
    assert app.gate.waiting == 0, "nothing is left waiting for the model"

    rows = report.load_rows(result)
    assert (
        rows[0].met is True and rows[0].metric == "latency per question, 5 chat users + 3 OpenAI clients x 1 questions"
    )
    metrics = [r.metric for r in rows]
    assert "Stop pressed during an answer: stopped" in metrics
    assert "client gone mid-stream: disconnected" in metrics

    again = load.drive(app.url, 1, 1, deadline_s=30, openai_clients=1, questions=(WORKING_GROUP,))
    assert again["errors"] == 0, again["requests"]  # both doors answer after the stop and the disconnect
