"""Prompt files load, validate their variables and render."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.prompts import TEMPLATES, PromptError, Prompts


def test_the_shipped_prompts_load_and_render() -> None:
    prompts = Prompts.load(Settings().prompts_dir)
    assert set(prompts.templates) == set(TEMPLATES)
    text = prompts.render("answer", passages="[1] (Yonhap, 2020-08-19) Text.", question="Q?")
    assert "[1] (Yonhap, 2020-08-19) Text." in text and "Question: Q?" in text
    assert "[1]" in prompts.render("system") or "[2]" in prompts.render("system")
    with pytest.raises(PromptError, match="takes"):
        prompts.render("answer", question="Q?")


def test_a_missing_variable_is_an_error(tmp_path: Path) -> None:
    shutil.copytree(Settings().prompts_dir, tmp_path / "p")
    (tmp_path / "p" / "answer.txt").write_text("Passages: {passages}\nNo question here.")
    with pytest.raises(PromptError, match=r"missing variables \['question'\]"):
        Prompts.load(tmp_path / "p")


def test_an_unknown_variable_or_missing_file_is_an_error(tmp_path: Path) -> None:
    shutil.copytree(Settings().prompts_dir, tmp_path / "p")
    (tmp_path / "p" / "rewrite.txt").write_text("{history} {question} {oops}")
    with pytest.raises(PromptError, match=r"unknown variables \['oops'\]"):
        Prompts.load(tmp_path / "p")
    (tmp_path / "p" / "rewrite.txt").unlink()
    with pytest.raises(PromptError, match="missing"):
        Prompts.load(tmp_path / "p")


def test_the_examples_file_becomes_alternating_turns(tmp_path: Path) -> None:
    turns = Prompts.load(Settings().prompts_dir).examples()
    assert turns and [r for r, _ in turns] == ["user", "assistant"] * (len(turns) // 2)
    assert any(text == "I don't know." for _, text in turns)  # one worked example refuses


@pytest.mark.parametrize(
    "text",
    [">>> assistant\nHi", ">>> user\nQ\n>>> user\nQ again", ">>> user\nQ", "preamble\n>>> user\nQ\n>>> assistant\nA"],
)
def test_a_malformed_examples_file_fails_at_load(tmp_path: Path, text: str) -> None:
    shutil.copytree(Settings().prompts_dir, tmp_path / "p")
    (tmp_path / "p" / "examples.txt").write_text(text)
    with pytest.raises(PromptError, match=r"examples\.txt"):
        Prompts.load(tmp_path / "p")
