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
