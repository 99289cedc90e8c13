"""The plain API behind the Gradio `/answer` endpoint and the OpenAI-compatible one (assistant/openai_api.py).

A request (question, history, filters) is checked here, answered one question at a time through an
`AnswerGate`, and the Answer becomes JSON data (`answer_data`). A bad request gives a clear error field
(`error_data`), never a traceback; an empty or overlong question is refused by the pipeline itself.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

from assistant.chain import Answer, Message, Sources
from assistant.llm import LLMUnavailableError
from assistant.retrieval import Filters
from assistant.store import StoreError

if TYPE_CHECKING:
    from assistant.app import Assistant
    from assistant.config import Settings

logger = logging.getLogger(__name__)

ROLES = ("user", "assistant")
FILTER_KEYS = ("outlets", "since", "until")
MAX_MESSAGE_CHARS = 20_000  # one earlier message of a conversation (answers with related facts run long)
MAX_WAITING = 20  # requests waiting for the gate beyond this are answered "busy" at once

# C0 and C1 control characters and DEL; tab, newline and carriage return are text
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RequestError(ValueError):
    """A request the API cannot take; `code` names the kind, the message says what to change."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BusyError(RuntimeError):
    """The assistant was busy with other questions for longer than the request may wait."""


# --- checking a request ---------------------------------------------------------------------------


def check_question(value: object) -> str:
    """The question as given; RequestError when it is not text or holds control characters.

    An empty or overlong question is left to the pipeline, which refuses it with its reason.
    """
    if not isinstance(value, str):
        raise RequestError("invalid_question", f"The question must be a string, not {type(value).__name__}.")
    bad = _CONTROL.search(value)
    if bad is not None:
        raise RequestError(
            "invalid_question",
            f"The question holds a control character (U+{ord(bad.group()):04X}) at position {bad.start()}: "
            "remove it and send the question again.",
        )
    return value


def check_history(value: object, keep: int) -> list[Message]:
    """Earlier messages as [{"role": "user"|"assistant", "content": str}, ...], the last `keep` of them;
    RequestError when one is malformed."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise RequestError("invalid_history", "The history must be a list of {role, content} messages.")
    history: list[Message] = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise RequestError("invalid_history", f"History message {i} must be an object with role and content.")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RequestError("invalid_history", f"History message {i} has role {role!r}; use 'user' or 'assistant'.")
        if not isinstance(content, str):
            raise RequestError("invalid_history", f"History message {i} must have text content.")
        if len(content) > MAX_MESSAGE_CHARS:
            raise RequestError(
                "invalid_history", f"History message {i} is longer than {MAX_MESSAGE_CHARS:,} characters."
            )
        if _CONTROL.search(content):
            raise RequestError("invalid_history", f"History message {i} holds control characters.")
        history.append({"role": role, "content": content})
    return history[len(history) - keep :] if keep else []


def parse_date(value: str | None, label: str) -> str | None:
    """'' -> None; 'YYYY-MM-DD' -> itself; anything else -> ValueError naming the field."""
    value = (value or "").strip()
    if not value:
        return None
    if not _ISO_DATE.fullmatch(value):
        raise ValueError(f"The '{label}' date {value!r} is not in the form YYYY-MM-DD (for example 2019-02-15).")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"The '{label}' date {value!r} does not exist: check the month and the day.") from None
    return value


def make_filters(outlets: Sequence[str] | None, since: str | None, until: str | None) -> Filters:
    """Filters from outlets and two dates; ValueError with a sentence for the user on a bad date."""
    start, end = parse_date(since, "since"), parse_date(until, "until")
    if start and end and start > end:
        raise ValueError(f"The 'since' date {start} is after the 'until' date {end}: no article can match.")
    return Filters(outlets=tuple(outlets or ()), since=start, until=end)


def check_filters(value: object) -> Filters | None:
    """{"outlets": [...], "since": "YYYY-MM-DD", "until": "YYYY-MM-DD"} (each optional) as Filters."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RequestError("invalid_filters", "The filters must be an object with outlets, since and until.")
    unknown = sorted(str(k) for k in value if k not in FILTER_KEYS)
    if unknown:
        raise RequestError("invalid_filters", f"Unknown filter(s) {', '.join(unknown)}: use {', '.join(FILTER_KEYS)}.")
    outlets = value.get("outlets") or []
    if isinstance(outlets, str):
        outlets = [outlets]
    if not isinstance(outlets, list | tuple) or not all(isinstance(o, str) for o in outlets):
        raise RequestError("invalid_filters", "The 'outlets' filter must be a list of outlet names.")
    since, until = value.get("since"), value.get("until")
    for label, day in (("since", since), ("until", until)):
        if day is not None and not isinstance(day, str):
            raise RequestError("invalid_filters", f"The '{label}' filter must be a YYYY-MM-DD string.")
    try:
        filters = make_filters(outlets, since, until)
    except ValueError as exc:
        raise RequestError("invalid_filters", str(exc)) from None
    return filters if filters.active else None


# --- one question at a time -----------------------------------------------------------------------


class AnswerGate:
    """Lets one question through at a time, across the chat UI and both APIs.

    A request waits at most `timeout_s` (BusyError after), and at most `max_waiting` requests wait at once.
    """

    def __init__(self, timeout_s: float, max_waiting: int = MAX_WAITING) -> None:
        self.timeout_s = timeout_s
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the gate for one question; BusyError when it does not open in time."""
        with self._count:
            if self._waiting >= self.max_waiting:
                raise BusyError(f"{self._waiting} questions are already waiting: try again in a minute.")
            self._waiting += 1
        try:
            acquired = self._lock.acquire(timeout=self.timeout_s)
        finally:
            with self._count:
                self._waiting -= 1
        if not acquired:
            raise BusyError(f"The assistant was busy with other questions for {self.timeout_s:g} s: try again later.")
        try:
            yield
        finally:
            self._lock.release()

    def stream(
        self,
        assistant: Assistant,
        question: str,
        history: Sequence[Message] | None = None,
        filters: Filters | None = None,
        cancelled: threading.Event | None = None,
    ) -> Generator[Sources | str | Answer, None, None]:
        """`assistant.stream(...)` inside the gate (Sources, then text deltas, then the Answer); closing this
        generator ends the answer and opens the gate.

        A question `cancelled` while it waited for the gate (its asker went away) ends at once, unanswered.
        """
        with self.hold():
            if cancelled is not None and cancelled.is_set():
                return
            yield from assistant.stream(question, history, filters)

    def ask(
        self,
        assistant: Assistant,
        question: str,
        history: Sequence[Message] | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        """The final Answer of `stream`."""
        final: Answer | None = None
        for part in self.stream(assistant, question, history, filters):
            if isinstance(part, Answer):
                final = part
        if final is None:
            raise RuntimeError("The answer pipeline ended without an answer.")
        return final


# --- an Answer as JSON data -----------------------------------------------------------------------


def citation_data(citation: Any) -> dict[str, Any]:
    """One citation: its number, document, outlet, date, title, the quote and its offsets in the document."""
    keys = ("n", "source", "outlet", "published", "title", "quote", "start", "end", "also_reported_by")
    return {k: getattr(citation, k) for k in keys}


def answer_data(answer: Answer) -> dict[str, Any]:
    """The JSON shape of an answer (or refusal) for the APIs; `error` is None."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "refusal_reason": (answer.trace.get("refusal_reason") or None) if answer.refused else None,
        "citations": [citation_data(c) for c in answer.citations],
        "standalone_question": answer.standalone_question or answer.question,
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
        "error": None,
    }


def error_data(code: str, message: str, question: object = "") -> dict[str, Any]:
    """The same shape as `answer_data` for a request that got no answer: empty text, and the error."""
    return {
        "question": question if isinstance(question, str) else "",
        "answer": "",
        "refused": False,
        "refusal_reason": None,
        "citations": [],
        "standalone_question": "",
        "timings": {},
        "error": {"code": code, "message": message},
    }


def failure(exc: Exception, question: object) -> tuple[str, str]:
    """(code, sentence) for an exception raised while answering; the traceback of an unknown one is logged."""
    if isinstance(exc, RequestError):
        return exc.code, str(exc)
    if isinstance(exc, BusyError):
        return "busy", str(exc)
    if isinstance(exc, LLMUnavailableError):
        logger.warning("The language model failed on an API question: %s", exc)
        return "llm_unavailable", str(exc)
    if isinstance(exc, StoreError):
        logger.warning("The article index failed on an API question: %s", exc)
        return "index_unavailable", str(exc)
    logger.exception("Answering an API question failed (%r)", question if isinstance(question, str) else "")
    return (
        "internal_error",
        f"The question could not be answered ({type(exc).__name__}); the details are in the server log.",
    )


def answer_request(
    assistant: Assistant, gate: AnswerGate, settings: Settings, question: object, history: object, filters: object
) -> dict[str, Any]:
    """Check a request, answer it and return `answer_data`, or `error_data` saying what went wrong."""
    try:
        text = check_question(question)
        earlier = check_history(history, settings.api_max_history)
        chosen = check_filters(filters)
        return answer_data(gate.ask(assistant, text, earlier, chosen))
    except Exception as exc:
        code, message = failure(exc, question)
        return error_data(code, message, question)
