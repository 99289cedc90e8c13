"""Publication dates in a document's text: stamps, datelines and labelled dates found with dateparser.

A document states its date in many forms ("Date: 2023-05-14", "Written 2024.03.02 / Updated 2024.03.03",
"The Courier | 2022.11.08", "GENEVA, March 3 (Agency) --"). Every date in the document's head and foot is
found, given a role from the words around it (published, updated, a picture's date, a dateline, a stamp,
a mere mention), and the publication date is the best of them. A dateline without a year takes it from the
other dates the document gives, checked against a weekday the text names ("said Tuesday").
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from assistant.lexicon import DocumentCues
from assistant.lines import is_prose, is_title_like, words

_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_SHORT_YEAR_DOTTED = re.compile(r"(?<!\d)\d{2}\.\d{1,2}\.\d{1,2}(?!\d)")
# A dateline opens a story: up to four capitalised words naming a place, then a comma ("GENEVA, ...").
_ABBREVIATION_DOT = re.compile(r"\b([A-Z][a-z]{2,3})\.(?=\s\d)")
_DATELINE_PLACE = re.compile(r"^[A-Z][\w.'’-]*(?:[ /][A-Z][\w.'’-]*){0,3},\s")
_ROLE_CONFIDENCE = {"published": 0.95, "stamp": 0.85, "dateline": 0.85, "updated": 0.8, "caption": 0.3}
_INFERRED_YEAR_CONFIDENCE = 0.6
_WEEKDAY_CONFIRMED_CONFIDENCE = 0.75
_HEAD_PARAGRAPHS = 2  # prose lines of the head that are searched for datelines and stamps
_FOOT_LINES = 8
_PARAGRAPH_WORDS = 15  # a prose line this long is a paragraph of the story (shorter: a summary bullet)


@dataclass(frozen=True)
class FoundDate:
    """One date in the text, what it is taken to be, and where it stands."""

    day: date | None  # None: day and month known, year not (see month_day)
    month_day: tuple[int, int]
    role: str  # published | updated | stamp | dateline | caption
    line: str
    line_no: int
    matched: str
    year_given: bool


@dataclass(frozen=True)
class DateChoice:
    """The date taken for a field, how it was found and how sure that is (0-1)."""

    iso: str
    method: str
    confidence: float


@dataclass(frozen=True)
class DateFindings:
    """What the date finder concluded for a document."""

    published: DateChoice | None
    updated: DateChoice | None
    candidates: tuple[FoundDate, ...]
    note: str = ""


class DateFinder:
    """Finds and weighs the dates of a document's head and foot (dateparser does the parsing)."""

    def __init__(self, cues: DocumentCues, languages: tuple[str, ...] = ("en",)) -> None:
        self.cues = cues
        self.languages = list(languages)

    def find(self, lines: list[str]) -> DateFindings:
        found = [d for i, line in self._searched(lines) for d in self._dates_in(line, i)]
        mentioned_years = [int(y) for line in lines for y in _YEAR.findall(line)]
        full = [d.day for d in found if d.day is not None]
        resolved = [self._with_year(d, full, mentioned_years, lines) for d in found]
        published = self._best(resolved, ("published", "stamp", "dateline"))
        note = ""
        if published is None:
            published = self._best(resolved, ("caption",))
        if published is None and any(d.day is None for d in resolved if d.role in ("stamp", "dateline")):
            note = "a dateline gives day and month but the document gives no year"
        updated = self._best(resolved, ("updated",))
        return DateFindings(published, updated, tuple(resolved), note)

    # --- finding ---------------------------------------------------------------------------------

    def _searched(self, lines: list[str]) -> list[tuple[int, str]]:
        """The head (up to the first prose paragraphs) and the foot of the document, with line numbers."""
        head: list[tuple[int, str]] = []
        prose = 0
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            head.append((i, line))
            prose += is_prose(line, min_words=_PARAGRAPH_WORDS) and not is_title_like(line)
            if prose >= _HEAD_PARAGRAPHS:
                break
        taken = {i for i, _ in head}
        foot = {i for i in range(max(0, len(lines) - _FOOT_LINES), len(lines)) if i not in taken}
        # and, anywhere, a short line with a digit: a stamp may stand between the deck and the story
        stamps = {i for i, line in enumerate(lines) if i not in taken and _may_be_stamp(line)}
        return head + [(i, lines[i]) for i in sorted(foot | stamps) if lines[i].strip()]

    def _dates_in(self, line: str, line_no: int) -> list[FoundDate]:
        from dateparser.search import search_dates

        text = date_text(line)
        if not any(c.isdigit() for c in text):
            return []  # a date with a day names it in digits; the parser need not read this line
        try:
            hits = search_dates(
                text,
                languages=self.languages,
                settings={"REQUIRE_PARTS": ["day", "month"], "RETURN_AS_TIMEZONE_AWARE": False},
            )
        except (ValueError, OverflowError):  # dateparser on odd input
            hits = None
        out: list[FoundDate] = []
        pos = 0
        for matched, when in hits or []:
            if not any(c.isdigit() for c in matched):
                continue  # "Tuesday", "today": relative words, not a date the document states
            start = text.find(matched, pos)
            pos = max(start, 0) + len(matched)
            given = bool(_YEAR.search(matched) or _SHORT_YEAR_DOTTED.search(matched))
            role = self._role(text, max(start, 0), line_no)
            day = when.date() if given else None
            out.append(FoundDate(day, (when.month, when.day), role, text, line_no, matched, given))
        return out

    def _role(self, line: str, start: int, line_no: int) -> str:
        """What a date at `start` of `line` is, from the words before it and the line's shape."""
        before = line[:start]
        cue_ends = {
            role: max((m.end() for m in self.cues.pattern(key).finditer(before)), default=-1)
            for role, key in (("published", "published_cues"), ("updated", "updated_cues"))
        }
        if max(cue_ends.values()) >= 0 and len(words(before)) <= 8:
            return max(cue_ends, key=lambda r: cue_ends[r])
        if start <= 40 and _DATELINE_PLACE.match(line) and is_prose(line):
            return "dateline"
        if self.cues.pattern("caption_cues").search(line):
            return "caption"
        return "mention" if is_prose(line) else "stamp"

    # --- weighing --------------------------------------------------------------------------------

    def _with_year(self, found: FoundDate, full: list[date], years: list[int], lines: list[str]) -> FoundDate:
        """A date without a year gets the one that fits the document (its latest year, or a named weekday)."""
        if found.year_given or found.role not in ("dateline", "stamp", "published"):
            return found
        month, day = found.month_day
        pool = sorted({d.year for d in full} | set(years))
        if not pool:
            return found
        weekday = _named_weekday(lines[found.line_no])
        choices = [y for y in range(pool[0], pool[-1] + 2) if _valid(y, month, day)]
        if weekday is not None:
            fitting = [y for y in choices if date(y, month, day).weekday() == weekday]
            if fitting:
                year = min(fitting, key=lambda y: (abs(y - pool[-1]), -y))
                return _resolved(found, date(year, month, day), "weekday")
        if _valid(pool[-1], month, day):
            return _resolved(found, date(pool[-1], month, day), "latest year")
        return found

    @staticmethod
    def _best(found: list[FoundDate], roles: tuple[str, ...]) -> DateChoice | None:
        """The earliest-placed date of the most trusted role among `roles`."""
        usable = [d for d in found if d.day is not None and d.role in roles]
        if not usable:
            return None
        best = min(usable, key=lambda d: (roles.index(d.role), not d.year_given, d.line_no))
        assert best.day is not None
        confidence = _ROLE_CONFIDENCE[best.role]
        how = f"{best.role} {best.line[:80]!r}"
        if not best.year_given:
            confidence = (
                _WEEKDAY_CONFIRMED_CONFIDENCE if best.matched.endswith("(weekday)") else _INFERRED_YEAR_CONFIDENCE
            )
            how += ", year taken from " + (
                "the weekday it names" if best.matched.endswith("(weekday)") else "the document's other dates"
            )
        return DateChoice(best.day.isoformat(), how, confidence)


def _may_be_stamp(line: str) -> bool:
    return any(c.isdigit() for c in line) and not is_prose(line) and len(words(line)) <= 12


def date_text(line: str) -> str:
    """A line as the date parser reads it: abbreviations' dots dropped ('Aug. 18' -> 'Aug 18'), which
    dateparser's search otherwise misses."""
    return _ABBREVIATION_DOT.sub(r"\1", line.strip()[:400])


def _valid(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _resolved(found: FoundDate, day: date, how: str) -> FoundDate:
    return FoundDate(
        day, found.month_day, found.role, found.line, found.line_no, f"{found.matched} ({how})", found.year_given
    )


def _named_weekday(line: str) -> int | None:
    """The weekday (0 = Monday) a line names, when it names exactly one."""
    names = {name.lower(): i for i, name in enumerate(calendar.day_name)}
    named = {names[w.lower()] for w in words(line) if w.lower() in names}
    return named.pop() if len(named) == 1 else None


def named_period(text: str, languages: tuple[str, ...] = ("en",), lag_months: int = 1) -> tuple[str, str] | None:
    """The dates a question's time covers, as ISO (since, until), or None when it names no year.

    A month with its year ('in August 2023', 'between June 2018 and June 2019') covers those months and the
    `lag_months` after them, when reports of them appear; years alone ('in 2021', '2018-2019') cover the years.
    """
    named_years = sorted(int(y) for y in _YEAR.findall(text))
    if not named_years:
        return None
    from dateparser.search import search_dates

    try:
        hits = search_dates(
            text,
            languages=list(languages),
            settings={"REQUIRE_PARTS": ["month", "year"], "RETURN_AS_TIMEZONE_AWARE": False},
        )
    except (ValueError, OverflowError):  # dateparser on odd input
        hits = None
    months = sorted((d.year, d.month) for _, d in hits or () if d.year in named_years)
    if not months:
        return f"{named_years[0]}-01-01", f"{named_years[-1]}-12-31"
    (y0, m0), (y1, m1) = months[0], months[-1]
    m1 += lag_months
    y1, m1 = y1 + (m1 - 1) // 12, (m1 - 1) % 12 + 1
    return f"{y0}-{m0:02d}-01", f"{y1}-{m1:02d}-{calendar.monthrange(y1, m1)[1]:02d}"
