"""The unit tests' own corpus (tests/unit/fixtures/ferry, invented for them), indexed once, and its helpers."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from assistant import Assistant, Settings
from assistant.language import Language, QuestionLexicon
from assistant.llm import ScriptedChatModel
from assistant.prompts import Prompts

FERRY_DIR = Path(__file__).resolve().parent / "fixtures" / "ferry"

Build = Callable[..., tuple[Assistant, ScriptedChatModel]]


@pytest.fixture(scope="session")
def ferry_dir() -> Path:
    """The ferry-line articles: four short news stories of 2019-2024 (see tests/unit/fixtures/README.md)."""
    return FERRY_DIR


@pytest.fixture(scope="session")
def ferry_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the ferry corpus indexed (fake embeddings), built once for the session; read only."""
    path = tmp_path_factory.mktemp("ferry_vs")
    with pytest.MonkeyPatch.context() as mp:  # the session fixture runs outside the per-test isolation
        for name in list(os.environ):
            if name.startswith("ASSISTANT_"):
                mp.delenv(name)
        mp.setitem(Settings.model_config, "toml_file", path / "assistant.toml")
        settings = Settings(persist_dir=path / "vs", embedding="fake:256")
        with Assistant.from_settings(settings, llm=ScriptedChatModel()) as a:
            a.ingest([FERRY_DIR], progress=False)
    return path / "vs"


@pytest.fixture
def ferry(ferry_index: Path) -> Iterator[Build]:
    """Build an Assistant over the ferry index with a scripted model: `ferry(script, **settings)`."""
    opened: list[Assistant] = []

    def build(script: object = (), **settings: object) -> tuple[Assistant, ScriptedChatModel]:
        llm = ScriptedChatModel(script=list(script) if isinstance(script, tuple) else script)  # type: ignore[arg-type]
        settings.setdefault(
            "sentence_judge", "fake"
        )  # word overlap: below min_judged_relevance unless a test lowers it
        a = Assistant.from_settings(Settings(persist_dir=ferry_index, embedding="fake:256", **settings), llm=llm)
        opened.append(a)
        return a, llm

    yield build
    for a in opened:
        a.close()


def _passage_number(messages: list[BaseMessage], needle: str) -> int:
    for line in str(messages[-1].content).splitlines():
        m = re.match(r"\[(\d+)\] ", line)
        if m and needle in line:
            return int(m.group(1))
    raise AssertionError(f"no passage with {needle!r} in the prompt")


@pytest.fixture(scope="session")
def passage_number() -> Callable[[list[BaseMessage], str], int]:
    """`passage_number(messages, needle)`: the [n] of the prompt passage that contains `needle`."""
    return _passage_number


@pytest.fixture(scope="session")
def language() -> Language:
    """spaCy's small English pipeline with the packaged questions lexicon (loaded once, ~1 s)."""
    return Language(Settings.model_fields["spacy_model"].default, QuestionLexicon.load())


@pytest.fixture(scope="session")
def prompts() -> Prompts:
    """The real prompt templates of prompts/."""
    return Prompts.load(Settings.model_fields["prompts_dir"].default)
