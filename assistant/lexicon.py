"""English, domain and document lexicons, loaded from YAML data files (`assistant/lexicons/` and the user's own)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

LEXICON_DIR = Path(__file__).resolve().parent / "lexicons"
OUTLETS_FILE = LEXICON_DIR / "outlets.yaml"
DOCUMENT_CUES_FILE = LEXICON_DIR / "document_cues.yaml"
ENGLISH_FILE = LEXICON_DIR / "english.yaml"
ALIASES_FILE = LEXICON_DIR / "aliases.yaml"
MODEL_OUTPUT_FILE = LEXICON_DIR / "model_output.yaml"

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


def read_yaml(path: Path) -> dict[str, object]:
    """A lexicon file as a mapping; LexiconError naming the file when it cannot be read or is not one."""
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
        data = read_yaml(path)
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
            outlets = read_yaml(path).get("outlets") or {}
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


# --- shared readers ------------------------------------------------------------------------------------


def _word_list(data: dict[str, object], key: str, path: Path, required: bool = True) -> tuple[str, ...]:
    """The words (or phrases) under `key`, stripped; missing is an error only when `required`."""
    items = data.get(key)
    if items is None and not required:
        return ()
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        hint = " (YAML reads a bare yes, no, on or off as true or false: quote it)" if _has_bool(items) else ""
        raise LexiconError(f"{path}: '{key}' must be a list of words or phrases{hint}")
    return tuple(i.strip() for i in items if i.strip())


def _has_bool(items: object) -> bool:
    values = items.values() if isinstance(items, dict) else items if isinstance(items, list) else []
    return any(isinstance(v, bool) for v in values)


def _word_map(data: dict[str, object], key: str, path: Path, required: bool = True) -> dict[str, str]:
    """The word -> word mapping under `key`, lowercased (numbers may be written unquoted)."""
    items = data.get(key)
    if items is None and not required:
        return {}
    if not isinstance(items, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int) and not isinstance(v, bool) for k, v in items.items()
    ):
        hint = " (YAML reads a bare yes, no, on or off as true or false: quote it)" if _has_bool(items) else ""
        raise LexiconError(f"{path}: '{key}' must map each word to one word{hint}")
    return {k.strip().lower(): str(v).strip().lower() for k, v in items.items()}


def _alternatives(phrase: str, path: Path) -> str:
    """The regex of a phrase whose bracketed parts are alternatives: 'unable to [answer|find]'."""
    parts = re.split(r"\[([^\[\]]*)\]", phrase)
    if any("[" in part or "]" in part for part in parts[::2]):
        raise LexiconError(f"{path}: unbalanced brackets in the phrase {phrase!r}")
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("(?:" + "|".join(re.escape(a) for a in part.split("|")) + ")")
        else:
            out.append(re.escape(part))
    return "".join(out)


def _longest_first(words: Iterable[str]) -> str:
    """An alternation of the words, escaped, longest first (so 'U.S.' is tried before 'U.S')."""
    return "|".join(re.escape(w) for w in sorted(dict.fromkeys(words), key=len, reverse=True))


# --- English -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class English:
    """English word knowledge of the analyzer and of the citation checker (see `lexicons/english.yaml`)."""

    stopwords: frozenset[str]
    number_words: dict[str, str]
    irregular_verbs: dict[str, str]
    abbreviations: dict[str, str]
    pointing_words: tuple[str, ...]
    yes_no_openers: tuple[str, ...]

    @classmethod
    def load(cls, path: Path = ENGLISH_FILE) -> English:
        data = read_yaml(path)
        stop = [
            w
            for key in ("function_words", "reporting_words", "apostrophe_fragments")
            for w in _word_list(data, key, path)
        ]
        return cls(
            stopwords=frozenset(w.lower() for w in stop),
            number_words=_word_map(data, "number_words", path),
            irregular_verbs=_word_map(data, "irregular_verbs", path),
            abbreviations=_word_map(data, "abbreviations", path),
            pointing_words=_word_list(data, "pointing_words", path),
            yes_no_openers=_word_list(data, "yes_no_openers", path),
        )

    @cached_property
    def pointing_pattern(self) -> re.Pattern[str]:
        """A sentence opening on a pointing word ('He', '"They', 'The group')."""
        return re.compile(rf"^\W*(?:{_longest_first(self.pointing_words)})\b", re.IGNORECASE)

    @cached_property
    def yes_no_pattern(self) -> re.Pattern[str]:
        """A question opening on an auxiliary ('Did', 'Is', 'Can')."""
        return re.compile(rf"^\s*(?:{_longest_first(self.yes_no_openers)})\b", re.IGNORECASE)


# --- names of this domain ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aliases:
    """Names that stand for one another, and the words of posts (see `lexicons/aliases.yaml`)."""

    groups: tuple[tuple[str, ...], ...]
    other_countries: tuple[str, ...]
    one_term: dict[str, tuple[str, ...]]
    country_words: dict[str, str]
    synonyms: dict[str, str]
    post_titles: tuple[str, ...]
    post_prepositions: tuple[str, ...]
    place_name_joiners: tuple[str, ...]

    @classmethod
    def load(cls, *paths: Path | None) -> Aliases:
        """The packaged aliases, extended by each of `paths` (None is skipped).

        A user's group joins every group it shares a name with (or stands as a new one); lists are added to,
        and a user's mapping adds words or gives a packaged word another form.
        """
        groups: list[list[str]] = []
        lists: dict[str, list[str]] = {
            key: [] for key in ("other_countries", "post_titles", "post_prepositions", "place_name_joiners")
        }
        maps: dict[str, dict[str, str]] = {"country_words": {}, "synonyms": {}}
        one_term: dict[str, list[str]] = {}
        for i, path in enumerate((ALIASES_FILE, *paths)):
            if path is None:
                continue
            required = i == 0
            data = read_yaml(path)
            raw_groups = data.get("groups", [] if not required else None)
            if not isinstance(raw_groups, list) or not all(
                isinstance(g, list) and g and all(isinstance(n, str) for n in g) for g in raw_groups
            ):
                raise LexiconError(f"{path}: 'groups' must be a list of groups, each a list of names")
            for group in raw_groups:
                names = [n.strip() for n in group if n.strip()]
                if not names:
                    continue
                joined = [g for g in groups if set(g) & set(names)]
                merged = list(dict.fromkeys([n for g in joined for n in g] + names))
                groups = [g for g in groups if g not in joined] + [merged]
            for key, words in lists.items():
                words.extend(w for w in _word_list(data, key, path, required) if w not in words)
            for key, mapping in maps.items():
                mapping.update(_word_map(data, key, path, required))
            raw_terms = data.get("one_term", {} if not required else None)
            if not isinstance(raw_terms, dict) or not all(
                isinstance(v, list) and all(isinstance(n, str) for n in v) for v in raw_terms.values()
            ):
                raise LexiconError(f"{path}: 'one_term' must map a term to the list of names written for it")
            for term, names in raw_terms.items():
                known = one_term.setdefault(str(term).strip().lower(), [])
                known.extend(n for n in names if n not in known)
        return cls(
            groups=tuple(tuple(g) for g in groups),
            other_countries=tuple(lists["other_countries"]),
            one_term={t: tuple(n) for t, n in one_term.items()},
            country_words=maps["country_words"],
            synonyms=maps["synonyms"],
            post_titles=tuple(lists["post_titles"]),
            post_prepositions=tuple(lists["post_prepositions"]),
            place_name_joiners=tuple(lists["place_name_joiners"]),
        )

    def with_aliases(self, text: str) -> str:
        """The text plus the other names of each group it mentions ('Seoul' adds 'South Korea', ...)."""
        extra = [
            " ".join(group)
            for group, found in zip(self.groups, self._group_patterns, strict=True)
            if found.search(text)
        ]
        return " ".join([text, *extra])

    @cached_property
    def _group_patterns(self) -> list[re.Pattern[str]]:
        return [re.compile(rf"\b(?:{_longest_first(group)})") for group in self.groups]

    @cached_property
    def country_names(self) -> str:
        """Every name of a country or government the lexicon knows, as one text."""
        return " ".join([*(" ".join(group) for group in self.groups), *self.other_countries])

    @cached_property
    def one_term_pattern(self) -> re.Pattern[str] | None:
        """Any name written for a `one_term` term, as a whole word (None when there are none)."""
        names = [n for names in self.one_term.values() for n in names]
        return re.compile(rf"(?<!\w)(?:{_longest_first(names)})(?!\w)") if names else None

    @cached_property
    def term_of(self) -> dict[str, str]:
        """The `one_term` term of each name written for it."""
        return {n: term for term, names in self.one_term.items() for n in names}

    @cached_property
    def post_pattern(self) -> re.Pattern[str]:
        """A post and where it is: 'Ambassador to (the) South Korea ...' (groups: title, place)."""
        titles, preps = _longest_first(self.post_titles), _longest_first(self.post_prepositions)
        joiners = _longest_first(self.place_name_joiners)
        name_word = rf"[A-Z][\w.'’-]*|{joiners}" if joiners else r"[A-Z][\w.'’-]*"
        return re.compile(rf"\b(?i:({titles}))\s+(?i:{preps})\s+(?:the\s+)?((?:(?:{name_word})\s*)+)")

    @cached_property
    def sender_pattern(self) -> re.Pattern[str]:
        """Whose post it is: 'U.S. Ambassador' (groups: the capitalised words before it, title)."""
        return re.compile(rf"((?:(?:[A-Z][\w.'’-]*)\s+){{1,3}})(?i:({_longest_first(self.post_titles)}))\b")


# --- the chat model's phrasing -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPhrasing:
    """How the chat model says it cannot answer and names passages in words (see `lexicons/model_output.yaml`)."""

    refusal: re.Pattern[str]  # 'I don't know', 'the passages do not mention'
    passage: re.Pattern[str]  # '(see passage 2)', 'in the passages [3]': group 1 is the number
    lead_in: re.Pattern[str]  # ', as stated in' before a marker

    @classmethod
    def load(cls, path: Path = MODEL_OUTPUT_FILE) -> ModelPhrasing:
        data = read_yaml(path)

        def phrases(key: str) -> str:
            ordered = sorted(dict.fromkeys(_word_list(data, key, path)), key=len, reverse=True)
            return "|".join(_alternatives(p, path) for p in ordered)

        prefixes = _longest_first(_word_list(data, "passage_prefixes", path))
        words = _longest_first(_word_list(data, "passage_words", path))
        return cls(
            refusal=re.compile(rf"\b(?:{phrases('refusal')})\b", re.IGNORECASE),
            passage=re.compile(rf"\(?\b(?:(?:{prefixes}) )?(?:the )?(?:{words}) \[?(\d+)\]?\)?", re.IGNORECASE),
            lead_in=re.compile(rf",?\s*\b(?:{phrases('lead_ins')})\s*(?=\[\d)", re.IGNORECASE),
        )
