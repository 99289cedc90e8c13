"""Word-level text analysis shared by BM25, evidence scoring and citation checking."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

# English function words plus words too common in this corpus to tell passages apart.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "said",
        "says",
        "say",
        "according",
        "tell",
        "told",
        "please",
        "did",
        "does",
        "do",
        "whose",
        "whether",
        "shall",
        "may",
        "might",
        "must",
        "us",
        "s",
        "t",
    ]
)
_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'’][A-Za-z0-9]+)*")
NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )
} | {"once": "1", "twice": "2", "thrice": "3", "first": "1st", "second": "2nd", "third": "3rd"}
# irregular past forms the stemmer leaves alone ("met" must match "meeting")
_IRREGULAR = {
    "met": "meet",
    "said": "say",
    "says": "say",
    "held": "hold",
    "led": "lead",
    "began": "begin",
    "begun": "begin",
    "took": "take",
    "taken": "take",
    "made": "make",
    "gave": "give",
    "given": "give",
    "told": "tell",
    "went": "go",
    "gone": "go",
    "came": "come",
    "saw": "see",
    "seen": "see",
    "found": "find",
    "became": "become",
    "sent": "send",
    "spoke": "speak",
    "spoken": "speak",
    "knew": "know",
    "known": "know",
    "thought": "think",
    "brought": "bring",
    "kept": "keep",
    "left": "leave",
    "sought": "seek",
    "chose": "choose",
    "chosen": "choose",
    "won": "win",
    "lost": "lose",
    "wrote": "write",
    "written": "write",
    "rose": "rise",
    "fell": "fall",
    "fallen": "fall",
    "broke": "break",
    "broken": "break",
}
# a few words news writing uses interchangeably, mapped to one form
_SYNONYMS = {
    "inaugural": "first",
    "maiden": "first",
    "session": "meeting",
    "sessions": "meeting",
    "worry": "concern",
    "worries": "concern",
    "worried": "concern",
    "fears": "concern",
    "spokesman": "spokesperson",
    "spokeswoman": "spokesperson",
    "spokesmen": "spokesperson",
    "spokespeople": "spokesperson",
    # month abbreviations: 'Feb. 15' matches 'February'
    "jan": "january",
    "feb": "february",
    "apr": "april",
    "jun": "june",
    "jul": "july",
    "aug": "august",
    "sep": "september",
    "sept": "september",
    "oct": "october",
    "nov": "november",
    "dec": "december",
}
# nationality adjectives match their country: 'South Korean' backs 'South Korea'
_NATIONALITY = {
    "korean": "korea",
    "american": "usa",
    "america": "usa",
    "japanese": "japan",
    "chinese": "china",
    "vietnamese": "vietnam",
    "russian": "russia",
}
_ABBREV = {"u.s.": "usa", "u.s": "usa", "us": "usa", "n.k.": "nk", "s.": "south", "dprk": "dprk"}


class Analyzer:
    """Lowercase, split, drop stopwords, stem: the same terms for documents and questions."""

    def __init__(self) -> None:
        import Stemmer

        self._stemmer: Any = Stemmer.Stemmer("english")

    def terms(self, text: str) -> list[str]:
        text = re.sub(r"\bU\.S\.?(?=\W|$)|\bUS\b|\b[Uu]nited [Ss]tates\b", " usa ", text)
        out: list[str] = []
        for m in _WORD.finditer(text):
            for word in re.split(r"[-'’]", m.group().lower()):
                if word and word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
                    word = _SYNONYMS.get(word, word)
                    word = NUMBER_WORDS.get(word, _IRREGULAR.get(word, _NATIONALITY.get(word, word)))
                    out.append(self._stemmer.stemWord(_ABBREV.get(word, word)))
        return out

    def term_set(self, text: str) -> set[str]:
        return set(self.terms(text))

    @staticmethod
    def numbers(text: str) -> set[str]:
        """Numbers in the text, number words ('three', 'twice') as digits; '1,000' as '1000'."""
        found = {m.replace(",", "") for m in re.findall(r"\b\d[\d,]*(?:\.\d+)?\b", text)}
        words = {NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in NUMBER_WORDS}
        return found | {w for w in words if w.isdigit()}


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
