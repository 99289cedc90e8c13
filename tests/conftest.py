"""Shared fixtures: isolation from the user's ASSISTANT_* settings, the seed corpus, fake settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.app import Assistant
from assistant.config import Settings
from assistant.tokens import get_encoding

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = REPO_ROOT / "seeds"
SEED_NAMES = sorted(p.name for p in SEEDS_DIR.glob("*.txt"))


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ASSISTANT_* variable of the shell, and no assistant.toml of the checkout, reaches a test.

    The model cache is left alone on purpose: integration tests use the real, already cached model.
    A test that wants an assistant.toml writes it into its own tmp_path.
    """
    for name in list(os.environ):
        if name.startswith("ASSISTANT_"):
            monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "toml_file", tmp_path / "assistant.toml")


@pytest.fixture
def seeds_dir() -> Path:
    """The repository's seed corpus (read only: copy it before editing)."""
    return SEEDS_DIR


@pytest.fixture
def fake_settings(tmp_path: Path) -> Settings:
    """An embedded store in tmp_path, deterministic fake embeddings and the fake LLM."""
    return Settings(persist_dir=tmp_path / "vs", embedding="fake:64", llm="fake", sentence_judge="fake")


@pytest.fixture(scope="session")
def count_tokens() -> Callable[[str], int]:
    """The real tokenizer the assistant counts with (tiktoken cl100k_base, offline)."""
    encoding = get_encoding("cl100k_base")

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count


@pytest.fixture
def make_assistant() -> Iterator[Callable[[Settings], Assistant]]:
    """Build `Assistant.from_settings(settings)`; every assistant built is closed after the test."""
    opened: list[Assistant] = []

    def make(settings: Settings) -> Assistant:
        assistant = Assistant.from_settings(settings)
        opened.append(assistant)
        return assistant

    yield make
    for assistant in reversed(opened):
        assistant.close()
