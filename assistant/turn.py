"""The typed state of one question as it goes through the pipeline, and the Answer it ends as.

plan -> retrieve -> rank -> select -> generate -> verify -> fall back -> present: each step reads the `Turn`
the steps before it filled in and adds its own part (see `assistant/chain.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from langchain_core.messages import BaseMessage

from assistant.citations import CheckResult, Citation
from assistant.evidence import Evidence, EvidenceSelector
from assistant.language import Question
from assistant.retrieval import Filters, Passage

Message = dict[str, str]


@dataclass
class Answer:
    """A verified answer (or refusal), its citations, the passages used, timings and a trace.

    While streaming, partial Answers (final=False) carry text deltas; adding them up gives the final Answer.
    """

    question: str
    text: str
    refused: bool = False
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    standalone_question: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)
    final: bool = True

    def __add__(self, other: Answer) -> Answer:
        if other.final:
            return other
        return replace(self, text=self.text + other.text, final=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "standalone_question": self.standalone_question,
            "passages": [
                {k: getattr(p, k) for k in ("id", "source", "outlet", "published", "title", "start", "end", "text")}
                for p in self.passages
            ],
            "timings": self.timings,
            "trace": self.trace,
        }


@dataclass(frozen=True)
class Sources:
    """The first event of a streamed answer: the passages the model is about to read, before its first word.

    Shown while the model reads them (the answer's citations, at the end, are the ones it kept).
    Empty when the question is refused before any search (an empty or too-long question).
    """

    question: str
    passages: list[Passage] = field(default_factory=list)
    standalone_question: str = ""


@dataclass
class Turn:
    """One question on its way through the pipeline.

    Plan fills the standalone question, the search query, the parts of a compound question, what is asked
    and whether it is about the present; retrieve the chunks; select the evidence passages; generate the
    model's raw text; verify the checked sentences; fall back may replace them with quoted sentences;
    present turns the result into an Answer. `refusal` set by any step ends the turn as a refusal.
    """

    question: str
    history: Sequence[Message] = ()
    filters: Filters | None = None
    decompose: bool = True
    started: float = field(default_factory=time.perf_counter)
    # plan
    standalone: str = ""
    query: str = ""
    parts: list[str] = field(default_factory=list)
    part_queries: list[str] = field(default_factory=list)  # what each part is searched with
    shape: Question | None = None
    present: bool = False  # about now: the newest evidence is preferred
    changing: bool = False  # about a fact that changes: the answer says as of when
    # retrieve / rank / select
    vector: list[float] = field(default_factory=list)
    idf: Callable[[str], float] | None = None
    selector: EvidenceSelector | None = None
    chunks: list[Passage] = field(default_factory=list)
    evidence: Evidence | None = None
    passages: list[Passage] = field(default_factory=list)  # all the evidence (fallback, related facts)
    prompt_passages: list[Passage] = field(default_factory=list)  # the best of it, numbered for the model
    # generate / verify / fall back
    messages: list[BaseMessage] = field(default_factory=list)
    raw: str = ""
    checked: CheckResult | None = None
    # any step
    refusal: str = ""  # the reason, when the turn ends as a refusal
    refusal_text: str = ""  # a fixed message instead of the refusal with related facts
    timings: dict[str, float] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)

    @property
    def compound(self) -> bool:
        return len(self.parts) > 1

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def human_date(iso: str) -> str:
    """'July 2, 2020' for '2020-07-02'."""
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso or "undated"
    return f"{d.strftime('%B')} {d.day}, {d.year}"
