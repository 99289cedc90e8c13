"""Prompt templates as files in prompts/, loaded once and checked: a missing or unknown variable is an error."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

# template name -> the variables it must use (no more, no fewer)
TEMPLATES: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "answer": frozenset({"passages", "question"}),
    "passage": frozenset({"n", "outlet", "published", "text"}),
    "rewrite": frozenset({"history", "question"}),
    "refusal": frozenset(),
    "refusal_related": frozenset(),
    "rejected": frozenset(),
    "examples": frozenset(),
}
_TURN = re.compile(r"^>>> (user|assistant)[ \t]*$", re.MULTILINE)


class PromptError(ValueError):
    """A prompt file is missing or uses the wrong variables."""


def template_variables(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


@dataclass(frozen=True)
class Prompts:
    """The loaded templates, by name."""

    templates: dict[str, str]

    @classmethod
    def load(cls, folder: Path) -> Prompts:
        templates: dict[str, str] = {}
        for name, required in TEMPLATES.items():
            path = folder / f"{name}.txt"
            if not path.is_file():
                raise PromptError(f"Prompt file {path} is missing (set ASSISTANT_PROMPTS_DIR to the prompts folder)")
            text = path.read_text(encoding="utf-8").strip()
            used = template_variables(text)
            if used != required:
                missing, unknown = sorted(required - used), sorted(used - required)
                raise PromptError(f"{path}: missing variables {missing}, unknown variables {unknown}")
            templates[name] = text
        prompts = cls(templates)
        prompts.examples()  # a malformed examples file fails at load, not at the first question
        return prompts

    def examples(self) -> list[tuple[str, str]]:
        """The few-shot turns of examples.txt: (role, text) pairs, user and assistant alternating.

        The file is a sequence of `>>> user` / `>>> assistant` lines, each followed by that turn's text.
        """
        text = self.templates["examples"]
        if not text:
            return []
        marks = list(_TURN.finditer(text))
        if not marks or text[: marks[0].start()].strip():
            raise PromptError("examples.txt must start with a '>>> user' line")
        turns: list[tuple[str, str]] = []
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            body = text[m.end() : end].strip()
            want = "user" if i % 2 == 0 else "assistant"
            if m.group(1) != want or not body:
                raise PromptError(f"examples.txt: turn {i + 1} must be a non-empty '>>> {want}' turn")
            turns.append((m.group(1), body))
        if len(turns) % 2:
            raise PromptError("examples.txt must end with an '>>> assistant' turn")
        return turns

    def render(self, name: str, **values: object) -> str:
        expected = TEMPLATES[name]
        if set(values) != expected:
            raise PromptError(f"Prompt {name!r} takes {sorted(expected)}, got {sorted(values)}")
        return self.templates[name].format(**values)
