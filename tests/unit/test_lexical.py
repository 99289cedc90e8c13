"""The analyzer and its lexicons: the same terms for a question and the sentence that answers it."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.lexical import STOPWORDS, Analyzer
from assistant.lexicon import Aliases, English, LexiconError


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.mark.parametrize(
    ("question_words", "document_words"),
    [
        ("the maiden voyage", "its first trip"),  # a synonym, then the ordinal
        ("where they met", "a meeting"),  # an irregular verb
        ("what fears were raised", "a concern"),
        ("a spokeswoman", "the spokesperson"),
        ("Japanese", "from Japan"),  # a nationality word and its country
        ("American", "in the U.S."),
        ("the United States", "US officials"),  # one term for the names of the U.S.
        ("two rounds", "2 laps"),  # a number word
        ("on Feb. 9", "in February"),  # a month abbreviation
    ],
)
def test_variants_share_terms(analyzer: Analyzer, question_words: str, document_words: str) -> None:
    assert analyzer.term_set(question_words) & analyzer.term_set(document_words)


def test_stopwords_and_single_letters_are_dropped(analyzer: Analyzer) -> None:
    assert analyzer.terms("They were all at a U. S. desk") == ["desk"]
    assert analyzer.terms("Tell us, please: what did she say?") == []
    assert "usa" in analyzer.term_set("US trade") and "usa" not in analyzer.term_set("they told us")


def test_numbers(analyzer: Analyzer) -> None:
    assert analyzer.numbers("three pilots, 1,200 crew and 4.5 tonnes, twice a year") == {"3", "1200", "4.5", "2"}
    assert analyzer.numbers("the first flight") == set()  # an ordinal is no number


# --- the lexicons ---------------------------------------------------------------------------------------


def test_the_packaged_lexicons_load() -> None:
    english = English.load()
    assert {"the", "said", "s"} <= english.stopwords and english.number_words["twelve"] == "12"
    assert english.irregular_verbs["held"] == "hold" and english.abbreviations["sept"] == "september"
    assert english.pointing_pattern.match("“He added") and english.yes_no_pattern.match("Has it ended?")
    aliases = Aliases.load()
    assert ("Seoul", "South Korea", "Republic of Korea", "ROK") in aliases.groups
    assert aliases.country_words["korean"] == "korea" and aliases.synonyms["inaugural"] == "first"
    assert aliases.one_term["usa"][0] == "U.S." and "ambassador" in aliases.post_titles
    assert set(STOPWORDS) == Analyzer().stopwords == english.stopwords


def test_a_users_aliases_extend_the_packaged_ones(tmp_path: Path) -> None:
    own = tmp_path / "aliases.yaml"
    own.write_text(
        "groups:\n"
        "  - [Seoul, the South]\n"  # joins the group of Seoul
        "  - [Oslo, Norway]\n"  # a new group
        "country_words: {norwegian: norway}\n"
        "synonyms: {summit: meeting}\n"
        "post_titles: [consul]\n",
        encoding="utf-8",
    )
    aliases = Aliases.load(own)
    assert ("Seoul", "South Korea", "Republic of Korea", "ROK", "the South") in aliases.groups
    assert ("Oslo", "Norway") in aliases.groups and len(aliases.groups) == len(Aliases.load().groups) + 1
    assert "South Korea" in aliases.with_aliases("Talks in the South resumed.")
    assert aliases.post_titles[-1] == "consul" and "ambassador" in aliases.post_titles
    analyzer = Analyzer(aliases=aliases)
    assert analyzer.term_set("the Norwegian summit") == analyzer.term_set("a meeting in Norway")
    assert analyzer.term_set("Korean firms") == analyzer.term_set("firms of Korea")  # the packaged words stay
    assert Analyzer().term_set("a summit") != Analyzer().term_set("a meeting")  # the packaged lexicon is unchanged


def test_the_aliases_file_is_a_described_setting(tmp_path: Path) -> None:
    field = Settings.model_fields["aliases_file"]
    assert field.description and "aliases.yaml" in field.description
    assert Settings(aliases_file=tmp_path / "a.yaml").aliases_file == tmp_path / "a.yaml"


def test_an_english_lexicon_can_be_passed_in(tmp_path: Path) -> None:
    own = tmp_path / "english.yaml"
    own.write_text(
        "function_words: [the, a]\nreporting_words: []\napostrophe_fragments: []\n"
        "number_words: {dozen: '12'}\nirregular_verbs: {}\nabbreviations: {}\n"
        "pointing_words: [he]\nyes_no_openers: [did]\n",
        encoding="utf-8",
    )
    analyzer = Analyzer(English.load(own))
    assert analyzer.numbers("a dozen boats") == {"12"} and "said" in analyzer.terms("the mayor said")
    assert analyzer.stopwords == {"the", "a"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("groups: [Seoul, South Korea]\n", "'groups' must be a list of groups"),
        ("groups: [[Seoul, the South]\n", "cannot read the lexicon"),
        ("synonyms: [summit, meeting]\n", "'synonyms' must map each word to one word"),
        ("post_titles: consul\n", "'post_titles' must be a list of words"),
        ("- Seoul\n", "a lexicon must be a mapping"),
    ],
)
def test_a_broken_aliases_file_is_named(tmp_path: Path, content: str, problem: str) -> None:
    broken = tmp_path / "my_aliases.yaml"
    broken.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError, match=problem) as caught:
        Aliases.load(broken)
    assert str(broken) in str(caught.value)


def test_a_bare_yaml_boolean_is_explained(tmp_path: Path) -> None:
    broken = tmp_path / "english.yaml"
    broken.write_text("function_words: [the, no, off]\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"english\.yaml: 'function_words' .* quote it"):
        English.load(broken)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match=r"nowhere\.yaml: cannot read the lexicon"):
        Aliases.load(tmp_path / "nowhere.yaml")
