"""Sentence splitting and token-aware chunking, with the real tiktoken counter on the real seeds."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.chunking import Chunk, chunk_id, chunk_text, split_sentences
from assistant.corpus import load_document

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))
SEED_IDS = [p.name[:3] for p in SEED_FILES]

Count = Callable[[str], int]


def sentences(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


# --- sentences -----------------------------------------------------------------------------------


def test_abbreviations_do_not_end_sentences() -> None:
    text = (
        "U.S. Secretary of State Mike Pompeo met officials in Washington, D.C. Mayor Bowser was not there. "
        "The talks on Aug. 18 followed those on Jan. 31 in Seoul. "
        "Trump and Kim meet in Hanoi on Feb. 27-28. The State Dept. Spokesperson said so! Was it 2018? Yes."
    )
    assert sentences(text) == [
        "U.S. Secretary of State Mike Pompeo met officials in Washington, D.C. Mayor Bowser was not there.",
        "The talks on Aug. 18 followed those on Jan. 31 in Seoul.",
        "Trump and Kim meet in Hanoi on Feb. 27-28.",
        "The State Dept. Spokesperson said so!",
        "Was it 2018?",
        "Yes.",
    ]


def test_quotes_and_brackets_stay_with_their_sentence() -> None:
    text = '"We hope so," he said. "It will work." (Yonhap) The end.'
    assert sentences(text) == ['"We hope so," he said.', '"It will work."', "(Yonhap) The end."]


def test_lines_are_sentence_boundaries_even_after_an_abbreviation() -> None:
    text = "U.S., S. Korea coordinate regularly on N.K. policy: State Dept.\n\nNorth Korea 05:38 August 19\n"
    assert sentences(text) == [
        "U.S., S. Korea coordinate regularly on N.K. policy: State Dept.",
        "North Korea 05:38 August 19",
    ]


@pytest.mark.parametrize("path", SEED_FILES, ids=SEED_IDS)
def test_sentence_spans_are_exact_offsets(path: Path) -> None:
    text = load_document(path).text
    spans = split_sentences(text)
    assert spans
    for span in spans:
        assert text[span.start : span.end] == span.text
        assert span.text == span.text.strip()
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    # nothing but whitespace falls between sentences
    covered = "".join(text[s.start : s.end] for s in spans)
    assert re.sub(r"\s", "", covered) == re.sub(r"\s", "", text)


def test_seed_sentences_with_dates_are_whole() -> None:
    text = load_document(SEEDS / "003_064ee402f8c2cb2b.txt").text
    got = sentences(text)
    assert "Trump announced on Feb. 8 that his second meeting with Kim would take place in Hanoi on Feb. 27-28." in got
    assert any(s.startswith("On Jan. 31, Biegun said that the U.S. side expects") for s in got)


# --- chunks on the seeds -------------------------------------------------------------------------


@pytest.mark.parametrize("path", SEED_FILES, ids=SEED_IDS)
@pytest.mark.parametrize(("size", "overlap"), [(200, 40), (60, 20), (25, 0)])
def test_seed_chunks_are_exact_and_within_budget(path: Path, size: int, overlap: int, count_tokens: Count) -> None:
    doc = load_document(path)
    chunks = chunk_text(doc.text, doc.source, count_tokens, size, overlap)
    assert chunks
    for i, chunk in enumerate(chunks):
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.text == chunk.text.strip()
        assert chunk.index == i
        assert chunk.source == doc.source
        assert chunk.tokens == count_tokens(chunk.text)
        assert chunk.tokens <= size
    # always forward, and together they cover every word of the document
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start
        assert b.end > a.end
        assert b.start <= a.end + 2  # no text skipped between neighbours (at most a blank line)
    assert chunks[0].start == 0
    assert chunks[-1].end == len(doc.text.rstrip())
    assert len({c.id for c in chunks}) == len(chunks)


def test_default_seed_chunks_overlap_where_sentences_are_short(count_tokens: Count) -> None:
    doc = load_document(SEEDS / "002_34619f7877ea231f.txt")
    chunks = chunk_text(doc.text, doc.source, count_tokens, 200, 40)
    overlaps = [a.end - b.start for a, b in itertools.pairwise(chunks)]
    assert all(o > 0 for o in overlaps)
    for a, b in itertools.pairwise(chunks):
        shared = doc.text[b.start : a.end]
        assert 0 < count_tokens(shared) <= 40


def test_neighbours_share_up_to_overlap_tokens_and_progress(count_tokens: Count) -> None:
    text = " ".join(f"Sentence number {i} is short." for i in range(60))
    chunks = chunk_text(text, "short.txt", count_tokens, size=40, overlap=12)
    assert len(chunks) > 5
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start < a.end < b.end  # overlapping, yet moving on
        assert count_tokens(text[b.start : a.end]) <= 12
        assert all(c.tokens <= 40 for c in (a, b))
    assert chunks[-1].text.endswith("Sentence number 59 is short.")


def test_no_overlap_when_asked_for_none(count_tokens: Count) -> None:
    text = " ".join(f"Sentence number {i} is short." for i in range(30))
    chunks = chunk_text(text, "short.txt", count_tokens, size=40, overlap=0)
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.end


def test_an_overlap_as_large_as_the_chunk_still_moves_forward(count_tokens: Count) -> None:
    text = " ".join(
        f"Short one {i}. This much longer sentence number {i} has quite a few more words in it. "
        f"And this other sentence number {i} is just about as long as that one."
        for i in range(10)
    )
    chunks = chunk_text(text, "mixed.txt", count_tokens, size=22, overlap=22)
    assert len(chunks) < 40
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start and b.end > a.end
        assert not (b.start >= a.start and b.end <= a.end)  # never a chunk inside its neighbour


# --- over-long sentences -------------------------------------------------------------------------


def test_a_sentence_over_the_limit_is_cut_at_word_boundaries(count_tokens: Count) -> None:
    words = [f"word{i}" for i in range(400)]
    long_sentence = " ".join(words) + "."
    text = f"A short opening sentence. {long_sentence} A short closing sentence."
    chunks = chunk_text(text, "long.txt", count_tokens, size=50, overlap=10)
    assert len(chunks) >= 8
    for chunk in chunks:
        assert chunk.tokens <= 50
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.start == 0 or text[chunk.start - 1] == " "
        assert chunk.end == len(text) or text[chunk.end] == " "
    # every word lands in some chunk, whole
    seen = {w for c in chunks for w in re.findall(r"\S+", c.text)}
    assert {*words[:-1], words[-1] + "."} <= seen


def test_a_single_word_over_the_limit_is_cut_too(count_tokens: Count) -> None:
    url = "https://example.com/" + "a1b2c3" * 400
    text = f"See {url} for details."
    chunks = chunk_text(text, "url.txt", count_tokens, size=30, overlap=0)
    assert all(c.tokens <= 30 for c in chunks)
    assert all(c.text == text[c.start : c.end] for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


# --- ids -----------------------------------------------------------------------------------------


def _ids(chunks: list[Chunk]) -> list[str]:
    return [c.id for c in chunks]


def test_chunk_ids_are_stable_across_runs(count_tokens: Count) -> None:
    doc = load_document(SEEDS / "001_fd24264b0bd6d25d.txt")
    first = chunk_text(doc.text, doc.source, count_tokens, 60, 20)
    again = chunk_text(load_document(doc.path).text, doc.source, count_tokens, 60, 20)
    assert _ids(first) == _ids(again)
    assert first[0].id == chunk_id(doc.source, first[0].text, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", first[0].id)


def test_chunk_ids_change_with_the_text_and_only_there(count_tokens: Count) -> None:
    doc = load_document(SEEDS / "003_064ee402f8c2cb2b.txt")
    before = chunk_text(doc.text, doc.source, count_tokens, 200, 40)
    edited = doc.text.replace("hinder negotiations", "stall the negotiations")
    after = chunk_text(edited, doc.source, count_tokens, 200, 40)
    assert _ids(before)[:-1] == _ids(after)[:-1]
    assert before[-1].id != after[-1].id


def test_chunk_ids_depend_on_the_source_and_on_repeats() -> None:
    assert chunk_id("a.txt", "same text", 0) != chunk_id("b.txt", "same text", 0)
    assert chunk_id("a.txt", "same text", 0) != chunk_id("a.txt", "same text", 1)
    assert chunk_id("a.txt", "same text", 0) == chunk_id("a.txt", "same text", 0)


def test_identical_chunks_in_one_document_get_distinct_ids(count_tokens: Count) -> None:
    paragraph = "The allies met again. They agreed to keep talking."
    text = "\n\n".join([paragraph] * 4)
    chunks = chunk_text(text, "repeat.txt", count_tokens, size=12, overlap=0)
    assert len(chunks) == 4
    assert len({c.text for c in chunks}) == 1
    assert len(set(_ids(chunks))) == 4


def test_empty_text_has_no_chunks(count_tokens: Count) -> None:
    assert chunk_text("", "empty.txt", count_tokens) == []
    assert chunk_text(" \n\n ", "empty.txt", count_tokens) == []


def test_splitting_a_long_document_takes_linear_time() -> None:
    import time

    text = "The ferry left Marrow Bay at noon. " * 8000  # 280 KB: looking back over the whole text took a minute
    started = time.perf_counter()
    spans = split_sentences(text)
    assert len(spans) == 8000
    assert time.perf_counter() - started < 3.0


def test_a_word_longer_than_the_look_back_window_is_read_whole() -> None:
    # 'y...yU.S.' is one long word, not the abbreviation 'U.S.': the sentence ends there
    text = "Officials met in " + "y" * 100 + "U.S. Then they left. The U.S. envoy stayed."
    assert [s.text for s in split_sentences(text)] == [
        "Officials met in " + "y" * 100 + "U.S.",
        "Then they left.",
        "The U.S. envoy stayed.",
    ]
