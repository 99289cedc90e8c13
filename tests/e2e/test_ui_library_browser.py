"""The Library tab in headless Chromium: upload real HTML and PDF files, limits, replace, remove, inert titles.

One fake-model server for the module, with its uploads in a temporary folder and a small per-file limit.
Every test uploads files of its own names, so the tests do not depend on each other's order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fpdf import FPDF
from playwright.sync_api import Browser, Locator, Page, expect
from test_ui_browser import app_page, assert_only_local_requests, screenshot
from ui_harness import SEEDS, WORKING_GROUP, Served, fake_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MAX_FILE_MB = 0.05  # 50 KB: a test can go over it cheaply
SEED_NAMES = {p.name for p in SEEDS.glob("*.txt")}
PAYLOAD = "<img src=x onerror=window.__pwned=1>"


def herald_html(title: str = "Allies agree on new sanctions talks") -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta property="og:site_name" content="The Korea Herald">
<meta property="article:published_time" content="2021-03-17T09:00:00+09:00">
</head><body><article><h1>{title}</h1>
<p>SEOUL, March 17 (Korea Herald) - South Korea and the United States agreed on Wednesday to hold regular talks
on sanctions against North Korea, officials said after a meeting in Seoul.</p>
<p>The two sides discussed ways to coordinate their policies closely and to keep the door open for dialogue
with Pyongyang, according to the foreign ministry.</p>
<p>Officials said the next round of talks would take place in Washington later this spring, with working-level
delegations from both capitals.</p>
</article><footer>Copyright The Korea Herald. All rights reserved.</footer></body></html>"""


def envoys_pdf(path: Path) -> Path:
    """A one-page PDF with a text layer, a Title property and a Yonhap dateline."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.set_title("Envoys meet in Tokyo on missile tests")
    for paragraph in (
        "Envoys meet in Tokyo on missile tests",
        "TOKYO, June 8, 2022 (Yonhap) -- The nuclear envoys of South Korea, the United States and Japan met in "
        "Tokyo on Wednesday to discuss North Korea's recent missile tests.",
        "They agreed to respond firmly to any nuclear test and to keep close coordination, the foreign ministry "
        "said in a statement.",
    ):
        pdf.multi_cell(0, 6, paragraph)
        pdf.ln(2)
    pdf.output(str(path))
    return path


def memo_md(title: str, day: int) -> str:
    return (
        f"# {title}\n\nSEOUL, Jul {day}, 2020 (Yonhap) -- South Korea and the United States held talks on North "
        "Korea policy coordination in Seoul on Thursday, officials said after the meeting.\n"
    )


@pytest.fixture(scope="module")
def library_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("library-ui")
    with fake_server(tmp, upload_dir=tmp / "uploads", max_file_mb=MAX_FILE_MB, max_upload_files=5) as served:
        yield served


@pytest.fixture
def served(library_app: Served) -> Iterator[Served]:
    assert library_app.director is not None
    library_app.director.queued.clear()
    library_app.llm.delay_s = 0.0
    yield library_app
    library_app.llm.delay_s = 0.0
    for record in library_app.assistant.documents():  # each test starts from the seeds alone
        if record.source not in SEED_NAMES:
            library_app.assistant.remove_document(record.source)


@pytest.fixture
def page(browser: Browser, served: Served) -> Iterator[Page]:
    with app_page(browser, served.url, height=1100) as page:
        yield page


def open_library(page: Page) -> None:
    page.get_by_role("tab", name="Library").click()
    expect(page.locator("#ka-upload")).to_be_visible()


def upload(page: Page, files: list[Path]) -> Locator:
    """Give the files to the upload control; return the status once the upload has finished."""
    page.locator("#ka-upload input[type='file']").set_input_files([str(f) for f in files])
    status = page.locator("#ka-library-status")
    expect(status.locator(".ka-library-message")).to_be_visible()
    return status


def row(page: Page, name: str) -> Locator:
    return page.locator("#ka-library-table div[role='row']").filter(has_text=name)


def expect_row(page: Page, name: str, *cells: str) -> None:
    found = row(page, name)
    expect(found).to_have_count(1)
    for cell in cells:
        expect(found).to_contain_text(cell)


def test_upload_html_and_pdf_with_a_too_big_and_a_fake_file(page: Page, served: Served, tmp_path: Path) -> None:
    html_file = tmp_path / "herald-sanctions.html"
    html_file.write_text(herald_html(), encoding="utf-8")
    pdf_file = envoys_pdf(tmp_path / "envoys-tokyo.pdf")
    big = tmp_path / "big-report.txt"
    big.write_text("Officials met in Seoul to discuss the talks again.\n" * 1500, encoding="utf-8")  # 76.5 KB
    fake = tmp_path / "photo-notes.txt"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)

    open_library(page)
    status = upload(page, [html_file, pdf_file, big, fake])

    expect(status).to_contain_text("Added or updated 2 document(s)")
    expect(status).to_contain_text("big-report.txt: not uploaded: 76 KB is over the 0.05 MB limit per file")
    expect(status).to_contain_text("photo-notes.txt: this is a PNG image, not a document")
    expect(status).to_contain_text("2 file(s) not added")
    expect_row(page, "herald-sanctions.html", "Allies agree on new sanctions talks", "The Korea Herald", "2021-03-17")
    expect_row(page, "envoys-tokyo.pdf", "Envoys meet in Tokyo on missile tests", "Yonhap", "2022-06-08")
    expect(row(page, "envoys-tokyo.pdf")).to_contain_text("date: stamp")
    expect(row(page, "big-report.txt")).to_have_count(0)
    expect(row(page, "photo-notes.txt")).to_have_count(0)

    names = {r.source: r for r in served.assistant.documents()}
    assert {"herald-sanctions.html", "envoys-tokyo.pdf"} <= names.keys()
    assert "big-report.txt" not in names and "photo-notes.txt" not in names
    uploads = served.settings.upload_dir.resolve()
    kept = Path(names["envoys-tokyo.pdf"].path)
    assert kept.parent.parent == uploads, "each upload is kept in its own folder under upload_dir"
    assert sorted(p.name for p in kept.parent.iterdir()) == ["envoys-tokyo.pdf", "herald-sanctions.html"]
    assert_only_local_requests(page, served)
    screenshot(page, "ui-library.png")


def test_same_name_again_replaces_the_document(page: Page, served: Served, tmp_path: Path) -> None:
    first = tmp_path / "v1" / "memo-coordination.md"
    first.parent.mkdir()
    first.write_text(memo_md("First draft of the memo", 2), encoding="utf-8")
    second = tmp_path / "v2" / "memo-coordination.md"
    second.parent.mkdir()
    second.write_text(memo_md("Corrected memo on coordination", 9), encoding="utf-8")

    open_library(page)
    upload(page, [first])
    expect_row(page, "memo-coordination.md", "First draft of the memo", "2020-07-02")
    old_path = Path(served.assistant.store.library.get("memo-coordination.md").path)  # type: ignore[union-attr]

    status = upload(page, [second])
    expect(status).to_contain_text("memo-coordination.md replaces the earlier upload of the same name")
    expect_row(page, "memo-coordination.md", "Corrected memo on coordination", "2020-07-09")
    expect(page.locator("#ka-library-table")).not_to_contain_text("First draft of the memo")
    new_path = Path(served.assistant.store.library.get("memo-coordination.md").path)  # type: ignore[union-attr]
    assert new_path != old_path and new_path.is_file()
    assert not old_path.exists() and not old_path.parent.exists(), "the replaced upload and its folder are gone"


def test_remove_a_document_after_confirming(page: Page, served: Served, tmp_path: Path) -> None:
    doomed = tmp_path / "to-remove.html"
    doomed.write_text(herald_html("A page to remove"), encoding="utf-8")
    open_library(page)
    upload(page, [doomed])
    expect_row(page, "to-remove.html", "A page to remove")
    path = Path(served.assistant.store.library.get("to-remove.html").path)  # type: ignore[union-attr]
    assert path.is_file()

    row(page, "to-remove.html").locator("[role='gridcell']").first.click()  # a row click picks the document
    expect(page.locator("#ka-remove-choice input")).to_have_value("to-remove.html")
    page.locator("#ka-remove").click()
    status = page.locator("#ka-library-status")
    expect(status).to_contain_text("Remove to-remove.html (A page to remove)")
    page.locator("#ka-remove-cancel").click()
    expect(status).to_contain_text("Nothing removed")
    expect(row(page, "to-remove.html")).to_have_count(1)

    page.locator("#ka-remove").click()
    page.locator("#ka-remove-confirm").click()
    expect(status).to_contain_text("to-remove.html was removed from the library")
    expect(row(page, "to-remove.html")).to_have_count(0)
    expect(page.locator("#ka-remove-confirm")).to_be_hidden()
    assert served.assistant.store.library.get("to-remove.html") is None
    assert not path.exists(), "the uploaded file is deleted with its document"
    expect_row(page, "000_ec390470196d8f97.txt")  # the seeds are still there


def test_a_title_with_html_shows_as_text(page: Page, served: Served, tmp_path: Path) -> None:
    evil = tmp_path / "evil-title.md"
    evil.write_text(memo_md(f"{PAYLOAD} <b>bold</b> report", 3), encoding="utf-8")
    open_library(page)
    upload(page, [evil])
    expect_row(page, "evil-title.md", f"{PAYLOAD} <b>bold</b> report")
    table = page.locator("#ka-library-table")
    assert table.locator("img").count() == 0
    assert table.locator("b").count() == 0
    assert page.locator("[onerror]").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_chat_keeps_answering_while_a_document_is_uploaded(page: Page, served: Served, tmp_path: Path) -> None:
    served.llm.delay_s = 0.4  # about five seconds of streamed words
    page.locator("#ka-question textarea").fill(WORKING_GROUP)
    page.locator("#ka-question textarea").press("Enter")
    message = page.locator("#ka-chat [data-testid='bot']").last
    expect(message).to_contain_text("The working group")  # the answer is being written

    page_file = tmp_path / "during-chat.html"
    page_file.write_text(herald_html("Uploaded during an answer"), encoding="utf-8")
    open_library(page)
    status = upload(page, [page_file])
    expect(status).to_contain_text("Added or updated 1 document(s): during-chat.html")
    expect_row(page, "during-chat.html", "Uploaded during an answer")

    page.get_by_role("tab", name="Chat").click()
    expect(message.locator(".ka-drafting")).to_have_count(0)
    expect(message.locator(".ka-sources mark")).to_contain_text("November 2018")
    served.llm.delay_s = 0.0
    page.locator("#ka-outlets input").click()
    expect(
        page.get_by_role("option", name="The Korea Herald", exact=True)
    ).to_be_visible()  # the filter knows the new outlet
