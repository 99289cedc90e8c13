"""Fall back: when the model's answer cannot be used, quote the passage sentence that answers; for a compound
question, add a quoted sentence for each part the answer leaves out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from assistant.chunking import Span, split_sentences
from assistant.citations import CheckedSentence, CheckResult, Citation, roles_match
from assistant.config import Settings
from assistant.evidence import EvidenceSelector, in_time, is_attribution, years
from assistant.language import Language, text_before
from assistant.lexical import Analyzer
from assistant.rerank import Reranker
from assistant.retrieval import Passage
from assistant.search import SentenceVectors
from assistant.turn import Turn, human_date


class Fallback:
    """Replaces or completes `turn.checked` with quoted passage sentences; sets `turn.refusal` when none fits."""

    def __init__(
        self,
        settings: Settings,
        analyzer: Analyzer,
        vectors: SentenceVectors,
        embed_query: Callable[[str], list[float]],
        answers: Callable[[str, str, str], bool],
        language: Language,
        judge: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.judge = judge
        self.language = language
        self.analyzer = analyzer
        self.vectors = vectors
        self.embed_query = embed_query
        self.answers = answers

    def __call__(self, turn: Turn) -> None:
        assert turn.checked is not None and turn.selector is not None
        checked = turn.checked
        if not checked.sentences:
            # the model's answer failed the check, or it said it does not know: quote the best sentence
            # instead when it clearly answers (a stricter bar when the model itself found no answer)
            least = self.settings.min_override_evidence if checked.model_refused else None
            if turn.compound:  # each part on its own: a narrower question, a clearer best sentence
                checked = self.complete_parts(turn, checked, least)
            else:
                checked = self.extract(turn, least) or checked
        if not checked.sentences:
            if checked.model_refused:
                turn.refusal = "the model found no answer in the passages"
            else:
                turn.refusal = "no sentence of the model's answer was supported by a passage"
        elif turn.compound:
            checked = self.complete_parts(turn, checked)
        elif turn.present and self.settings.prefer_newest:
            checked = self.newest_first(turn, checked)
        turn.checked = checked

    def newest_first(self, turn: Turn, checked: CheckResult) -> CheckResult:
        """For a question about the present: when a passage newer than every cited one also answers, its
        sentence leads the answer and the older answer follows it, each with its own date (or, with
        settings.newer_evidence_keeps_older off, the newer sentence is the whole answer)."""
        assert turn.selector is not None
        cited = max((c.published for c in checked.citations if c.published), default="")
        newer = sorted(
            (p for p in turn.passages if p.published and p.published > cited), key=lambda p: p.published, reverse=True
        )
        if not cited or not newer:
            return checked
        # as relevant to the question as the answer's own quotes, or nearly (the newest such date wins)
        q_terms = self.analyzer.term_set(turn.standalone)
        have = max(turn.selector.coverage(q_terms, c.quote) for c in checked.citations)
        least = min(self.settings.min_extractive_evidence, have - self.settings.newer_evidence_margin)
        found = None
        for published in dict.fromkeys(p.published for p in newer):
            same_day = [p for p in newer if p.published == published]
            found = self.best_sentence(turn.standalone, same_day, turn.selector, turn.vector, least)
            if found is not None:
                break
        if found is None:
            return checked
        turn.trace["newer_evidence"] = f"{found.outlet} ({found.published}) is newer than the cited {cited}"
        if not self.settings.newer_evidence_keeps_older:
            return replace(checked, sentences=self.quoted(found), citations=[found])
        shift = {c.n: c.n + 1 for c in checked.citations}
        older = [replace(c, n=shift[c.n]) for c in checked.citations]
        moved = [replace(s, citations=tuple(shift[n] for n in s.citations)) for s in checked.sentences]
        return replace(checked, sentences=[*self.quoted(found), *moved], citations=[found, *older])

    def best_sentence(
        self,
        question: str,
        passages: list[Passage],
        selector: EvidenceSelector,
        vector: Sequence[float],
        least: float,
        also: str = "",
        judged: bool = False,
    ) -> Citation | None:
        """The passage sentence that best answers the question, as citation [1], or None.

        Only a sentence holding at least `least` of the question's words (or of `also`'s: a compound part
        without the names borrowed for it), adding something to them, holding what the question asks for
        (`answers`), and naming no post 'to X' the question does not. With `judged` and a sentence judge, a
        sentence holding fewer words (down to settings.min_judged_words) may still answer: a paraphrase the
        judge scores at least settings.min_judged_relevance.
        """
        if least > 1:
            return None
        wanted = years(also or question)
        # the years asked about count through `in_time` (the article's date too), not as words to share
        q_terms = self.analyzer.term_set(question) - years(question)
        also_terms = self.analyzer.term_set(also) - wanted if also else set()
        shape = self.language.question(also or question)
        floor = min(least, self.settings.min_judged_words) if judged and self.judge is not None else least
        # (sure, score, passage, start, end, text, needs the judge)
        candidates: list[tuple[bool, float, int, int, int, str, bool]] = []
        for i, p in enumerate(passages):
            spans = split_sentences(p.text)
            sims = self.vectors.similarities(vector, [sp.text for sp in spans])
            for k, (sp, sim) in enumerate(zip(spans, sims, strict=True)):
                if k + 1 < len(spans) and is_attribution(spans[k + 1].text):
                    # 'The ministry said talks are underway. Spokesperson Park Il made these comments ...'
                    sp = Span(sp.start, spans[k + 1].end, p.text[sp.start : spans[k + 1].end])
                if wanted and not in_time(p, sp.text, wanted):
                    continue  # 'who holds it in 2025?' is not answered by a 2020 article
                dated = f"{sp.text} {human_date(p.published)}" if p.published else sp.text
                lexical = selector.coverage(q_terms, dated)
                if also_terms:
                    lexical = max(lexical, selector.coverage(also_terms, dated))
                context = p.context or p.text
                before = text_before(context, sp.text)
                if lexical < floor or not self.answers(also or question, sp.text, before):
                    continue
                if not roles_match(self.analyzer, question, sp.text):
                    continue
                # the sentence must add something beyond the question's own words
                if not self.analyzer.term_set(sp.text) - q_terms:
                    continue
                score = (lexical + max(sim, 0.0)) / 2
                # a sentence with the asked-for subject of the question's own verb first ('Who led it?': 'it
                # is led by Ana Lind' before 'Ana Lind arrived in Geneva')
                sure = self.settings.check_asked_type and self.language.fills_slot(shape, sp.text, before)
                candidates.append((sure, score, i, sp.start, sp.end, sp.text, lexical < least))
        candidates = self._judged(also or question, candidates)
        if not candidates:
            return None
        _, _, i, a, b, _, _ = max(candidates, key=lambda c: c[:2])
        return Citation.from_passage(1, passages[i], a, b)

    def _judged(
        self, question: str, candidates: list[tuple[bool, float, int, int, int, str, bool]]
    ) -> list[tuple[bool, float, int, int, int, str, bool]]:
        """The candidates that hold enough words, and those below the word bar that the judge finds relevant."""
        doubtful = [c for c in candidates if c[6]]
        if not doubtful or self.judge is None:
            return [c for c in candidates if not c[6]]
        logits = self.judge.score(question, [c[5] for c in doubtful])
        passed = {
            id(c) for c, logit in zip(doubtful, logits, strict=True) if logit >= self.settings.min_judged_relevance
        }
        return [c for c in candidates if not c[6] or id(c) in passed]

    def extract(self, turn: Turn, least: float | None = None) -> CheckResult | None:
        """Quote the one sentence that best answers the question, when the model's answer cannot be used.

        `least` defaults to settings.min_extractive_evidence (see `best_sentence`).
        """
        assert turn.selector is not None
        least = self.settings.min_extractive_evidence if least is None else least
        citation = self.best_sentence(turn.standalone, turn.passages, turn.selector, turn.vector, least, judged=True)
        if citation is None:
            return None
        turn.trace["extractive"] = "the model's answer could not be used; the best sentence is quoted instead"
        return CheckResult(self.quoted(citation), [citation], [], [], False)

    def quoted(self, citation: Citation) -> list[CheckedSentence]:
        """The quote as the answer; a quote whose speaker it calls only 'he' or 'she' is led by the name its
        passage gives just before it ('Ines Moro: “..., ” she said.')."""
        sentences = quoted_sentences(citation)
        if not sentences:
            return sentences
        before = text_before(citation.context, citation.quote)
        speaker = self.language.unnamed_speaker(citation.quote, before)
        if speaker:
            first = sentences[0]
            sentences[0] = replace(first, text=f"{speaker}: “{first.text}”")
        return sentences

    def complete_parts(self, turn: Turn, checked: CheckResult, least: float | None = None) -> CheckResult:
        """For each part of a compound question the answer leaves out, add the best quoted sentence for it.

        A part is left out when the answer holds too few of its words, or holds them without what the part asks
        for (a time for 'in which city ...?'). When the best sentence for such a part is one the answer already
        cites, the answer's sentences on that quote give way to the quote itself. `least` (default
        settings.min_extractive_evidence) is the share of the part's words that sentence must hold.
        """
        assert turn.selector is not None
        selector = turn.selector
        least = self.settings.min_extractive_evidence if least is None else least
        answer_terms = self.analyzer.term_set(" ".join(s.text for s in checked.sentences))
        sentences, citations = list(checked.sentences), list(checked.citations)
        added: list[str] = []
        for i, part in enumerate(turn.parts):
            query = turn.part_queries[i] if i < len(turn.part_queries) else part
            covered = selector.coverage(self.analyzer.term_set(part), " ".join(sorted(answer_terms)))
            if covered >= self.settings.part_covered and (
                not self.settings.parts_by_kind or any(self.answers(query, s.text, "") for s in sentences)
            ):
                continue
            vector = self.embed_query(query)
            found = self.best_sentence(query, turn.passages, selector, vector, least, also=part, judged=True)
            if found is None:
                continue
            key = (found.source, found.start, found.end)
            same = next((c for c in citations if (c.source, c.start, c.end) == key), None)
            if same is not None:
                # the quote holds what the part asks for, the answer's sentences on it do not: quote it
                weak = [
                    k
                    for k, s in enumerate(sentences)
                    if s.citations == (same.n,) and not self.answers(query, s.text, "")
                ]
                if not weak or not self.answers(query, same.quote, text_before(same.context, same.quote)):
                    continue
                kept = [s for k, s in enumerate(sentences) if k not in weak]
                sentences = [*kept[: weak[0]], *self.quoted(same), *kept[weak[0] :]]
                answer_terms |= self.analyzer.term_set(same.quote)
                added.append(part)
                continue
            cite = replace(found, n=len(citations) + 1)
            citations.append(cite)
            sentences.extend(self.quoted(cite))
            answer_terms |= self.analyzer.term_set(cite.quote)
            added.append(part)
        if not added:
            return checked
        turn.trace["completed_parts"] = added
        return replace(checked, sentences=sentences, citations=citations)


def quoted_sentences(citation: Citation) -> list[CheckedSentence]:
    """A quote given as the answer, each of its sentences carrying the citation's marker."""
    return [CheckedSentence(" ".join(sp.text.split()), (citation.n,)) for sp in split_sentences(citation.quote)]
