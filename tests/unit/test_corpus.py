"""Reading, cleaning and describing documents: the five seeds, HTML, sidecars, and files to refuse."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from assistant.corpus import (
    DocumentError,
    load_document,
    restore,
)

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))
SEED_IDS = [p.name[:3] for p in SEED_FILES]

# Site furniture that is in the raw seeds and must not survive cleaning.
BOILERPLATE = [
    "Go to Contents",
    "Go to Navigation",
    "Keywords",
    "Send Feedback",
    "How can we improve?",
    "TOP STORIES",
    "EDITOR",
    "MOST VIEWED",
    "Share it",
    "0100200707",
    "Video PlayerClose",
    "hague@yna.co.kr",
    "Synopsis",
]
FIRST_SENTENCE_000 = (
    "A working group on North Korea, comprised of South Korean and U.S. security officials and diplomats, "
    "will meet regularly, possibly twice a month, a senior foreign ministry official said Thursday."
)
PHOTO_CAPTION_001 = (
    "This photo shows South Korean Unification Minister Lee In-young (R) and U.S. Ambassador to South Korea "
    "Harry Harris doing an elbow bump"
)


@pytest.fixture(scope="module")
def docs() -> dict[str, object]:
    return {p.name[:3]: load_document(p) for p in SEED_FILES}


def seed(prefix: str) -> Path:
    return next(p for p in SEED_FILES if p.name.startswith(prefix))


# --- cleaning ------------------------------------------------------------------------------------


def test_the_corpus_is_the_five_seeds() -> None:
    assert SEED_IDS == ["000", "001", "002", "003", "004"]


@pytest.mark.parametrize("junk", BOILERPLATE)
def test_boilerplate_is_in_some_raw_seed_and_in_no_cleaned_one(junk: str) -> None:
    docs = [load_document(p) for p in SEED_FILES]
    assert any(junk in d.raw for d in docs), f"{junk!r} is in no seed: the test would prove nothing"
    assert [d.source for d in docs if junk in d.text] == []


@pytest.mark.parametrize("path", SEED_FILES, ids=SEED_IDS)
def test_cleaning_is_reversible_and_every_removal_is_explained(path: Path) -> None:
    doc = load_document(path)
    assert restore(doc.text, doc.removals) == doc.raw
    assert doc.raw == path.read_text(encoding="utf-8")
    for removal in doc.removals:
        assert removal.reason.strip()
        assert doc.raw[removal.start : removal.end] == removal.text
    spans = sorted((r.start, r.end) for r in doc.removals)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


@pytest.mark.parametrize("path", SEED_FILES, ids=SEED_IDS)
def test_cleaned_text_keeps_the_article(path: Path) -> None:
    doc = load_document(path)
    assert len(doc.text) > 1500
    assert not doc.text.startswith(("\n", " "))
    assert "\n\n\n" not in doc.text
    assert doc.text.rstrip()[-1] in '.”"', "the text should end with the article's last sentence"


def test_article_000_repeated_text_is_kept_once() -> None:
    doc = load_document(seed("000"))
    assert doc.raw.count(FIRST_SENTENCE_000) == 2
    assert doc.text.count(FIRST_SENTENCE_000) == 1
    repeats = [r for r in doc.removals if r.reason.startswith("repeated text")]
    assert len(repeats) == 9  # the whole nine-paragraph article appears twice
    assert doc.text.count("Pyongyang and Washington have yet to hold a postponed high-level meeting") == 1


def test_article_001_photo_caption_is_kept_once() -> None:
    doc = load_document(seed("001"))
    assert doc.raw.count(PHOTO_CAPTION_001) == 2
    assert doc.text.count(PHOTO_CAPTION_001) == 1


@pytest.mark.parametrize(
    ("prefix", "reason", "text"),
    [
        ("001", "e-mail address", "hague@yna.co.kr\n"),
        ("001", "byline (kept in metadata)", "By Lee Haye-ah\n"),
        ("001", "publication stamp (kept in metadata)", "North Korea 05:38 August 19, 2020\n"),
        ("003", "digits or symbols", "010020070750000000000000011100001378244771"),
        (
            "003",
            "publication stamp (kept in metadata)",
            "Source: Xinhua| 2019-02-15 14:31:40|Editor: Shi Yinglun\n",
        ),
        ("004", "page control or prompt", "Share it\n"),
    ],
)
def test_removals_say_why(prefix: str, reason: str, text: str) -> None:
    doc = load_document(seed(prefix))
    assert (reason, text) in [(r.reason, r.text) for r in doc.removals]


# --- metadata ------------------------------------------------------------------------------------

EXPECTED = {
    "000": {
        "published": "2018-11-22",
        "outlet": "The Korea Times",
        "byline": "Kim Bo-eun",
        "title": "S. Korea-US working group on North Korea to meet regularly, possibly twice a month",
    },
    "001": {
        "published": "2020-08-19",
        "outlet": "Yonhap",
        "byline": "Lee Haye-ah",
        "title": "U.S., S. Korea coordinate regularly on N.K. policy: State Dept.",
    },
    "002": {
        "published": "2025-12-12",
        "outlet": "NationPress",
        "byline": "",
        "title": "Will South Korea and the US Begin Regular Consultations on North Korea Policy Next Week?",
    },
    "003": {
        "published": "2019-02-15",
        "outlet": "Xinhua",
        "byline": "",
        "title": "Pompeo, S.Korean FM hold talks on DPRK denuclearization",
    },
    "004": {
        "published": "2020-07-02",
        "outlet": "The Korea Herald (via Pan Pacific Agency)",
        "byline": "",
        "title": "S. Korean FM vows all-out efforts to resume dialogue with N. Korea",
    },
}

# Where each field must come from: the article's own text, or its .meta.yaml sidecar.
PROVENANCE = {
    "000": {"published": "sidecar", "outlet": "sidecar", "title": "sidecar", "byline": "text"},
    "001": {"published": "text", "outlet": "text", "title": "text", "byline": "text"},
    "002": {"published": "sidecar", "outlet": "text", "title": "text"},
    "003": {"published": "text", "outlet": "text", "title": "text"},
    "004": {"published": "text", "outlet": "sidecar", "title": "text"},
}


@pytest.mark.parametrize("prefix", SEED_IDS)
def test_seed_metadata(prefix: str) -> None:
    meta = load_document(seed(prefix)).metadata
    got = {"published": meta.published, "outlet": meta.outlet, "byline": meta.byline, "title": meta.title}
    assert got == EXPECTED[prefix]
    assert meta.source == seed(prefix).name
    chroma = meta.to_chroma()
    assert chroma["published_int"] == int(EXPECTED[prefix]["published"].replace("-", ""))
    assert chroma["source"] == seed(prefix).name


@pytest.mark.parametrize("prefix", SEED_IDS)
def test_seed_metadata_provenance(prefix: str) -> None:
    meta = load_document(seed(prefix)).metadata
    origin = {key: "sidecar" if how.startswith("sidecar ") else "text" for key, how in meta.provenance.items()}
    assert origin == PROVENANCE[prefix]
    for key, how in meta.provenance.items():
        if origin[key] == "sidecar":
            assert how == f"sidecar {seed(prefix).name}.meta.yaml"
        else:
            assert how  # says which line of the text gave it


def test_provenance_of_text_fields_quotes_the_line() -> None:
    meta = load_document(seed("001")).metadata
    assert meta.provenance["published"] == "stamp 'North Korea 05:38 August 19, 2020'"
    assert meta.provenance["outlet"].startswith("dateline 'WASHINGTON, Aug 18 (Yonhap) --")
    assert meta.confidence["published"] > 0.8


# --- HTML ----------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title>Envoys meet in Seoul</title>
<style>body { color: red }</style><script>var tracker = "SCRIPT-TEXT";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/world">NAV-TEXT</a></nav>
<header>HEADER-TEXT</header>
<article>
  <h1>Envoys meet in Seoul</h1>
  <p>SEOUL, Mar. 3 (Yonhap) -- The nuclear envoys of the two
     countries met on <b>Tuesday</b> to discuss <a href="/nk">North Korea</a>.</p>
  <!-- COMMENT-TEXT -->
  <p>They agreed to meet again<br>next month.</p>
  <script>track("SCRIPT-TEXT-2")</script>
</article>
<footer>FOOTER-TEXT</footer>
</body></html>
"""


def test_html_file_is_loaded_as_text(tmp_path: Path) -> None:
    path = tmp_path / "envoys.html"
    path.write_text(PAGE, encoding="utf-8")
    doc = load_document(path)
    for hidden in ("SCRIPT-TEXT", "color: red", "NAV-TEXT", "HEADER-TEXT", "FOOTER-TEXT", "COMMENT", "<"):
        assert hidden not in doc.text
    assert "met on Tuesday to discuss North Korea." in doc.text
    assert doc.metadata.title == "Envoys meet in Seoul"
    assert doc.metadata.outlet == "Yonhap"
    assert restore(doc.text, doc.removals) == doc.raw


# --- sidecars ------------------------------------------------------------------------------------

ARTICLE = (
    "Allies agree on new consultation channel\n\n"
    "Diplomats from Seoul and Washington agreed on Monday to hold regular talks on North Korea policy.\n"
)


def test_user_document_gets_its_sidecar_fields(tmp_path: Path) -> None:
    path = tmp_path / "talks.md"
    path.write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "talks.md.meta.yaml").write_text(
        "title: Regular talks agreed\noutlet: Example Daily\npublished: 2024-03-04\nbyline: Jane Doe\n"
        "notes: ignored, not a field\n",
        encoding="utf-8",
    )
    meta = load_document(path).metadata
    assert (meta.title, meta.outlet, meta.published, meta.byline) == (
        "Regular talks agreed",
        "Example Daily",
        "2024-03-04",
        "Jane Doe",
    )
    assert set(meta.provenance.values()) == {"sidecar talks.md.meta.yaml"}


def test_without_sidecar_the_title_comes_from_the_text(tmp_path: Path) -> None:
    path = tmp_path / "talks.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    meta = load_document(path).metadata
    assert meta.title == "Allies agree on new consultation channel"
    assert meta.provenance == {"title": "headline line 1 of the text"}
    assert (meta.outlet, meta.published) == ("", "")
    assert meta.to_chroma()["published_int"] == 0


@pytest.mark.parametrize(
    "value",
    ["2020-13-45", '"2020-02-30"', "next week", "12/03/2020", "2020-1-5"],
)
def test_invalid_sidecar_date_is_a_clear_document_error(tmp_path: Path, value: str) -> None:
    path = tmp_path / "talks.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "talks.txt.meta.yaml").write_text(f"published: {value}\n", encoding="utf-8")
    with pytest.raises(DocumentError) as err:
        load_document(path)
    message = str(err.value)
    assert message.startswith("talks.txt.meta.yaml: ")
    assert "published must be a real date written YYYY-MM-DD" in message
    assert value.strip('"') in message


def test_sidecar_date_time_is_reduced_to_the_date(tmp_path: Path) -> None:
    path = tmp_path / "talks.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "talks.txt.meta.yaml").write_text("published: 2024-03-04 09:30:00\n", encoding="utf-8")
    assert load_document(path).metadata.published == "2024-03-04"


@pytest.mark.parametrize(
    ("sidecar", "expected"),
    [
        ("title: [a, b]\n", "title must be text"),
        ("- a list\n", "a sidecar must be a mapping"),
        ("title: 'unclosed\n", "invalid YAML sidecar"),
    ],
)
def test_malformed_sidecar_is_a_document_error(tmp_path: Path, sidecar: str, expected: str) -> None:
    path = tmp_path / "talks.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "talks.txt.meta.yaml").write_text(sidecar, encoding="utf-8")
    with pytest.raises(DocumentError, match=expected) as err:
        load_document(path)
    assert str(err.value).startswith("talks.txt.meta.yaml: ")


# --- files that are refused ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.txt", b"  \n\n \t\n", "empty file"),
        ("binary.txt", b"Some text\x00\x01\x02 and more", "binary file"),
        ("late-nul.txt", b"Good text. " * 2000 + b"\x00", "binary file"),
        ("latin1.txt", "Caf\u00e9 in Seoul\n".encode("latin-1"), "not valid UTF-8"),
        ("slides.pdf", b"%PDF-1.4 ...", "not a readable PDF"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n rest", "this is a PNG image"),
        ("notes.pdf", b"Plain words, not a PDF.\n", "named .pdf but it is not a PDF"),
        ("README", b"no extension\n", "unsupported extension (none)"),
        (
            "boiler.txt",
            b"Go to Contents\nKeywords\nSend Feedback\n",
            "nothing left after removing page chrome",
        ),
    ],
)
def test_bad_files_are_document_errors_naming_file_and_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError) as err:
        load_document(path)
    assert str(err.value).startswith(f"{name}: ")
    assert reason in str(err.value)


def test_a_20_mb_single_line_is_refused_by_size_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(b"a" * 20_000_000)
    started = time.perf_counter()
    with pytest.raises(DocumentError) as err:
        load_document(path, max_bytes=10_000_000)
    assert time.perf_counter() - started < 0.5
    assert str(err.value) == "dump.txt: 20.0 MB is over the 10 MB limit per file"


def test_a_3_mb_single_line_under_a_raised_limit_is_refused_as_not_prose(tmp_path: Path) -> None:
    path = tmp_path / "dump.md"
    path.write_bytes(b"word " * 600_000)  # 3 MB, no newline
    started = time.perf_counter()
    with pytest.raises(DocumentError) as err:
        load_document(path, max_bytes=50_000_000)
    assert time.perf_counter() - started < 2
    assert str(err.value).startswith("dump.md: a single line of ")
    assert str(err.value).endswith(" characters; this is not prose")


def test_windows_line_endings_and_bom_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes("\ufeffAllies meet\r\n\r\nThey met on Monday to talk.\r\n".encode())
    doc = load_document(path)
    assert doc.text == "Allies meet\n\nThey met on Monday to talk.\n"
    assert doc.metadata.title == "Allies meet"
