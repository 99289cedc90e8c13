"""Domain and document lexicons, loaded from YAML data files (`assistant/lexicons/` and the user's own)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

LEXICON_DIR = Path(__file__).resolve().parent / "lexicons"
OUTLETS_FILE = LEXICON_DIR / "outlets.yaml"
DOCUMENT_CUES_FILE = LEXICON_DIR / "document_cues.yaml"

_CUE_KEYS = (
    "published_cues",
    "updated_cues",
    "caption_cues",
    "credit_cues",
    "interface_cues",
    "copyright_cues",
    "byline_cues",
    "source_cues",
    "page_cues",
)


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and the problem."""


def _read_yaml(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LexiconError(f"{path}: cannot read the lexicon ({exc})") from exc
    if not isinstance(data, dict):
        raise LexiconError(f"{path}: a lexicon must be a mapping")
    return data


def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One regex matching any of the phrases as whole words (longest first)."""
    parts = sorted((re.escape(p.lower()) for p in phrases if p), key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(parts) + r")(?![\w])", re.IGNORECASE)


@dataclass(frozen=True)
class DocumentCues:
    """Words that tell what a line of a document is (see `lexicons/document_cues.yaml`)."""

    published_cues: tuple[str, ...]
    updated_cues: tuple[str, ...]
    caption_cues: tuple[str, ...]
    credit_cues: tuple[str, ...]
    interface_cues: tuple[str, ...]
    copyright_cues: tuple[str, ...]
    byline_cues: tuple[str, ...]
    source_cues: tuple[str, ...]
    page_cues: tuple[str, ...]

    @classmethod
    def load(cls, path: Path = DOCUMENT_CUES_FILE) -> DocumentCues:
        data = _read_yaml(path)
        values: dict[str, tuple[str, ...]] = {}
        for key in _CUE_KEYS:
            items = data.get(key)
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise LexiconError(f"{path}: {key} must be a list of words or phrases")
            values[key] = tuple(i.strip().lower() for i in items if i.strip())
        return cls(**values)

    def pattern(self, key: str) -> re.Pattern[str]:
        return self._patterns[key]

    @cached_property
    def _patterns(self) -> dict[str, re.Pattern[str]]:
        return {key: _phrase_pattern(getattr(self, key)) for key in _CUE_KEYS}


@dataclass(frozen=True)
class OutletTable:
    """Canonical outlet names by alias (case-insensitive), from the packaged table and the user's."""

    by_alias: dict[str, str]

    @classmethod
    def load(cls, *paths: Path | None) -> OutletTable:
        by_alias: dict[str, str] = {}
        for path in (OUTLETS_FILE, *paths):
            if path is None:
                continue
            outlets = _read_yaml(path).get("outlets") or {}
            if not isinstance(outlets, dict):
                raise LexiconError(f"{path}: 'outlets' must map a name to a list of aliases")
            for name, aliases in outlets.items():
                if not isinstance(aliases, list):
                    raise LexiconError(f"{path}: the aliases of {name!r} must be a list")
                for alias in [name, *aliases]:
                    by_alias[_key(str(alias))] = str(name)
        return cls(by_alias)

    def canonical(self, name: str) -> str:
        """The table's name for an outlet, or the name itself, tidied, when the table does not know it."""
        clean = " ".join(name.split()).strip(" .,;:-—|()[]")
        return self.by_alias.get(_key(clean), clean)

    def known(self, name: str) -> bool:
        return _key(name) in self.by_alias

    def find_in(self, text: str) -> str | None:
        """The first table outlet named in `text` as whole words (longest alias first), or None."""
        lowered = text.lower()
        for alias in sorted(self.by_alias, key=len, reverse=True):
            if len(alias) >= 4 and re.search(r"(?<![\w.])" + re.escape(alias) + r"(?![\w])", lowered):
                return self.by_alias[alias]
        return None


def _key(name: str) -> str:
    key = " ".join(name.lower().split())
    return key[4:] if key.startswith("the ") else key
