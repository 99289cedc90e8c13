"""Present: the verified sentences as an Answer, dated where the answer depends on time; or a refusal, with
the closest related facts as verbatim quotes."""

from __future__ import annotations

from dataclasses import replace

from assistant.citations import CheckedSentence, CheckResult, Citation, join_sentences
from assistant.language import Language, text_before, words_of
from assistant.prompts import Prompts
from assistant.turn import Answer, Turn, human_date


class Presenter:
    """Turns a finished Turn into its Answer."""

    def __init__(self, prompts: Prompts, language: Language, name_speakers: bool = True) -> None:
        self.prompts = prompts
        self.language = language
        self.name_speakers = name_speakers  # settings.name_quoted_speakers

    def answer(self, turn: Turn) -> Answer:
        assert turn.checked is not None
        checked = turn.checked
        if self.name_speakers:
            checked = replace(checked, sentences=self.speakers_named(checked))
        sentences = self.date_sentences(checked, turn.standalone, turn.changing or turn.present)
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

    def speakers_named(self, checked: CheckResult) -> list[CheckedSentence]:
        """Each sentence whose quote reports someone's words without saying whose, led by that speaker
        ('The port will close [1]' on '"The port will close," the ministry said' -> 'The ministry said that
        the port will close [1]'); a sentence that opens with a quotation mark keeps it whole after a colon."""
        by_n = {c.n: c for c in checked.citations}
        out: list[CheckedSentence] = []
        for s in checked.sentences:
            cite = by_n.get(s.citations[0]) if s.citations else None
            speaker = ""
            if cite is not None:  # the sentence's text carries no markers: join_sentences places them
                speaker = self.language.unnamed_speaker_of(s.text, cite.quote, text_before(cite.context, cite.quote))
            if speaker and self._publisher(speaker, cite):
                speaker = ""  # a release's own words: 'per <outlet>' says whose they are
            if not speaker:
                out.append(s)
                continue
            if s.text[:1] in "“\"'‘":
                text = f"{speaker} said: {s.text}"
            else:
                text = f"{speaker} said that {self._lowered(s.text)}"
            out.append(replace(s, text=text[0].upper() + text[1:]))
        return out

    def _publisher(self, speaker: str, cite: Citation | None) -> bool:
        """Whether the speaker is who published the quote ('the Port Authority of Velmar' of its own release)."""
        if cite is None or not cite.outlet:
            return False
        name = words_of(self.language.content_words(speaker))
        return bool(name) and name <= words_of([cite.outlet])

    def _lowered(self, text: str) -> str:
        """The sentence with its first word lowercased unless it is a name ('The group' -> 'the group')."""
        if not text:
            return text
        first = next(iter(self.language.doc(text)), None)
        if first is None or first.text == "I" or (len(first.text) > 1 and first.text.isupper()):
            return text  # 'I', 'MARROW BAY' (but 'A' is lowered)
        if first.pos_ != "DET" and (first.pos_ == "PROPN" or first.ent_type_):
            return text  # a name, though not its article ('The State Department')
        return text[0].lower() + text[1:]
