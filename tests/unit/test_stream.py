"""The streamed answer's first event, Sources: the passages the model is about to read, shown before its first
word: in the stream's order, in the chat UI's draft and side panel, and in the terminal chat."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.messages import BaseMessage

from assistant import Answer, Sources, cli
from assistant.cli import main
from assistant.retrieval import Passage
from assistant.ui import build_app, format_draft

SET_UP = "When was the joint ferry committee set up?"
PASSENGERS = "How many passengers does the Kittiwake carry?"


def prompt_passages(messages: list[BaseMessage]) -> list[str]:
    """The passage lines ('[n] (outlet, date) text') of the prompt the model was given."""
    return [line for line in str(messages[-1].content).splitlines() if re.match(r"\[\d+\] \(", line)]


def set_up_reply(passage_number: Callable[[list[BaseMessage], str], int]) -> Callable[[list[BaseMessage]], str]:
    return lambda m: f"The joint ferry committee was set up in March 2019 [{passage_number(m, 'set up in March')}]."


def sources_of(a: Any, question: str) -> Sources:
    """The first event of `a.stream(question)`; the stream is closed before the model is called."""
    parts = a.stream(question)
    try:
        first = next(parts)
    finally:
        parts.close()
    assert isinstance(first, Sources)
    return first


def passage(n: int, title: str, outlet: str, published: str) -> Passage:
    return Passage(f"p{n}", "The dam council approved the plan.", f"doc{n}.txt", title, outlet, published, 0, 34)


# --- the stream ---------------------------------------------------------------------------------


def test_sources_come_first_and_hold_the_passages_in_the_prompt(ferry, passage_number) -> None:
    events: list[object] = []
    seen_by_the_model: list[list[object]] = []
    reply = set_up_reply(passage_number)

    def script(messages: list[BaseMessage]) -> str:
        seen_by_the_model.append(list(events))  # what the stream had given out when the model was called
        return reply(messages)

    a, llm = ferry(script)
    for part in a.stream(SET_UP):
        events.append(part)
    sources, *deltas, final = events
    assert isinstance(sources, Sources)
    assert (sources.question, sources.standalone_question) == (SET_UP, SET_UP)
    assert seen_by_the_model == [[sources]]  # out before the model was called, and nothing else was
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert "".join(d for d in deltas if isinstance(d, str)).startswith("The joint ferry committee was set up")
    assert isinstance(final, Answer) and final.final and not final.refused and "March 2019" in final.text

    lines = prompt_passages(llm.history[0])
    assert len(lines) == len(sources.passages) > 0
    for n, (line, p) in enumerate(zip(lines, sources.passages, strict=True), 1):
        assert line.startswith(f"[{n}] ({p.outlet}, {p.published}) ")  # numbered as the model reads them
        assert " ".join(p.text.split()) in line


@pytest.mark.parametrize("question", ["", "   ", "too long " * 400], ids=["empty", "blank", "too-long"])
def test_a_question_refused_before_search_still_starts_with_empty_sources(ferry, question: str) -> None:
    a, llm = ferry(["never used"])
    assert len(question) > a.settings.max_question_chars or not question.strip()
    sources, final = list(a.stream(question))
    assert isinstance(sources, Sources) and sources.passages == [] and sources.question == question.strip()
    assert isinstance(final, Answer) and final.final and final.refused
    assert llm.history == []


def test_a_refusal_by_the_model_starts_with_the_passages_it_read(ferry) -> None:
    a, llm = ferry(["I don't know."])
    sources, *deltas, final = list(a.stream(PASSENGERS))
    assert isinstance(sources, Sources) and sources.passages
    assert any("Kittiwake" in p.text for p in sources.passages)
    assert "".join(d for d in deltas if isinstance(d, str)) == "I don't know."
    assert isinstance(final, Answer) and final.refused
    assert len(prompt_passages(llm.history[0])) == len(sources.passages)


# --- the terminal chat --------------------------------------------------------------------------


def test_cli_chat_prints_the_sources_before_the_models_words(
    ferry, passage_number, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, llm = ferry(set_up_reply(passage_number))
    sources = sources_of(a, SET_UP)
    monkeypatch.setattr(cli, "_open", lambda settings=None: a)
    result = CliRunner().invoke(main, ["chat"], input=f"{SET_UP}\nexit\n")
    assert result.exit_code == 0, result.output
    listed = "".join(f"  [{n}] {p.outlet}, {p.published} — {p.title}\n" for n, p in enumerate(sources.passages, 1))
    n = passage_number(llm.history[-1], "set up in March")
    count = len(sources.passages)
    expected = (
        f"Reading {count} passage{'' if count == 1 else 's'}:\n{listed}"
        f"assistant> The joint ferry committee was set up in March 2019 [{n}].\n\nChecked answer:\n"
    )
    assert expected in result.output
    assert "[1] Island Post, 2022-05-20 — Mayor wants" in listed  # outlet, date and title, as the index has them


# --- the chat UI --------------------------------------------------------------------------------


def test_the_draft_lists_the_sources_escaped_and_keeps_them_under_the_text() -> None:
    title = '<img src=x onerror="alert(1)"> Dam <b>plan</b>'
    sources = Sources("q", [passage(1, title, "<b>Ledger</b>", "2021-05-04"), passage(2, "", "", "")], "q")
    reading = format_draft("", sources)
    assert 'class="ka-drafting">Reading the passages below; the answer follows.</div>' in reading
    assert '<div class="ka-sources-title">Reading 2 passages</div>' in reading
    assert (
        '<span class="ka-n">[1]</span> <b>&lt;b&gt;Ledger&lt;/b&gt;</b> · May 4, 2021 · '
        '<span class="ka-title">&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Dam &lt;b&gt;plan&lt;/b&gt;</span>'
    ) in reading
    assert '<span class="ka-n">[2]</span> <b>Unknown outlet</b> · undated · <span class="ka-title">doc2.txt</span>' in (
        reading
    )
    assert "<img" not in reading and "<b>Ledger" not in reading

    drafting = format_draft("The council approved it <img src=x> [1].", sources)
    assert "Drafting…" in drafting and "&lt;img src=x&gt;" in drafting and "<img" not in drafting
    assert drafting.index("The council approved it") < drafting.index("Reading 2 passages")  # under the text

    assert "ka-reading" not in format_draft("", None) and "Searching the articles" in format_draft("", None)
    assert "No passages were found" in format_draft("", Sources("q")) and "ka-reading" not in format_draft(
        "", Sources("q")
    )


def test_the_chat_shows_the_sources_before_the_models_first_word(ferry, passage_number) -> None:
    drafts: list[str] = []
    panels: list[str] = []
    seen_by_the_model: list[tuple[list[str], list[str]]] = []
    reply = set_up_reply(passage_number)

    def script(messages: list[BaseMessage]) -> str:
        seen_by_the_model.append((list(drafts), list(panels)))
        return reply(messages)

    a, llm = ferry(script)
    app = build_app(a, a.settings)
    answer_turn = next(f.fn for f in app.fns.values() if f.api_name == "ask")
    control = {"stop": False, "discard": False}
    update: Any
    for update in answer_turn(SET_UP, [], [], {}, [], "", "", control):
        drafts.append(update[1][-1]["content"])
        if isinstance(update[4], str):
            panels.append(update[4])
    prompt = llm.history[0]
    sources = sources_of(a, SET_UP)

    (shown, panel), *_ = seen_by_the_model
    before = shown[-1]  # the chat message when the model was called
    count = len(prompt_passages(prompt))
    reading = f"Reading {count} passage{'' if count == 1 else 's'}</div>"
    assert count == len(sources.passages) > 0
    assert "ka-drafting" in before and reading in before and "Drafting…" not in before
    for n, p in enumerate(sources.passages, 1):
        assert f'<span class="ka-n">[{n}]</span> <b>{p.outlet}</b> · ' in before
        assert f"({p.outlet}, {p.published})" in prompt_passages(prompt)[n - 1]
    assert "set up in March 2019 [" not in before
    assert "<b>Question used for search:</b> " + SET_UP in panel[-1]
    assert f"<b>Passages the model is reading ({count}):</b>" in panel[-1]
    assert "<mark>" not in panel[-1]  # nothing checked yet

    writing = [d for d in drafts if "Drafting…" in d]
    assert writing and all(d.index("▍") < d.index(reading) for d in writing)  # under the text
    assert "The joint ferry committee was set up in March 2019 [" in writing[-1]
    final = drafts[-1]
    assert "set up in March 2019" in final and 'class="ka-sources"' in final
    assert "ka-drafting" not in final and "ka-reading" not in final  # the checked answer replaced the draft
    assert "<mark>" in panels[-1]  # the side panel now marks the quotes the answer kept
