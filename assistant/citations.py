"""Citation checking: parse [n] markers, find each sentence's supporting quote verbatim, drop the rest.

The words it judges by are data: the names that stand for one another and the titles of posts come with the
Analyzer (`lexicons/aliases.yaml`), the model's ways of refusing and of naming passages from
`lexicons/model_output.yaml`; month names from the calendar module.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from assistant.chunking import split_sentences
from assistant.evidence import is_attribution, named
from assistant.language import Language, text_before
from assistant.lexical import STOPWORDS, Analyzer
from assistant.lexicon import Aliases, ModelPhrasing
from assistant.quarantine import quarantined
from assistant.retrieval import Passage

_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# markers in a row, 'A [2], [3] and [4]': made one marker '[2, 3, 4]' so no ', ,' is left between them
_MARKER_RUN = re.compile(r"(?<=\d)\]\s*(?:[,;]|\band\b)?\s*\[(?=\d)")


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


def role_senders(text: str, aliases: Aliases) -> list[tuple[str, str]]:
    """('ambassador', 'U.S.') for 'U.S. Ambassador ...': whose post it is."""
    return [(m.group(2).lower(), m.group(1).strip()) for m in aliases.sender_pattern.finditer(text)]


def role_phrases(text: str, aliases: Aliases) -> list[tuple[str, str]]:
    """('ambassador', 'South Korea Harry Harris') for 'Ambassador to South Korea Harry Harris': where a post is.

    Not where the capitalised words name something else ('the delegation in the Vesta talks'): words followed
    by a content word in lower case modify that word and are no place.
    """
    out = []
    for m in aliases.post_pattern.finditer(text):
        following = re.match(r"\s*([a-z][\w'’-]*)", text[m.end() :])
        if following and following.group(1) not in STOPWORDS:
            continue
        out.append((m.group(1).lower(), m.group(2).strip()))
    return out


def roles_match(analyzer: Analyzer, claim: str, source: str) -> bool:
    """False when the claim names a post 'to X' (ambassador, envoy, ...) that the source does not.

    Catches role inversions such as 'South Korea's ambassador to the United States' backed by a quote
    about the 'U.S. Ambassador to South Korea'. 'Ambassador in Seoul' matches 'Ambassador to South Korea'.
    """
    aliases = analyzer.aliases
    held = [(title, analyzer.term_set(aliases.with_aliases(place))) for title, place in role_phrases(source, aliases)]
    for title, place in role_phrases(claim, aliases):
        terms = analyzer.term_set(place)
        if terms and not any(t == title and terms <= other for t, other in held):
            return False
    # whose post: 'South Korean Ambassador Kevin Kim' is wrong when the source says 'US Ambassador ... Kevin Kim'
    countries = analyzer.term_set(aliases.country_names)
    senders = [
        (title, analyzer.term_set(aliases.with_aliases(who)) & countries)
        for title, who in role_senders(source, aliases)
    ]
    for title, who in role_senders(claim, aliases):
        terms = analyzer.term_set(who) & countries
        theirs = [other for t, other in senders if t == title and other]
        if terms and theirs and not any(terms <= other for other in theirs):
            return False
    return True


def _date_words(published: str) -> set[str]:
    """'2018', '11', '22', 'November', 'Nov' for '2018-11-22'."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", published or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        return set()
    month = int(m.group(2))
    return {m.group(1), str(int(m.group(3))), calendar.month_name[month], calendar.month_abbr[month]}


_NAME_RUN = re.compile(r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*")


def _name_runs(text: str) -> list[set[str]]:
    """The words of each run of capitalised words ('Kim Jong Un', 'Unification Bridge'), as `named` spells them."""
    return [named(run) for run in _NAME_RUN.findall(text)]


def outlet_names(outlet: str) -> str:
    """An outlet's name with the initials it may go by ('Mireth Radio-Television MRT', 'Voice of America VOA
    VA', 'The Daily Courier TDC DC')."""
    words = re.findall(r"[A-Za-z][\w']*", outlet)
    if sum(w[0].isupper() for w in words) < 2:
        return outlet
    leading = words[1:] if words[0].lower() == "the" else words
    forms = (
        "".join(w[0] for w in ws if keep(w)).upper() for ws in (words, leading) for keep in (str.isalpha, _capital)
    )
    return " ".join(dict.fromkeys([outlet, *(f for f in forms if len(f) > 1)]))


def _capital(word: str) -> bool:
    return word[0].isupper()


def _month_in(word: str, text: str) -> bool:
    """'December' is in a text that says 'Dec.'."""
    names = list(calendar.month_name)
    if not word or word not in names:
        return False
    return re.search(rf"\b{re.escape(calendar.month_abbr[names.index(word)])}\b", text) is not None


def parse_answer(text: str, phrasing: ModelPhrasing | None = None) -> list[tuple[str, list[int]]]:
    """Split a model answer into (sentence without markers, cited numbers).

    `phrasing` defaults to the packaged `lexicons/model_output.yaml`, read on each call without it.
    """
    phrasing = phrasing or ModelPhrasing.load()
    out: list[tuple[str, list[int]]] = []
    pending: list[int] = []
    text = phrasing.lead_in.sub("", phrasing.passage.sub(r"[\1]", text.strip()))
    text = _MARKER_RUN.sub(", ", text)
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


def is_refusal(text: str, phrasing: ModelPhrasing | None = None) -> bool:
    """True when the model says it cannot answer from the passages.

    `phrasing` defaults to the packaged `lexicons/model_output.yaml`, read on each call without it.
    """
    if not text.strip():
        return True
    return bool((phrasing or ModelPhrasing.load()).refusal.search(text))


class CitationChecker:
    """Verifies every sentence of an answer against the passages it was given."""

    def __init__(
        self,
        analyzer: Analyzer,
        min_support: float = 0.6,
        language: Language | None = None,
        clearly_better: float = 0.15,
        min_anchor: float = 0.3,
        phrasing: ModelPhrasing | None = None,
        name_window: int = -1,
        quarantine_echo: float = 0.7,
        mood: bool = False,
    ) -> None:
        self.analyzer = analyzer
        # with a Language: a claim must assert its verbs as the quote does (not 'is ratified' for 'must be')
        self.mood = mood
        # sentences either side of a quote where a name the question gave must stand (-1: anywhere in its chunk)
        self.name_window = name_window
        self.min_support = min_support
        # when given, speakers and agents are checked (`Language.consistent`), and parts of speech tell
        # a quote sentence that points back to the one before it
        self.language = language
        self.clearly_better = clearly_better  # re-point a citation when another passage backs it this much better
        self.min_anchor = min_anchor  # least share of a sentence's question words its quote must itself hold
        self.phrasing = phrasing or ModelPhrasing.load()  # how the model refuses and names passages
        # a sentence repeating this share of a quarantined sentence's words is dropped (settings.quarantine_echo)
        self.quarantine_echo = quarantine_echo

    def candidate_quotes(self, passage: Passage) -> list[tuple[int, int]]:
        """Offsets (within the passage) of each sentence and each pair of adjacent sentences."""
        spans = split_sentences(passage.text)
        out = [(s.start, s.end) for s in spans]
        out += [(a.start, b.end) for a, b in itertools.pairwise(spans)]
        blank = quarantined(passage)  # never a quote across a quarantined (blanked) sentence
        return [(a, b) for a, b in out if not any(s < b and e > a for s, e in blank)] if blank else out

    def support(
        self,
        sentence: str,
        quote: str,
        published: str = "",
        question: str = "",
        idf: Callable[[str], float] | None = None,
        context: str = "",
        document: str = "",
        outlet: str = "",
    ) -> float:
        """How well the quote backs the sentence, 0..1.

        The share of the sentence's content words found in the quote (weighted by `idf` when given, so a
        rare word such as 'bridge' counts more than 'Korea'), and, when the sentence adds words the question
        did not have, the share of those new words: the new information must be backed too. A name the
        question did not give must stand in the quote's main sentence; one it did, within `name_window`
        sentences of the quote in the chunk it comes from (`context`), where 'Washington' also stands for
        'the U.S.', 'Pyongyang' for 'North Korea', ...
        0 when the sentence has a number that neither the quote nor the article's date holds (a sentence
        may restate the year or day of the article it cites). `document`: more of the quote's article (the
        other passages from it), where the title of a person the quote names may stand. `outlet`: who
        published the quote's article; a sentence may name it as it may restate the date ('MRT's correspondent
        said ...', 'per The Korea Herald, ...'), though it never ties the quote to the question.
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
        outlet = outlet_names(outlet)
        published_by = self.analyzer.term_set(outlet)
        core = self._core_terms(words, quote) | dated | published_by
        given = named(question)
        near = self._near(quote, context) if self.name_window >= 0 else (context or quote)
        around = self.analyzer.term_set(self.analyzer.aliases.with_aliases(near)) | have | dated | published_by
        for name in named(sentence):
            terms = self.analyzer.term_set(name)
            if not terms or _month_in(name, quote):
                continue
            if name in given:
                # 'Kim Jong Un' from the question is there when the chunk says 'Kim'
                full = next((g for g in _name_runs(question) if name in g), {name})
                if not any(self.analyzer.term_set(w) <= around for w in full) and not self._refers_back(
                    quote, context, full, document
                ):
                    return 0.0
            elif not terms <= core:
                return 0.0
        if not roles_match(self.analyzer, sentence, quote):
            return 0.0

        def weight(terms: set[str]) -> float:
            return sum(idf(t) for t in terms) if idf else float(len(terms))

        # a sentence may restate the year or month of the article it cites, and the question's own words
        # when the quote's chunk has them ('the working group' the quote calls 'the group')
        q_terms = self.analyzer.term_set(question)
        pointed = self._pointed(sentence, words) & q_terms
        backed = have | dated | (q_terms & self.analyzer.term_set(context)) | pointed
        words = words - published_by or words  # naming the publisher is neither backed nor unbacked
        score = weight(words & backed) / (weight(words) or 1.0)
        novel = words - q_terms
        if question and novel:
            score = min(score, weight(novel & backed) / (weight(novel) or 1.0))
        # the quote itself must tie the new fact to what was asked, not just sit in the same chunk
        # (a dateline 'SEOUL, Jul 2' does not say where the bridge in the photo is); a phrase pointing back
        # into the question ('who holds that post now?' -> '... holds that post now') stands for what the
        # question named before it, so the quote must hold enough of the question's other words
        asked = (q_terms - pointed) if pointed else words & q_terms
        if question and novel and asked and weight(asked & (have | dated)) < self.min_anchor * weight(asked):
            return 0.0
        if (
            self.language is not None
            and score >= self.min_support
            and not self._same_speakers(sentence, quote, context, document, outlet)
        ):
            return 0.0
        if (
            self.language is not None
            and self.mood
            and score >= self.min_support
            and not self.language.same_mood(sentence, quote)
        ):
            return 0.0
        return score

    def _pointed(self, sentence: str, words: set[str]) -> set[str]:
        """The terms (of the sentence's `words`) of the noun phrases a demonstrative points with ('that
        post'); none without a parse."""
        if self.language is None:
            return set()
        return words - self.analyzer.term_set(self.language.without_pointed(sentence))

    def _near(self, quote: str, context: str) -> str:
        """The quote with `name_window` sentences either side of it in its chunk."""
        at = context.find(quote) if context else -1
        if at < 0:
            return quote
        spans = split_sentences(context)
        first = next((i for i, sp in enumerate(spans) if sp.end > at), 0)
        last = next((i for i, sp in enumerate(spans) if sp.end >= at + len(quote)), len(spans) - 1)
        a = spans[max(0, first - self.name_window)].start
        b = spans[min(len(spans) - 1, last + self.name_window)].end
        return context[min(a, at) : max(b, at + len(quote))]

    def _refers_back(self, quote: str, context: str, names: Iterable[str], document: str = "") -> bool:
        """Whether the quote is about a thing its chunk (or the rest of its article as retrieved, `document`)
        named ('the reservoir' after 'the reservoir of the Tolvek Dam'), so a name the question gives need not
        stand beside it (needs the parse)."""
        if self.language is None:
            return False
        before = " ".join([document, text_before(context, quote, limit=len(context))]).strip()
        return any(self.language.refers_back(quote, before, name) for name in names)

    def _same_speakers(self, sentence: str, quote: str, context: str, document: str = "", outlet: str = "") -> bool:
        """Whether the sentence names the speakers and agents of its quote, read in its chunk (`context`); a
        title may also be read from the rest of its article (`document`), and its owner from who published it
        (`outlet`)."""
        assert self.language is not None
        at = context.find(quote) if context else -1
        before = text_before(context, quote)
        rest = context[at + len(quote) :] if at >= 0 else ""
        following = split_sentences(rest)
        after = following[0].text if following else ""
        return self.language.consistent(sentence, quote, before, after, self._same_places, document, outlet)

    def _same_places(self, places: str, title: str) -> bool:
        """Whether a title names the places a claim gives it ('South Korean ...' is 'Seoul's ...'), aliases
        included."""
        named = self.analyzer.term_set(self.analyzer.aliases.with_aliases(title))
        return self.analyzer.term_set(places) <= named

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
        if i and self._points_back(spans[i].text):
            core = core | sets[i - 1]
        if i + 1 < len(spans) and is_attribution(spans[i + 1].text):
            core = core | sets[i + 1]  # '... Spokesperson Park Il made these comments' says whose words they are
        return core

    def _points_back(self, sentence: str) -> bool:
        """Whether a sentence opens on words that point back to the one before ('He', 'Its', 'The group').

        With a Language, spaCy's parts of speech decide: a personal or demonstrative pronoun, or a definite or
        demonstrative determiner before a common noun ('These talks', 'The new panel'), which no word list can
        cover. A checker built without one (a chain with `check_speakers` off, tests of the word-level checks)
        has no parse to ask, so it falls back to the pointing words of `lexicons/english.yaml`.
        """
        if self.language is None:
            return bool(self.analyzer.english.pointing_pattern.match(sentence))
        words = [t for t in self.language.doc(sentence) if not (t.is_punct or t.is_space)]
        if not words:
            return False
        first = words[0]
        if first.pos_ == "PRON":
            return bool({"Prs", "Dem"} & set(first.morph.get("PronType")))
        if first.pos_ != "DET" or not ("Def" in first.morph.get("Definite") or "Dem" in first.morph.get("PronType")):
            return False
        head = next((t for t in words[1:] if t.pos_ not in ("ADJ", "NUM")), None)
        return head is not None and head.pos_ == "NOUN"

    def echo(self, sentence: str, passages: Sequence[Passage]) -> float:
        """The largest share of the sentence's words that one quarantined sentence of the passages holds."""
        words = self.analyzer.term_set(sentence)
        if not words:
            return 0.0
        withheld = {w for p in passages for w in p.withheld}
        return max((len(words & self.analyzer.term_set(w)) / len(words) for w in withheld), default=0.0)

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
        # each article's retrieved chunks, once: the rest of a quote's article is read for titles and names
        articles: dict[str, dict[str, None]] = {}
        for o in passages:
            articles.setdefault(o.source, {})[o.context or o.text] = None
        for i in indices:
            p = passages[i]
            document = " ".join(c for c in articles[p.source] if c != (p.context or p.text))
            for a, b in self.candidate_quotes(p):
                quote = p.text[a:b]
                score = self.support(
                    sentence, quote, p.published, question, idf, p.context or p.text, document, p.outlet
                )
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
        parsed = parse_answer(answer, self.phrasing)
        q_terms = self.analyzer.term_set(question)
        refused = is_refusal(answer, self.phrasing)
        yes_no = bool(self.analyzer.english.yes_no_pattern.match(question))
        for body, numbers in parsed:
            if is_refusal(body, self.phrasing):
                continue
            if question and not yes_no and not self.analyzer.term_set(body) - q_terms:
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
            echo = self.echo(body, passages)
            if echo >= self.quarantine_echo and echo > anywhere[0]:
                dropped.append(body)  # it repeats a quarantined sentence better than the articles back it
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
