"""The two APIs of a served app, over real HTTP on a loopback port: the OpenAI-compatible /v1 with the real
`openai` client (streamed and not), Gradio's /answer with gradio_client, a client that goes away mid-stream,
and `assistant serve` itself in a subprocess (the API key, a non-loopback host). A scripted, slowed model over
the unit tests' ferry corpus (tests/unit/fixtures/ferry)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from gradio_client import Client
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from pydantic import Field
from ui_harness import clean_settings, free_port, passage_number, port_is_open

from assistant.api import AnswerGate
from assistant.app import Assistant
from assistant.llm import ScriptedChatModel
from assistant.openai_api import openai_routes
from assistant.ui import build_app, launch

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

REPO_ROOT = Path(__file__).resolve().parents[2]
FERRY = REPO_ROOT / "tests" / "unit" / "fixtures" / "ferry"
ASSISTANT_BIN = Path(sys.executable).with_name("assistant")

CROSSING = "How long does the ferry crossing take?"
LEADER = "Who leads the ferry committee for the Tarn Island council?"
COUNTERPART = "Who is his counterpart on the committee?"
COUNTERPART_STANDALONE = "Who is Oskar Vell's counterpart on the ferry committee?"
FACTS = (
    ("crossing takes 35 minutes", "The crossing takes 35 minutes"),
    ("counterpart on the committee is deputy mayor Rune Sand", "Vell's counterpart is deputy mayor Rune Sand"),
)


def script(messages: list[BaseMessage]) -> str:
    """Answer from the passage that holds the fact; rewrite the follow-up; else 'I don't know.'"""
    prompt = str(messages[-1].content)
    if "Follow-up question:" in prompt:
        return COUNTERPART_STANDALONE
    for needle, sentence in FACTS:
        n = passage_number(prompt, needle)
        if n is not None:
            return f"{sentence} [{n}]."
    return "I don't know."


class SlowModel(ScriptedChatModel):
    """The scripted model, `delay_s` between streamed words, counting the words it sent."""

    delay_s: float = Field(default=0.0, ge=0)
    sent: list[str] = Field(default_factory=list)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in super()._stream(messages, stop, run_manager, **kwargs):
            if chunk.message.content:
                time.sleep(self.delay_s)
                self.sent.append(str(chunk.message.content))
            yield chunk


@dataclass
class Server:
    url: str
    assistant: Assistant
    model: SlowModel
    gate: AnswerGate
    model_name: str
    calls: list[str] = field(default_factory=list)

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="unused-on-loopback", max_retries=0, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("api")
    settings = clean_settings(
        persist_dir=tmp / "vs", embedding="fake:256", port=free_port(), feedback_path=tmp / "feedback.jsonl"
    )
    model = SlowModel(script=script)
    assistant = Assistant.from_settings(settings, llm=model)
    app = None
    try:
        assistant.ingest([FERRY], progress=False)
        assistant.warm()
        gate = AnswerGate(settings.api_queue_timeout_s)
        app = build_app(assistant, settings, gate)
        url = launch(app, settings, routes=openai_routes(assistant, settings, gate, None))
        yield Server(url, assistant, model, gate, settings.api_model_name)
    finally:
        if app is not None:
            app.close()
        assistant.close()
        deadline = time.monotonic() + 10
        while port_is_open(settings.port) and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture
def served(server: Server) -> Iterator[Server]:
    server.model.delay_s = 0.0
    server.model.sent.clear()
    yield server
    server.model.delay_s = 0.0


# --- the OpenAI-compatible API with the openai client ---------------------------------------------


def test_the_openai_client_lists_the_model(served: Server) -> None:
    models = served.openai().models.list()
    assert [m.id for m in models.data] == [served.model_name]
    assert served.openai().models.retrieve(served.model_name).id == served.model_name


def test_the_openai_client_gets_a_cited_answer(served: Server) -> None:
    completion = served.openai().chat.completions.create(
        model=served.model_name, messages=[{"role": "user", "content": CROSSING}]
    )
    text = completion.choices[0].message.content or ""
    assert re.search(r"35 minutes \[\d\]", text) and completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra or {}
    cited = {c["n"]: c for c in extra["citations"]}
    n = int(re.search(r"35 minutes \[(\d)\]", text).group(1))  # type: ignore[union-attr]
    assert "crossing takes 35 minutes" in cited[n]["quote"]
    assert cited[n]["source"] == "ferry_2019_committee.txt" and cited[n]["published"] == "2019-03-14"
    assert extra["refused"] is False and extra["timings"]["total_s"] > 0
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_the_openai_client_streams_the_checked_answer_and_its_citations(served: Server) -> None:
    served.model.delay_s = 0.02
    chunks = list(
        served.openai().chat.completions.create(
            model=served.model_name,
            messages=[{"role": "user", "content": CROSSING}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert re.search(r"35 minutes \[\d\]", text)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3, "the text comes in pieces"
    last = next(c for c in reversed(chunks) if c.choices)
    assert last.choices[0].finish_reason == "stop"
    assert any("crossing takes 35 minutes" in c["quote"] for c in (last.model_extra or {})["citations"])
    assert chunks[-1].usage is not None and not chunks[-1].choices


def test_a_follow_up_through_the_openai_client(served: Server) -> None:
    completion = served.openai().chat.completions.create(
        model=served.model_name,
        messages=[
            {"role": "user", "content": LEADER},
            {"role": "assistant", "content": "Councillor Oskar Vell leads the committee for the island [1]."},
            {"role": "user", "content": COUNTERPART},
        ],
    )
    extra = completion.model_extra or {}
    assert extra["standalone_question"] == COUNTERPART_STANDALONE
    assert "Rune Sand" in (completion.choices[0].message.content or "")


def test_openai_errors_reach_the_client_as_errors(served: Server) -> None:
    client = served.openai()
    with pytest.raises(openai.NotFoundError, match="does not exist here"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": CROSSING}])
    with pytest.raises(openai.BadRequestError, match="control character"):
        client.chat.completions.create(model=served.model_name, messages=[{"role": "user", "content": "Why\x00?"}])
    with pytest.raises(openai.BadRequestError, match="last message must be the user's question"):
        client.chat.completions.create(model=served.model_name, messages=[{"role": "assistant", "content": "Hi"}])


def test_a_client_that_leaves_mid_stream_does_not_hold_up_the_next(served: Server) -> None:
    served.model.delay_s = 0.3  # about 2 s for the whole answer
    response = httpx.post(
        served.url + "/v1/chat/completions",
        json={"model": served.model_name, "messages": [{"role": "user", "content": CROSSING}], "stream": True},
        timeout=10,
    )
    assert response.status_code == 200  # (httpx.post reads the whole stream: a baseline)
    served.model.sent.clear()
    with (
        httpx.Client(timeout=10) as raw,
        raw.stream(
            "POST",
            served.url + "/v1/chat/completions",
            json={"model": served.model_name, "messages": [{"role": "user", "content": CROSSING}], "stream": True},
        ) as stream,
    ):
        first = next(stream.iter_lines())
        assert first.startswith("data: ") and '"role": "assistant"' in first
        deadline = time.monotonic() + 5
        while not served.model.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served.model.sent, "the model had started writing"
    # the client is gone: its answer stops at the model's next word and the gate opens
    deadline = time.monotonic() + 5
    while served.gate._lock.locked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not served.gate._lock.locked(), "the abandoned answer still holds the assistant"
    words_of_abandoned = len(served.model.sent)
    assert words_of_abandoned < 6, served.model.sent  # it did not run to its end (7 words)
    served.model.delay_s = 0.0
    started = time.monotonic()
    completion = served.openai().chat.completions.create(
        model=served.model_name, messages=[{"role": "user", "content": CROSSING}]
    )
    assert "35 minutes" in (completion.choices[0].message.content or "")
    assert time.monotonic() - started < 5


def test_keep_alives_while_the_answer_is_checked_do_not_confuse_the_client(
    served: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("assistant.openai_api.KEEPALIVE_S", 0.1)
    served.model.delay_s = 0.1  # about 0.7 s of writing: several keep-alives
    body = {"model": served.model_name, "messages": [{"role": "user", "content": CROSSING}], "stream": True}
    with httpx.stream("POST", served.url + "/v1/chat/completions", json=body, timeout=10) as response:
        lines = list(response.iter_lines())
    assert sum(line.startswith(": ") for line in lines) >= 2
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"
    chunks = list(
        served.openai().chat.completions.create(
            model=served.model_name, messages=[{"role": "user", "content": CROSSING}], stream=True
        )
    )
    assert "35 minutes" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_question_waits_for_the_one_before_it(served: Server) -> None:
    served.model.delay_s = 0.1
    results: list[str] = []

    def ask() -> None:
        c = served.openai().chat.completions.create(
            model=served.model_name, messages=[{"role": "user", "content": CROSSING}]
        )
        results.append(c.choices[0].message.content or "")

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2 and all("35 minutes" in r for r in results)


# --- Gradio's /answer with gradio_client ----------------------------------------------------------


@pytest.fixture
def gradio(served: Server) -> Iterator[Client]:
    client = Client(served.url, verbose=False, httpx_kwargs={"timeout": 30})
    yield client
    client.close()


def test_answer_endpoint_returns_the_answer_as_data(gradio: Client) -> None:
    data = gradio.predict(CROSSING, [], {}, api_name="/answer")
    assert data["error"] is None and data["refused"] is False
    assert re.search(r"35 minutes \[\d\]", data["answer"])
    assert any("crossing takes 35 minutes" in c["quote"] for c in data["citations"])
    assert {"n", "source", "outlet", "published", "title", "quote", "start", "end"} <= set(data["citations"][0])
    assert data["standalone_question"] == CROSSING and "total_s" in data["timings"]


def test_answer_endpoint_reads_history_and_filters(gradio: Client) -> None:
    history = [
        {"role": "user", "content": LEADER},
        {"role": "assistant", "content": "Councillor Oskar Vell leads the committee for the island [1]."},
    ]
    data = gradio.predict(COUNTERPART, history, None, api_name="/answer")
    assert data["standalone_question"] == COUNTERPART_STANDALONE and "Rune Sand" in data["answer"]
    only_later = gradio.predict(CROSSING, [], {"since": "2023-01-01"}, api_name="/answer")
    assert all(c["published"] >= "2023-01-01" for c in only_later["citations"])
    assert "35 minutes" not in only_later["answer"]  # the 2019 article is filtered out


@pytest.mark.parametrize(
    ("question", "filters", "refusal", "error"),
    [
        ("", None, "empty question", None),
        ("x" * 5000, None, "question too long", None),
        ("Why\x1b[2J?", None, None, "invalid_question"),
        (CROSSING, {"since": "last year"}, None, "invalid_filters"),
    ],
)
def test_answer_endpoint_bad_questions(gradio: Client, question: str, filters: Any, refusal: Any, error: Any) -> None:
    data = gradio.predict(question, [], filters, api_name="/answer")
    assert data["refusal_reason"] == refusal
    assert (data["error"] or {}).get("code") == error
    assert "Traceback" not in str(data)


# --- a broken remote backend behind every door ---------------------------------------------------


def test_a_remote_backend_that_cuts_off_is_an_error_on_every_door(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO_ROOT / "tests" / "unit"))
    try:
        from fault_llm_server import FaultServer
    finally:
        sys.path.pop(0)
    backend = FaultServer().start()
    settings = clean_settings(
        persist_dir=tmp_path / "vs",
        embedding="fake:256",
        port=free_port(),
        feedback_path=tmp_path / "feedback.jsonl",
        llm="openai-compatible",
        llm_base_url=backend.url("cut"),
        llm_model_name="fault-model",
        llm_timeout_s=2,
        llm_max_retries=0,
    )
    assistant = Assistant.from_settings(settings)
    app = None
    try:
        assistant.ingest([FERRY], progress=False)
        gate = AnswerGate(settings.api_queue_timeout_s)
        app = build_app(assistant, settings, gate)
        url = launch(app, settings, routes=openai_routes(assistant, settings, gate, None))
        client = Client(url, verbose=False, httpx_kwargs={"timeout": 30})
        try:
            # the chat page: the draft's words are replaced by the error, never shown checked
            job = client.submit(CROSSING, [], [], "", "", api_name="/ask")
            final = job.result(timeout=30)
            drafts = [str(o[1][-1]["content"]) for o in job.outputs()]
            message = str(final[1][-1]["content"])
            assert "ka-error" in message and "closed its reply in the middle of the answer" in message
            assert "ka-drafting" not in message and "ka-sources" not in message
            assert any("ka-drafting" in d for d in drafts)  # it was only ever shown as a draft
            # /answer
            data = client.predict(CROSSING, [], {}, api_name="/answer")
            assert data["answer"] == "" and data["error"]["code"] == "llm_unavailable"
        finally:
            client.close()
        # /v1, streamed: an error, none of the unfinished words
        with pytest.raises(openai.APIError, match="closed its reply"):
            for chunk in openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0).chat.completions.create(
                model=settings.api_model_name, messages=[{"role": "user", "content": CROSSING}], stream=True
            ):
                assert not (chunk.choices and chunk.choices[0].delta.content)
    finally:
        if app is not None:
            app.close()
        assistant.close()
        backend.stop()


# --- `assistant serve` itself ---------------------------------------------------------------------


def _serve_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_PERSIST_DIR=str(tmp / "vs"),
        ASSISTANT_EMBEDDING="fake:256",
        ASSISTANT_LLM="fake",
        ASSISTANT_FEEDBACK_PATH=str(tmp / "feedback.jsonl"),
        ASSISTANT_API_KEY_ENV="TEST_SERVE_API_KEY",
    )
    env.pop("TEST_SERVE_API_KEY", None)
    env.update(extra)
    return env


def test_serve_refuses_a_non_loopback_host_without_a_key(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(ASSISTANT_BIN), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=_serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "needs an API key: set $TEST_SERVE_API_KEY" in out.stderr and "Traceback" not in out.stderr


def test_serve_with_a_key_requires_it(tmp_path: Path) -> None:
    secret = "e2e-secret-" + os.urandom(8).hex()
    port = free_port()
    env = _serve_env(tmp_path, TEST_SERVE_API_KEY=secret)
    proc = subprocess.Popen(
        [str(ASSISTANT_BIN), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 45
        while not port_is_open(port) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/v1/models", timeout=10).status_code == 401
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
        good = openai.OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0)
        assert [m.id for m in good.models.list().data] == ["korea-coordination-assistant"]
        reply = good.chat.completions.create(
            model="korea-coordination-assistant", messages=[{"role": "user", "content": CROSSING}]
        )
        assert (reply.model_extra or {})["refused"] is True  # an empty index: nothing to answer from
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert "OpenAI-compatible API: http://127.0.0.1:" in output
    assert secret not in output  # never logged
