"""Citation checking: parse [n] markers, find each sentence's supporting quote verbatim, drop the rest."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from assistant.chunking import split_sentences
from assistant.evidence import is_attribution, named
from assistant.language import Language
from assistant.lexical import Analyzer
from assistant.retrieval import Passage

_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_REFUSAL = re.compile(
    r"\b(i (?:do not|don't|cannot|can't) (?:know|answer|find|say)|(?:do|does) not (?:contain|mention|provide|"
    r"say|state|include|specify)|(?:no|not enough) information|not (?:mentioned|specified|stated|provided)|"
    r"unable to (?:answer|find|determine)|cannot be determined|there is no mention)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Citation:
    """One verified source of an answer sentence: the quote stands verbatim at [start, end) of the document."""

    n: int
    source: str
    title: str
    outlet: str
    published: str
    quote: str
    start: int
    end: int
    passage_id: str
    context: str  # the passage the quote was found in, for display
    also_reported_by: str = ""  # other outlets that published the same text ("; "-separated)

    @classmethod
    def from_passage(cls, n: int, passage: Passage, a: int = 0, b: int | None = None) -> Citation:
        """Cite passage.text[a:b] (the whole passage by default); offsets become document offsets."""
        b = len(passage.text) if b is None else b
        return cls(
            n=n,
            source=passage.source,
            title=passage.title,
            outlet=passage.outlet,
            published=passage.published,
            quote=passage.text[a:b],
            start=passage.start + a,
            end=passage.start + b,
            passage_id=passage.id,
            context=passage.context or passage.text,
            also_reported_by=passage.also_reported_by,
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class CheckedSentence:
    """An answer sentence with the citation numbers that survived checking."""

    text: str
    citations: tuple[int, ...]


@dataclass
class CheckResult:
    """The verified answer: kept sentences, their citations, and what was removed or repaired."""

    sentences: list[CheckedSentence]
    citations: list[Citation]
    dropped: list[str]
    repaired: list[str]
    model_refused: bool

    @property
    def text(self) -> str:
        return join_sentences(self.sentences)


def join_sentences(sentences: Sequence[CheckedSentence]) -> str:
    """Sentences with their markers placed before the closing punctuation: 'It met in Warsaw [1].'"""
    out = []
    for s in sentences:
        marks = "".join(f"[{n}]" for n in s.citations)
        body = s.text.rstrip()
        m = re.search(r"[.!?]+[\"'”’)]*$", body)
        if not marks:
            out.append(body)
        elif re.search(r"(?:\b[A-Za-z]\.){2,}$", body):  # ends with "D.C.": keep its dot
            out.append(f"{body} {marks}")
        elif m:
            out.append(f"{body[: m.start()]} {marks}{body[m.start() :]}")
        else:
            out.append(f"{body} {marks}.")
    return " ".join(out)


_YES_NO = re.compile(r"^\s*(is|are|was|were|did|does|do|has|have|had|can|could|will|would|should)\b", re.IGNORECASE)
_PRONOUN_LEAD = re.compile(r"^\W*(he|she|they|it|his|her|their|its|this|that|these|those|the group)\b", re.IGNORECASE)
_PASSAGE_WORD = re.compile(r"\(?\b(?:see |in |from )?(?:the )?passages? \[?(\d+)\]?\)?", re.IGNORECASE)
_LEAD_IN = re.compile(
    r",?\s*\b(?:as (?:stated|mentioned|noted|reported|shown|indicated) in|according to|see)\s*(?=\[\d)",
    re.IGNORECASE,
)
_MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


_ROLE = re.compile(
    r"\b(?i:(ambassador|envoy|representative|minister|delegation|embassy|mission))\s+"
    r"(?i:to|for|in)\s+(?:the\s+)?((?:(?:[A-Z][\w.'’-]*|of|and)\s*)+)"
)


_ALIASES = [
    ("Washington", "United States", "U.S.", "America"),
    ("Seoul", "South Korea", "Republic of Korea", "ROK"),
    ("Pyongyang", "North Korea", "N. Korea", "N.K.", "DPRK"),
]


_OTHER_COUNTRIES = "Japan China Russia Vietnam"


def with_aliases(text: str) -> str:
    """The text plus the other names of each capital or country it mentions ('Seoul' adds 'South Korea')."""
    extra = [" ".join(group) for group in _ALIASES if any(re.search(rf"\b{re.escape(n)}", text) for n in group)]
    return " ".join([text, *extra])


_TITLES = r"ambassador|envoy|representative|minister|delegation|embassy|mission"
_SENDER = re.compile(rf"((?:(?:[A-Z][\w.'’-]*)\s+){{1,3}})(?i:({_TITLES}))\b")


def role_senders(text: str) -> list[tuple[str, str]]:
    """('ambassador', 'U.S.') for 'U.S. Ambassador ...': whose post it is."""
    return [(m.group(2).lower(), m.group(1).strip()) for m in _SENDER.finditer(text)]


def role_phrases(text: str) -> list[tuple[str, str]]:
    """('ambassador', 'South Korea Harry Harris') for 'Ambassador to South Korea Harry Harris': where a post is."""
    return [(m.group(1).lower(), m.group(2).strip()) for m in _ROLE.finditer(text)]


def roles_match(analyzer: Analyzer, claim: str, source: str) -> bool:
    """False when the claim names a post 'to X' (ambassador, envoy, ...) that the source does not.

    Catches role inversions such as 'South Korea's ambassador to the United States' backed by a quote
    about the 'U.S. Ambassador to South Korea'. 'Ambassador in Seoul' matches 'Ambassador to South Korea'.
    """
    held = [(title, analyzer.term_set(with_aliases(place))) for title, place in role_phrases(source)]
    for title, place in role_phrases(claim):
        terms = analyzer.term_set(place)
        if terms and not any(t == title and terms <= other for t, other in held):
            return False
    # whose post: 'South Korean Ambassador Kevin Kim' is wrong when the source says 'US Ambassador ... Kevin Kim'
    countries = analyzer.term_set(" ".join(" ".join(group) for group in _ALIASES) + " " + _OTHER_COUNTRIES)
    senders = [(title, analyzer.term_set(with_aliases(who)) & countries) for title, who in role_senders(source)]
    for title, who in role_senders(claim):
        terms = analyzer.term_set(who) & countries
        theirs = [other for t, other in senders if t == title and other]
        if terms and theirs and not any(terms <= other for other in theirs):
            return False
    return True


def _date_words(published: str) -> set[str]:
    """'2018', '11', '22', 'November', 'Nov' for '2018-11-22'."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", published or "")
    if not m:
        return set()
    month = _MONTH_NAMES[int(m.group(2)) - 1]
    return {m.group(1), str(int(m.group(3))), month, month[:3]}


_NAME_RUN = re.compile(r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*")


def _name_runs(text: str) -> list[set[str]]:
    """The words of each run of capitalised words ('Kim Jong Un', 'Unification Bridge'), as `named` spells them."""
    return [named(run) for run in _NAME_RUN.findall(text)]


def _month_in(word: str, text: str) -> bool:
    """'December' is in a text that says 'Dec.'."""
    return word in _MONTH_NAMES and re.search(rf"\b{word[:3]}\b", text) is not None


def parse_answer(text: str) -> list[tuple[str, list[int]]]:
    """Split a model answer into (sentence without markers, cited numbers)."""
    out: list[tuple[str, list[int]]] = []
    pending: list[int] = []
    text = _LEAD_IN.sub("", _PASSAGE_WORD.sub(r"[\1]", text.strip()))
    for span in split_sentences(text):
        numbers = [int(n) for m in _MARKER.finditer(span.text) for n in re.split(r"[,;]", m.group(1))]
        body = _MARKER.sub("", span.text).strip()
        body = re.sub(r"\s+([.,;:!?])", r"\1", body)
        body = re.sub(r"(?<!\.)\.\.$", ".", body)  # "D.C. [1]." leaves "D.C.."
        if not re.search(r"[A-Za-z0-9]", body):
            # a marker standing alone after the sentence ("... 2018. [1]") belongs to the previous one
            if out:
                out[-1][1].extend(numbers)
            else:
                pending.extend(numbers)
            continue
        out.append((body, pending + numbers))
        pending = []
    return out


def is_refusal(text: str) -> bool:
    """True when the model says it cannot answer from the passages."""
    return bool(_REFUSAL.search(text)) or not text.strip()


class CitationChecker:
    """Verifies every sentence of an answer against the passages it was given."""

    def __init__(
        self,
        analyzer: Analyzer,
        min_support: float = 0.6,
        language: Language | None = None,
        clearly_better: float = 0.15,
        min_anchor: float = 0.3,
    ) -> None:
        self.analyzer = analyzer
        self.min_support = min_support
        self.language = language  # when given, speakers and agents are checked (`Language.consistent`)
        self.clearly_better = clearly_better  # re-point a citation when another passage backs it this much better
        self.min_anchor = min_anchor  # least share of a sentence's question words its quote must itself hold

    def candidate_quotes(self, passage: Passage) -> list[tuple[int, int]]:
        """Offsets (within the passage) of each sentence and each pair of adjacent sentences."""
        spans = split_sentences(passage.text)
        out = [(s.start, s.end) for s in spans]
        out += [(a.start, b.end) for a, b in itertools.pairwise(spans)]
        return out

    def support(
        self,
        sentence: str,
        quote: str,
        published: str = "",
        question: str = "",
        idf: Callable[[str], float] | None = None,
        context: str = "",
    ) -> float:
        """How well the quote backs the sentence, 0..1.

        The share of the sentence's content words found in the quote (weighted by `idf` when given, so a
        rare word such as 'bridge' counts more than 'Korea'), and, when the sentence adds words the question
        did not have, the share of those new words: the new information must be backed too. A name the
        question did not give must stand in the quote's main sentence; one it did, in the chunk the quote
        comes from (`context`), where 'Washington' also stands for 'the U.S.', 'Pyongyang' for 'North Korea', ...
        0 when the sentence has a number that neither the quote nor the article's date holds (a sentence
        may restate the year or day of the article it cites).
        """
        words = self.analyzer.term_set(sentence)
        if not words:
            return 0.0
        date_words = _date_words(published)
        digits = {n.replace(",", "") for n in re.findall(r"\b\d[\d,]*(?:\.\d+)?\b", sentence)}
        if digits - self.analyzer.numbers(quote) - date_words:
            return 0.0
        have = self.analyzer.term_set(quote)
        # a name the question did not give must stand in the quote's main sentence (or, when that sentence
        # starts with 'He', 'They', ..., in the one before), and a post 'to X' must match the quote's
        dated = self.analyzer.term_set(" ".join(date_words))
        core = self._core_terms(words, quote) | dated
        given = named(question)
        around = self.analyzer.term_set(with_aliases(context or quote)) | have | dated
        for name in named(sentence):
            terms = self.analyzer.term_set(name)
            if not terms or _month_in(name, quote):
                continue
            if name in given:
                # 'Kim Jong Un' from the question is there when the chunk says 'Kim'
                full = next((g for g in _name_runs(question) if name in g), {name})
                if not any(self.analyzer.term_set(w) <= around for w in full):
                    return 0.0
            elif not terms <= core:
                return 0.0
        if not roles_match(self.analyzer, sentence, quote):
            return 0.0

        def weight(terms: set[str]) -> float:
            return sum(idf(t) for t in terms) if idf else float(len(terms))

        # a sentence may restate the year or month of the article it cites, and the question's own words
        # when the quote's chunk has them ('the working group' the quote calls 'the group')
        backed = have | dated | (self.analyzer.term_set(question) & self.analyzer.term_set(context))
        score = weight(words & backed) / (weight(words) or 1.0)
        q_terms = self.analyzer.term_set(question)
        novel = words - q_terms
        if question and novel:
            score = min(score, weight(novel & backed) / (weight(novel) or 1.0))
        # the quote itself must tie the new fact to what was asked, not just sit in the same chunk
        # (a dateline 'SEOUL, Jul 2' does not say where the bridge in the photo is)
        asked = words & q_terms
        if question and novel and asked and weight(asked & have) < self.min_anchor * weight(asked):
            return 0.0
        if (
            self.language is not None
            and score >= self.min_support
            and not self._same_speakers(sentence, quote, context)
        ):
            return 0.0
        return score

    def _same_speakers(self, sentence: str, quote: str, context: str) -> bool:
        """Whether the sentence names the speakers and agents of its quote, read in its chunk (`context`)."""
        assert self.language is not None
        at = context.find(quote) if context else -1
        before = context[max(0, at - 600) : at] if at > 0 else ""
        rest = context[at + len(quote) :] if at >= 0 else ""
        following = split_sentences(rest)
        after = following[0].text if following else ""
        return self.language.consistent(sentence, quote, before, after)

    def _core_terms(self, words: set[str], quote: str) -> set[str]:
        """Terms of the quote sentence sharing most words with the claim.

        With its lead-in when it opens on a pronoun, and with the next sentence when that one says who said it.
        """
        spans = split_sentences(quote)
        if len(spans) < 2:
            return self.analyzer.term_set(quote)
        sets = [self.analyzer.term_set(sp.text) for sp in spans]
        i = max(range(len(sets)), key=lambda k: len(words & sets[k]))
        core = sets[i]
        if i and _PRONOUN_LEAD.match(spans[i].text):
            core = core | sets[i - 1]
        if i + 1 < len(spans) and is_attribution(spans[i + 1].text):
            core = core | sets[i + 1]  # '... Spokesperson Park Il made these comments' says whose words they are
        return core

    def best_quote(
        self,
        sentence: str,
        passages: Sequence[Passage],
        only: Sequence[int] | None = None,
        question: str = "",
        idf: Callable[[str], float] | None = None,
    ) -> tuple[float, int, tuple[int, int]] | None:
        """(support, passage index, span) of the best supporting quote, preferring single sentences."""
        best: tuple[float, int, tuple[int, int]] | None = None
        indices = only if only is not None else range(len(passages))
        for i in indices:
            for a, b in self.candidate_quotes(passages[i]):
                quote, p = passages[i].text[a:b], passages[i]
                score = self.support(sentence, quote, p.published, question, idf, p.context or p.text)
                score -= 0.001 * (b - a) / 1000  # among equals, the shorter quote
                if best is None or score > best[0]:
                    best = (score, i, (a, b))
        return best

    def check(
        self,
        answer: str,
        passages: Sequence[Passage],
        question: str = "",
        idf: Callable[[str], float] | None = None,
    ) -> CheckResult:
        """Keep sentences with a verified quote (re-pointing wrong markers); drop the unsupported ones."""
        sentences: list[CheckedSentence] = []
        citations: list[Citation] = []
        keys: dict[tuple[str, int, int], int] = {}
        dropped: list[str] = []
        repaired: list[str] = []
        parsed = parse_answer(answer)
        q_terms = self.analyzer.term_set(question)
        refused = is_refusal(answer)
        for body, numbers in parsed:
            if is_refusal(body):
                continue
            if question and not _YES_NO.match(question) and not self.analyzer.term_set(body) - q_terms:
                dropped.append(body)  # it only restates the question
                continue
            valid = [n - 1 for n in numbers if 1 <= n <= len(passages)]
            if len(valid) != len(numbers):
                repaired.append(f"removed marker(s) naming no passage in: {body}")
            found = self.best_quote(body, passages, valid, question, idf) if valid else None
            anywhere = self.best_quote(body, passages, None, question, idf)
            if anywhere is None or anywhere[0] < self.min_support:
                dropped.append(body)
                continue
            if found is None or found[0] < self.min_support or found[0] < anywhere[0] - self.clearly_better:
                repaired.append(f"cited passage {anywhere[1] + 1} instead of {numbers or 'none'} for: {body}")
                found = anywhere
            _, index, (a, b) = found
            passage = passages[index]
            key = (passage.source, passage.start + a, passage.start + b)
            if key not in keys:
                keys[key] = len(citations) + 1
                citations.append(Citation.from_passage(keys[key], passage, a, b))
            sentences.append(CheckedSentence(body, (keys[key],)))
        return CheckResult(sentences, citations, dropped, repaired, refused and not sentences)
