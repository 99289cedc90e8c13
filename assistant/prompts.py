"""Prompt templates as files in prompts/, loaded once and checked: a missing or unknown variable is an error."""

from __future__ import annotations

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
}


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
        return cls(templates)

    def render(self, name: str, **values: object) -> str:
        expected = TEMPLATES[name]
        if set(values) != expected:
            raise PromptError(f"Prompt {name!r} takes {sorted(expected)}, got {sorted(values)}")
        return self.templates[name].format(**values)
