"""The Gradio chat UI: streamed, verified answers with their sources, filters, follow-ups and feedback.

`build_app(assistant, settings)` builds the page around one already built (and warmed) Assistant;
`launch(app, settings)` serves it on settings.host:settings.port. Everything shown that comes from the
model or the corpus is HTML-escaped first; the Chatbot then renders it as sanitized Markdown. The Library
tab (upload, list, remove documents) is built by assistant.ui_library.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.routing import BaseRoute

from assistant.api import AnswerGate, BusyError, answer_request, make_filters
from assistant.app import Assistant
from assistant.chain import Answer, Sources, human_date
from assistant.citations import Citation
from assistant.config import Settings
from assistant.llm import LLMUnavailableError
from assistant.retrieval import Filters, Passage
from assistant.store import StoreError
from assistant.ui_library import build_library

logger = logging.getLogger(__name__)

TITLE = "Korea Coordination Assistant"
EXAMPLES = (
    "When was the U.S.-South Korea working group set up?",
    "Who is Lee Do-hoon's U.S. counterpart?",
    "Where did Pompeo and Kang Kyung-wha meet in February 2019?",
    "What did Lee In-young propose in August 2020?",
)
QUEUE_MAX_SIZE = 20  # waiting questions beyond this are turned away with "queue full"
CONTEXT_CHARS = 260  # passage text shown on each side of a highlighted quote
DRAFT_CLASS = "ka-drafting"  # marks a chat message that is still being generated

_IMAGE = re.compile(r"!\[[^\]\n]*\]\s*(?:\([^)\n]*\)|\[[^\]\n]*\])")
_REFERENCE_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S.*$", re.MULTILINE)

SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif")
CSS = """
.ka-header h1 { margin-bottom: 0.2rem; }
.ka-header p { margin-top: 0; color: var(--body-text-color-subdued); }
#ka-chat .ka-sources, #ka-chat .ka-reading { margin-top: 0.6rem; border-top: 1px solid var(--border-color-primary);
  padding-top: 0.4rem; }
.ka-sources-title, .ka-label { font-weight: 600; font-size: 0.85em; text-transform: uppercase;
  letter-spacing: 0.04em; color: var(--body-text-color-subdued); margin-bottom: 0.3rem; }
.ka-source { margin: 0.45rem 0; }
.ka-source-head { font-size: 0.9em; }
.ka-n { font-weight: 700; color: var(--color-accent); }
.ka-title { font-style: italic; }
#ka-chat .ka-context { margin: 0.25rem 0 0 0 !important; padding: 0.35rem 0.6rem;
  border-left: 3px solid var(--color-accent); background: var(--background-fill-secondary);
  font-size: 0.88em; line-height: 1.45; }
.ka-context mark, .ka-passage mark { background: #fde68a; color: #1f2937; padding: 0 0.1em; border-radius: 2px; }
.ka-refusal { border-left: 4px solid #d97706; background: rgba(217, 119, 6, 0.08); padding: 0.5rem 0.75rem;
  border-radius: 4px; }
.ka-refusal .ka-label { color: #b45309; }
.ka-error { border-left: 4px solid #dc2626; background: rgba(220, 38, 38, 0.08); padding: 0.5rem 0.75rem;
  border-radius: 4px; }
.ka-error .ka-label { color: #b91c1c; }
.ka-notice { border-left: 4px solid #6b7280; background: rgba(107, 114, 128, 0.08); padding: 0.5rem 0.75rem;
  border-radius: 4px; }
.ka-refusal p, .ka-error p, .ka-notice p { margin: 0.2rem 0; }
.ka-drafting { font-size: 0.8em; color: var(--body-text-color-subdued); font-style: italic; }
.ka-details { font-size: 0.9em; }
.ka-passage { white-space: pre-wrap; margin: 0.2rem 0 0.6rem 0; padding: 0.35rem 0.6rem;
  background: var(--background-fill-secondary); border-radius: 4px; }
.ka-muted { color: var(--body-text-color-subdued); }
#ka-chat .progress-text { font-size: 0.9rem; font-weight: 600; color: var(--color-accent); }
"""


# --- rendering: everything from the model or the corpus is escaped here -------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def safe_markdown(text: str) -> str:
    """Model text made inert: no images (remote or not), no link definitions, no raw HTML."""
    text = _IMAGE.sub("", text)
    text = _REFERENCE_DEFINITION.sub("", text)
    return html.escape(text, quote=False).strip()


def _block(kind: str, label: str, paragraphs: Sequence[str], items: Sequence[str] = ()) -> str:
    """A labelled box (refusal, error, notice) as one line of HTML; all text is escaped."""
    body = "".join(f"<p>{_esc(p)}</p>" for p in paragraphs if p.strip())
    if items:
        body += "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>"
    return f'<div class="ka-{kind}"><div class="ka-label">{_esc(label)}</div>{body}</div>'


def notice(label: str, text: str) -> str:
    return _block("notice", label, [text])


def error_block(label: str, text: str) -> str:
    return _block("error", label, [text])


def _source_head(n: int | None, outlet: str, published: str, title: str, source: str) -> str:
    parts = [f'<span class="ka-n">[{n}]</span> ' if n is not None else ""]
    parts.append(f"<b>{_esc(outlet or 'Unknown outlet')}</b>")
    parts.append(f" · {_esc(human_date(published)) if published else 'undated'}")
    parts.append(f' · <span class="ka-title">{_esc(title or source)}</span>')
    return f'<div class="ka-source-head">{"".join(parts)}</div>'


def highlight(context: str, quote: str, width: int = CONTEXT_CHARS) -> str:
    """The quote marked inside its passage, with up to `width` characters of passage on each side."""
    at = context.find(quote) if quote else -1
    if at < 0:
        return f"<mark>{_esc(' '.join(quote.split()))}</mark>"
    before, after = context[:at], context[at + len(quote) :]
    if len(before) > width:
        cut = before[-width:]
        before = "… " + (cut.split(" ", 1)[1] if " " in cut else cut)
    if len(after) > width:
        cut = after[:width]
        after = (cut.rsplit(" ", 1)[0] if " " in cut else cut) + " …"

    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s)

    return f"{_esc(norm(before))}<mark>{_esc(' '.join(quote.split()))}</mark>{_esc(norm(after))}"


def format_sources(citations: Sequence[Citation], with_context: bool = True) -> str:
    """The numbered sources (outlet, date, title) and each quote highlighted in its passage."""
    if not citations:
        return ""
    rows = []
    for c in citations:
        row = _source_head(c.n, c.outlet, c.published, c.title, c.source)
        if c.also_reported_by:
            row += f'<div class="ka-also">Also reported by {_esc(c.also_reported_by)}</div>'
        if with_context:
            row += f'<blockquote class="ka-context">{highlight(c.context or c.quote, c.quote)}</blockquote>'
        rows.append(f'<div class="ka-source">{row}</div>')
    return f'<div class="ka-sources"><div class="ka-sources-title">Sources</div>{"".join(rows)}</div>'


def format_refusal(answer: Answer) -> str:
    """A refusal in its own styled box: its sentences, the related facts as a list, then the sources."""
    lines = [line.strip() for line in answer.text.splitlines() if line.strip()]
    paragraphs = [line for line in lines if not line.startswith("- ")]
    items = [line[2:] for line in lines if line.startswith("- ")]
    box = _block("refusal", "Not answered from the articles", paragraphs, items)
    return box + format_sources(answer.citations, with_context=False)


def format_answer(answer: Answer) -> str:
    """The chat message of a final answer: the verified text with [n] markers, then its sources."""
    if answer.refused:
        return format_refusal(answer)
    sources = format_sources(answer.citations)
    return safe_markdown(answer.text) + (f"\n\n{sources}" if sources else "")


def format_reading(sources: Sources | None) -> str:
    """The passages the model is reading, numbered as in its prompt: outlet, date and title of each."""
    if sources is None or not sources.passages:
        return ""
    rows = "".join(_source_head(n, p.outlet, p.published, p.title, p.source) for n, p in enumerate(sources.passages, 1))
    count = len(sources.passages)
    title = f"Reading {count} passage{'' if count == 1 else 's'}"
    return f'<div class="ka-reading"><div class="ka-sources-title">{title}</div>{rows}</div>'


def format_draft(streamed: str, sources: Sources | None = None) -> str:
    """The message while the model writes: its raw text so far, marked as not yet checked, and under it the
    passages it is reading (shown as soon as they are chosen, before the model's first word)."""
    reading = format_reading(sources)
    below = f"\n\n{reading}" if reading else ""
    if not streamed.strip():
        if sources is None:
            label = "Searching the articles…"
        elif sources.passages:
            label = "Reading the passages below; the answer follows."
        else:
            label = "No passages were found for this question."
        return f'<div class="{DRAFT_CLASS}">{label}</div>{below}'
    label = "Drafting… the answer is checked against the articles when it is complete."
    return f'<div class="{DRAFT_CLASS}">{label}</div>\n\n{safe_markdown(streamed)} ▍{below}'


def format_details(answer: Answer | Sources | None, filters: Filters | None = None) -> str:
    """The question used for search, the filters, and the retrieved passages, for the side panel.

    From the Sources while the model writes (the passages in its prompt); from the final Answer when it is
    checked (all the passages retrieved, the quotes it kept marked).
    """
    if answer is None:
        return '<div class="ka-details ka-muted">Ask a question to see the passages its answer was built from.</div>'
    parts = [f"<p><b>Your question:</b> {_esc(answer.question)}</p>"]
    standalone = answer.standalone_question or answer.question
    parts.append(f"<p><b>Question used for search:</b> {_esc(standalone)}</p>")
    if filters is not None and filters.active:
        parts.append(f"<p><b>Filters:</b> {_esc(describe_filters(filters))}</p>")
    if answer.passages:
        checked = answer if isinstance(answer, Answer) and not answer.refused else None
        quotes = [c.quote for c in checked.citations] if checked else []
        items = []
        for p in answer.passages:
            items.append(
                f"<li>{_source_head(None, p.outlet, p.published, p.title, p.source)}"
                f'<div class="ka-passage">{_passage_with_quotes(p, quotes)}</div></li>'
            )
        label = "Passages the model is reading" if isinstance(answer, Sources) else "Passages retrieved"
        parts.append(f"<p><b>{label} ({len(answer.passages)}):</b></p><ol>{''.join(items)}</ol>")
    else:
        parts.append("<p><b>Passages retrieved:</b> none.</p>")
    timings = answer.timings if isinstance(answer, Answer) else {}
    total = timings.get("total_s")
    if total is not None:
        first = timings.get("first_token_s")
        timing = f"Answered in {total:.1f} s" + (f" (first words after {first:.1f} s)" if first else "") + "."
        parts.append(f'<p class="ka-muted">{timing}</p>')
    return f'<div class="ka-details">{"".join(parts)}</div>'


def _passage_with_quotes(passage: Passage, quotes: Sequence[str]) -> str:
    """The passage text with the quotes it holds marked."""
    text = passage.text
    spans = sorted(
        {(i, i + len(q)) for q in quotes if q and (i := text.find(q)) >= 0},
    )
    out, at = [], 0
    for a, b in spans:
        if a < at:
            continue
        out.append(_esc(text[at:a]) + f"<mark>{_esc(text[a:b])}</mark>")
        at = b
    out.append(_esc(text[at:]))
    return "".join(out)


# --- filters ------------------------------------------------------------------------------------


def describe_filters(filters: Filters) -> str:
    parts = []
    if filters.outlets:
        parts.append("outlets " + ", ".join(filters.outlets))
    if filters.since:
        parts.append(f"since {filters.since}")
    if filters.until:
        parts.append(f"until {filters.until}")
    return "; ".join(parts) or "none"


@dataclass(frozen=True)
class IndexInfo:
    """What the index holds, for the filters and the header."""

    outlets: list[str]
    documents: int
    first: str
    last: str

    @classmethod
    def read(cls, assistant: Assistant) -> IndexInfo:
        metas = assistant.retriever.lexical_index().metas
        outlets = sorted({str(m["outlet"]) for m in metas if m.get("outlet")})
        dates = sorted(str(m["published"]) for m in metas if m.get("published"))
        documents = len({m.get("source") for m in metas})
        return cls(outlets, documents, dates[0] if dates else "", dates[-1] if dates else "")

    def summary(self) -> str:
        if not self.documents:
            return "The index is empty: run `assistant ingest seeds/` and restart."
        span = f", {human_date(self.first)} to {human_date(self.last)}" if self.first else ""
        return f"{self.documents} news articles from {len(self.outlets)} outlets{span}."


# --- feedback -----------------------------------------------------------------------------------


class FeedbackLog:
    """Appends feedback records to a JSONL file (one writer lock per app)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


def _rating(liked: Any) -> str:
    if liked is True:
        return "up"
    if liked is False:
        return "down"
    return str(liked) if liked else "withdrawn"


# --- the app ------------------------------------------------------------------------------------

STOPPED = "The answer was stopped before it was checked against the articles, so it is not shown."


def describe_failure(exc: Exception, question: str) -> tuple[str, str]:
    """(label, sentence) for the chat; the traceback goes to the server log."""
    if isinstance(exc, LLMUnavailableError):
        logger.exception("The language model failed on %r", question)
        return "The language model is not available", str(exc)
    if isinstance(exc, StoreError):
        logger.exception("The article index failed on %r", question)
        return "The article index is not available", str(exc)
    if isinstance(exc, BusyError):
        return "The assistant is busy", str(exc)
    logger.exception("Answering %r failed", question)
    return (
        "Something went wrong",
        f"The question could not be answered ({type(exc).__name__}). The details are in the server log; "
        "please try again or rephrase the question.",
    )


def _buttons(busy: bool) -> tuple[Any, Any]:
    """Updates of (Send, Stop): Stop shows while an answer is being written."""
    return gr.update(visible=not busy), gr.update(visible=busy, value="Stop", interactive=True)


Turn = dict[str, Any]  # what feedback needs to know about one assistant message


def build_app(assistant: Assistant, settings: Settings, gate: AnswerGate | None = None) -> gr.Blocks:
    """The chat page around one built Assistant; call `launch(app, settings)` to serve it.

    `gate` lets one question through at a time; give the same one to the OpenAI-compatible API served beside
    the page (assistant/openai_api.py) so that its questions and the page's wait for one another.
    """
    info = IndexInfo.read(assistant)
    gate = gate or AnswerGate(settings.api_queue_timeout_s)
    feedback = FeedbackLog(settings.feedback_path)
    limit = settings.max_question_chars

    def answer_turn(
        message: str,
        chat: list[Any] | None,
        history: list[dict[str, str]] | None,
        turns: dict[int, Turn] | None,
        outlets: list[str] | None,
        since: str | None,
        until: str | None,
        control: dict[str, bool],
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer into the chat (the passages it reads first, then the model's draft), then replace
        it with the verified answer and its sources."""
        chat, history, turns = list(chat or []), list(history or []), dict(turns or {})
        question = (message or "").strip()
        control.update(stop=False, discard=False)

        def out(box: Any, details: str | None = None, busy: bool = False) -> tuple[Any, ...]:
            shown = gr.skip() if details is None else details
            return box, chat, history, turns, shown, *_buttons(busy)

        if not question:
            yield out(message)
            return
        if len(question) > limit:
            shown = question if len(question) <= 300 else question[:300] + "…"
            chat.append({"role": "user", "content": safe_markdown(shown)})
            too_long = f"Your question is {len(question):,} characters long; the limit is {limit:,}."
            chat.append({"role": "assistant", "content": notice("Question not sent", too_long + " Please shorten it.")})
            yield out(message)  # the text stays in the box, to be shortened
            return
        chat.append({"role": "user", "content": safe_markdown(question)})
        try:
            filters = make_filters(outlets, since, until)
        except ValueError as exc:
            chat.append({"role": "assistant", "content": notice("Check the date filter", str(exc))})
            yield out(message)
            return

        chat.append({"role": "assistant", "content": format_draft("")})
        index = len(chat) - 1
        yield out("", busy=True)
        streamed = ""
        sources: Sources | None = None
        final: Answer | None = None
        parts = gate.stream(assistant, question, history, filters)
        try:
            for part in parts:
                if control.get("stop"):
                    break
                if isinstance(part, Answer):
                    final = part
                elif isinstance(part, Sources):  # first, before the model's first word: shown at once
                    sources = part
                    chat[index] = {"role": "assistant", "content": format_draft(streamed, sources)}
                    yield out("", format_details(sources, filters), busy=True)
                elif part:
                    streamed += part
                    chat[index] = {"role": "assistant", "content": format_draft(streamed, sources)}
                    yield out("", busy=True)
        except Exception as exc:
            label, text = describe_failure(exc, question)
            chat[index] = {"role": "assistant", "content": error_block(label, text)}
            turns[index] = {"question": question, "answer": "", "error": f"{label}: {text}", "citations": []}
            yield out("", format_details(None))
            return
        finally:
            close = getattr(parts, "close", None)
            if callable(close):
                close()  # on Stop: ends the chain's generation at once
        if final is None and control.get("discard"):
            return  # New chat: nothing of this answer is shown
        if final is None:
            stopped = control.get("stop")
            text = STOPPED if stopped else "No answer came back. Please try again."
            chat[index] = {
                "role": "assistant",
                "content": notice("Stopped", text) if stopped else error_block("Something went wrong", text),
            }
            yield out("", format_details(None))
            return
        chat[index] = {"role": "assistant", "content": format_answer(final)}
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": final.text}]
        turns[index] = {
            "question": question,
            "standalone_question": final.standalone_question,
            "answer": final.text,
            "refused": final.refused,
            "citations": [c.to_dict() for c in final.citations],
            "filters": describe_filters(filters),
        }
        yield out("", format_details(final, filters))

    def request_stop(control: dict[str, bool]) -> Any:
        """Stop: the running answer ends at its next streamed piece (it is never shown unchecked)."""
        control["stop"] = True
        return gr.update(value="Stopping…", interactive=False)

    def new_chat(control: dict[str, bool]) -> tuple[Any, ...]:
        control.update(stop=True, discard=True)  # a running answer ends without a word
        return [], [], {}, format_details(None), "", *_buttons(False), ""

    def rate(data: gr.LikeData, turns: dict[int, Turn] | None, comment: str | None) -> tuple[Any, ...]:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn = (turns or {}).get(int(index))
        if turn is None:
            return comment, "This message cannot be rated.", None
        record = {
            "id": uuid.uuid4().hex,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            **turn,
            "rating": _rating(data.liked),
            "comment": (comment or "").strip(),
        }
        feedback.append(record)
        logger.info("Feedback %s on %r", record["rating"], turn["question"])
        if record["rating"] == "withdrawn":
            return comment, "Rating withdrawn (saved as such).", None
        thanks = f"Thanks: your rating ({record['rating']}) is saved."
        if not record["comment"]:
            thanks += " Add a comment above and press **Send comment** if you like."
        return "", thanks, record

    def send_comment(comment: str | None, last: dict[str, Any] | None) -> tuple[Any, ...]:
        text = (comment or "").strip()
        if not text:
            return comment, "Type a comment first.", last
        if last is None:
            return comment, "Rate an answer first (thumbs up or down under it); the comment goes with it.", last
        record = {**last, "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "comment": text}
        feedback.append(record)
        return "", "Thanks: comment saved.", record

    def answer(
        question: str, history: list[dict[str, str]] | None = None, filters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Answer one question from the articles, as JSON data.

        history: earlier messages [{"role": "user"|"assistant", "content": ...}]; filters: {"outlets": [...],
        "since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}, each optional. Returns answer, refused, refusal_reason,
        citations (n, source, outlet, published, title, quote, start, end), standalone_question, timings, and
        error ({code, message}, or null when the question was answered or refused).
        """
        return answer_request(assistant, gate, settings, question, history, filters)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        history = gr.State([])
        turns = gr.State({})
        control = gr.State({"stop": False, "discard": False})  # per session: Stop / New chat set it
        last_feedback = gr.State(None)
        gr.Markdown(
            f"# {TITLE}\nAnswers about U.S.–South Korea coordination on North Korea from "
            f"{_esc(info.summary())} Every answer quotes the sentence it comes from; questions the articles "
            "do not answer are declined.",
            elem_classes=["ka-header"],
        )
        with gr.Tabs(elem_id="ka-tabs"):
            with gr.Tab("Chat", id="chat", elem_id="ka-chat-tab"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation",
                        show_label=False,
                        elem_id="ka-chat",
                        height=560,
                        sanitize_html=True,
                        render_markdown=True,
                        allow_tags=False,
                        line_breaks=True,
                        layout="bubble",
                        buttons=["copy"],
                        feedback_options=("Like", "Dislike"),
                        examples=[{"text": q} for q in EXAMPLES],
                        placeholder="**Ask about U.S.–South Korea coordination on North Korea**<br>"
                        "Pick an example below or type your own question.",
                    )
                    with gr.Row(equal_height=True):
                        box = gr.Textbox(
                            placeholder=f"Ask a question (up to {limit:,} characters) and press Enter",
                            show_label=False,
                            lines=1,
                            max_lines=4,
                            autofocus=True,
                            scale=6,
                            elem_id="ka-question",
                        )
                        send = gr.Button("Send", variant="primary", scale=1, min_width=90, elem_id="ka-send")
                        stop = gr.Button(
                            "Stop", variant="stop", scale=1, min_width=90, visible=False, elem_id="ka-stop"
                        )
                        new = gr.Button("New chat", scale=1, min_width=90, elem_id="ka-new")
                    with gr.Accordion("Retrieved passages and the question used", open=False, elem_id="ka-details"):
                        details = gr.HTML(format_details(None))
                with gr.Column(scale=1, min_width=260):
                    gr.Markdown("### Filters")
                    outlets = gr.Dropdown(
                        choices=info.outlets,
                        value=[],
                        multiselect=True,
                        label="Outlets",
                        info="Empty: all outlets.",
                        elem_id="ka-outlets",
                    )
                    since = gr.Textbox(
                        label="Published since", placeholder=info.first or "YYYY-MM-DD", elem_id="ka-since"
                    )
                    until = gr.Textbox(
                        label="Published until", placeholder=info.last or "YYYY-MM-DD", elem_id="ka-until"
                    )
                    gr.Markdown("### Feedback")
                    gr.Markdown("Rate an answer with the thumbs up or down under it.", elem_classes=["ka-muted"])
                    comment = gr.Textbox(label="Comment (optional)", lines=2, elem_id="ka-comment")
                    send_comment_btn = gr.Button("Send comment", size="sm")
                    feedback_status = gr.Markdown("", elem_id="ka-feedback-status")
            with gr.Tab("Library", id="library", elem_id="ka-library-tab") as library_tab:
                build_library(assistant, settings, library_tab, outlets)

        answer_inputs = [box, chatbot, history, turns, outlets, since, until, control]
        answer_outputs = [box, chatbot, history, turns, details, send, stop]
        asked = gr.on(
            [box.submit, send.click],
            answer_turn,
            answer_inputs,
            answer_outputs,
            api_name="ask",
            concurrency_id="answer",
            show_progress_on=[chatbot],
        )
        example = chatbot.example_select(
            _example_text,
            None,
            [box],
            queue=False,
            api_visibility="undocumented",
        ).then(
            answer_turn,
            answer_inputs,
            answer_outputs,
            concurrency_id="answer",
            show_progress_on=[chatbot],
            api_visibility="undocumented",
        )
        stop.click(request_stop, [control], [stop], queue=False, api_name="stop")
        reset_outputs = [chatbot, history, turns, details, box, send, stop, feedback_status]
        new.click(new_chat, [control], reset_outputs, cancels=[asked, example], queue=False, api_name="new_chat")
        chatbot.clear(
            new_chat, [control], reset_outputs, cancels=[asked, example], queue=False, api_visibility="private"
        )
        chatbot.like(rate, [turns, comment], [comment, feedback_status, last_feedback], queue=False)
        send_comment_btn.click(
            send_comment, [comment, last_feedback], [comment, feedback_status, last_feedback], queue=False
        )
        gr.api(answer, api_name="answer", concurrency_id="answer")
    app.queue(default_concurrency_limit=1, max_size=QUEUE_MAX_SIZE)
    return app


def _example_text(evt: gr.SelectData) -> str:
    return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)


def launch(app: gr.Blocks, settings: Settings, *, quiet: bool = True, routes: Sequence[BaseRoute] = ()) -> str:
    """Start serving the app on settings.host:settings.port in a background thread; return its URL.

    No share link and no file access beyond what Gradio serves itself. `routes` are served by the same
    FastAPI app, before Gradio's own (the OpenAI-compatible API: `assistant.openai_api.openai_routes`).
    `app.block_thread()` waits (Ctrl-C ends it); `app.close()` stops the server.
    """
    app.launch(
        app_kwargs={"routes": list(routes)} if routes else None,
        server_name=settings.host,
        server_port=settings.port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=True,
        quiet=quiet,
        show_error=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        run_history=False,  # its page offers uploading runs to a Hugging Face bucket
        footer_links=["api", "settings"],
        theme=gr.themes.Default(font=list(SYSTEM_FONTS)),
        css=CSS,
    )
    return f"http://{settings.host}:{settings.port}"
