"""Verify on the ferry corpus: a checked sentence must be backed by its quote, name the quote's speaker, and hold
the kind of thing the question asks for."""

from __future__ import annotations

import pytest

from assistant import Assistant
from assistant.turn import Turn


def verified(a: Assistant, question: str, raw: str) -> Turn:
    """A Turn planned and searched by the assistant's steps, with `raw` as the model's answer, then verified.

    `{needle}` in `raw` becomes the number of the passage holding `needle`.
    """
    chain = a.answer_chain
    turn = Turn(question)
    chain.planner(turn)
    chain.searcher(turn)
    for needle in [part.split("}")[0] for part in raw.split("{")[1:]]:
        n = next(i + 1 for i, p in enumerate(turn.passages) if needle in p.text)
        raw = raw.replace(f"{{{needle}}}", str(n))
    turn.raw = raw
    chain.verifier(turn)
    return turn


COST = "How much did the Kittiwake cost?"


def test_a_backed_sentence_that_gives_a_quantity_for_a_cost_is_not_an_answer(ferry) -> None:
    a, _ = ferry([])
    turn = verified(a, COST, "The Kittiwake will carry 300 passengers and 40 cars [{300 passengers}].")
    assert turn.checked is not None and turn.checked.sentences == [] and turn.checked.citations == []
    assert turn.trace["not_an_answer"] == ["The Kittiwake will carry 300 passengers and 40 cars."]
    assert turn.trace["dropped_sentences"] == []  # it was backed: dropped for what it holds, not its support
    assert not turn.checked.model_refused


def test_a_backed_sentence_that_gives_the_cost_is_the_answer(ferry) -> None:
    a, _ = ferry([])
    turn = verified(a, COST, "The Kittiwake cost €18 million [{€18 million}].")
    assert turn.checked is not None
    assert [s.text for s in turn.checked.sentences] == ["The Kittiwake cost €18 million."]
    assert "not_an_answer" not in turn.trace
    (cite,) = turn.checked.citations
    assert "€18 million" in cite.quote and cite.published == "2024-05-10"


def test_one_sentence_holding_what_is_asked_keeps_the_others(ferry) -> None:
    a, _ = ferry([])
    raw = "The Kittiwake cost €18 million [{€18 million}]. It will carry 300 passengers and 40 cars [{300 passengers}]."
    turn = verified(a, COST, raw)
    assert turn.checked is not None and len(turn.checked.sentences) == 2 and "not_an_answer" not in turn.trace


def test_an_unbacked_sentence_is_dropped_and_a_wrong_marker_repointed(ferry) -> None:
    a, _ = ferry([])
    turn = verified(
        a,
        "When was the joint ferry committee set up?",
        "The joint ferry committee was set up in March 2019 [{worked fairly well}]. It has 500 members [1].",
    )
    assert turn.checked is not None
    assert [s.text for s in turn.checked.sentences] == ["The joint ferry committee was set up in March 2019."]
    assert "set up in March 2019" in turn.checked.citations[0].quote
    assert turn.trace["dropped_sentences"] == ["It has 500 members."]
    assert any("instead of" in r for r in turn.trace["repaired_citations"])


def test_a_view_given_to_the_other_speaker_is_dropped(ferry) -> None:
    # Brandt says the increase is needed; Vell warns it is unfair: each claim must name its own speaker
    a, _ = ferry([])
    swapped = verified(
        a,
        "What did Oskar Vell say about the fare increase?",
        "Oskar Vell said the fare increase is needed to pay for the new vessel [{needed to pay}].",
    )
    assert swapped.checked is not None and swapped.checked.sentences == []
    assert swapped.trace["dropped_sentences"] == [
        "Oskar Vell said the fare increase is needed to pay for the new vessel."
    ]
    own = verified(
        a,
        "What did Oskar Vell say about the fare increase?",
        "Oskar Vell warned that the fare increase is unfair to young families [{unfair to young}].",
    )
    assert own.checked is not None and len(own.checked.sentences) == 1


def test_i_dont_know_is_recorded_as_the_models_refusal(ferry) -> None:
    a, _ = ferry([])
    turn = verified(a, "What did Lena Brandt tell Oskar Vell about the new timetable?", "I don't know.")
    assert turn.checked is not None and turn.checked.sentences == [] and turn.checked.model_refused


def test_a_forecast_is_no_answer_to_what_did_happen(ferry) -> None:
    a, _ = ferry([])
    answers = a.answer_chain.answers
    question = "What did Daniel Aro and Oskar Vell agree on at their first regular planning meeting?"
    assert not answers(question, "Aro and Oskar Vell will agree on a winter timetable at their first meeting.")
    assert answers(question, "Aro and Oskar Vell agreed on a winter timetable at their first meeting.")


def test_a_forecast_restated_as_done_is_not_verified(ferry) -> None:
    a, _ = ferry([])
    turn = verified(
        a,
        "What did Daniel Aro and Oskar Vell agree on at their first regular planning meeting?",
        "Aro and Oskar Vell agreed on a winter timetable at their first regular planning meeting [{will agree}].",
    )
    assert turn.checked is not None and turn.checked.sentences == []


def test_a_reported_forecast_is_no_answer_to_what_did_happen(ferry) -> None:
    a, _ = ferry([])
    sentence = "The winter timetable will add a late crossing on Fridays, the company said."
    assert not a.answer_chain.answers("What did the winter timetable add?", sentence)


@pytest.mark.xfail(
    strict=True,
    reason="the asked-kind check needs spaCy's MONEY label, and the small model tags '18 million euros' as "
    "CARDINAL ('€18 million', '18 million dollars' and '18 million pounds' are MONEY)",
)
def test_a_cost_in_euros_written_out_answers_how_much_it_cost(ferry) -> None:
    a, _ = ferry([])
    assert a.answer_chain.answers(COST, "The Kittiwake cost 18 million euros.")
