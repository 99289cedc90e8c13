"""Faults of a remote OpenAI-compatible backend, against a real HTTP server on loopback (fault_llm_server.py):
refused connections, timeouts, a server killed in the middle of an answer, replies cut off or garbled. Each
must end in a clear sentence (LLMUnavailableError; an error field in the API), never in an unfinished answer
checked and shown as if it were whole."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fault_llm_server import FaultServer

from assistant import Assistant, Settings
from assistant.api import AnswerGate, answer_request
from assistant.llm import LLMUnavailableError
from assistant.openai_api import openai_routes

CROSSING = "How long does the ferry crossing take?"
SERVER_SCRIPT = Path(__file__).with_name("fault_llm_server.py")
TIMEOUT_S = 1.0

pytestmark = pytest.mark.timeout(60)

Remote = Callable[..., Assistant]


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    srv = FaultServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def remote(ferry_index: Path) -> Iterator[Remote]:
    """`remote(base_url, **settings)`: an Assistant over the ferry index whose model is that remote backend."""
    opened: list[Assistant] = []

    def build(base_url: str, **settings: object) -> Assistant:
        values: dict[str, object] = {
            "persist_dir": ferry_index,
            "embedding": "fake:256",
            "llm": "openai-compatible",
            "llm_base_url": base_url,
            "llm_model_name": "fault-model",
            "llm_timeout_s": TIMEOUT_S,
            "llm_max_retries": 0,
            "sentence_judge": "fake",  # the fallback's word bar alone, as in the other fast tests
        }
        values.update(settings)
        a = Assistant.from_settings(Settings(**values))  # type: ignore[arg-type]
        opened.append(a)
        return a

    yield build
    for a in opened:
        a.close()


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fails_with(a: Assistant, pattern: str, within_s: float) -> str:
    """Ask; the question must fail with LLMUnavailableError matching pattern, within within_s seconds.

    The same question through the API must give that sentence as its error field and no answer text.
    """
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError) as caught:
        a.ask(CROSSING)
    assert time.monotonic() - started < within_s
    message = str(caught.value)
    assert re.search(pattern, message), message
    assert "Traceback" not in message
    return message


def api_error(a: Assistant) -> dict[str, object]:
    data = answer_request(a, AnswerGate(5), a.settings, CROSSING, [], None)
    assert data["answer"] == "" and data["citations"] == [] and data["refused"] is False
    error = data["error"]
    assert isinstance(error, dict) and error["code"] == "llm_unavailable"
    return error


def test_a_working_server_answers_with_a_checked_citation(remote, server: FaultServer) -> None:
    a = remote(server.url("ok"))
    ans = a.ask(CROSSING)
    assert not ans.refused and "35 minutes" in ans.text
    assert any("crossing takes 35 minutes" in c.quote for c in ans.citations)
    mode, body = server.requests[-1]
    assert mode == "ok" and body["stream"] is True and body["model"] == "fault-model"


def test_refused_connection(remote) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    a = remote(url)
    message = fails_with(a, r"could not be reached: start it or change ASSISTANT_LLM_BASE_URL", 5)
    assert url in message
    assert api_error(a)["message"] == message


def test_refused_connection_with_retries_stays_bounded(remote) -> None:
    a = remote(f"http://127.0.0.1:{unused_port()}/v1", llm_max_retries=2)
    fails_with(a, r"could not be reached \(tried 3 times\): start it", 10)


def test_a_server_that_never_answers_times_out(remote, server: FaultServer) -> None:
    a = remote(server.url("hang"))
    fails_with(a, rf"did not answer within {TIMEOUT_S:g} s", 3 * TIMEOUT_S + 3)


def test_a_server_that_stalls_mid_answer_times_out_and_the_words_are_not_used(remote, server: FaultServer) -> None:
    a = remote(server.url("stall"))
    message = fails_with(a, r"broke off its answer after 3 piece\(s\) \(no more words for 1.0 s\)", 3 * TIMEOUT_S + 3)
    assert "the unfinished answer is not used" in message


def test_a_reply_closed_without_finishing_is_not_taken_for_an_answer(remote, server: FaultServer) -> None:
    # the first words ('The crossing takes') alone could be quoted and checked: they must not be
    a = remote(server.url("cut"))
    fails_with(a, r"closed its reply in the middle of the answer \(after 3 piece\(s\), with no finish_reason\)", 5)
    assert "closed its reply" in str(api_error(a)["message"])


@pytest.mark.parametrize(
    ("mode", "pattern"),
    [
        ("garbage-sse", r"sent a reply that is not an OpenAI-compatible answer \(JSONDecodeError"),
        ("garbage-json", r"sent no OpenAI-compatible stream events"),
        ("garbage-bytes", r"did not give a valid HTTP reply \(RemoteProtocolError: illegal status line"),
        ("html-500", r"failed with HTTP 500 \(a server error"),
    ],
)
def test_garbage_is_named_for_what_it_is(remote, server: FaultServer, mode: str, pattern: str) -> None:
    a = remote(server.url(mode))
    message = fails_with(a, pattern, 5)
    assert server.url(mode) in message


def test_a_reply_with_no_words_is_a_refusal_not_an_answer(remote, server: FaultServer) -> None:
    ans = remote(server.url("empty")).ask(CROSSING)
    assert ans.refused
    assert ans.trace.get("refusal_reason")


def test_a_broken_backend_behind_the_openai_api_is_an_error_not_content(remote, server: FaultServer) -> None:
    a = remote(server.url("cut"))
    client = TestClient(FastAPI(routes=openai_routes(a, a.settings, AnswerGate(5), None)))
    body = {"model": a.settings.api_model_name, "messages": [{"role": "user", "content": CROSSING}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 503 and response.json()["error"]["code"] == "llm_unavailable"
    assert "closed its reply in the middle of the answer" in response.json()["error"]["message"]
    with client.stream("POST", "/v1/chat/completions", json=body | {"stream": True}) as streamed:
        text = streamed.read().decode()
    assert '"code": "llm_unavailable"' in text and "closed its reply" in text
    assert '"content": "The' not in text and "crossing takes" not in text  # none of the unfinished words


def _start_script(port: int = 0) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), str(port)], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    return proc, int(line.split()[1])


def test_a_server_killed_mid_answer_then_back(remote) -> None:
    proc, port = _start_script()
    killed = threading.Event()

    def kill_when_streaming() -> None:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() == "STREAMING":  # the first words are on their way
            proc.kill()
            killed.set()

    watcher = threading.Thread(target=kill_when_streaming, daemon=True)
    watcher.start()
    try:
        dying = remote(f"http://127.0.0.1:{port}/die/v1")
        message = fails_with(dying, r"broke off its answer after 3 piece\(s\) \(RemoteProtocolError", 10)
        assert killed.is_set() and proc.wait(5) != 0
        assert "the unfinished answer is not used" in message
        # the server is gone: the next question says so at once
        after = remote(f"http://127.0.0.1:{port}/ok/v1")
        fails_with(after, "could not be reached", 5)
        # and once it is back on its port, the same assistant answers again
        proc, _ = _start_script(port)
        ans = after.ask(CROSSING)
        assert not ans.refused and "35 minutes" in ans.text
    finally:
        proc.kill()
        proc.wait(5)
        watcher.join(5)
