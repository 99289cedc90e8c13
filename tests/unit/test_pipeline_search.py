"""Retrieve, rank and select on the ferry corpus: weak evidence ends the turn, the present prefers the newest
article, a named year brings its own articles."""

from __future__ import annotations

from assistant import Assistant
from assistant.retrieval import Filters
from assistant.turn import Turn


def searched(a: Assistant, question: str) -> Turn:
    """A Turn planned and searched by the assistant's own steps."""
    chain = a.answer_chain
    turn = Turn(question)
    chain.planner(turn)
    chain.searcher(turn)
    return turn


def test_an_off_topic_question_ends_here_with_nothing_to_offer(ferry) -> None:
    a, llm = ferry([])
    turn = searched(a, "What is the best recipe for apple pie with cinnamon?")
    assert turn.refusal == "evidence too weak for the question (LLM not called)"
    assert turn.evidence is not None and turn.evidence.strength == 0.0
    assert turn.passages == []  # no word of the question in them: not related facts
    assert llm.history == []


def test_on_topic_evidence_below_the_bar_is_refused_but_kept_as_related_facts(ferry) -> None:
    question = "How long does the crossing take?"
    a, _ = ferry([])
    answerable = searched(a, question)
    assert answerable.refusal == ""
    strength = answerable.evidence.strength  # the share of the question's words in the best sentence
    assert 0.3 < strength < 0.9
    strict, llm = ferry([], min_evidence=2.0)
    turn = searched(strict, question)
    assert turn.refusal.startswith("evidence too weak")
    assert any("35 minutes" in p.text for p in turn.passages)  # still offered as related facts
    stricter, _ = ferry([], min_evidence=2.0, min_related_evidence=0.9)
    assert searched(stricter, question).passages == []  # too few of its words to be related
    assert llm.history == []


def test_the_evidence_is_sentences_of_the_retrieved_chunks(ferry) -> None:
    a, _ = ferry([], max_evidence_sentences=2)
    turn = searched(a, "How long does the crossing take?")
    assert turn.chunks and turn.passages
    texts = {c.id: c.text for c in turn.chunks}
    for p in turn.passages:
        chunk_id, _, offset = p.id.rpartition(":")
        assert texts[chunk_id][int(offset) : int(offset) + len(p.text)] == p.text
        assert p.context == texts[chunk_id]  # the whole chunk, to show the quote in its paragraph
    assert "35 minutes" in " ".join(p.text for p in turn.passages)
    assert [r["id"] for r in turn.trace["retrieved"]] == [c.id for c in turn.chunks]


def test_a_question_about_the_present_puts_the_newest_article_first(ferry) -> None:
    question = "Who is the operations director of Sound Lines now?"
    a, _ = ferry([], recency_weight=1.0)
    now = searched(a, question)
    assert now.present and now.trace["prefer_recent"] == 1.0
    assert now.passages[0].published == "2024-05-10" and "Daniel Aro" in now.passages[0].text
    off, _ = ferry([], recency_weight=0.0)
    assert "prefer_recent" not in searched(off, question).trace
    default, _ = ferry([])
    assert searched(default, question).trace["prefer_recent"] == default.settings.recency_weight


def test_a_named_year_is_not_about_the_present(ferry) -> None:
    a, _ = ferry([], recency_weight=1.0)
    then = searched(a, "Who was the operations director of Sound Lines in 2022?")
    assert not then.present and "prefer_recent" not in then.trace
    assert then.passages[0].published.startswith("2022") and "Maja Holm" in " ".join(p.text for p in then.passages)


def test_the_chunks_of_a_named_year_are_added_once(ferry) -> None:
    a, _ = ferry([])
    searcher = a.answer_chain.searcher
    query = "Who held the spokesperson role in 2024?"
    vector = a.store.embeddings.embed_query(query)
    extra = searcher.of_years(query, vector, None, [])
    assert extra and {c.published[:4] for c in extra} == {"2024"}
    assert len(extra) <= a.settings.year_chunks
    assert searcher.of_years(query, vector, None, extra) == []  # what was found already is not added again
    assert searcher.of_years("Who held the spokesperson role?", vector, None, []) == []  # no year named
    # the user's own date range wins over the question's year; an outlet filter still holds
    assert searcher.of_years(query, vector, Filters(since="2019-01-01"), []) == []
    assert searcher.of_years(query, vector, Filters(outlets=("Island Post",)), []) == []


def test_a_compound_part_naming_a_year_is_searched_in_that_year(ferry) -> None:
    a, _ = ferry([], top_k=1)
    turn = searched(a, "Who was the port authority spokesperson in March 2019, and who held that role in May 2024?")
    assert turn.compound
    assert {c.published[:4] for c in turn.chunks} >= {"2019", "2024"}
    assert any("Ines Halvorsen" in p.text for p in turn.passages)
    assert any("Tove Lind" in p.text for p in turn.passages)


def test_a_named_month_brings_the_articles_of_that_month_and_the_next(ferry) -> None:
    query = "What did the mayor say about the fares in May 2022?"
    a, _ = ferry([])
    vector = a.store.embeddings.embed_query(query)
    months = {c.published[:7] for c in a.answer_chain.searcher.of_years(query, vector, None, [])}
    assert months and months <= {"2022-05", "2022-06"}
    exact, _ = ferry([], period_lag_months=0)
    assert {c.published[:7] for c in exact.answer_chain.searcher.of_years(query, vector, None, [])} == {"2022-05"}


def test_a_single_question_naming_a_time_is_searched_in_that_time(ferry) -> None:
    a, _ = ferry([], top_k=1)
    turn = searched(a, "Who was the port authority spokesperson in March 2019?")
    assert not turn.compound
    assert "2019" in {c.published[:4] for c in turn.chunks}
    none, _ = ferry([], top_k=1, year_chunks=0)
    assert len(searched(none, "Who was the port authority spokesperson in March 2019?").chunks) == 1
