"""Present: the verified sentences as an Answer, dated where the answer depends on time; or a refusal, with
the closest related facts as verbatim quotes."""

from __future__ import annotations

from dataclasses import replace

from assistant.citations import CheckedSentence, CheckResult, Citation, join_sentences
from assistant.language import Language
from assistant.prompts import Prompts
from assistant.turn import Answer, Turn, human_date


class Presenter:
    """Turns a finished Turn into its Answer."""

    def __init__(self, prompts: Prompts, language: Language) -> None:
        self.prompts = prompts
        self.language = language

    def answer(self, turn: Turn) -> Answer:
        assert turn.checked is not None
        sentences = self.date_sentences(turn.checked, turn.standalone, turn.changing or turn.present)
        turn.timings["total_s"] = turn.elapsed()
        return Answer(
            turn.question,
            join_sentences(sentences),
            refused=False,
            citations=turn.checked.citations,
            passages=turn.passages,
            standalone_question=turn.standalone,
            timings=turn.timings,
            trace=turn.trace,
        )

    def refusal(self, turn: Turn) -> Answer:
        """The fixed refusal, plus the closest related facts (verbatim quotes) when there are any."""
        turn.trace["refusal_reason"] = turn.refusal
        turn.timings["total_s"] = turn.elapsed()
        if turn.refusal_text:
            return Answer(
                turn.question,
                turn.refusal_text,
                refused=True,
                standalone_question=turn.standalone or turn.question,
                timings=turn.timings,
                trace=turn.trace,
            )
        related = [p for p in turn.passages[:2] if p.text.strip()]
        if not related:
            text, citations = self.prompts.render("refusal"), []
        else:
            citations = [Citation.from_passage(i + 1, p) for i, p in enumerate(related)]
            facts = "\n".join(
                f"- {c.outlet} ({human_date(c.published)}): “{' '.join(c.quote.split())}” [{c.n}]" for c in citations
            )
            text = f"{self.prompts.render('refusal_related')}\n{facts}"
        return Answer(
            turn.question,
            text,
            refused=True,
            citations=citations,
            passages=turn.passages,
            standalone_question=turn.standalone,
            timings=turn.timings,
            trace=turn.trace,
        )

    def date_sentences(
        self, checked: CheckResult, question: str, changing: bool | None = None
    ) -> list[CheckedSentence]:
        """Say 'As of <date>, per <outlet>' where the answer depends on time or sources differ in date.

        `changing` says whether the question is about a fact that changes (see `Question.changing`); None
        asks the language model.
        """
        by_n = {c.n: c for c in checked.citations}
        dates = {by_n[n].published for s in checked.sentences for n in s.citations}
        if changing is None:
            changing = self.language.question(question).changing
        if not (changing or len(dates) > 1):
            return checked.sentences
        out: list[CheckedSentence] = []
        said: set[tuple[str, str]] = set()
        for s in checked.sentences:
            cite = by_n[s.citations[0]]
            key = (cite.outlet, cite.published)
            if key in said:
                out.append(s)
                continue
            said.add(key)
            lead = self._lowered(s.text)
            if cite.published:
                out.append(replace(s, text=f"As of {human_date(cite.published)}, per {cite.outlet}, {lead}"))
            else:  # the answer depends on time and its source does not say when it was written
                source = cite.outlet or cite.title or cite.source
                out.append(replace(s, text=f"Per {source}, an undated source, {lead}"))
        return out

    def _lowered(self, text: str) -> str:
        """The sentence with its first word lowercased unless it is a name ('The group' -> 'the group')."""
        if not text:
            return text
        first = next(iter(self.language.doc(text)), None)
        if first is None or first.pos_ == "PROPN" or first.ent_type_ or first.text.isupper() or first.text == "I":
            return text
        return text[0].lower() + text[1:]
