"""Serving the chat UI for end-to-end tests: a scripted (optionally slow) model, a seeded index, a free port.

`serving()` always closes the server and the assistant, and checks that the port is free again.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from pydantic import Field

from assistant.app import Assistant
from assistant.config import Settings
from assistant.llm import ScriptedChatModel
from assistant.ui import build_app, launch

# Debian's chromium (Playwright's own browser download does not work offline), headless, no network of its own
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT_MS = 20_000

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS = REPO_ROOT / "seeds"
ARTIFACTS = REPO_ROOT / "test-artifacts"

WORKING_GROUP = "When was the U.S.-South Korea working group set up?"
COUNTERPART = "Who is Lee Do-hoon's U.S. counterpart?"
WARSAW = "Where did Pompeo and Kang Kyung-wha meet in February 2019?"

# needle in a prompt passage -> the sentence the fake model writes, citing that passage
FACTS = (
    ("set up in November", "The working group was set up in November 2018"),
    ("counterpart Stephen Biegun", "Lee Do-hoon's U.S. counterpart is Stephen Biegun"),
    ("Kang Kyung-wha in Warsaw", "Pompeo held talks with Kang Kyung-wha in Warsaw"),
)
REWRITES = (("counterpart", COUNTERPART), ("meet", WARSAW), ("set up", WORKING_GROUP))


def passage_number(prompt: str, needle: str) -> int | None:
    """The [n] of the prompt passage that contains `needle`, if any."""
    for line in prompt.splitlines():
        m = re.match(r"\[(\d+)\] ", line)
        if m and needle in line:
            return int(m.group(1))
    return None


Reply = str | BaseException | Callable[[str], str]


@dataclass
class Director:
    """The fake model's script: answers from the passages it is shown; tests can queue answers or failures.

    Rewrite prompts (follow-ups) are answered from REWRITES and never take a queued reply.
    """

    queued: list[Reply] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)

    def __call__(self, messages: list[BaseMessage]) -> str:
        prompt = str(messages[-1].content)
        self.prompts.append(prompt)
        if "Follow-up question:" in prompt:
            follow_up = prompt.rsplit("Follow-up question:", 1)[1]  # the last one: the prompt has an example
            return next((q for word, q in REWRITES if word in follow_up), follow_up.strip())
        if self.queued:
            reply = self.queued.pop(0)
            if isinstance(reply, BaseException):
                raise reply
            return reply(prompt) if callable(reply) else reply
        return answer_from(prompt)

    @property
    def rewrites(self) -> list[str]:
        return [p for p in self.prompts if "Follow-up question:" in p]


def answer_from(prompt: str, extra: str = "") -> str:
    """The fact sentences whose passage is in the prompt, cited; 'I don't know.' when none is."""
    question = prompt.rsplit("Question:", 1)[-1]
    for needle, sentence in FACTS:
        n = passage_number(prompt, needle)
        if n is not None and any(w in question for w in ("set up", "counterpart", "meet")):
            return f"{sentence} [{n}].{extra}"
    return "I don't know."


class SlowScriptedChatModel(ScriptedChatModel):
    """ScriptedChatModel that waits `delay_s` between streamed words, so streaming and Stop can be seen."""

    delay_s: float = Field(default=0.0, ge=0, description="Seconds between streamed words.")

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in super()._stream(messages, stop, run_manager, **kwargs):
            if self.delay_s and chunk.message.content:
                time.sleep(self.delay_s)
            yield chunk


@dataclass
class Served:
    """A running chat UI and what is behind it."""

    url: str
    app: gr.Blocks
    assistant: Assistant
    settings: Settings
    llm: Any
    director: Director | None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def clean_settings(**values: Any) -> Settings:
    """Settings from the given values and defaults only: no ASSISTANT_* variable, no assistant.toml."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ASSISTANT_"):
                mp.delenv(name)
        mp.setitem(Settings.model_config, "toml_file", Path(values["persist_dir"]) / "no-assistant.toml")
        return Settings(**values)


@contextmanager
def serving(assistant: Assistant, settings: Settings, llm: Any, director: Director | None) -> Iterator[Served]:
    """Index the seeds, build the app, serve it on settings.port; always close the server and the assistant."""
    app: gr.Blocks | None = None
    try:
        assistant.ingest([SEEDS], progress=False)
        assistant.warm()
        app = build_app(assistant, settings)
        url = launch(app, settings)
        yield Served(url, app, assistant, settings, llm, director)
    finally:
        if app is not None:
            app.close()
        assistant.close()
        deadline = time.monotonic() + 10
        while port_is_open(settings.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not port_is_open(settings.port), f"the server on port {settings.port} is still listening"


@contextmanager
def fake_server(tmp: Path, **settings: Any) -> Iterator[Served]:
    """The UI on a fake embedder and the scripted model, over the seeds indexed in `tmp`."""
    values: dict[str, Any] = {
        "persist_dir": tmp / "vs",
        "embedding": "fake:64",
        "feedback_path": tmp / "feedback.jsonl",
        "port": free_port(),
    }
    values.update(settings)
    config = clean_settings(**values)
    director = Director()
    llm = SlowScriptedChatModel(script=director)
    assistant = Assistant.from_settings(config, llm=llm)
    with serving(assistant, config, llm, director) as served:
        yield served
