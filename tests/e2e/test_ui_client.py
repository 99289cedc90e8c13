"""The chat UI through its API (gradio_client): streaming, citations, follow-ups, limits, filters, errors."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from ui_harness import (
    COUNTERPART,
    WARSAW,
    WORKING_GROUP,
    Served,
    answer_from,
    clean_settings,
    free_port,
    serving,
)

from assistant.app import Assistant
from assistant.store import StoreError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

RESULT_TIMEOUT_S = 60


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class Chat:
    """One browser-like session: the client keeps the session's state (history) on the server."""

    def __init__(self, url: str, result_timeout_s: float = RESULT_TIMEOUT_S) -> None:
        self.client = Client(url, verbose=False, httpx_kwargs={"timeout": 30})
        self.result_timeout_s = result_timeout_s
        self.chat: list[dict[str, Any]] = []
        self.outputs: list[tuple[Any, ...]] = []

    def ask(self, question: str, outlets: list[str] | None = None, since: str = "", until: str = "") -> str:
        """Ask; return the last assistant message (all streamed outputs are kept in self.outputs)."""
        job = self.client.submit(question, self.chat, outlets or [], since, until, api_name="/ask")
        final = job.result(timeout=self.result_timeout_s)
        self.outputs = [tuple(o) for o in job.outputs()]
        self.box, self.chat, self.details = final[0], final[1], final[2]
        return text_of(self.chat[-1])

    def new_chat(self) -> None:
        self.client.predict(api_name="/new_chat")
        self.chat = []

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def chat(served: Served) -> Iterator[Chat]:
    session = Chat(served.url)
    yield session
    session.close()


def test_question_gets_a_streamed_answer_with_cited_sources(served: Served, chat: Chat) -> None:
    served.llm.delay_s = 0.05
    message = chat.ask(WORKING_GROUP)

    drafts = [text_of(o[1][-1]) for o in chat.outputs[:-1]]
    assert any("ka-drafting" in d and "working group" in d for d in drafts), "the raw text streamed first"
    assert len({d for d in drafts if "working group" in d}) >= 3, "several streamed steps, not one"
    assert "ka-drafting" not in message, "the verified answer replaced the draft"
    answer = message.split('<div class="ka-sources">', 1)[0]
    assert "The working group was set up in November 2018" in answer and "[1]" in answer
    assert "ka-refusal" not in message
    # the source under the answer: outlet, date, title, and the quote marked in its passage
    assert '<span class="ka-n">[1]</span> <b>Yonhap</b> · August 19, 2020' in message
    assert "U.S., S. Korea coordinate regularly on N.K. policy: State Dept." in message
    assert "<mark>The working group was set up in November 2018" in message
    # the side panel: the question used and the passages
    assert "Question used for search:</b> " + html.escape(WORKING_GROUP) in chat.details
    assert chat.details.count('<div class="ka-passage">') >= 1
    assert chat.box == ""


def test_follow_up_uses_the_history(served: Served, chat: Chat) -> None:
    chat.ask(WORKING_GROUP)
    message = chat.ask("And who is Lee Do-hoon's counterpart there?")

    assert served.director is not None
    (rewrite,) = served.director.rewrites
    assert WORKING_GROUP in rewrite and "November 2018" in rewrite, "both earlier turns reach the model"
    assert "Stephen Biegun" in message and "<mark>" in message
    assert "Question used for search:</b> " + html.escape(COUNTERPART) in chat.details
    assert [m["role"] for m in chat.chat] == ["user", "assistant", "user", "assistant"]


def test_new_chat_forgets_the_history(served: Served, chat: Chat) -> None:
    chat.ask(WORKING_GROUP)
    chat.new_chat()
    chat.ask(COUNTERPART)
    assert served.director is not None
    assert served.director.rewrites == [], "no history, no rewrite"


def test_stop_ends_the_answer_without_showing_it(served: Served, chat: Chat) -> None:
    served.llm.delay_s = 0.3
    job = chat.client.submit(WORKING_GROUP, [], [], "", "", api_name="/ask")
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    while not any("The working group" in text_of(o[1][-1]) for o in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), "no streamed text to stop"
        time.sleep(0.05)
    chat.client.predict(api_name="/stop")
    final = job.result(timeout=RESULT_TIMEOUT_S)
    message = text_of(final[1][-1])
    assert "Stopped" in message and "ka-drafting" not in message and "November" not in message

    served.llm.delay_s = 0.0
    assert "November 2018" in chat.ask(WORKING_GROUP)
    assert served.director is not None and served.director.rewrites == [], "a stopped turn is not in the history"


def test_over_long_question_is_refused_before_the_model(served: Served, chat: Chat) -> None:
    limit = served.settings.max_question_chars
    question = "Why? " * (limit // 5 + 1)
    message = chat.ask(question)

    assert "Question not sent" in message
    assert f"the limit is {limit:,}" in message
    assert served.director is not None and served.director.prompts == []
    assert chat.box == question, "the question stays in the box to be shortened"
    assert len(text_of(chat.chat[-2])) < 400, "the echoed question is shortened"


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("yesterday", "", "is not in the form YYYY-MM-DD"),
        ("2020-02-30", "", "does not exist"),
        ("2021-01-01", "2020-01-01", "is after the 'until' date"),
    ],
)
def test_bad_dates_get_a_clear_message(served: Served, chat: Chat, since: str, until: str, expected: str) -> None:
    message = chat.ask(WORKING_GROUP, since=since, until=until)
    assert "Check the date filter" in message and expected in html.unescape(message)
    assert served.director is not None and served.director.prompts == []


def test_filters_reach_retrieval(served: Served, chat: Chat) -> None:
    message = chat.ask(WORKING_GROUP, outlets=["Xinhua"])
    assert "Yonhap" not in message
    assert "<b>Xinhua</b>" in chat.details and "<b>Yonhap</b>" not in chat.details
    assert "outlets Xinhua" in chat.details

    message = chat.ask(WORKING_GROUP, since="2018-01-01", until="2018-12-31")
    assert "<b>Yonhap</b>" not in chat.details and "<b>The Korea Times</b>" in chat.details


PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def assert_inert(chat: Chat) -> None:
    for output in chat.outputs:
        for m in output[1]:
            text = text_of(m)
            assert "<script" not in text and "<img" not in text and "192.0.2.1" not in text, text
        assert "<script" not in output[2] and "<img" not in output[2]


def test_html_in_the_question_is_escaped(served: Served, chat: Chat) -> None:
    chat.ask(f"When was the working group set up? {PAYLOAD}")
    assert_inert(chat)
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in text_of(chat.chat[0])
    assert "&lt;script&gt;" in chat.details


def test_html_and_images_in_the_model_output_are_escaped(served: Served, chat: Chat) -> None:
    assert served.director is not None
    served.director.queued.append(lambda prompt: answer_from(prompt, f" Note: {PAYLOAD} ![t](http://192.0.2.1/t.png)"))
    served.llm.delay_s = 0.02
    message = chat.ask(WORKING_GROUP)
    assert_inert(chat)
    drafts = [text_of(o[1][-1]) for o in chat.outputs]
    assert any("&lt;script&gt;window.__pwned=1&lt;/script&gt;" in d for d in drafts), "shown as text while drafting"
    assert "ka-refusal" not in message and "November 2018" in message
    assert "pwned" not in message, "the unsupported sentence was dropped"


def test_backend_down_is_a_readable_message(served: Served, chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    assert served.director is not None
    served.director.queued.append(ConnectionError("Connection refused"))
    with caplog.at_level(logging.ERROR, logger="assistant.ui"):
        message = chat.ask(WORKING_GROUP)
    assert "ka-error" in message and "The language model is not available" in message
    assert "Traceback" not in message
    assert any(r.exc_info for r in caplog.records), "the traceback goes to the server log"
    assert len(chat.chat) == 2

    message = chat.ask(WORKING_GROUP)
    assert "November 2018" in message, "the next question works"
    assert served.director.rewrites == [], "the failed turn is not in the history"


@pytest.mark.parametrize(
    ("error", "label", "hidden"),
    [
        (StoreError("Chroma at http://127.0.0.1:8000 did not answer: start it."), "index is not available", None),
        (RuntimeError("internal detail 0xdeadbeef"), "Something went wrong", "0xdeadbeef"),
    ],
)
def test_store_and_unexpected_errors_are_readable(
    served: Served,
    chat: Chat,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    label: str,
    hidden: str | None,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(served.assistant.retriever, "search", broken)
    with caplog.at_level(logging.ERROR, logger="assistant.ui"):
        message = chat.ask(WORKING_GROUP)
    assert "ka-error" in message and label in message and "Traceback" not in message
    if hidden:
        assert hidden not in message and "RuntimeError" in message
    else:
        assert "did not answer: start it." in message
    assert any(r.exc_info and r.exc_info[1] is error for r in caplog.records)


def test_outlets_come_from_the_index(served: Served) -> None:
    client = Client(served.url, verbose=False)
    try:
        api = client.view_api(return_format="dict", print_info=False)
    finally:
        client.close()
    (outlets,) = [p for p in api["named_endpoints"]["/ask"]["parameters"] if p["parameter_name"] == "outlets"]
    assert outlets["type"]["items"]["enum"] == [
        "NationPress",
        "The Korea Herald (via Pan Pacific Agency)",
        "The Korea Times",
        "Xinhua",
        "Yonhap",
    ]


# --- the real embedded model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The UI on the default settings (MiniLM, the embedded Qwen model), with the index in a temp folder."""
    tmp: Path = tmp_path_factory.mktemp("real")
    settings = clean_settings(persist_dir=tmp / "vs", feedback_path=tmp / "feedback.jsonl", port=free_port())
    assistant = Assistant.from_settings(settings)
    with serving(assistant, settings, assistant.llm, None) as served:
        yield served


@pytest.mark.timeout(600)
def test_real_model_streams_cited_answers_and_follow_ups(real_app: Served) -> None:
    chat = Chat(real_app.url, result_timeout_s=180)  # ~10-25 s a question on 2 busy cores
    try:
        message = chat.ask(WORKING_GROUP)
        drafts = [text_of(o[1][-1]) for o in chat.outputs[:-1]]
        assert sum("ka-drafting" in d for d in drafts) >= 3, "the answer streamed"
        assert "November 2018" in message and "[1]" in message and "<mark>" in message, message
        assert "<b>Yonhap</b>" in message

        chat.new_chat()
        message = chat.ask(WARSAW)
        assert "Warsaw" in message and "<b>Xinhua</b>" in message, chat.details

        message = chat.ask("What did they discuss there?")
        standalone = chat.details.split("Question used for search:</b>", 1)[1].split("</p>", 1)[0]
        assert "Pompeo" in standalone or "Kang" in standalone, "the follow-up was read with the history"
        assert "ka-refusal" not in message and "denuclearization" in message, chat.details

        message = chat.ask("x" * (real_app.settings.max_question_chars + 1))
        assert "Question not sent" in message
    finally:
        chat.close()
