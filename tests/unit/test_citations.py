"""Citation parsing and checking, without any model."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.citations import CitationChecker, is_refusal, parse_answer
from assistant.corpus import load_document
from assistant.lexical import Analyzer
from assistant.retrieval import Passage

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def passage_from(source: str, needle: str, width: int = 300) -> Passage:
    doc = load_document(SEEDS / source)
    i = doc.text.index(needle)
    start, end = max(0, i - width // 2), min(len(doc.text), i + len(needle) + width // 2)
    m = doc.metadata
    return Passage(f"{source}:{start}", doc.text[start:end], source, m.title, m.outlet, m.published, start, end)


@pytest.fixture(scope="module")
def checker() -> CitationChecker:
    return CitationChecker(Analyzer(), min_support=0.6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It met in Washington [1].", [("It met in Washington.", [1])]),
        ("It met in Washington. [2]", [("It met in Washington.", [2])]),
        ("A [1][3]. B [2, 4].", [("A.", [1, 3]), ("B.", [2, 4])]),
        ("It met in Washington (see passage 2).", [("It met in Washington.", [2])]),
        ("It was held face to face, as stated in [1].", [("It was held face to face.", [1])]),
        ("No marker here.", [("No marker here.", [])]),
        ("[1] 3 times [2]", [("3 times", [1, 2])]),
    ],
)
def test_parse_answer(text: str, expected: list) -> None:
    assert parse_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I don't know.", True),
        ("The passages do not contain this information.", True),
        ("", True),
        ("The group first met in Washington [1].", False),
    ],
)
def test_is_refusal(text: str, refused: bool) -> None:
    assert is_refusal(text) is refused


def test_support_requires_numbers_and_new_words(checker: CitationChecker) -> None:
    quote = (
        "U.S. President Donald Trump and North Korean leader Kim Jong-un met three times "
        "between June 2018 and June 2019."
    )
    assert checker.support("They met 3 times.", quote) == 1.0
    assert checker.support("They met 4 times.", quote) == 0.0
    # the date of the article counts as evidence for a year or month the sentence restates
    assert (
        checker.support("In August 2020 Lee proposed improvements.", "Lee proposed improvements.", "2020-08-19") >= 0.6
    )
    assert checker.support("In August 2021 Lee proposed improvements.", "Lee proposed improvements.", "2020-08-19") == 0
    q = "Were the meetings to be held face to face?"
    assert (
        checker.support(
            "The meetings could be held by video conference.", "The meetings could be held in person.", "", q
        )
        < 0.6
    )


def test_check_keeps_supported_repoints_wrong_and_drops_the_rest(checker: CitationChecker) -> None:
    yonhap = passage_from("001_fd24264b0bd6d25d.txt", "set up in November 2018")
    xinhua = passage_from("003_064ee402f8c2cb2b.txt", "Warsaw")
    answer = (
        "The working group was set up in November 2018 [2]. "  # wrong number: Yonhap is [1]
        "Pompeo and Kang met in Warsaw [7]. "  # dangling
        "The group has 40 members [1]."  # unsupported
    )
    result = checker.check(answer, [yonhap, xinhua])
    assert [s.text for s in result.sentences] == [
        "The working group was set up in November 2018.",
        "Pompeo and Kang met in Warsaw.",
    ]
    assert [c.source for c in result.citations] == [yonhap.source, xinhua.source]
    assert result.dropped == ["The group has 40 members."]
    assert len(result.repaired) >= 2
    for c in result.citations:
        assert load_document(SEEDS / c.source).text[c.start : c.end] == c.quote
    assert result.text.endswith("[2].")


def test_same_quote_shares_one_number(checker: CitationChecker) -> None:
    yonhap = passage_from("001_fd24264b0bd6d25d.txt", "set up in November 2018")
    result = checker.check(
        "It was set up in November 2018 [1]. The working group was set up in November 2018 [1].", [yonhap]
    )
    assert len(result.citations) == 1 and [s.citations for s in result.sentences] == [(1,), (1,)]


def test_a_sentence_that_only_restates_the_question_is_dropped(checker: CitationChecker) -> None:
    xinhua = passage_from("003_064ee402f8c2cb2b.txt", "CBS News")
    question = "In which outlet's interview did Pompeo reveal that a U.S. work team would go to Asia?"
    result = checker.check("Pompeo revealed that a U.S. work team would go to Asia [1].", [xinhua], question)
    assert result.sentences == [] and result.dropped
    result = checker.check("Pompeo told CBS News that a work team would go to Asia [1].", [xinhua], question)
    assert [s.text for s in result.sentences] == ["Pompeo told CBS News that a work team would go to Asia."]
    warsaw = passage_from("003_064ee402f8c2cb2b.txt", "Kang Kyung-wha in Warsaw")
    yes_no = checker.check("Pompeo held talks with Kang in Warsaw [1].", [warsaw], "Did Pompeo meet Kang in Warsaw?")
    assert yes_no.sentences


def test_a_role_inversion_is_not_supported(checker: CitationChecker) -> None:
    harris = passage_from("001_fd24264b0bd6d25d.txt", "Ambassador to South Korea Harry Harris")
    question = "Who was South Korea's ambassador to the United States in 2020?"
    wrong = checker.check("Harry Harris was South Korea's ambassador to the United States [1].", [harris], question)
    assert wrong.sentences == [] and wrong.dropped
    right = checker.check("Harry Harris was the U.S. ambassador to South Korea [1].", [harris], "Who is Harry Harris?")
    assert [c.source for c in right.citations] == ["001_fd24264b0bd6d25d.txt"]


def test_a_new_name_must_stand_in_the_quoted_sentence_not_its_neighbour(checker: CitationChecker) -> None:
    herald = passage_from("004_9b0f2f2dea799358.txt", "Unification Bridge")
    question = "In which South Korean city is the Unification Bridge pictured in the Korea Herald story?"
    seoul = checker.check("The Unification Bridge is pictured in Seoul, South Korea [1].", [herald], question)
    assert seoul.sentences == []  # 'SEOUL' is only in the dateline next to the photo caption
    paju = checker.check("The Unification Bridge is pictured in Paju, South Korea [1].", [herald], question)
    assert paju.sentences and "Paju" in paju.citations[0].quote


def test_a_marker_after_an_abbreviation_keeps_one_dot() -> None:
    assert parse_answer("It first met in Washington, D.C. [1].") == [("It first met in Washington, D.C.", [1])]


@pytest.mark.parametrize(
    ("question", "answer", "source", "needle", "kept"),
    [
        # every word but 'Bridge' is somewhere in the Harris photo caption: wrong city, wrong article
        (
            "In which South Korean city is the Unification Bridge pictured in the Korea Herald story?",
            "The Unification Bridge is pictured in Seoul, South Korea [1].",
            "001_fd24264b0bd6d25d.txt",
            "elbow bump",
            False,
        ),
        # the false premise ('in Hanoi') repeated as fact: the quote is about Warsaw
        (
            "What prompted Pompeo and Kang Kyung-wha to hold their February 2019 talks in Hanoi?",
            "Pompeo and Kang Kyung-wha held their February 2019 talks in Hanoi because they wanted to discuss "
            "their ongoing efforts to achieve denuclearization of the Korean Peninsula [1].",
            "003_064ee402f8c2cb2b.txt",
            "Kang Kyung-wha in Warsaw",
            False,
        ),
        # Harris's words put in North Korea's mouth
        (
            "How has North Korea characterized the U.S.-South Korea working group?",
            "North Korea has characterized the U.S.-South Korea working group as helpful and supportive of "
            "inter-Korean cooperation [1].",
            "001_fd24264b0bd6d25d.txt",
            "Harris responded",
            False,
        ),
        (
            "How often was the new U.S.-South Korea working group on North Korea expected to meet?",
            "The new U.S.-South Korea working group on North Korea was expected to meet regularly, possibly twice "
            "a month [1].",
            "000_ec390470196d8f97.txt",
            "possibly twice a month",
            True,
        ),
        (
            "Who is Lee Do-hoon's U.S. counterpart?",
            "Lee Do-hoon's U.S. counterpart is Stephen Biegun [1].",
            "000_ec390470196d8f97.txt",
            "counterpart Stephen Biegun",
            True,
        ),
    ],
)
def test_names_must_be_backed_by_the_quote(
    checker: CitationChecker, question: str, answer: str, source: str, needle: str, kept: bool
) -> None:
    from assistant.chunking import split_sentences
    from assistant.lexical import idf_function

    analyzer = Analyzer()
    sentences = [s.text for p in sorted(SEEDS.glob("*.txt")) for s in split_sentences(load_document(p).text)]
    idf = idf_function([analyzer.term_set(t) for t in sentences])  # as the chain weighs words: rare ones count more
    result = checker.check(answer, [passage_from(source, needle)], question, idf)
    assert bool(result.sentences) is kept


def test_capitals_stand_for_their_countries_and_posts_match_across_prepositions(checker: CitationChecker) -> None:
    from assistant.citations import roles_match

    analyzer = Analyzer()
    harris = "Lee met U.S. Ambassador to South Korea Harry Harris on Tuesday."
    assert roles_match(analyzer, "Harry Harris was the U.S. ambassador in Seoul.", harris)
    assert not roles_match(analyzer, "Harry Harris was South Korea's ambassador to the United States.", harris)
    yonhap = passage_from("001_fd24264b0bd6d25d.txt", "The United States and South Korea coordinate regularly")
    question = "In August 2020, what areas did the State Department say Washington and Seoul regularly coordinate on?"
    answer = "The State Department said Washington and Seoul regularly coordinate on North Korea policy [1]."
    assert checker.check(answer, [yonhap], question).sentences


def test_a_sentence_may_restate_the_year_of_its_article(checker: CitationChecker) -> None:
    herald = passage_from("004_9b0f2f2dea799358.txt", "Moon Jae-in’s remarks")
    question = "Which South Korean president was urging a Trump-Kim summit in mid-2020?"
    answer = "South Korean President Moon Jae-in was urging a Trump-Kim summit in mid-2020 [1]."
    assert checker.check(answer, [herald], question).sentences


def test_whose_post_it_is_must_match_too() -> None:
    from assistant.citations import roles_match

    analyzer = Analyzer()
    source = "They arranged for Vice Minister Jeong Yeon-doo and acting US Ambassador to South Korea Kevin Kim to meet."
    assert not roles_match(analyzer, "South Korean Ambassador to South Korea Kevin Kim held that role.", source)
    assert roles_match(analyzer, "Acting U.S. Ambassador Kevin Kim will attend.", source)
    assert roles_match(
        analyzer, "South Korean Vice Minister Jeong Yeon-doo will attend.", source
    )  # not stated, not contradicted


def test_a_dateline_does_not_back_a_fact_about_the_photo(checker: CitationChecker) -> None:
    herald = passage_from("004_9b0f2f2dea799358.txt", "SEOUL, Jul 2, 2020", 120)
    herald = Passage(**{**herald.__dict__, "context": load_document(SEOUL_SOURCE).text})
    question = "In which South Korean city is the Unification Bridge pictured in the Korea Herald story?"
    result = checker.check("The Unification Bridge is pictured in Seoul, South Korea [1].", [herald], question)
    assert result.sentences == []


SEOUL_SOURCE = SEEDS / "004_9b0f2f2dea799358.txt"


def test_the_attribution_after_a_quote_may_name_the_speaker(checker: CitationChecker) -> None:
    nation = passage_from("002_34619f7877ea231f.txt", "Spokesperson Park Il", width=400)
    question = "Who was the foreign ministry spokesperson commenting on talks in December 2025?"
    said = checker.check(
        "Park Il was the foreign ministry spokesperson commenting on talks on a regular meeting [1].",
        [nation],
        question,
    )
    assert said.sentences and "Park Il" in said.citations[0].quote
    # a name from an unrelated neighbouring sentence is still not enough
    other = checker.check(
        "Kevin Kim was the foreign ministry spokesperson commenting on talks on a regular meeting [1].",
        [nation],
        question,
    )
    assert other.sentences == []
