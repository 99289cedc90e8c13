"""Site chrome in a document's lines, judged by what a line is, never by a list of particular strings.

A line is chrome when its shape says so: an e-mail address, a string of digits or symbols, a byline or a
date stamp (kept in the metadata), a picture credit, a page control or prompt (share, print, feedback,
font size), a menu in another script, a short label, a speaker label, a run of headlines or links, a
running header repeated in the document, a line the same outlet prints on its other pages, or a short line
standing between other chrome. Every removed line keeps its reason; nothing is lost (see corpus.restore).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from assistant.dates import date_text
from assistant.lexicon import DocumentCues
from assistant.lines import ends_sentence, is_prose, is_title_like, letters_share, normalised, script_of, words

_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$")
_BULLET = re.compile(r"^(?:[-*•▪–]|\d+[.)])\s")
_LABELLED_LIST = re.compile(r"^[^\W\d_]+(?: [^\W\d_]+)?:\s+(.+,.+)$")
_URL = re.compile(r"^(?:https?://|www\.)\S+$")
_MAX_LABEL_WORDS = 3
_MAX_SHARED_PROSE_WORDS = 40  # a sentence an outlet prints verbatim on several pages is its blurb, up to this long
_MAX_NAME_WORDS = 10  # an all-capitals line this short is a masthead or a section name
_MAX_MENU_ITEM_WORDS = 5  # a line split by | > · • or -- into parts this short is a menu or breadcrumb
_MENU_SEPARATORS = re.compile(r"\s+(?:\||>|»|·|•|--|—)\s+|\s*\|\s*")
_MAX_CONTROL_WORDS = 8
_MAX_SPEAKER_LABEL_WORDS = 6
_MAX_STAMP_WORDS = 6  # words left in a stamp line once its date is taken out
_MIN_LIST_RUN = 3  # title-shaped lines in a row that make a list of headlines or links
_MIN_REPEAT_CHARS = 40  # a prose line repeated in one document at least this long is dropped after its first

STAMP = "publication stamp (kept in metadata)"
BYLINE = "byline (kept in metadata)"


@dataclass(frozen=True)
class LineVerdict:
    """Why line `index` is not article text."""

    index: int
    reason: str


class ChromeDetector:
    """Judges the lines of one document (with what is known of its outlet's other pages)."""

    def __init__(self, cues: DocumentCues) -> None:
        self.cues = cues

    def judge(
        self,
        lines: Sequence[str],
        dated_lines: Mapping[int, list[str]],
        title: str = "",
        shared: Collection[str] = (),
    ) -> dict[int, str]:
        """Line index -> reason for every chrome line.

        `dated_lines` maps a line to the date texts found in it as stamps; `title` is kept wherever it
        stands; `shared` holds normalised lines the same outlet prints on its other pages.
        """
        stripped = [line.strip() for line in lines]
        main_script = script_of(" ".join(s for s in stripped if is_prose(s)))
        verdicts: dict[int, str] = {}
        for i, line in enumerate(stripped):
            if line and line != title:
                reason = self._line_reason(line, dated_lines.get(i, []), main_script, normalised(line) in shared)
                if reason:
                    verdicts[i] = reason
        self._lists(stripped, verdicts, title)
        self._after_article(stripped, verdicts, title)
        self._running_lines(stripped, verdicts, title)
        self._between_chrome(stripped, verdicts, title)
        return verdicts

    # --- one line ------------------------------------------------------------------------------

    def _line_reason(self, line: str, dates: list[str], main_script: str, shared: bool) -> str | None:
        tokens = words(line)
        prose = is_prose(line)
        if _EMAIL.match(line):
            return "e-mail address"
        if _URL.match(line):
            return "web address"
        if letters_share(line) < 0.3 and not dates:
            return "digits or symbols"
        if self.cues.pattern("copyright_cues").search(line) and len(tokens) <= 15:
            return "copyright line (kept in metadata)"
        if prose:
            blurb = shared and len(tokens) <= _MAX_SHARED_PROSE_WORDS
            return "repeated on the outlet's other pages" if blurb else None
        if dates and sum(w[0].isalpha() for w in words(_without(date_text(line), dates))) <= _MAX_STAMP_WORDS:
            return STAMP
        first = self.cues.pattern("byline_cues").match(line)
        if first and 1 <= len(words(line[first.end() :].split(",")[0])) <= 5 and not ends_sentence(line):
            return BYLINE
        if shared:
            return "repeated on the outlet's other pages"
        if self._is_page_number(tokens):
            return "page number"
        if len(tokens) <= 10 and self.cues.pattern("credit_cues").search(line) and re.search(r"[:/©]", line):
            return "picture credit"
        if self.cues.pattern("copyright_cues").search(line) and len(tokens) <= 15:
            return "copyright line (kept in metadata)"
        if len(tokens) <= _MAX_CONTROL_WORDS and self._covered_by_interface_cues(line, tokens):
            return "page control or prompt"
        if main_script and script_of(line) not in ("", main_script, "DIGIT"):
            return f"menu or label in another script ({script_of(line).title()})"
        if tokens and sum(len(t) <= 2 for t in tokens) / len(tokens) > 0.6 and len(tokens) <= _MAX_CONTROL_WORDS:
            return "page control or prompt"
        labelled = _LABELLED_LIST.match(line)
        if labelled and all(len(words(p)) <= _MAX_LABEL_WORDS for p in labelled.group(1).split(",")):
            return "label and list of tags"
        parts = [p for p in _MENU_SEPARATORS.split(line) if p.strip()]
        if len(parts) >= 2 and all(len(words(p)) <= _MAX_MENU_ITEM_WORDS for p in parts):
            return "page control or prompt: menu"
        if line.isupper() and len(tokens) <= _MAX_NAME_WORDS:
            return "section label"
        if line.endswith(":") and len(tokens) <= _MAX_SPEAKER_LABEL_WORDS:
            return "speaker or section label"
        if len(tokens) <= _MAX_LABEL_WORDS and not ends_sentence(line):
            return "section label"
        return None

    def _covered_by_interface_cues(self, line: str, tokens: list[str]) -> bool:
        covered = sum(len(words(m.group())) for m in self.cues.pattern("interface_cues").finditer(line))
        return bool(tokens) and covered / len(tokens) >= 0.5

    def _is_page_number(self, tokens: list[str]) -> bool:
        if not tokens or len(tokens) > 5 or not any(t.isdigit() for t in tokens):
            return False
        return all(t.isdigit() or t.lower() in self.cues.page_cues for t in tokens)

    # --- lines in context ----------------------------------------------------------------------

    def _lists(self, lines: list[str], verdicts: dict[int, str], title: str) -> None:
        """Runs of headline-shaped lines are lists of links or headlines; a run's last line is kept when the
        article starts right after it (it is then the article's own headline)."""
        run: list[int] = []
        prose = [i for i, line in enumerate(lines) if is_prose(line)]
        first, last = (prose[0], prose[-1]) if prose else (len(lines), -1)
        for i in [*range(len(lines)), len(lines)]:
            line = lines[i] if i < len(lines) else ""
            if i < len(lines) and not line:
                continue
            bulleted = bool(_BULLET.match(line)) and first < i < last  # bullets inside the article are its own
            if i < len(lines) and i not in verdicts and is_title_like(line) and line != title and not bulleted:
                run.append(i)
                continue
            if len(run) >= _MIN_LIST_RUN:
                keep = run[-1] if i < len(lines) and not title and self._starts_article(line, i, verdicts) else None
                for j in run:
                    if j != keep:
                        verdicts[j] = "list of headlines or links"
            run = []

    @staticmethod
    def _after_article(lines: list[str], verdicts: dict[int, str], title: str) -> None:
        """Lines that are no sentences after the article's last paragraph (contacts, addresses, tags) are its
        page's furniture."""
        prose = [i for i, line in enumerate(lines) if is_prose(line) and i not in verdicts]
        if not prose:
            return
        for i in range(prose[-1] + 1, len(lines)):
            line = lines[i]
            if line and i not in verdicts and line != title and not ends_sentence(line):
                verdicts[i] = "after the article's last paragraph"

    @staticmethod
    def _starts_article(line: str, index: int, verdicts: dict[int, str]) -> bool:
        return is_prose(line) or verdicts.get(index) in (STAMP, BYLINE)

    @staticmethod
    def _running_lines(lines: list[str], verdicts: dict[int, str], title: str) -> None:
        """A line that is not prose and recurs in the document (page headers, footers) is chrome everywhere;
        a long prose line repeated is kept once."""
        shapes = Counter(normalised(line) for line in lines if line)
        seen: set[str] = set()
        for i, line in enumerate(lines):
            key = normalised(line)
            if not line or i in verdicts or shapes[key] < 2:
                continue
            if not is_prose(line) and line != title:
                verdicts[i] = "running header or footer"
            elif key in seen and len(line) >= _MIN_REPEAT_CHARS:
                verdicts[i] = "repeated text"
            seen.add(key)

    @staticmethod
    def _between_chrome(lines: list[str], verdicts: dict[int, str], title: str) -> None:
        """A short line with chrome (or the document's edge) on both sides is chrome too."""
        filled = [i for i, line in enumerate(lines) if line]
        for pos, i in enumerate(filled):
            line = lines[i]
            if i in verdicts or line == title or line.endswith(".") or len(words(line)) > _MAX_CONTROL_WORDS + 2:
                continue  # a statement is text, however short
            before = filled[pos - 1] if pos > 0 else None
            after = filled[pos + 1] if pos + 1 < len(filled) else None
            if (
                (before is None or before in verdicts)
                and (after is None or after in verdicts)
                and (before is not None or after is not None)
            ):
                verdicts[i] = "beside other page chrome"


def _without(line: str, parts: list[str]) -> str:
    for part in parts:
        line = line.replace(part, " ")
    return line
