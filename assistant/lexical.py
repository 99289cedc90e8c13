"""Word-level text analysis shared by BM25, evidence scoring and citation checking.

The words it knows are data: English in `lexicons/english.yaml` (stopwords, number words, irregular verbs,
abbreviations), names of this domain in `lexicons/aliases.yaml` (one term for 'U.S.', nationality words,
synonyms). Each Analyzer reads them once, when it is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from assistant.lexicon import Aliases, English

_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'’][A-Za-z0-9]+)*")


class Analyzer:
    """Lowercase, split, drop stopwords, stem: the same terms for documents and questions.

    `english` and `aliases` default to the packaged lexicons; pass `Aliases.load(settings.aliases_file)` to
    use a user's aliases too.
    """

    def __init__(self, english: English | None = None, aliases: Aliases | None = None) -> None:
        import Stemmer

        self._stemmer: Any = Stemmer.Stemmer("english")
        self.english = english if english is not None else English.load()
        self.aliases = aliases if aliases is not None else Aliases.load()
        self.stopwords = self.english.stopwords
        # a word is first given its usual form ('inaugural' -> 'first', 'Feb' -> 'february'), then its term:
        # a number word's digits before an irregular verb's infinitive before a nationality's country
        self._usual = {**self.english.abbreviations, **self.aliases.synonyms}
        self._forms = {**self.aliases.country_words, **self.english.irregular_verbs, **self.english.number_words}

    def terms(self, text: str) -> list[str]:
        one_term = self.aliases.one_term_pattern
        if one_term is not None:
            text = one_term.sub(lambda m: f" {self.aliases.term_of[m.group()]} ", text)
        out: list[str] = []
        for m in _WORD.finditer(text):
            for word in re.split(r"[-'’]", m.group().lower()):
                if word and word not in self.stopwords and (len(word) > 1 or word.isdigit()):
                    word = self._usual.get(word, word)
                    out.append(self._stemmer.stemWord(self._forms.get(word, word)))
        return out

    def term_set(self, text: str) -> set[str]:
        return set(self.terms(text))

    def numbers(self, text: str) -> set[str]:
        """Numbers in the text, number words ('three', 'twice') as digits; '1,000' as '1000'."""
        found = {m.replace(",", "") for m in re.findall(r"\b\d[\d,]*(?:\.\d+)?\b", text)}
        number_words = self.english.number_words
        words = {number_words[w] for w in re.findall(r"[a-z]+", text.lower()) if w in number_words}
        return found | {w for w in words if w.isdigit()}


class _PackagedStopwords(AbstractSet[str]):
    """The packaged English stopwords, read from `lexicons/english.yaml` on first use.

    Only for `evidence.named`, which has no Analyzer to ask; everything else reads `Analyzer.stopwords`.
    """

    def __init__(self) -> None:
        self._words: frozenset[str] | None = None

    def _get(self) -> frozenset[str]:
        if self._words is None:
            self._words = English.load().stopwords
        return self._words

    def __contains__(self, word: object) -> bool:
        return word in self._get()

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


STOPWORDS: AbstractSet[str] = _PackagedStopwords()


def idf_function(doc_terms: Sequence[set[str]]) -> Callable[[str], float]:
    """Smoothed inverse document frequency over the chunk collection."""
    n = len(doc_terms)
    df: dict[str, int] = {}
    for terms in doc_terms:
        for t in terms:
            df[t] = df.get(t, 0) + 1

    def idf(term: str) -> float:
        return math.log(1 + (n + 1) / (df.get(term, 0) + 0.5))

    return idf
