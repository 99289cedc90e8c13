"""The analyzer: the same terms for a question and the sentence that answers it."""

from __future__ import annotations

import pytest

from assistant.lexical import Analyzer


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.mark.parametrize(
    ("question_words", "document_words"),
    [
        ("the inaugural session", "its first meeting"),
        ("where they met", "where they meet"),
        ("what worry was voiced", "there were concerns"),
        ("South Korean officials", "South Korea"),
        ("the United States", "the U.S."),
        ("the US and Japan", "the U.S. and Japanese"),
        ("three times", "3 times"),
    ],
)
def test_variants_share_terms(analyzer: Analyzer, question_words: str, document_words: str) -> None:
    assert analyzer.term_set(question_words) & analyzer.term_set(document_words)


def test_stopwords_and_single_letters_are_dropped(analyzer: Analyzer) -> None:
    assert analyzer.terms("It is a U. S. plan") == ["plan"]
