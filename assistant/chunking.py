"""Sentence segmentation and token-aware chunking, both with character offsets into the cleaned text."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

# Words that end with a period without ending the sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr gen lt col sgt capt cmdr adm gov sen rep pres dept vs etc no nos fig "
    "jan feb mar apr jun jul aug sep sept oct nov dec inc corp co ltd approx est".split()
)
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
        if m.group().startswith((".", "!", "?")) and m.group()[0] == "." and _is_abbreviation(text, m.start()):
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
    """Cut a sentence longer than `limit` tokens at word boundaries."""
    pieces: list[Span] = []
    words = list(re.finditer(r"\S+", span.text))
    begin = 0
    while begin < len(words):
        end = begin + 1
        # grow greedily; token counts are close to additive over words
        budget = count(words[begin].group())
        while end < len(words) and budget + count(" " + words[end].group()) <= limit:
            budget += count(" " + words[end].group())
            end += 1
        s, e = words[begin].start(), words[end - 1].end()
        pieces.append(Span(span.start + s, span.start + e, span.text[s:e]))
        begin = end
    return pieces


def chunk_id(source: str, text: str, occurrence: int) -> str:
    """Stable id from the document's name and the chunk's own text (and which repeat of it this is)."""
    return hashlib.sha256(f"{source}\x00{occurrence}\x00{text}".encode()).hexdigest()[:32]


def chunk_text(
    text: str, source: str, count: Callable[[str], int], size: int = 200, overlap: int = 40
) -> list[Chunk]:
    """Chunks of about `size` tokens on sentence boundaries, neighbours sharing up to `overlap` tokens."""
    sentences: list[tuple[Span, int]] = []
    for sentence in split_sentences(text):
        n = count(sentence.text)
        if n > size:
            sentences.extend((p, count(p.text)) for p in _split_long(sentence, size, count))
        else:
            sentences.append((sentence, n))
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    i = 0
    while i < len(sentences):
        j, total = i, 0
        while j < len(sentences) and (j == i or total + sentences[j][1] <= size):
            total += sentences[j][1]
            j += 1
        start, end = sentences[i][0].start, sentences[j - 1][0].end
        body = text[start:end]
        occurrence = seen.get(body, 0)
        seen[body] = occurrence + 1
        chunks.append(
            Chunk(chunk_id(source, body, occurrence), source, len(chunks), start, end, body, count(body))
        )
        if j >= len(sentences):
            break
        # step back over trailing sentences that fit in the overlap, but always move forward
        back, carried = j, 0
        while back - 1 > i and carried + sentences[back - 1][1] <= overlap:
            back -= 1
            carried += sentences[back][1]
        i = back
    return chunks
