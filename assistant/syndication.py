"""Near-duplicate paragraphs across documents (one wire story in several outlets), found with MinHash LSH.

Each paragraph of enough words is shingled into word 5-grams and hashed (datasketch); paragraphs whose
estimated Jaccard similarity passes the threshold are one text. It is indexed once, in the document that
published it first (undated ones last, then by name); the others record that they carry it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.lines import is_prose, words

_SHINGLE = 5
_PERMUTATIONS = 64


@dataclass(frozen=True)
class Paragraph:
    """One prose line of a document, by its position."""

    doc: int
    line: int
    text: str


@dataclass
class Syndication:
    """What the corpus-wide comparison decided."""

    dropped: dict[int, dict[int, str]] = field(default_factory=dict)  # doc -> line -> reason
    also_in: dict[int, set[int]] = field(default_factory=dict)  # keeper doc -> docs that carry its paragraphs
    copy_of: dict[int, int] = field(default_factory=dict)  # doc all of whose paragraphs another carries


def find_syndicated(
    documents: Sequence[Sequence[str]],
    order: Sequence[tuple[object, ...]],
    names: Sequence[str],
    threshold: float,
    min_words: int,
) -> Syndication:
    """Compare the prose lines of `documents` (each a list of kept lines; None for chrome) across documents.

    `order` gives each document's precedence key (lower keeps the paragraph); `names` are shown in reasons.
    """
    from datasketch import MinHash, MinHashLSH

    paragraphs = [
        Paragraph(d, i, line)
        for d, lines in enumerate(documents)
        for i, line in enumerate(lines)
        if line and is_prose(line) and len(words(line)) >= min_words
    ]
    result = Syndication()
    if len({p.doc for p in paragraphs}) < 2:
        return result
    lsh = MinHashLSH(threshold=threshold, num_perm=_PERMUTATIONS)
    hashes: list[MinHash] = []
    for n, p in enumerate(paragraphs):
        tokens = [w.lower() for w in words(p.text)]
        shingles = {" ".join(tokens[k : k + _SHINGLE]).encode() for k in range(max(1, len(tokens) - _SHINGLE + 1))}
        m = MinHash(num_perm=_PERMUTATIONS, seed=1)
        m.update_batch(list(shingles))
        hashes.append(m)
        lsh.insert(str(n), m)
    kept_by: dict[int, list[int]] = {}  # doc -> the keeper doc of each of its dropped paragraphs
    for n, p in enumerate(paragraphs):
        twins = [int(k) for k in lsh.query(hashes[n]) if paragraphs[int(k)].doc != p.doc]
        twins = [k for k in twins if hashes[n].jaccard(hashes[k]) >= threshold]
        if not twins:
            continue
        keeper = min([p, *(paragraphs[k] for k in twins)], key=lambda q: (order[q.doc], q.doc))
        if keeper.doc == p.doc:
            continue
        reason = f"syndicated: the same paragraph is indexed from {names[keeper.doc]}"
        result.dropped.setdefault(p.doc, {})[p.line] = reason
        result.also_in.setdefault(keeper.doc, set()).add(p.doc)
        kept_by.setdefault(p.doc, []).append(keeper.doc)
    for d, lines in enumerate(documents):
        prose = [i for i, line in enumerate(lines) if line and is_prose(line) and len(words(line)) >= min_words]
        gone = result.dropped.get(d, {})
        if prose and all(i in gone for i in prose):
            keepers = kept_by[d]
            result.copy_of[d] = max(set(keepers), key=keepers.count)
    return result
