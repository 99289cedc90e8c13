"""Documents of many shapes: formats told by content, dates and their roles, chrome by line shape, outlets.

Every text here is written for the test (an invented port-authority story), not taken from an eval set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.corpus import DocumentError, DocumentReader, load_document, restore
from assistant.dates import DateFinder, named_period
from assistant.formats import sniff
from assistant.lexicon import DocumentCues, OutletTable

STORY = (
    "Harbour pilots in Velmar and Ostrade agreed on Wednesday to share one radar picture of the strait, "
    "officials from both port authorities said."
)
MORE = (
    "The agreement covers the twelve miles of water between the two breakwaters and takes effect at the start "
    "of the next shipping season, the authorities added."
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reader() -> DocumentReader:
    return DocumentReader.default()


# --- formats -------------------------------------------------------------------------------------

PAGE = f"""<!doctype html><html><head>
<title>Pilots agree to share radar picture - The Strait Gazette</title>
<meta property="og:title" content="Pilots agree to share radar picture">
<meta property="og:site_name" content="The Strait Gazette">
<meta property="article:published_time" content="2024-05-08T10:00:00Z">
<meta name="author" content="Ilse Marr">
</head><body>
<nav><ul><li>Home</li><li>Ports</li><li>Weather</li></ul></nav>
<div class="cookie">We use cookies. Accept all | Reject</div>
<article><h1>Pilots agree to share radar picture</h1>
<p>{STORY}</p><p>{MORE}</p>
<p>Share on X</p></article>
<aside><h3>Related stories</h3><ul><li>Ferry fares rise again</li><li>New tug for the inner harbour</li></ul></aside>
<footer>© 2024 The Strait Gazette. All rights reserved.</footer>
</body></html>"""


def test_a_web_page_gives_its_article_title_site_and_date(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "page.html", PAGE))
    assert doc.kind == "html"
    assert STORY in doc.text and MORE in doc.text
    for chrome in ("Home", "cookies", "Ferry fares", "Share on X", "All rights reserved"):
        assert chrome not in doc.text
    meta = doc.metadata
    assert (meta.title, meta.outlet, meta.published, meta.byline) == (
        "Pilots agree to share radar picture",
        "The Strait Gazette",
        "2024-05-08",
        "Ilse Marr",
    )
    assert "web page" in meta.provenance["outlet"] and "htmldate" in meta.provenance["published"]


def test_a_web_page_saved_as_txt_is_read_as_html(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "saved.txt", PAGE))
    assert doc.kind == "html"
    assert "<p>" not in doc.text and doc.metadata.outlet == "The Strait Gazette"


def test_a_page_without_site_metadata_takes_its_name_from_the_title_tag(tmp_path: Path) -> None:
    page = (
        "<html><head><title>Pilots agree to share radar picture | Harbour Weekly</title></head><body>"
        f"<article><h1>Pilots agree to share radar picture</h1><p>Published 8 May 2024</p><p>{STORY}</p>"
        f"<p>{MORE}</p></article></body></html>"
    )
    meta = load_document(write(tmp_path, "p.html", page)).metadata
    assert meta.outlet == "Harbour Weekly"
    assert meta.title == "Pilots agree to share radar picture"


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=11)
    for page in pages:
        pdf.add_page()
        for para in page:
            pdf.multi_cell(0, 6, para)
            pdf.ln(3)
    pdf.output(str(path))
    return path


def test_a_pdf_is_read_from_its_text_layer_with_running_headers_removed(tmp_path: Path) -> None:
    header = "Port Authority of Velmar | Notice 7"
    path = make_pdf(
        tmp_path / "notice.pdf",
        [
            [header, "Joint radar watch for the strait", "Date: 2024-05-09", STORY, "Page 1 of 2"],
            [header, MORE, "Page 2 of 2"],
        ],
        title="Joint radar watch for the strait",
    )
    doc = load_document(path)
    assert doc.kind == "pdf"
    assert doc.metadata.title == "Joint radar watch for the strait"
    assert doc.metadata.published == "2024-05-09"
    assert "twelve miles of water" in doc.text and "Harbour pilots in Velmar" in doc.text
    assert header not in doc.text and "Page 1 of 2" not in doc.text
    assert restore(doc.text, doc.removals) == doc.raw


def test_a_pdf_without_text_is_reported_not_indexed(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")  # a scan: a picture, no text layer
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    with pytest.raises(DocumentError, match=r"scan\.pdf: the PDF has no text layer"):
        load_document(path)


def test_markdown_is_reduced_to_text_and_its_heading_is_the_title(tmp_path: Path) -> None:
    md = f"# Radar picture shared\n\nBy Ilse Marr\n\n**{STORY}** See [the notice](https://example.org).\n"
    doc = load_document(write(tmp_path, "post.md", md))
    assert doc.kind == "markdown"
    assert doc.metadata.title == "Radar picture shared"
    assert "**" not in doc.text and "https://" not in doc.text and "See the notice." in doc.text


@pytest.mark.parametrize(
    ("data", "suffix", "kind"),
    [
        (b"%PDF-1.7\n...", ".txt", "pdf"),
        (b"<!DOCTYPE html><html><body><p>x</p></body></html>", ".md", "html"),
        (b"# Heading\n\nText.", ".md", "markdown"),
        (b"Plain words.\n", ".txt", "text"),
    ],
)
def test_the_type_comes_from_the_content(data: bytes, suffix: str, kind: str) -> None:
    assert sniff(data, suffix) == kind


# --- dates ---------------------------------------------------------------------------------------


def finder() -> DateFinder:
    return DateFinder(DocumentCues.load())


def test_published_and_updated_stamps_are_told_apart() -> None:
    found = finder().find(["Radar deal signed", "Written 2024.03.02 09:15 / Updated 2024.03.03 11:40", STORY])
    assert found.published is not None and found.published.iso == "2024-03-02"
    assert found.updated is not None and found.updated.iso == "2024-03-03"


def test_a_dateline_without_a_year_takes_it_from_the_named_weekday() -> None:
    lines = [
        "Radar deal signed",
        "VELMAR, March 6 (Strait Wire) -- Harbour pilots agreed on Wednesday to share one radar picture.",
        "Talks on the idea first began on January 9, 2023, officials said.",
    ]
    found = finder().find(lines)
    assert found.published is not None
    # 6 March fell on a Wednesday in 2024 (and not in 2023)
    assert found.published.iso == "2024-03-06"
    assert "weekday" in found.published.method


def test_a_dateline_without_a_year_takes_the_documents_latest_year() -> None:
    lines = ["OSTRADE, June 3 (Strait Wire) -- The pilots met again.", "The first meeting was on May 2, 2022."]
    found = finder().find(lines)
    assert found.published is not None and found.published.iso == "2022-06-03"
    assert found.published.confidence < 0.7


def test_an_old_photo_caption_date_is_not_the_publication_date() -> None:
    lines = [
        "In this file photo taken on June 2, 2019, pilots board a tanker. Photo: Strait Gazette/Ana Liu",
        "Date: 2024-05-14",
        STORY,
    ]
    found = finder().find(lines)
    assert found.published is not None and found.published.iso == "2024-05-14"


def test_an_undated_document_is_kept_and_marked(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "release.txt", f"PRESS RELEASE\n\nRadar watch begins\n\n{STORY}\n{MORE}\n"))
    assert doc.metadata.published == "" and doc.metadata.undated
    assert "undated" in doc.flags
    assert doc.metadata.to_chroma()["published_int"] == 0


# --- chrome --------------------------------------------------------------------------------------

SAVED_PAGE = f"""THE STRAIT GAZETTE
Ports | Shipping | Weather | Opinion
Главная | Новости | Контакты

MOST READ
1. Ferry fares rise again this winter
2. New tug for the inner harbour
3. Lighthouse keeper retires after forty years

Pilots agree to share radar picture
By Ilse Marr
The Strait Gazette | 2024.05.08
A+ A- Print Email

{STORY}

Photo: Strait Gazette/Ana Liu

{MORE}

Was this article helpful? Yes No
Share on X Copy link
imarr@straitgazette.example
"""


def test_chrome_is_judged_by_shape_and_every_removal_says_why(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "saved.txt", SAVED_PAGE))
    kept = [line for line in doc.text.splitlines() if line.strip()]
    assert kept == ["Pilots agree to share radar picture", STORY, MORE]
    reasons = {r.text.strip(): r.reason for r in doc.removals if r.text.strip()}
    assert reasons["Главная | Новости | Контакты"].startswith(("menu", "page control"))
    assert reasons["1. Ferry fares rise again this winter"] == "list of headlines or links"
    assert reasons["The Strait Gazette | 2024.05.08"] == "publication stamp (kept in metadata)"
    assert reasons["By Ilse Marr"] == "byline (kept in metadata)"
    assert reasons["A+ A- Print Email"] == "page control or prompt"
    assert reasons["Photo: Strait Gazette/Ana Liu"] == "picture credit"
    assert reasons["imarr@straitgazette.example"] == "e-mail address"
    assert restore(doc.text, doc.removals) == doc.raw
    meta = doc.metadata
    assert (meta.title, meta.outlet, meta.published, meta.byline) == (
        "Pilots agree to share radar picture",
        "The Strait Gazette",
        "2024-05-08",
        "Ilse Marr",
    )


def test_transcript_speaker_labels_are_not_text(tmp_path: Path) -> None:
    text = f"Radar deal on the evening news\n\nANCHOR:\n{STORY}\nANA LIU, CORRESPONDENT:\n{MORE}\n"
    doc = load_document(write(tmp_path, "transcript.txt", text))
    assert "ANCHOR:" not in doc.text and "CORRESPONDENT:" not in doc.text
    assert STORY in doc.text and MORE in doc.text


def test_outlets_come_from_the_dateline_and_the_copyright_line(tmp_path: Path, reader: DocumentReader) -> None:
    dateline = f"Radar deal\n\nVELMAR, May 8, 2024 (Strait Wire) -- {STORY}\n"
    assert reader.load(write(tmp_path, "a.txt", dateline)).metadata.outlet == "Strait Wire"
    signed = f"Radar deal\n\nDate: 2024-05-08\n\n{STORY}\n\n(c) Harbour Weekly. All rights reserved.\n"
    assert reader.load(write(tmp_path, "b.txt", signed)).metadata.outlet == "Harbour Weekly"


def test_the_outlet_table_names_an_outlet_as_the_user_wants_it(tmp_path: Path) -> None:
    table = write(tmp_path, "outlets.yaml", "outlets:\n  Strait Wire Service: [strait wire, sws]\n")
    reader = DocumentReader(DocumentCues.load(), OutletTable.load(table))
    doc = reader.load(write(tmp_path, "a.txt", f"Radar deal\n\nVELMAR, May 8, 2024 (SWS) -- {STORY}\n"))
    assert doc.metadata.outlet == "Strait Wire Service"


def test_overrides_win_and_say_so(tmp_path: Path, reader: DocumentReader) -> None:
    path = write(tmp_path, "a.txt", f"Radar deal\n\n{STORY}\n")
    meta = reader.load(path, overrides={"outlet": "Velmar Port News", "published": "2024-05-01"}).metadata
    assert (meta.outlet, meta.published) == ("Velmar Port News", "2024-05-01")
    assert meta.provenance["outlet"] == "given with the document (outlet)"
    assert meta.confidence["published"] == 1.0


@pytest.mark.parametrize(
    ("question", "period"),
    [
        ("What did the council decide in August 2031?", ("2031-08-01", "2031-09-30")),
        ("Who chaired it between June 2030 and June 2031?", ("2030-06-01", "2031-07-31")),
        ("What was agreed in December 2031?", ("2031-12-01", "2032-01-31")),
        ("Who led it in 2029, and who in 2031?", ("2029-01-01", "2031-12-31")),
        ("Who chairs the council now?", None),
    ],
)
def test_the_time_a_question_names(question: str, period: tuple[str, str] | None) -> None:
    assert named_period(question) == period
