"""Verify: every sentence of the model's answer keeps a verbatim quote that backs it, names the speaker its
quote names (`CitationChecker`), and the answer as a whole must hold what the question asks for."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from assistant.citations import CheckedSentence, CheckResult, Citation, CitationChecker
from assistant.language import text_before
from assistant.turn import Turn


class Verifier:
    """Fills `turn.checked` from `turn.raw`."""

    def __init__(self, checker: CitationChecker, answers: Callable[[str, str, str], bool]) -> None:
        self.checker = checker
        self.answers = answers  # (question, sentence) -> whether the sentence holds what is asked

    def __call__(self, turn: Turn) -> None:
        checked = self.checker.check(turn.raw, turn.prompt_passages, turn.standalone, turn.idf)
        turn.trace["dropped_sentences"] = checked.dropped
        turn.trace["repaired_citations"] = checked.repaired
        if (
            checked.sentences
            and not turn.compound
            and not any(self._answers(turn, s, checked) for s in checked.sentences)
        ):
            # verified, but not an answer: 'how much did it cost?' answered with megawatts
            turn.trace["not_an_answer"] = [s.text for s in checked.sentences]
            checked = CheckResult([], [], [*checked.dropped, *turn.trace["not_an_answer"]], checked.repaired, False)
        turn.checked = checked

    def _answers(self, turn: Turn, sentence: CheckedSentence, checked: CheckResult) -> bool:
        return holds_answer(self.answers, turn.standalone, sentence, checked.citations)


def holds_answer(
    answers: Callable[[str, str, str], bool], question: str, sentence: CheckedSentence, citations: Sequence[Citation]
) -> bool:
    """Whether the sentence holds what the question asks, and so does a quote it cites (a 'will agree' quote
    does not answer what was agreed, however the model words it)."""
    if not answers(question, sentence.text, ""):
        return False
    for cite in citations:
        if cite.n in sentence.citations:
            before = text_before(cite.context, cite.quote)
            if answers(question, cite.quote, before):
                return True
    return False
