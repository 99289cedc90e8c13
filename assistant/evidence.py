"""Evidence: the sentences of the retrieved chunks that bear on a question, and how strongly they do."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from assistant.chunking import Span, split_sentences
from assistant.lexical import STOPWORDS, Analyzer
from assistant.retrieval import Passage

_STEERING = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instruction|rule|prompt|article|passage|context|above|previous)"
    r"|\b(system|hidden|initial) prompt\b|\byour (instructions|rules|prompt)\b|\bjailbreak\b"
    r"|\b(pretend|act as|role-?play|you are now)\b|\bwrite (a|an|me a) (poem|song|story|essay|joke)\b",
    re.IGNORECASE,
)
_TIME_SENSITIVE = re.compile(
    r"\b(current(ly)?|now|still|latest|today|as of|title|position|role|status|plans?|planned|next|upcoming"
    r"|who (is|are|holds|leads|heads)|what is the (state|status))\b",
    re.IGNORECASE,
)
_ATTRIBUTION = re.compile(r"\b(these|those|the|his|her|their|such) (comments?|remarks?|statements?)\b", re.IGNORECASE)
_KIND_BONUS = 0.05  # evidence score added to a sentence holding the kind of thing asked for
_YEAR_BONUS = 0.1  # evidence score added to a sentence of the year the question names
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_ANAPHOR = re.compile(r"\b(it|its|he|she|him|his|her|they|them|their|that|this|those|these|the same)\b", re.IGNORECASE)
_PRONOUN_START = re.compile(r"^(He|She|They|It|This|That|These|Those|His|Her|Their|The effort|The group)\b")


def is_attribution(sentence: str) -> bool:
    """True for a sentence that says who said the one before ('Spokesperson Park Il made these comments')."""
    return bool(_ATTRIBUTION.search(sentence))


def is_steering(question: str) -> bool:
    """True for attempts to move the assistant off the corpus or reveal its instructions."""
    return bool(_STEERING.search(question))


_FOLLOW_UP = re.compile(
    r"\b(he|she|it|they|them|his|her|hers|its|their|theirs|him|that|this|those|these|there|then|the same)\b"
    r"|^\s*(and|but|so|also|what about|how about|why|when|where)\b[^?]{0,25}\??\s*$|^\s*(and|but|also)\b",
    re.IGNORECASE,
)
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


def is_follow_up(question: str) -> bool:
    """True when a question leans on the conversation ('And who is his counterpart?', 'Where was that?')."""
    return bool(_FOLLOW_UP.search(question))


def named(text: str) -> set[str]:
    """Capitalised words that name something (question words left out)."""
    words = {re.sub(r"['’]s?$", "", w) for w in _CAPITALISED.findall(text) if w not in _SENTENCE_WORDS}
    return {w for w in words if w.lower() not in STOPWORDS}


def is_time_sensitive(question: str) -> bool:
    """True when the answer may depend on when (titles, offices, plans, 'current')."""
    return bool(_TIME_SENSITIVE.search(question))


@dataclass(frozen=True)
class Evidence:
    """Trimmed passages for the prompt and the strength of the best one (0..1)."""

    passages: list[Passage]
    strength: float
    sentence_scores: list[float]


class EvidenceSelector:
    """Scores the sentences of retrieved chunks by IDF-weighted overlap with the question."""

    def __init__(
        self, analyzer: Analyzer, idf: Callable[[str], float], leans_back: Callable[[str], bool] | None = None
    ) -> None:
        self.analyzer = analyzer
        self.idf = idf
        # whether a sentence opens on a word pointing back ('He said ...'): its lead-in sentence is kept with it
        self.leans_back = leans_back or (lambda sentence: bool(_PRONOUN_START.match(sentence)))

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
        answers: Callable[[str], bool] | None = None,
        recent: float = 0.0,
    ) -> Evidence:
        """The best sentences (with a lead-in sentence where they start with a pronoun), grouped by chunk.

        A sentence scores by its IDF-weighted word overlap with the question, averaged with its embedding
        similarity to the question when `similarity` is given (it catches paraphrases). A sentence that holds
        the kind of thing asked for (a name for 'who', a date for 'when': `answers_kind`) scores a little
        more, and so does one of the year the question names (`in_time`). `focus`, when given, is the part of
        the question that matters most (a compound part without the words it borrowed to be retrieved): a
        sentence's word overlap is the better of its overlap with the question and with the focus.
        `answers` tells whether a sentence holds what is asked (default `answers_kind`). With `recent` > 0 (a
        question about the present), a sentence gains up to `recent` by how new its document is among the
        chunks': the newest dated one gains all of it, undated ones nothing.
        """
        holds = answers or (lambda sentence: answers_kind(question, sentence))
        dates = sorted({c.published for c in chunks if c.published})
        newness = {d: (i + 1) / len(dates) for i, d in enumerate(dates)}
        q_terms = self.analyzer.term_set(question)
        focus_terms = self.analyzer.term_set(focus) if focus else set()
        asked_years = years(question)
        scored: list[tuple[float, int, int, int]] = []  # score, chunk index, sentence index, rank
        spans_by_chunk = [split_sentences(c.text) for c in chunks]
        flat = [(ci, si, span) for ci, spans in enumerate(spans_by_chunk) for si, span in enumerate(spans)]
        sims = similarity([span.text for _, _, span in flat]) if similarity and flat else [0.0] * len(flat)
        for (ci, si, span), sim in zip(flat, sims, strict=True):
            lexical = self.coverage(q_terms, span.text)
            if focus_terms:
                lexical = max(lexical, self.coverage(focus_terms, span.text))
            score = (lexical + max(sim, 0.0)) / 2 if similarity else lexical
            if holds(span.text):
                score += _KIND_BONUS
            if recent and chunks[ci].published:
                score += recent * newness[chunks[ci].published]
            if asked_years and in_time(chunks[ci], span.text, asked_years):
                score += _YEAR_BONUS
            if lexical > 0 or sim > 0.3:
                scored.append((score - 0.01 * ci, ci, si, ci))
        scored.sort(reverse=True)
        chosen: dict[int, set[int]] = {}
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
        passages: list[Passage] = []
        for ci in sorted(chosen, key=lambda c: -max(s for s, cj, _, _ in scored if cj == c)):
            passages.extend(_runs(chunks[ci], spans_by_chunk[ci], sorted(chosen[ci])))
        strength = max((self.coverage(q_terms, p.text) for p in passages), default=0.0)
        return Evidence(passages, strength, picked_scores)


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


_COMPOUND = re.compile(r",?\s+and\s+(?=(?:what|who|whom|whose|where|when|which|why|how)\b)", re.IGNORECASE)


_BARE_WH = re.compile(r"^(what|who|whom|whose|where|when|which|why|how)$", re.IGNORECASE)


def years(text: str) -> set[str]:
    """The years a text names ('in 2019', 'the 2018 working group')."""
    return set(_YEAR.findall(text))


def in_time(passage: Passage, sentence: str, wanted: set[str]) -> bool:
    """Whether a sentence speaks of one of the `wanted` years: its article was published then, or it names one."""
    return (passage.published or "")[:4] in wanted or bool(years(sentence) & wanted)


def part_query(question: str, parts: Sequence[str], i: int) -> str:
    """What to search with for part `i` of a compound question.

    A later part borrows the names of the whole question it lacks ('what was he ...' gets 'Biegun'). A part
    that points back ('who holds that role in 2025?', 'where did it meet?') also borrows the words of the
    parts before it, less their dates and question words, so it is searched as a question about the
    ambassador, or the working group, and at its own date.
    """
    part = parts[i]
    if i == 0:
        return part
    extra = sorted(n for n in named(question) - named(part) if not _DATE_LIKE.fullmatch(n))
    if _ANAPHOR.search(part):
        have = {w.lower() for w in re.findall(r"[\w.'’-]+", part)} | {w.lower() for w in extra}
        for found in re.findall(r"[\w.'’-]+", " ".join(parts[:i])):
            word = found.strip(".'’-")
            low = word.lower()
            if not word or low in have or low in STOPWORDS or _BARE_WH.match(word) or _DATE_LIKE.fullmatch(word):
                continue
            have.add(low)
            extra.append(word)
    return f"{part} {' '.join(extra)}".strip()


def split_compound(question: str) -> list[str]:
    """'What was X in 2019, and what was he by 2020?' -> ['What was X in 2019?', 'what was he by 2020?'].

    'When and where did X happen?' is one question about one event: it is not split.
    """
    parts = [p.strip(" ,") for p in _COMPOUND.split(question) if p.strip(" ,")]
    if len(parts) < 2 or any(_BARE_WH.match(p.rstrip("?").strip()) for p in parts):
        return [question]
    return [p.rstrip("?") + "?" for p in parts]


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


_WANTS_NAME = re.compile(
    r"^\W*(who|whom|whose|where)\b|\b(which|what) (\w+ )?(official|spokes\w*|minister|person|envoy|diplomat|"
    r"leader|city|country|place|capital|outlet|newspaper|agency)\b|\bin which\b",
    re.IGNORECASE,
)
_WANTS_DATE = re.compile(r"^\W*when\b|\b(what|which) (day|date|month|year)\b", re.IGNORECASE)
_WANTS_NUMBER = re.compile(r"\bhow (many|much|often|long)\b", re.IGNORECASE)
_DATE_LIKE = re.compile(
    r"\b(\d{4}|\d{1,2}|jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|"
    r"july|august|september|october|november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"today|yesterday|tomorrow|week|month|year)\b",
    re.IGNORECASE,
)
_NUMBER_LIKE = re.compile(
    r"\b(\d[\d,.]*|once|twice|thrice|one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|"
    r"thousands?|millions?|billions?|daily|weekly|monthly|yearly|annually|regularly)\b",
    re.IGNORECASE,
)
_FUTURE = re.compile(
    r"\b(will|would|next (week|month|year)|coming (days|weeks|months)|plan(s|ned|ning)? to|planning|possibl[ey]|"
    r"expected to|expects? to|set to|poised to|upcoming|speculation|slated|to kick off)\b",
    re.IGNORECASE,
)
_PAST_OUTCOME = re.compile(r"\b(did|ended up|turned out|resulted|outcome|agreed|decided)\b", re.IGNORECASE)


def _new_matches(pattern: re.Pattern[str], sentence: str, question: str) -> set[str]:
    """Matches of `pattern` in the sentence that the question does not already have."""
    return {m.group().lower() for m in pattern.finditer(sentence)} - {
        m.group().lower() for m in pattern.finditer(question)
    }


def answers_kind(question: str, sentence: str) -> bool:
    """Whether `sentence` holds the kind of thing the question asks for, beyond the question's own words.

    A name for 'who'/'where'/'which official', a date for 'when', a number for 'how many'; and no
    forecast ('will', 'next week', 'possibly') for a question about what did happen.
    """
    if _WANTS_NAME.search(question) and not named(sentence) - named(question):
        return False
    if _WANTS_DATE.search(question) and not _new_matches(_DATE_LIKE, sentence, question):
        return False
    if _WANTS_NUMBER.search(question) and not _new_matches(_NUMBER_LIKE, sentence, question):
        return False
    return not (_PAST_OUTCOME.search(question) and _FUTURE.search(sentence) and not _FUTURE.search(question))
