"""Synthetic corpora built from the seeds' sentences: chunks (with vectors) for retrieval, files for ingestion.

A synthetic chunk is 3-6 seed sentences picked at random, with a random outlet and publication date, so
retrieval at 100k chunks sees realistic words, lengths and filter selectivity. Its vector is the
normalised mean of the (real) vectors of its sentences: each unique seed sentence is embedded once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from assistant.chunking import split_sentences
from assistant.corpus import DocumentError, load_document

OUTLETS = ("Yonhap", "The Korea Herald", "The Korea Times", "Xinhua", "NationPress", "Arirang")
FIRST_DAY = date(2018, 1, 1)
LAST_DAY = date(2025, 12, 31)
CHUNKS_PER_DOCUMENT = 8
_MIN_SENTENCE_CHARS = 25


@dataclass(frozen=True)
class SyntheticChunk:
    """One chunk: id, text, Chroma metadata, and the indexes of the seed sentences it is made of."""

    id: str
    text: str
    metadata: dict[str, Any]
    sentences: tuple[int, ...]


def seed_sentences(seeds_dir: Path) -> list[str]:
    """The unique sentences of the seed documents (cleaned text), in file order."""
    out: dict[str, None] = {}
    for path in sorted(seeds_dir.iterdir()):
        try:
            doc = load_document(path)
        except DocumentError:
            continue  # sidecars and anything not a document
        for span in split_sentences(doc.text):
            text = " ".join(span.text.split())
            if len(text) >= _MIN_SENTENCE_CHARS:
                out.setdefault(text)
    return list(out)


def random_day(rng: random.Random) -> date:
    return FIRST_DAY + timedelta(days=rng.randrange((LAST_DAY - FIRST_DAY).days + 1))


def build_chunks(sentences: Sequence[str], n: int, seed: int = 0, prefix: str = "syn") -> list[SyntheticChunk]:
    """`n` chunks of 3-6 random sentences each, with varied outlets and dates (deterministic for a seed)."""
    if len(sentences) < 6:
        raise ValueError(f"need at least 6 sentences to build chunks, got {len(sentences)}")
    rng = random.Random(seed)
    chunks: list[SyntheticChunk] = []
    for i in range(n):
        picked = tuple(rng.sample(range(len(sentences)), rng.randint(3, 6)))
        text = " ".join(sentences[j] for j in picked)
        doc = i // CHUNKS_PER_DOCUMENT
        day = random_day(rng)
        source = f"{prefix}-{doc:06d}.txt"
        metadata: dict[str, Any] = {
            "source": source,
            "title": f"Synthetic article {doc}",
            "outlet": rng.choice(OUTLETS),
            "published": day.isoformat(),
            "published_int": int(day.strftime("%Y%m%d")),
            "byline": "",
            "path": f"/synthetic/{source}",
            "doc_hash": f"{prefix}{doc:06d}",
            "chunk_index": i % CHUNKS_PER_DOCUMENT,
            "start": 0,
            "end": len(text),
            "tokens": 0,
        }
        chunks.append(SyntheticChunk(f"{prefix}-{i:07d}", text, metadata, picked))
    return chunks


def chunk_vectors(chunks: Sequence[SyntheticChunk], sentence_vectors: np.ndarray) -> np.ndarray:
    """Each chunk's vector: the normalised mean of its sentences' vectors (float32, one row per chunk)."""
    vectors = np.asarray(sentence_vectors, dtype=np.float32)
    out = np.empty((len(chunks), vectors.shape[1]), dtype=np.float32)
    for row, chunk in enumerate(chunks):
        out[row] = vectors[list(chunk.sentences)].mean(axis=0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def make_queries(sentences: Sequence[str], n: int, seed: int = 1, fixed: Sequence[str] = ()) -> list[str]:
    """`fixed` questions first, then fragments of 4-8 consecutive words from random sentences."""
    rng = random.Random(seed)
    queries = list(fixed[:n])
    while len(queries) < n:
        words = rng.choice(sentences).split()
        size = min(len(words), rng.randint(4, 8))
        start = rng.randrange(len(words) - size + 1)
        queries.append(" ".join(words[start : start + size]))
    return queries


def write_documents(
    sentences: Sequence[str],
    folder: Path,
    target_chunks: int,
    count_chunks: Callable[[str], int],
    seed: int = 2,
    sentences_per_document: int = 24,
) -> tuple[int, int]:
    """Write articles (with `.meta.yaml` sidecars) until they make `target_chunks` chunks; (files, chunks).

    `count_chunks(text)` says how many chunks the ingester will make of one article's text.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = chunks = 0
    per_doc = min(sentences_per_document, len(sentences))
    while chunks < target_chunks:
        picked = rng.sample(list(sentences), per_doc)  # no repeated line: cleaning would drop it
        paragraphs = [" ".join(picked[i : i + 4]) for i in range(0, len(picked), 4)]
        text = "\n".join(paragraphs) + "\n"
        name = f"synthetic-{files:05d}.txt"
        day = random_day(rng)
        (folder / name).write_text(text, encoding="utf-8")
        (folder / f"{name}.meta.yaml").write_text(
            f'title: "Synthetic article {files}"\noutlet: "{rng.choice(OUTLETS)}"\npublished: {day.isoformat()}\n',
            encoding="utf-8",
        )
        files += 1
        chunks += count_chunks(text)
    return files, chunks
