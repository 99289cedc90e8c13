"""A document's title, outlet, publication date and byline, each with how it was found and how sure it is.

Sources, most trusted first: what the user said (`assistant ingest --title/--outlet/--published`, then a
`NAME.meta.yaml` sidecar), what the format says (a web page's meta tags and markup, a PDF's properties, a
Markdown heading), and what the text says (stamps, datelines, bylines, signature and copyright lines). Outlet
names are tidied with the outlet table (`lexicons/outlets.yaml` plus the user's own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistant.boilerplate import BYLINE
from assistant.dates import DateFindings
from assistant.formats import Hint
from assistant.lexicon import DocumentCues, OutletTable
from assistant.lines import ends_sentence, is_prose, is_title_like, words

FIELDS = ("title", "outlet", "published", "byline")
USER_CONFIDENCE = 1.0
# Chrome verdicts that depend on a line's neighbours: such a line may still be the headline.
_SOFT_CHROME = ("list of headlines or links", "beside other page chrome")
# "WASHINGTON, Aug. 18 (Yonhap) --": the name in parentheses after a dateline's place and date.
_DATELINE_SOURCE = re.compile(r"^[^()]{2,60}?\(([^()]{2,40})\)")
# "SEOUL, Jul 2, 2020, The Korea Herald. ...": a name after the dateline's date, before its first full stop.
_SEPARATORS = re.compile(r"\s*(?:\||·|•|—|–|/|>|\s--?\s)\s*")


@dataclass(frozen=True)
class FieldValue:
    """One field's value, how it was found and how sure that is (0-1)."""

    value: str
    method: str
    confidence: float


@dataclass(frozen=True)
class DocumentMetadata:
    """What is known about one document, and where each field came from."""

    source: str
    title: str = ""
    outlet: str = ""
    published: str = ""  # ISO date, YYYY-MM-DD; "" = undated
    byline: str = ""
    updated: str = ""
    provenance: dict[str, str] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def undated(self) -> bool:
        return not self.published

    def to_chroma(self) -> dict[str, str | int]:
        """Flat metadata Chroma can store and filter on (published_int enables date ranges)."""
        return {
            "source": self.source,
            "title": self.title,
            "outlet": self.outlet,
            "published": self.published,
            "published_int": iso_to_int(self.published),
            "byline": self.byline,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "outlet": self.outlet,
            "published": self.published,
            "updated": self.updated,
            "byline": self.byline,
            "provenance": dict(self.provenance),
            "confidence": dict(self.confidence),
            "notes": list(self.notes),
        }


def iso_to_int(iso: str) -> int:
    """20200702 for '2020-07-02'; 0 for an unknown date."""
    return int(iso.replace("-", "")) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", iso) else 0


class MetadataReader:
    """Reads the fields of one document from its lines, its format's hints and the user's overrides."""

    def __init__(self, cues: DocumentCues, outlets: OutletTable) -> None:
        self.cues = cues
        self.outlets = outlets

    def title(self, lines: list[str], hints: dict[str, Hint], chrome: dict[int, str]) -> FieldValue | None:
        """The format's title, else the headline line nearest above the article's first paragraph.

        When two headline-shaped lines stand together there, the first is the headline and the second its
        deck (a standfirst never comes before the headline).
        """
        if "title" in hints:
            h = hints["title"]
            return FieldValue(h.value, h.method, h.confidence)
        shaped: list[tuple[int, str, bool]] = []  # (line, text, headline-shaped)
        for i, line in enumerate(lines):
            text = line.strip()
            first = not any(line.strip() for line in lines[:i])
            soft = chrome.get(i) in _SOFT_CHROME or (first and chrome.get(i) == "section label" and not text.isupper())
            if not text or (i in chrome and not soft):
                continue
            if is_title_like(text):
                shaped.append((i, text, True))
            elif is_prose(text):
                break
            else:
                shaped.append((i, text, False))
        while shaped and not shaped[-1][2]:
            shaped.pop()
        if not shaped:
            return None
        pick = shaped[-1]
        if len(shaped) >= 2 and shaped[-2][2] and shaped[-2][0] not in chrome:
            between = lines[shaped[-2][0] + 1 : pick[0]]
            if not any(line.strip() for line in between):  # headline and deck stand together
                pick = shaped[-2]
        return FieldValue(pick[1], f"headline line {pick[0] + 1} of the text", 0.8)

    def masthead(self, lines: list[str], chrome: dict[int, str], title: str) -> list[str]:
        """Names the page prints above everything else (its masthead), as the document writes them."""
        for i, line in enumerate(lines[:5]):
            text = line.strip()
            if not text or text == title:
                if text == title:
                    return []
                continue
            if chrome.get(i, "").startswith("page control") and not chrome.get(i, "").endswith("menu"):
                continue
            parts = [p.strip() for p in _SEPARATORS.split(text) if p.strip()]
            return [self._as_written(p, lines) for p in parts if self._is_name(p)][:2]
        return []

    @staticmethod
    def _as_written(name: str, lines: list[str]) -> str:
        """An all-capitals name as the text writes it elsewhere ('RIVERWATCH' -> 'Riverwatch')."""
        if not name.isupper():
            return name
        pattern = re.compile(r"(?<![\w])" + re.escape(name) + r"(?![\w])", re.IGNORECASE)
        for line in lines:
            for m in pattern.finditer(line):
                if not m.group().isupper():
                    return m.group()
        small = {w for w in name.split() if len(w) <= 3}
        return " ".join(w.lower() if (w in small and k) else w.capitalize() for k, w in enumerate(name.split()))

    def outlet(
        self, lines: list[str], hints: dict[str, Hint], chrome: dict[int, str], dates: DateFindings
    ) -> FieldValue | None:
        found: list[FieldValue] = []
        if "outlet" in hints:
            h = hints["outlet"]
            domain_like = "." in h.value and " " not in h.value.strip()
            found.append(FieldValue(self.outlets.canonical(h.value), h.method, 0.4 if domain_like else h.confidence))
        if "site" in hints:
            h = hints["site"]
            found.append(FieldValue(self.outlets.canonical(h.value), h.method, h.confidence))
        title = hints["title"].value if "title" in hints else ""
        names = self.masthead(lines, chrome, title)
        text = "\n".join(lines)
        if names:
            best = max(names, key=lambda n: _occurrences(n, text))
            found.append(FieldValue(self.outlets.canonical(best), f"masthead {best!r}", 0.88))
        if affiliation := self._byline_affiliation(lines, chrome):
            found.append(FieldValue(self.outlets.canonical(affiliation), f"byline affiliation {affiliation!r}", 0.6))
        for d in dates.candidates:
            if d.role == "dateline" and (name := self._dateline_source(d.line)):
                found.append(FieldValue(name, f"dateline {d.line[:60]!r}", 0.85))
                break
        for d in dates.candidates:
            if d.role in ("stamp", "published") and (name := self._stamp_source(d.line, d.matched)):
                found.append(FieldValue(name, f"stamp {d.line[:80]!r}", 0.75))
                break
        footer = [line.strip() for line in lines[-12:]] + hints.get("footer", Hint("", "", 0)).value.splitlines()
        for line in footer:
            if name := self._copyright_holder(line):
                found.append(FieldValue(name, f"copyright or signature line {line[:80]!r}", 0.7))
                break
        head = " ".join(line for i, line in enumerate(lines[:40]) if i not in chrome or chrome[i] == BYLINE)
        if known := self.outlets.find_in(head):
            found.append(FieldValue(known, "outlet table: named in the document's head", 0.55))
        if "host" in hints:
            host = re.sub(r"^www\.", "", hints["host"].value.lower())
            name = self.outlets.canonical(host)
            found.append(FieldValue(name, f"web address {host}", 0.6 if self.outlets.known(host) else 0.4))
        return max(found, key=lambda f: f.confidence) if found else None

    def byline(self, lines: list[str], hints: dict[str, Hint], chrome: dict[int, str]) -> FieldValue | None:
        if "byline" in hints:
            h = hints["byline"]
            return FieldValue(h.value, h.method, h.confidence)
        for i, reason in sorted(chrome.items()):
            if reason == BYLINE:
                line = lines[i].strip()
                cue = self.cues.pattern("byline_cues").match(line)
                name = (line[cue.end() :] if cue else line).split(",")[0].strip(" :,")
                return FieldValue(name, f"byline {line!r}", 0.9)
        return None

    # --- outlet helpers --------------------------------------------------------------------------

    def _dateline_source(self, line: str) -> str | None:
        """The agency or paper a dateline names: '(Yonhap)' after its date, or a name after its date."""
        m = _DATELINE_SOURCE.match(line)
        if m and self._is_name(m.group(1)):
            return self.outlets.canonical(m.group(1))
        head = line.split(". ", 1)[0]
        parts = [p.strip() for p in head.split(",")]
        if len(parts) >= 3 and self._is_name(parts[-1]) and not any(c.isdigit() for c in parts[-1]):
            return self.outlets.canonical(parts[-1])
        return None

    def _stamp_source(self, line: str, matched: str) -> str | None:
        """The outlet a stamp names beside its date ('The Courier | 2022.11.08', 'Source: Xinhua| ...')."""
        rest = line.replace(matched.split(" (")[0], " ")
        label = self.cues.pattern("source_cues").match(rest.strip())
        if label:
            rest = rest.strip()[label.end() :].lstrip(" :")
        elif not _SEPARATORS.search(line):
            return None
        for part in _SEPARATORS.split(rest):
            part = part.strip(" :|")
            if self._is_name(part) and not self.cues.pattern("published_cues").match(part):
                return self.outlets.canonical(part)
        return None

    def _copyright_holder(self, line: str) -> str | None:
        """The name in a copyright or signature line ('© 2024 The Delta Courier. All rights reserved.')."""
        cue = self.cues.pattern("copyright_cues")
        m = cue.search(line)
        if not m or len(words(line)) > 20:
            return None
        rest = cue.sub(" ", line[m.start() :])
        rest = re.sub(r"(?<!\d)(?:19|20)\d\d(?:\s*[-–]\s*(?:19|20)?\d\d)?(?!\d)", " ", rest)
        name = re.split(r"[.;|]\s|\.$", rest.strip(" .,;:"))[0].strip(" .,;:")
        return self.outlets.canonical(name) if self._is_name(name) else None

    def _byline_affiliation(self, lines: list[str], chrome: dict[int, str]) -> str | None:
        """The organisation a byline ends with ('By Ann Lee, Senior Fellow, Tributary Policy Forum')."""
        for i, reason in sorted(chrome.items()):
            if reason == BYLINE:
                parts = [p.strip() for p in lines[i].split(",")]
                if len(parts) >= 3 and self._is_name(parts[-1]) and len(words(parts[-1])) >= 2:
                    return parts[-1]
        return None

    @staticmethod
    def _is_name(text: str) -> bool:
        """A proper name: 1 to 10 words, capitalised, no sentence, not a single letter like '(R)'."""
        tokens = words(text)
        if not 1 <= len(tokens) <= 10 or (ends_sentence(text) and not text.endswith(".")) or re.search(r"[:,;]", text):
            return False
        capitalised = [t for t in tokens if t[0].isupper()]
        if len(capitalised) < max(1, len([t for t in tokens if len(t) > 3]) * 0.6):
            return False
        letters = [c for c in text if c.isalpha()]
        return len(letters) >= 2 and tokens[0][0].isupper() and not any(c.isdigit() for c in text)


def _occurrences(name: str, text: str) -> int:
    return len(re.findall(r"(?<![\w])" + re.escape(name) + r"(?![\w])", text, re.IGNORECASE))


def user_value(value: str, how: str) -> FieldValue:
    return FieldValue(value, how, USER_CONFIDENCE)
