"""The shape of one line of a document: prose, a title, a label, a list item; used by cleaning and metadata."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_WORD = re.compile(r"[^\W_]+(?:[-'’.][^\W_]+)*\.?", re.UNICODE)
# A sentence end, maybe followed by closing quotes and a short credit in parentheses ("... 2020. (Yonhap)").
_SENTENCE_END = re.compile(r"[.!?。！？][\"”’)\]]*(?:\s*\([^()]{1,40}\))?$")
# "Dept.", "Corp.", "U.S." at the end of a headline are abbreviations, not the end of a sentence.
_ABBREVIATION_END = re.compile(r"(?:\b[A-Z][a-z]{0,4}|\b(?:[A-Z]\.){1,4}[A-Z]?)\.$")
_MAX_TITLE_WORDS = 25


def words(line: str) -> list[str]:
    """The words of a line (letters and digits, with inner hyphens, apostrophes and dots), in any script."""
    return _WORD.findall(line)


def ends_sentence(line: str) -> bool:
    """Whether the line ends the way a sentence does (., !, ? before any closing quote or bracket)."""
    return bool(_SENTENCE_END.search(line.strip()))


def is_prose(line: str, min_words: int = 8) -> bool:
    """A line of running text: enough words and a sentence ending."""
    return len(words(line)) >= min_words and ends_sentence(line)


def is_title_like(line: str) -> bool:
    """A headline-shaped line: 2 to 25 words, no sentence ending (a question, or an abbreviation, may end it)."""
    n = len(words(line))
    if not 2 <= n <= _MAX_TITLE_WORDS or not any(c.isalpha() for c in line):
        return False
    stripped = line.strip()
    return not ends_sentence(stripped) or stripped.endswith("?") or bool(_ABBREVIATION_END.search(stripped))


def script_of(text: str) -> str:
    """The writing system most of a text's letters belong to ('LATIN', 'HANGUL', 'CYRILLIC', ...)."""
    counts: Counter[str] = Counter()
    for char in text:
        if char.isalpha():
            name = unicodedata.name(char, "")
            counts[name.split(" ")[0] if name else "UNKNOWN"] += 1
    if not counts:
        return ""
    script = counts.most_common(1)[0][0]
    return "HANGUL" if script in ("HANGUL", "HANGEUL") else script


def letters_share(line: str) -> float:
    """Share of a line's non-space characters that are letters."""
    chars = [c for c in line if not c.isspace()]
    return sum(c.isalpha() for c in chars) / len(chars) if chars else 0.0


def normalised(line: str) -> str:
    """A line reduced for comparison: lowercase, digits as 0, spacing collapsed."""
    return re.sub(r"\d", "0", " ".join(line.lower().split()))
