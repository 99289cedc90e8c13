"""Evidence: the sentences of the retrieved chunks that bear on a question, and how strongly they do."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from assistant.chunking import Span, split_sentences
from assistant.lexical import STOPWORDS, Analyzer
from assistant.retrieval import Passage

_STEERING = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instruction|rule|prompt|article|passage|context|above|previous)"
    r"|\b(system|hidden|initial) prompt\b|\byour (instructions|rules|prompt)\b|\bjailbreak\b"
    r"|\b(pretend|act as|role-?play|you are now)\b|\bwrite (a|an|me a) (poem|song|story|essay|joke)\b",
    re.IGNORECASE,
)
_ATTRIBUTION = re.compile(r"\b(these|those|the|his|her|their|such) (comments?|remarks?|statements?)\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


def is_attribution(sentence: str) -> bool:
    """True for a sentence that says who said the one before ('Spokesperson Park Il made these comments')."""
    return bool(_ATTRIBUTION.search(sentence))


def is_steering(question: str) -> bool:
    """True for attempts to move the assistant off the corpus or reveal its instructions."""
    return bool(_STEERING.search(question))


_CAPITALISED = re.compile(r"\b[A-Z][a-z][\w'’-]*")
_SENTENCE_WORDS = frozenset(
    [
        "What",
        "Who",
        "Whom",
        "Whose",
        "Where",
        "When",
        "Which",
        "Why",
        "How",
        "And",
        "But",
        "Also",
        "So",
        "Did",
        "Does",
        "Do",
        "Is",
        "Are",
        "Was",
    ]
)


def named(text: str) -> set[str]:
    """Capitalised words that name something (question words left out)."""
    words = {re.sub(r"['’]s?$", "", w) for w in _CAPITALISED.findall(text) if w not in _SENTENCE_WORDS}
    return {w for w in words if w.lower() not in STOPWORDS}


@dataclass(frozen=True)
class Evidence:
    """The chosen sentences as passages, the strength of the best one (0..1), and the best few of them.

    `passages` is all the evidence (the fallback and the related facts draw on it); `best` is the part of it
    the model reads: the first sentences picked, by score, within the prompt's budget.
    """

    passages: list[Passage]
    strength: float
    sentence_scores: list[float]
    best: list[Passage] = field(default_factory=list)


class EvidenceSelector:
    """Scores the sentences of retrieved chunks by IDF-weighted overlap with the question."""

    def __init__(
        self,
        analyzer: Analyzer,
        idf: Callable[[str], float],
        leans_back: Callable[[str], bool] | None = None,
        kind_bonus: float = 0.05,
        year_bonus: float = 0.1,
    ) -> None:
        self.analyzer = analyzer
        self.idf = idf
        self.kind_bonus = kind_bonus  # added to a sentence holding the kind of thing asked for
        self.year_bonus = year_bonus  # added to a sentence of a year the question names
        # whether a sentence opens on a word pointing back ('He said ...'): its lead-in sentence is kept with it
        self.leans_back = leans_back or (lambda sentence: False)

    def coverage(self, question_terms: set[str], text: str) -> float:
        """IDF-weighted share of the question's words that `text` contains."""
        if not question_terms:
            return 0.0
        have = self.analyzer.term_set(text)
        total = sum(self.idf(t) for t in question_terms)
        return sum(self.idf(t) for t in question_terms & have) / total if total else 0.0

    def select(
        self,
        question: str,
        chunks: Sequence[Passage],
        max_sentences: int,
        budget_tokens: int,
        count_tokens: Callable[[str], int],
        similarity: Callable[[list[str]], list[float]] | None = None,
        focus: str = "",
        answers: Callable[[str], float] | None = None,
        recent: float = 0.0,
        years_first: bool = False,
        best_sentences: int = 0,
        best_tokens: int = 0,
    ) -> Evidence:
        """The best sentences (with a lead-in sentence where they start with a pronoun), grouped by chunk.

        A sentence scores by its IDF-weighted word overlap with the question, averaged with its embedding
        similarity to the question when `similarity` is given (it catches paraphrases). A sentence that holds
        the kind of thing asked for (a name for 'who', a date for 'when': `answers`) scores a little
        more, and so does one of the year the question names (`in_time`); with `years_first` (a part of a
        compound question, which asks about its own time) sentences of other years come only after every
        sentence of that year. `focus`, when given, is the part of
        the question that matters most (a compound part without the words it borrowed to be retrieved): a
        sentence's word overlap is the better of its overlap with the question and with the focus.
        `answers` tells how surely a sentence holds what is asked (0: not, 1: it does, 2: as the subject of
        the question's own verb; the bonus is that many times `kind_bonus`). With `recent` > 0 (a
        question about the present), a sentence gains up to `recent` by how new its document is among the
        chunks': the newest dated one gains all of it, undated ones nothing. `best` of the result holds the
        first `best_sentences` picks (with their lead-ins) within `best_tokens` (0: all of the evidence).
        """
        holds = answers or (lambda sentence: 0.0)
        dates = sorted({c.published for c in chunks if c.published})
        newness = {d: (i + 1) / len(dates) for i, d in enumerate(dates)}
        asked_years = years(question)
        # in a part, the years asked about count through `in_time` (the article's date too), not as words
        skip = asked_years if years_first else set()
        q_terms = self.analyzer.term_set(question) - skip
        focus_terms = self.analyzer.term_set(focus) - skip if focus else set()
        scored: list[tuple[float, int, int, int]] = []  # score, chunk index, sentence index, of the year asked
        spans_by_chunk = [split_sentences(c.text) for c in chunks]
        # a sentence two overlapping chunks share is offered once, from the chunk retrieved first
        flat: list[tuple[int, int, Span]] = []
        offered: set[tuple[str, int, int]] = set()
        for ci, spans in enumerate(spans_by_chunk):
            for si, span in enumerate(spans):
                where = (chunks[ci].source, chunks[ci].start + span.start, chunks[ci].start + span.end)
                if where not in offered:
                    offered.add(where)
                    flat.append((ci, si, span))
        sims = similarity([span.text for _, _, span in flat]) if similarity and flat else [0.0] * len(flat)
        for (ci, si, span), sim in zip(flat, sims, strict=True):
            lexical = self.coverage(q_terms, span.text)
            if focus_terms:
                lexical = max(lexical, self.coverage(focus_terms, span.text))
            score = (lexical + max(sim, 0.0)) / 2 if similarity else lexical
            score += self.kind_bonus * holds(span.text)
            if recent and chunks[ci].published:
                score += recent * newness[chunks[ci].published]
            of_year = bool(asked_years) and in_time(chunks[ci], span.text, asked_years)
            if of_year:
                score += self.year_bonus
            timely = of_year or not (years_first and asked_years)
            if lexical > 0 or sim > 0.3:
                scored.append((score - 0.01 * ci, ci, si, int(timely)))
        # of the year asked about first: 'who was minister in 2023?' is not answered by a 2021 article
        scored.sort(key=lambda s: (s[3], s[0], s[1], s[2]), reverse=True)
        chosen: dict[int, set[int]] = {}
        best: dict[int, set[int]] = {}
        used_tokens = 0
        picked_scores: list[float] = []
        for score, ci, si, _ in scored:
            if len(picked_scores) >= max_sentences:
                break
            wanted = {si}
            if si > 0 and self.leans_back(spans_by_chunk[ci][si].text):
                wanted.add(si - 1)
            if si + 1 < len(spans_by_chunk[ci]) and is_attribution(spans_by_chunk[ci][si + 1].text):
                wanted.add(si + 1)  # 'Spokesperson Park Il made these comments ...' says who said it
            new = wanted - chosen.get(ci, set())
            cost = sum(count_tokens(spans_by_chunk[ci][i].text) for i in new)
            if used_tokens + cost > budget_tokens and picked_scores:
                continue
            chosen.setdefault(ci, set()).update(new)
            used_tokens += cost
            picked_scores.append(score)
            if best_sentences and len(picked_scores) <= best_sentences and (used_tokens <= best_tokens or not best):
                best.setdefault(ci, set()).update(wanted)
        order = sorted(chosen, key=lambda c: max((t, s) for s, cj, _, t in scored if cj == c), reverse=True)
        passages: list[Passage] = []
        for ci in order:
            passages.extend(_runs(chunks[ci], spans_by_chunk[ci], sorted(chosen[ci])))
        strength = max((self.coverage(q_terms, p.text) for p in passages), default=0.0)
        if not best_sentences:
            return Evidence(passages, strength, picked_scores, list(passages))
        shown = [p for ci in order if ci in best for p in _runs(chunks[ci], spans_by_chunk[ci], sorted(best[ci]))]
        return Evidence(passages, strength, picked_scores, shown)


def _runs(chunk: Passage, spans: Sequence[Span], indices: list[int]) -> list[Passage]:
    """Contiguous runs of chosen sentences as passages with document offsets."""
    out: list[Passage] = []
    run: list[int] = []
    for i in [*indices, -1]:
        if run and (i != run[-1] + 1):
            first, last = spans[run[0]], spans[run[-1]]
            a, b = first.start, last.end
            out.append(
                replace(
                    chunk,
                    id=f"{chunk.id}:{a}",
                    text=chunk.text[a:b],
                    start=chunk.start + a,
                    end=chunk.start + b,
                    context=chunk.context or chunk.text,
                )
            )
            run = []
        if i >= 0:
            run.append(i)
    return out


def years(text: str) -> set[str]:
    """The years a text names ('in 2019', 'the 2018 working group')."""
    return set(_YEAR.findall(text))


def in_time(passage: Passage, sentence: str, wanted: set[str]) -> bool:
    """Whether a sentence speaks of one of the `wanted` years: its article was published then, or it names one."""
    return (passage.published or "")[:4] in wanted or bool(years(sentence) & wanted)


def merge_passages(groups: Sequence[Sequence[Passage]]) -> list[Passage]:
    """The passages of several evidence selections, taken in turn, with overlapping cuts of one chunk joined.

    A cut's id is '<chunk id>:<offset in chunk>' and its context is the whole chunk (see `_runs`); other
    passages are kept as they are (duplicates dropped).
    """
    cuts: dict[str, list[tuple[int, int, Passage]]] = {}
    order: list[str] = []
    for i in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if i >= len(group):
                continue
            p = group[i]
            chunk_id, _, offset = p.id.rpartition(":")
            key, a = (chunk_id, int(offset)) if chunk_id and offset.isdigit() and p.context else (p.id, 0)
            if key not in cuts:
                cuts[key] = []
                order.append(key)
            cuts[key].append((a, a + len(p.text), p))
    out: list[Passage] = []
    for key in order:
        merged: list[tuple[int, int, Passage]] = []
        for a, b, p in sorted(cuts[key], key=lambda t: (t[0], -t[1])):
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b), merged[-1][2])
            else:
                merged.append((a, b, p))
        for a, b, p in merged:
            if not p.context or key == p.id:
                out.append(p)
                continue
            chunk_start = p.start - int(p.id.rpartition(":")[2])
            text = p.context[a:b]
            out.append(replace(p, id=f"{key}:{a}", text=text, start=chunk_start + a, end=chunk_start + b))
    return out
