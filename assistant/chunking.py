"""Sentence segmentation and token-aware chunking, both with character offsets into the cleaned text."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

# Words that end with a period without ending the sentence.
_ABBREVIATIONS = frozenset(
    (
        *("mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "gen", "lt", "col", "sgt", "capt", "cmdr"),
        *("adm", "gov", "sen", "rep", "pres", "dept", "vs", "etc", "no", "nos", "fig", "jan", "feb"),
        *("mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "inc", "corp", "co"),
        *("ltd", "approx", "est"),
    )
)
_WORD_WINDOW = 64
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])|\n+")


@dataclass(frozen=True)
class Span:
    """A piece of a text by character offsets: text == source[start:end]."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """A chunk of one document; `id` is stable for the same source and text."""

    id: str
    source: str
    index: int
    start: int
    end: int
    text: str
    tokens: int


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at `dot` closes an abbreviation such as 'U.S.' or 'Aug.'."""
    # the word before the dot, looked for in a short window (searching the whole text before every period made
    # splitting quadratic: a 200 KB document took a minute); a word that fills the window is looked for in full
    start = max(0, dot + 1 - _WORD_WINDOW)
    word = re.search(r"[\w.]+$", text[start : dot + 1])
    if word and word.start() == 0 and start > 0:
        word = re.search(r"[\w.]+$", text[: dot + 1])
    if not word:
        return False
    token = word.group().rstrip(".")
    if re.fullmatch(r"(?:[A-Za-z]\.)*[A-Za-z]", token):  # U.S, D.C, N.K, S
        return True
    return token.lower() in _ABBREVIATIONS


def split_sentences(text: str) -> list[Span]:
    """Sentences (and lines) of `text` with offsets; whitespace between them is not part of any span."""
    spans: list[Span] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group().startswith(".") and _is_abbreviation(text, m.start()):
            continue
        end = m.end() if not m.group().startswith("\n") else m.start()
        _add(spans, text, start, end)
        start = m.end()
    _add(spans, text, start, len(text))
    return spans


def _add(spans: list[Span], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        s = start + lead
        spans.append(Span(s, s + len(stripped), stripped))


def _split_long(span: Span, limit: int, count: Callable[[str], int]) -> list[Span]:
    """Cut a sentence longer than `limit` tokens at word boundaries (a word over the limit is cut too)."""
    pieces: list[Span] = []
    text = span.text
    words = list(re.finditer(r"\S+", text))
    begin = 0
    while begin < len(words):
        first = words[begin]
        budget = count(first.group())
        if budget > limit:
            pieces.extend(_cut_word(span.start + first.start(), first.group(), limit, count))
            begin += 1
            continue
        end = begin + 1
        # grow greedily; token counts are close to additive over words, and checked exactly below
        while end < len(words):
            step = count(text[words[end - 1].end() : words[end].end()])
            if budget + step > limit:
                break
            budget += step
            end += 1
        while end - 1 > begin and count(text[first.start() : words[end - 1].end()]) > limit:
            end -= 1
        s, e = first.start(), words[end - 1].end()
        pieces.append(Span(span.start + s, span.start + e, text[s:e]))
        begin = end
    return pieces


def _cut_word(offset: int, word: str, limit: int, count: Callable[[str], int]) -> list[Span]:
    """Cut one over-long word (a URL, a run of digits) into the longest pieces of at most `limit` tokens."""
    pieces: list[Span] = []
    begin = 0
    while begin < len(word):
        # binary search for the longest piece that fits; a token spans at most a few dozen characters
        lo, hi = begin + 1, min(len(word), begin + 32 * limit)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(word[begin:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        pieces.append(Span(offset + begin, offset + lo, word[begin:lo]))
        begin = lo
    return pieces


def chunk_id(source: str, text: str, occurrence: int) -> str:
    """Stable id from the document's name and the chunk's own text (and which repeat of it this is)."""
    return hashlib.sha256(f"{source}\x00{occurrence}\x00{text}".encode()).hexdigest()[:32]


def chunk_text(text: str, source: str, count: Callable[[str], int], size: int = 200, overlap: int = 40) -> list[Chunk]:
    """Chunks of at most `size` tokens on sentence boundaries, neighbours sharing up to `overlap` tokens."""
    spans: list[Span] = []
    for sentence in split_sentences(text):
        spans.extend(_split_long(sentence, size, count) if count(sentence.text) > size else [sentence])
    # cost[k]: tokens sentence k adds after sentence k - 1, counting the whitespace (newlines) between them
    cost = [count(text[spans[k - 1].end if k else spans[k].start : spans[k].end]) for k in range(len(spans))]
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    i, done = 0, 0  # done: how many sentences the chunks so far cover
    while done < len(spans):
        j, total = i + 1, count(spans[i].text)
        while j < len(spans) and total + cost[j] <= size:
            total += cost[j]
            j += 1
        start = spans[i].start
        tokens = count(text[start : spans[j - 1].end])
        while tokens > size and j - 1 > i:  # the estimate was a little low: drop the last sentence
            j -= 1
            tokens = count(text[start : spans[j - 1].end])
        if j <= done:  # the overlap left no room for a new sentence: start after the last chunk instead
            i = done
            continue
        body = text[start : spans[j - 1].end]
        occurrence = seen.get(body, 0)
        seen[body] = occurrence + 1
        chunks.append(
            Chunk(chunk_id(source, body, occurrence), source, len(chunks), start, spans[j - 1].end, body, tokens)
        )
        done = j
        # step back over trailing sentences that fit in the overlap, leaving room for the next sentence
        back, carried = j, 0
        while (
            back - 1 > i
            and carried + cost[back - 1] <= overlap
            and j < len(spans)
            and carried + cost[back - 1] + cost[j] <= size
        ):
            back -= 1
            carried += cost[back]
        i = back
    return chunks
