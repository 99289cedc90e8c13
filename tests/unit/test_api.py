"""The plain API (assistant/api.py) and the OpenAI-compatible one (assistant/openai_api.py), in process: request
checks, the JSON shapes, errors, the one-question gate and the API key. A scripted model over the ferry corpus."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from langchain_core.messages import BaseMessage

from assistant import Assistant, Settings, Sources
from assistant.api import (
    AnswerGate,
    BusyError,
    RequestError,
    answer_request,
    check_filters,
    check_history,
    check_question,
)
from assistant.llm import LLMUnavailableError
from assistant.openai_api import ApiKeyError, api_key_for, is_loopback, openai_routes

CROSSING = "How long does the ferry crossing take?"
MODEL = Settings.model_fields["api_model_name"].default
CITATION_KEYS = {"n", "source", "outlet", "published", "title", "quote", "start", "end", "also_reported_by"}
ANSWER_KEYS = {
    "question",
    "answer",
    "refused",
    "refusal_reason",
    "citations",
    "standalone_question",
    "timings",
    "error",
}


@pytest.fixture
def crossing(ferry, passage_number) -> Callable[..., tuple[Assistant, Any]]:
    """`crossing(**settings)`: an assistant whose model answers the crossing question from its passage."""

    def script(messages: list[BaseMessage]) -> str:
        return f"The crossing takes 35 minutes [{passage_number(messages, 'crossing takes 35 minutes')}]."

    return lambda **settings: ferry(script, **settings)


def client_for(assistant: Assistant, key: str | None = None, timeout_s: float = 5.0) -> TestClient:
    app = FastAPI(routes=openai_routes(assistant, assistant.settings, AnswerGate(timeout_s), key))
    return TestClient(app, raise_server_exceptions=False)


def ask_body(question: str = CROSSING, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": question}], **extra}


def sse_events(text: str) -> list[Any]:
    """The data of each SSE event ('[DONE]' as a string); comments are skipped."""
    events = []
    for block in text.split("\n\n"):
        data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            payload = "\n".join(data)
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


# --- checking a request ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85"])
def test_control_characters_in_a_question_are_a_clear_error(text: str) -> None:
    with pytest.raises(RequestError, match="control character") as caught:
        check_question(text)
    assert caught.value.code == "invalid_question"


def test_tabs_and_newlines_are_text_and_a_non_string_is_an_error() -> None:
    assert check_question("How long\tdoes it\ntake?\r") == "How long\tdoes it\ntake?\r"
    with pytest.raises(RequestError, match="must be a string"):
        check_question(42)


def test_history_must_be_user_and_assistant_text() -> None:
    ok = check_history([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "metadata": {}}], 5)
    assert ok == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert check_history(None, 5) == []
    for bad, words in (
        ("not a list", "must be a list"),
        ([{"role": "system", "content": "obey"}], "role 'system'"),
        ([{"role": "user", "content": 3}], "text content"),
        (["hello"], "must be an object"),
        ([{"role": "user", "content": "x\x00"}], "control characters"),
    ):
        with pytest.raises(RequestError, match=words):
            check_history(bad, 5)
    turns = [{"role": "user", "content": str(i)} for i in range(5)]
    assert [m["content"] for m in check_history(turns, 2)] == ["3", "4"]  # the latest are kept
    assert check_history(turns, 0) == []


def test_filters_are_checked_and_named() -> None:
    assert check_filters(None) is None and check_filters({}) is None
    f = check_filters({"outlets": "Island Post", "since": "2020-01-01", "until": None})
    assert f is not None and f.outlets == ("Island Post",) and f.since == "2020-01-01"
    for bad, words in (
        ({"outlet": ["x"]}, "Unknown filter"),
        ({"since": "14 March 2019"}, "YYYY-MM-DD"),
        ({"since": "2019-02-30"}, "does not exist"),
        ({"since": "2020-01-01", "until": "2019-01-01"}, "after the 'until'"),
        ({"outlets": [1]}, "list of outlet names"),
        ({"until": 2019}, "YYYY-MM-DD string"),
        (["x"], "must be an object"),
    ):
        with pytest.raises(RequestError, match=words):
            check_filters(bad)


# --- /answer's function -----------------------------------------------------------------------------


def test_an_answer_as_json_data(crossing) -> None:
    a, _ = crossing()
    data = answer_request(a, AnswerGate(5), a.settings, CROSSING, [], {})
    assert set(data) == ANSWER_KEYS
    assert data["error"] is None and data["refused"] is False and data["refusal_reason"] is None
    assert "35 minutes" in data["answer"] and "[1]" in data["answer"]
    assert data["citations"] and all(set(c) == CITATION_KEYS for c in data["citations"])
    cite = next(c for c in data["citations"] if "35 minutes" in c["quote"])
    assert (cite["source"], cite["outlet"], cite["published"]) == (
        "ferry_2019_committee.txt",
        "Marrow Bay Courier",
        "2019-03-14",
    )
    assert cite["end"] - cite["start"] == len(cite["quote"])
    assert data["standalone_question"] == CROSSING and data["timings"]["total_s"] >= 0
    json.dumps(data)  # plain JSON data


@pytest.mark.parametrize(
    ("question", "reason"), [("", "empty question"), ("   ", "empty question"), ("x" * 50_000, "question too long")]
)
def test_empty_and_huge_questions_are_refused_with_their_reason(crossing, question: str, reason: str) -> None:
    a, llm = crossing()
    data = answer_request(a, AnswerGate(5), a.settings, question, None, None)
    assert data["refused"] is True and data["refusal_reason"] == reason and data["error"] is None
    assert data["answer"] and not data["citations"]
    assert llm.history == []  # the model was never asked


def test_bad_requests_get_an_error_field_not_a_traceback(crossing) -> None:
    a, llm = crossing()
    gate = AnswerGate(5)
    for question, history, filters, code in (
        ("Why?\x00", [], {}, "invalid_question"),
        (None, [], {}, "invalid_question"),
        (CROSSING, [{"role": "tool", "content": "x"}], {}, "invalid_history"),
        (CROSSING, [], {"since": "yesterday"}, "invalid_filters"),
    ):
        data = answer_request(a, gate, a.settings, question, history, filters)
        assert set(data) == ANSWER_KEYS
        assert data["error"]["code"] == code and data["answer"] == "" and not data["citations"]
        assert "Traceback" not in data["error"]["message"]
    assert llm.history == []


def test_a_failing_model_is_an_error_field(ferry) -> None:
    def broken(messages: list[BaseMessage]) -> str:
        raise LLMUnavailableError("The LLM at http://127.0.0.1:9/v1 could not be reached: start it.")

    a, _ = ferry(broken)
    data = answer_request(a, AnswerGate(5), a.settings, CROSSING, [], None)
    assert data["error"] == {
        "code": "llm_unavailable",
        "message": "The LLM at http://127.0.0.1:9/v1 could not be reached: start it.",
    }
    assert data["answer"] == "" and data["refused"] is False


def test_an_unexpected_failure_is_logged_and_named_only(crossing, monkeypatch, caplog) -> None:
    a, _ = crossing()

    def crash(*args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(a, "stream", crash)
    with caplog.at_level(logging.ERROR, logger="assistant.api"):
        data = answer_request(a, AnswerGate(5), a.settings, CROSSING, [], None)
    assert data["error"]["code"] == "internal_error" and "KeyError" in data["error"]["message"]
    assert "boom" not in data["error"]["message"]  # the details stay in the server log
    assert any("boom" in r.getMessage() or r.exc_info for r in caplog.records)


def test_the_gate_lets_one_question_through_and_says_busy(crossing) -> None:
    a, _ = crossing()
    gate = AnswerGate(0.2)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.hold():
            held.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    assert held.wait(5)
    started = time.monotonic()
    data = answer_request(a, gate, a.settings, CROSSING, [], None)
    assert data["error"]["code"] == "busy" and "0.2 s" in data["error"]["message"]
    assert time.monotonic() - started < 2
    release.set()
    worker.join()
    assert answer_request(a, gate, a.settings, CROSSING, [], None)["error"] is None


def test_closing_a_stream_midway_opens_the_gate(crossing) -> None:
    a, _ = crossing()
    gate = AnswerGate(0.2)
    parts = gate.stream(a, CROSSING)
    assert isinstance(next(parts), Sources)  # what the model is about to read: the gate is held
    assert isinstance(next(parts), str)  # the model's first words
    with pytest.raises(BusyError):
        gate.ask(a, CROSSING)
    parts.close()
    assert not gate.ask(a, CROSSING).refused


def test_a_question_whose_asker_left_while_it_waited_never_reaches_the_model(ferry) -> None:
    prompts: list[str] = []

    def script(messages: list[BaseMessage]) -> str:
        prompts.append(str(messages[-1].content))
        return "I don't know."

    a, _ = ferry(script)
    gate = AnswerGate(5)
    cancelled = threading.Event()
    got: list[object] = []
    with gate.hold():  # another question has the model
        waiter = threading.Thread(target=lambda: got.extend(gate.stream(a, CROSSING, cancelled=cancelled)))
        waiter.start()
        time.sleep(0.2)
        assert gate.waiting == 1
        cancelled.set()  # its asker goes away
    waiter.join(5)
    assert not waiter.is_alive() and got == [] and prompts == []
    assert gate.ask(a, CROSSING).refused and len(prompts) == 1  # the gate is open to the next question


def test_too_many_waiting_is_busy_at_once() -> None:
    gate = AnswerGate(5, max_waiting=0)
    with pytest.raises(BusyError, match="already waiting"), gate.hold():
        pass


# --- the OpenAI-compatible API --------------------------------------------------------------------


def test_models_lists_the_assistant(crossing) -> None:
    a, _ = crossing()
    client = client_for(a)
    listed = client.get("/v1/models").json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == [MODEL]
    assert client.get(f"/v1/models/{MODEL}").json()["id"] == MODEL
    assert client.get("/v1/models/gpt-4").status_code == 404


def test_a_chat_completion_carries_markers_and_citations(crossing) -> None:
    a, llm = crossing()
    response = client_for(a).post(
        "/v1/chat/completions",
        json=ask_body(
            temperature=0.7,
            max_tokens=5,
            messages=[{"role": "system", "content": "Talk like a pirate."}, {"role": "user", "content": CROSSING}],
        ),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == MODEL and body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert "35 minutes [" in choice["message"]["content"]
    assert body["refused"] is False and body["refusal_reason"] is None
    assert any("35 minutes" in c["quote"] for c in body["citations"])
    assert all(set(c) == CITATION_KEYS for c in body["citations"])
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert "pirate" not in " ".join(str(m.content) for m in llm.history[0])  # system messages are not obeyed


def test_content_parts_and_history_are_read(crossing) -> None:
    a, _ = crossing()
    messages = [
        {"role": "user", "content": "Tell me about the ferry."},
        {"role": "assistant", "content": "It links Marrow Bay and Tarn Island."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "How long does the "}, {"type": "text", "text": "crossing take?"}],
        },
    ]
    body = client_for(a).post("/v1/chat/completions", json=ask_body(messages=messages)).json()
    assert "35 minutes" in body["choices"][0]["message"]["content"]


def test_a_long_conversation_is_cut_to_its_latest_messages(crossing, monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = crossing(api_max_history=3)
    earlier = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"Message {i}."} for i in range(40)]
    messages = [*earlier, {"role": "user", "content": CROSSING}]
    seen: list[Any] = []
    stream = a.stream

    def recording(question: str, history: Any = None, filters: Any = None) -> Any:
        seen.append(history)
        return stream(question, history, filters)

    monkeypatch.setattr(a, "stream", recording)
    response = client_for(a).post("/v1/chat/completions", json=ask_body(messages=messages, stream=None, n=None))
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    assert [m["content"] for m in seen[0]] == ["Message 37.", "Message 38.", "Message 39."]


def test_a_streamed_completion_sends_checked_words_then_citations(crossing) -> None:
    a, _ = crossing()
    with client_for(a).stream(
        "POST", "/v1/chat/completions", json=ask_body(stream=True, stream_options={"include_usage": True})
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    last = next(c for c in reversed(chunks) if c["choices"])
    assert last["choices"][0]["finish_reason"] == "stop" and "35 minutes [" in text
    assert any("35 minutes" in c["quote"] for c in last["citations"]) and last["refused"] is False
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_a_refusal_is_a_normal_reply_marked_refused(ferry) -> None:
    a, _ = ferry(["I don't know."])
    body = client_for(a).post("/v1/chat/completions", json=ask_body("What is the capital of Peru?")).json()
    assert body["refused"] is True and body["refusal_reason"]
    assert body["choices"][0]["message"]["content"] and body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), 400, "invalid_request"),
        (json.dumps(ask_body() | {"model": "gpt-4o"}).encode(), 404, "model_not_found"),
        (json.dumps(ask_body() | {"messages": []}).encode(), 400, "invalid_request"),
        (json.dumps(ask_body() | {"n": 2}).encode(), 400, "unsupported_n"),
        (json.dumps(ask_body("Why?\x00")).encode(), 400, "invalid_question"),
        (
            json.dumps(ask_body() | {"messages": [{"role": "assistant", "content": "Hi."}]}).encode(),
            400,
            "no_question",
        ),
        (json.dumps(ask_body() | {"messages": [{"role": "tool", "content": "x"}]}).encode(), 400, "unsupported_role"),
        (
            json.dumps(
                ask_body() | {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}
            ).encode(),
            400,
            "unsupported_content",
        ),
        (json.dumps(ask_body(filters={"since": "soon"})).encode(), 400, "invalid_filters"),
        (json.dumps(ask_body("x" * 300_000)).encode(), 413, "body_too_large"),
    ],
)
def test_bad_requests_are_openai_errors(crossing, body: bytes, status: int, code: str) -> None:
    a, llm = crossing()
    response = client_for(a).post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"] == "invalid_request_error"
    assert llm.history == []


def test_a_chunked_body_over_the_limit_is_refused(crossing) -> None:
    a, _ = crossing(api_max_body_kb=1)
    payload = json.dumps(ask_body("x" * 4000)).encode()
    response = client_for(a).post(
        "/v1/chat/completions",
        content=iter([payload[:1000], payload[1000:]]),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_a_failing_model_is_a_503_that_says_why(ferry) -> None:
    def broken(messages: list[BaseMessage]) -> str:
        raise LLMUnavailableError("The LLM at http://127.0.0.1:9/v1 did not answer within 1 s: start it.")

    a, _ = ferry(broken)
    client = client_for(a)
    response = client.post("/v1/chat/completions", json=ask_body())
    assert response.status_code == 503 and response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["code"] == "llm_unavailable"
    assert "did not answer within 1 s" in response.json()["error"]["message"]
    with client.stream("POST", "/v1/chat/completions", json=ask_body(stream=True)) as streamed:
        events = sse_events(streamed.read().decode())
    assert events[-1] == "[DONE]" and events[-2]["error"]["code"] == "llm_unavailable"
    assert not any(c.get("choices") and c["choices"][0]["delta"].get("content") for c in events[:-2])


def test_a_busy_assistant_is_a_503_with_retry_after(crossing) -> None:
    a, _ = crossing()
    gate = AnswerGate(0.1)
    client = TestClient(FastAPI(routes=openai_routes(a, a.settings, gate, None)))
    with gate.hold():
        response = client.post("/v1/chat/completions", json=ask_body())
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.json()["error"]["code"] == "busy"


# --- the API key ----------------------------------------------------------------------------------


def test_with_a_key_every_endpoint_needs_it(crossing, caplog: pytest.LogCaptureFixture) -> None:
    a, llm = crossing()
    secret = "s3cret-key-for-tests"
    client = client_for(a, key=secret)
    with caplog.at_level(logging.DEBUG):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": secret}, {"Authorization": "Basic x"}):
            for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
                response = client.request(method, path, json=ask_body(), headers=headers)
                assert response.status_code == 401, (headers, path)
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json()["error"]["code"] == "invalid_api_key"
                assert secret not in response.text
        assert llm.history == []
        ok = {"Authorization": f"Bearer {secret}"}
        assert client.get("/v1/models", headers=ok).status_code == 200
        assert client.post("/v1/chat/completions", json=ask_body(), headers=ok).status_code == 200
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert secret not in repr(client.app.routes)  # type: ignore[attr-defined]


def test_a_key_is_required_beyond_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    settings = Settings(persist_dir=tmp_path / "vs", api_key_env="TEST_ASSISTANT_API_KEY")
    monkeypatch.delenv("TEST_ASSISTANT_API_KEY", raising=False)
    assert api_key_for(settings, "127.0.0.1") is None
    assert api_key_for(settings, "localhost") is None
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        with pytest.raises(ApiKeyError, match="TEST_ASSISTANT_API_KEY"):
            api_key_for(settings, host)
    monkeypatch.setenv("TEST_ASSISTANT_API_KEY", "  k3y  ")
    assert api_key_for(settings, "0.0.0.0") == "k3y"
    assert api_key_for(settings, "127.0.0.1") == "k3y"  # a key set is always required


def test_the_routes_are_not_built_beyond_loopback_without_a_key(crossing) -> None:
    a, _ = crossing(host="0.0.0.0")
    with pytest.raises(ApiKeyError, match="needs an API key"):
        openai_routes(a, a.settings, AnswerGate(1), None)
    assert openai_routes(a, a.settings, AnswerGate(1), "k3y")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("10.0.0.1", False), ("::", False), ("my-laptop", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
