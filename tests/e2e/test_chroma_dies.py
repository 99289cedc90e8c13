"""A Chroma server that dies under the served app: every door gives a message, then all recovers when it is back.

A real `chroma run` on a loopback port holds the seeds; the app is served over real HTTP with the scripted
model and asked through gradio_client (/answer and the chat's /ask) and the real `openai` client (/v1). The
server is killed (SIGKILL) mid-session, and later started again on the same port from the same folder.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from gradio_client import Client
from ui_harness import SEEDS, WORKING_GROUP, Director, SlowScriptedChatModel, clean_settings, free_port

from assistant.api import AnswerGate
from assistant.app import Assistant
from assistant.openai_api import openai_routes
from assistant.store import Store
from assistant.ui import build_app, launch

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

CHROMA = Path(sys.executable).with_name("chroma")


@dataclass
class Chroma:
    """`chroma run` on one loopback port; start() again reuses the port and the data folder."""

    path: Path
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"chroma run gave no heartbeat in 30 s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class App:
    url: str
    chroma: Chroma
    assistant: Assistant


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    assert CHROMA.exists(), f"{CHROMA} is missing: install chromadb into the virtualenv"
    chroma = Chroma(tmp_path / "chroma-data", tmp_path / "chroma.log", free_port())
    chroma.start()
    settings = clean_settings(
        persist_dir=tmp_path / "unused",
        chroma_url=chroma.url,
        embedding="fake:64",
        feedback_path=tmp_path / "feedback.jsonl",
        port=free_port(),
    )
    assistant = Assistant.from_settings(settings, llm=SlowScriptedChatModel(script=Director()))
    page = None
    try:
        assistant.ingest([SEEDS], progress=False)
        gate = AnswerGate(settings.api_queue_timeout_s)
        page = build_app(assistant, settings, gate)
        url = launch(page, settings, routes=openai_routes(assistant, settings, gate, None))
        yield App(url, chroma, assistant)
    finally:
        if page is not None:
            page.close()
        assistant.close()
        chroma.kill()


def ask_all(app: App) -> tuple[dict, str, openai.APIStatusError | str]:  # type: ignore[type-arg]
    """(/answer data, the chat's last message, the /v1 reply or its error) for one question."""
    client = Client(app.url, verbose=False)
    try:
        data = client.predict(WORKING_GROUP, [], None, api_name="/answer")
        chat = client.predict(WORKING_GROUP, [], [], "", "", api_name="/ask")[1]
    finally:
        client.close()
    v1 = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0, timeout=30)
    try:
        reply: openai.APIStatusError | str = (
            v1.chat.completions.create(
                model="korea-coordination-assistant", messages=[{"role": "user", "content": WORKING_GROUP}]
            )
            .choices[0]
            .message.content
            or ""
        )
    except openai.APIStatusError as exc:
        reply = exc
    return data, str(chat[-1]["content"]), reply


def test_a_chroma_server_that_dies_is_a_message_on_every_door_and_the_next_session_recovers(app: App) -> None:
    data, chat, reply = ask_all(app)
    assert data["error"] is None and "November 2018" in data["answer"]
    assert "November 2018" in chat
    assert isinstance(reply, str) and "November 2018" in reply

    app.chroma.kill()
    data, chat, reply = ask_all(app)

    said = f"Chroma at {app.chroma.url} did not answer"
    assert data["answer"] == "" and data["error"]["code"] == "index_unavailable"
    assert data["error"]["message"].startswith(said), data["error"]
    assert "check that `chroma run` is still running there" in data["error"]["message"]
    assert "The article index is not available" in chat and said in chat
    assert "Traceback" not in chat
    assert isinstance(reply, openai.APIStatusError), reply
    assert reply.status_code == 503 and said in str(reply.body), reply.body

    app.chroma.start()  # back, on the same port, from the same folder
    data, chat, reply = ask_all(app)
    assert data["error"] is None and "November 2018" in data["answer"], data
    assert "November 2018" in chat
    assert isinstance(reply, str) and "November 2018" in reply
    with Store(app.assistant.settings, app.assistant.store.embeddings) as store:  # a new session
        assert sorted(store.documents()) == sorted(r.source for r in app.assistant.documents())
        assert store.count() > 0
