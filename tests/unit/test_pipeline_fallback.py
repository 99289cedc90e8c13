"""Fall back on the ferry corpus: quote the passage sentence that answers when the model's answer cannot be
used (a stricter bar when the model said it does not know), and complete the parts an answer leaves out."""

from __future__ import annotations

from pathlib import Path

from assistant import Assistant
from assistant.citations import Citation
from assistant.corpus import load_document
from assistant.evidence import EvidenceSelector
from assistant.lexical import Analyzer
from assistant.retrieval import Passage
from assistant.turn import Turn

CROSSING = "How long does the crossing take?"  # its best sentence holds about 0.6 of its words
PARTS = "When was the joint ferry committee set up, and where did it hold its first meeting?"


def passage(pid: str, text: str, published: str = "2022-05-20") -> Passage:
    return Passage(
        id=pid, text=text, source=f"{pid}.txt", title="t", outlet="o", published=published, start=0, end=len(text)
    )


def fallen_back(a: Assistant, question: str, raw: str) -> Turn:
    """A Turn through plan, search and verify with `raw` as the model's answer, then the fallback step.

    `{needle}` in `raw` becomes the number of the passage holding `needle`.
    """
    chain = a.answer_chain
    turn = Turn(question)
    chain.planner(turn)
    chain.searcher(turn)
    assert not turn.refusal, turn.refusal
    for needle in [part.split("}")[0] for part in raw.split("{")[1:]]:
        n = next(i + 1 for i, p in enumerate(turn.passages) if needle in p.text)
        raw = raw.replace(f"{{{needle}}}", str(n))
    turn.raw = raw
    chain.verifier(turn)
    chain.fallback(turn)
    return turn


def test_an_unusable_answer_is_replaced_by_the_sentence_that_answers(ferry, ferry_dir: Path) -> None:
    a, _ = ferry([])
    turn = fallen_back(a, CROSSING, "The crossing takes two hours by sailing boat [1].")
    assert turn.refusal == "" and "extractive" in turn.trace
    assert turn.checked is not None
    (cite,) = turn.checked.citations
    assert "35 minutes" in cite.quote
    assert [s.text for s in turn.checked.sentences] == [" ".join(cite.quote.split())]
    assert turn.checked.sentences[0].citations == (1,)
    assert load_document(ferry_dir / cite.source).text[cite.start : cite.end] == cite.quote


def test_a_sentence_holding_too_few_of_the_questions_words_is_not_quoted(ferry) -> None:
    a, _ = ferry([], min_extractive_evidence=0.9)
    turn = fallen_back(a, CROSSING, "The crossing takes two hours by sailing boat [1].")
    assert turn.refusal == "no sentence of the model's answer was supported by a passage"
    assert "extractive" not in turn.trace


def test_after_the_models_i_dont_know_the_bar_is_higher(ferry) -> None:
    a, _ = ferry([])  # min_override_evidence 0.75 > 0.6 of the question's words
    turn = fallen_back(a, CROSSING, "I don't know.")
    assert turn.refusal == "the model found no answer in the passages" and "extractive" not in turn.trace
    lenient, _ = ferry([], min_override_evidence=0.5)
    turn = fallen_back(lenient, CROSSING, "I don't know.")
    assert turn.refusal == "" and turn.checked is not None and "35 minutes" in turn.checked.citations[0].quote


def test_the_quoted_sentence_must_hold_what_is_asked(ferry) -> None:
    a, _ = ferry([])
    fallback = a.answer_chain.fallback
    selector = EvidenceSelector(Analyzer(), lambda term: 1.0)
    question = "When was the joint ferry committee set up?"
    vector = a.store.embeddings.embed_query(question)
    # every word of the question, but no date: not an answer to 'when'
    undated = passage("p1", "The joint ferry committee was set up to plan the timetable together.")
    dated = passage("p2", "The joint ferry committee was set up in March 2019.")
    assert fallback.best_sentence(question, [undated], selector, vector, 0.5) is None
    found = fallback.best_sentence(question, [undated, dated], selector, vector, 0.5)
    assert found is not None and found.quote == dated.text and found.n == 1
    # and it must add something to the question's own words (a headline repeating the question does not)
    said = "What did Oskar Vell say about the fare increase?"
    echo = passage("p3", "What did Oskar Vell say about the fare increase?")
    view = passage("p4", "Oskar Vell warned that the fare increase is unfair to young families.")
    assert fallback.best_sentence(said, [echo], selector, vector, 0.5) is None
    quoted = fallback.best_sentence(said, [echo, view], selector, vector, 0.5)
    assert quoted is not None and quoted.quote == view.text


def test_a_usable_answer_is_left_alone(ferry) -> None:
    a, _ = ferry([])
    turn = fallen_back(a, CROSSING, "The crossing takes 35 minutes [{35 minutes}].")
    assert turn.checked is not None and [s.text for s in turn.checked.sentences] == ["The crossing takes 35 minutes."]
    assert "extractive" not in turn.trace and turn.refusal == ""


def test_a_part_the_answer_leaves_out_gets_its_own_quote(ferry, ferry_dir: Path) -> None:
    a, _ = ferry([])
    turn = fallen_back(a, PARTS, "It was set up in March 2019 [{set up in March}].")
    assert turn.trace["completed_parts"] == ["where did it hold its first meeting?"]
    assert turn.checked is not None
    first, added = turn.checked.citations
    assert "set up in March 2019" in first.quote
    assert added.n == 2 and "held its first meeting" in added.quote and "town hall" in added.quote
    assert turn.checked.sentences[-1].citations == (2,)
    for c in turn.checked.citations:
        assert load_document(ferry_dir / c.source).text[c.start : c.end] == c.quote


def test_an_answer_covering_every_part_is_not_completed(ferry) -> None:
    a, _ = ferry([])
    raw = "It was set up in March 2019 [{set up in March}]. It first met at the Marrow Bay town hall [{town hall}]."
    turn = fallen_back(a, PARTS, raw)
    assert "completed_parts" not in turn.trace
    assert turn.checked is not None and len(turn.checked.citations) == 2


def test_a_part_answered_without_what_it_asks_for_gives_way_to_its_quote(ferry) -> None:
    a, _ = ferry([])
    raw = "It was set up in March 2019 [{set up in March}]. It held its first meeting earlier this week [{town hall}]."
    turn = fallen_back(a, PARTS, raw)
    # the second sentence holds the words of 'where did it hold its first meeting?' but no place
    assert turn.trace["completed_parts"] == ["where did it hold its first meeting?"]
    assert turn.checked is not None and len(turn.checked.citations) == 2
    texts = [s.text for s in turn.checked.sentences]
    assert texts[0] == "It was set up in March 2019."
    assert "Marrow Bay town hall" in " ".join(texts[1:])
    assert "It held its first meeting earlier this week." not in texts
    cited = {n for s in turn.checked.sentences for n in s.citations}
    assert cited == {c.n for c in turn.checked.citations}
    # switched off, enough of the part's words is enough
    b, _ = ferry([], parts_by_kind=False)
    turn = fallen_back(b, PARTS, raw)
    assert "completed_parts" not in turn.trace
    assert turn.checked is not None
    assert "It held its first meeting earlier this week." in [s.text for s in turn.checked.sentences]


def test_a_part_naming_a_year_is_completed_only_from_that_year(ferry) -> None:
    a, _ = ferry([])
    question = "Who was the port authority spokesperson in March 2019, and who held that role in May 2024?"
    turn = fallen_back(a, question, "Tove Lind was the port authority spokesperson in March 2019 [{Tove Lind}].")
    assert turn.trace["completed_parts"] == ["who held that role in May 2024?"]
    assert turn.checked is not None
    added = turn.checked.citations[-1]
    assert added.published.startswith("2024") and "Ines Halvorsen" in added.quote
    # with the 2024 article out of the passages, no other year's sentence stands in for it
    chain = a.answer_chain
    passages = [p for p in turn.passages if not p.published.startswith("2024")]
    part = turn.parts[1]
    vector = a.store.embeddings.embed_query(turn.part_queries[1])
    assert turn.selector is not None
    assert chain.fallback.best_sentence(turn.part_queries[1], passages, turn.selector, vector, 0.0, also=part) is None


class ScriptedJudge:
    """A sentence judge that gives each text the logit a test wrote for it (0 for any other)."""

    def __init__(self, logits: dict[str, float]) -> None:
        self.logits = logits
        self.asked: list[tuple[str, list[str]]] = []

    def score(self, query: str, texts: list[str]) -> list[float]:
        self.asked.append((query, list(texts)))
        return [self.logits.get(text, 0.0) for text in texts]


def best_judged(a: Assistant, question: str, passages: list[Passage], judged: bool = True) -> Citation | None:
    """The fallback's best sentence for `question` among `passages`, under a word bar of 0.9."""
    selector = EvidenceSelector(Analyzer(), lambda term: 1.0)
    vector = a.store.embeddings.embed_query(question)
    return a.answer_chain.fallback.best_sentence(question, passages, selector, vector, 0.9, judged=judged)


def test_a_paraphrase_below_the_word_bar_is_quoted_when_the_judge_finds_it_relevant(ferry) -> None:
    a, _ = ferry([], min_judged_relevance=4.0, min_judged_words=0.2)
    fallback = a.answer_chain.fallback
    question = "Who will captain the new night ferry when it starts in June?"
    # few of the question's words: 'captain' and 'starts' are said another way
    paraphrase = passage("p1", "Mira Tarn is to take the helm of the night ferry on its first sailings.")
    near_miss = passage("p2", "Harbour master Ivo Lenk said the night ferry would be a welcome change.")
    judge = ScriptedJudge({paraphrase.text: 6.1, near_miss.text: 1.5})
    fallback.judge = judge
    found = best_judged(a, question, [near_miss, paraphrase])
    assert found is not None and found.quote == paraphrase.text
    assert judge.asked and judge.asked[0][0] == question
    # without `judged` (or without a judge) the word bar alone decides
    assert best_judged(a, question, [near_miss, paraphrase], judged=False) is None
    fallback.judge = None
    assert best_judged(a, question, [near_miss, paraphrase]) is None


def test_the_judge_never_lets_through_a_sentence_without_what_is_asked_or_with_too_few_words(ferry) -> None:
    a, _ = ferry([], min_judged_relevance=4.0, min_judged_words=0.3)
    question = "When will the night ferry make its first crossing?"
    undated = passage("p1", "The night ferry is to make its maiden voyage soon, the operator said.")
    unrelated = passage("p2", "Tickets went on sale in the spring of 2024.")
    a.answer_chain.fallback.judge = ScriptedJudge({undated.text: 9.0, unrelated.text: 9.0})
    # a high logit does not make up for the missing date, nor for sharing almost none of the words
    assert best_judged(a, question, [undated, unrelated]) is None


def test_a_judge_that_scores_everything_low_changes_nothing(ferry) -> None:
    a, _ = ferry([], min_extractive_evidence=0.9)
    a.answer_chain.fallback.judge = ScriptedJudge({})
    turn = fallen_back(a, CROSSING, "The crossing takes two hours by sailing boat [1].")
    assert turn.refusal == "no sentence of the model's answer was supported by a passage"


PRESENT_DIRECTOR = "Who is the operations director of Sound Lines now?"


def test_a_newer_answer_leads_and_the_older_one_follows_with_its_date(ferry) -> None:
    a, _ = ferry([])
    turn = fallen_back(a, PRESENT_DIRECTOR, "Maja Holm is the operations director of Sound Lines [{director Maja}].")
    assert turn.present and "newer_evidence" in turn.trace
    assert turn.checked is not None
    dates = [c.published for c in turn.checked.citations]
    assert dates[0] == "2024-05-10" and "2022-06-24" in dates[1:]
    assert "Aro" in turn.checked.citations[0].quote


def test_a_newer_answer_may_replace_the_older_one(ferry) -> None:
    a, _ = ferry([], newer_evidence_keeps_older=False)
    turn = fallen_back(a, PRESENT_DIRECTOR, "Maja Holm is the operations director of Sound Lines [{director Maja}].")
    assert turn.checked is not None
    (cite,) = turn.checked.citations
    assert cite.published == "2024-05-10" and "Aro" in cite.quote
    assert all("Maja Holm is" not in s.text for s in turn.checked.sentences)
