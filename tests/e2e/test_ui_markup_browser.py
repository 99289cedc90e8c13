"""Markup carried by a document (its title, outlet and text) in headless Chromium: shown as text everywhere.

A plain-text document whose text, given title and given outlet hold `<script>`, `<img onerror>`, `<b>` and a
`javascript:` Markdown link is indexed beside the seeds before the page is built (so the outlet filter knows
it). Its quotes are then shown in an answer's sources and passages, in a refusal's related facts, in the
library table and in the removal confirmation: no script runs, no dialog opens, no element is made. A web page
whose title, site name and text carry escaped markup (`&lt;img ...&gt;`, literal markup once the page is read)
is indexed too and shown the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect
from test_ui_browser import (
    app_page,
    ask,
    assert_only_local_requests,
    screenshot,
    wait_final,
)
from ui_harness import Director, Served, SlowScriptedChatModel, clean_settings, free_port, passage_number, serving

from assistant.app import Assistant

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DOC = "tolvek-spillway.txt"
TITLE = '<script>window.__pwned="title"</script><b>Spillway</b> plan <img src=x onerror="window.__pwned=\'title\'">'
OUTLET = '<img src=x onerror="alert(document.domain)"><b>Arden Ledger</b>'
SENTENCE = (
    'The Tolvek dam council approved the spillway plan on <b>Tuesday</b> <img src=x onerror="window.__pwned=1"> '
    "after [a vote](javascript:window.__pwned=2)."
)
SECOND = "The council said the spillway work <script>window.__pwned=3</script> would start in <i>June</i>."
# a web page whose escaped markup (&lt;img ...&gt;) is text once the page is read: its title, site name and text
PAGE = "quay-courier-levy.html"
PAGE_HTML = """<!doctype html><html><head><meta charset="utf-8">
<title>&lt;img src=x onerror=alert(1)&gt; Harbour &lt;b&gt;levy&lt;/b&gt; vote</title>
<meta property="og:site_name" content="&lt;script&gt;window.__pwned='site'&lt;/script&gt;Quay Courier">
<meta property="article:published_time" content="2021-06-09T09:00:00+00:00">
</head><body><article><h1>&lt;img src=x onerror=alert(1)&gt; Harbour &lt;b&gt;levy&lt;/b&gt; vote</h1>
<p>PORT ELSBY, June 9 (Quay Courier) - The Elsby harbour board voted on Tuesday to raise the mooring levy
&lt;img src=x onerror="window.__pwned='body'"&gt; by four percent from August.</p>
<p>Board members said the extra money would pay for dredging the &lt;i&gt;outer basin&lt;/i&gt; next spring.</p>
</article></body></html>"""
LEVY = "When did the Elsby harbour board vote to raise the mooring levy?"
ANSWERED = "When did the Tolvek dam council approve the spillway plan?"
NOT_ANSWERED = "How many workers will the Tolvek spillway work need?"
WHERE = ("#ka-chat", "#ka-details", "#ka-library-table", "#ka-library-status", "#ka-outlets")


@pytest.fixture(scope="module")
def markup_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("markup-ui")
    doc = tmp / "docs" / DOC
    doc.parent.mkdir()
    doc.write_text(f"ARDEN, May 4, 2021 -- {SENTENCE}\n\n{SECOND}\n", encoding="utf-8")
    config = clean_settings(
        persist_dir=tmp / "vs", embedding="fake:64", feedback_path=tmp / "feedback.jsonl", port=free_port()
    )
    director = Director()
    llm = SlowScriptedChatModel(script=director)
    assistant = Assistant.from_settings(config, llm=llm)
    assistant.ingest([doc], progress=False, title=TITLE, outlet=OUTLET, published="2021-05-04")
    page = tmp / "pages" / PAGE
    page.parent.mkdir()
    page.write_text(PAGE_HTML, encoding="utf-8")
    assistant.ingest([page], progress=False)
    with serving(assistant, config, llm, director) as served:
        yield served


@pytest.fixture
def page(browser: Browser, markup_app: Served) -> Iterator[Page]:
    assert markup_app.director is not None
    markup_app.director.queued.clear()
    with app_page(browser, markup_app.url, height=1100) as page:
        dialogs: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        page.dialogs = dialogs  # type: ignore[attr-defined]
        yield page


def assert_inert(page: Page, served: Served) -> None:
    """No script of the document ran, no dialog opened, no element of its markup is in the page."""
    page.wait_for_timeout(300)  # an <img src=x> fails to load at once; give its onerror the chance to run
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.dialogs == []  # type: ignore[attr-defined]
    # Gradio's own config script holds the library table as JSON ('<' written as \\u003c): not a script of the doc
    assert page.evaluate("[...document.scripts].filter(s => /^\\s*window\\.__pwned/.test(s.textContent)).length") == 0
    assert page.locator("[onerror]").count() == 0
    for where in WHERE:
        for tag in ("img", "i", "script", "a[href^='javascript']"):
            assert page.locator(f"{where} {tag}").count() == 0, f"{tag} in {where}"
    bold = page.locator("#ka-chat b, #ka-details b").all_inner_texts()  # the page's own labels are bold
    assert not [b for b in bold if "Spillway" in b or "Tuesday" in b or b == "Arden Ledger"], bold
    assert_only_local_requests(page, served)


def answer_with_the_sentence(prompt: str) -> str:
    return f"{SENTENCE} [{passage_number(prompt, 'Tolvek')}]."


def test_sources_and_passages_show_the_markup_as_text(page: Page, markup_app: Served) -> None:
    assert markup_app.director is not None
    markup_app.director.queued.append(answer_with_the_sentence)
    message = ask(page, ANSWERED)
    wait_final(message)
    expect(message).to_contain_text("on <b>Tuesday</b> <img src=x onerror=")
    expect(message).to_contain_text("after [a vote](javascript:window.__pwned=2)")
    source = message.locator(".ka-sources .ka-source").first
    expect(source).to_contain_text(OUTLET)
    expect(source).to_contain_text(TITLE)
    expect(source.locator("blockquote mark")).to_contain_text('<b>Tuesday</b> <img src=x onerror="window.__pwned=1">')

    page.locator("#ka-details").get_by_text("Retrieved passages and the question used").click()
    passage = page.locator("#ka-details .ka-passage").first
    expect(passage).to_contain_text("<script>window.__pwned=3</script> would start in <i>June</i>")
    expect(page.locator("#ka-details")).to_contain_text(TITLE)
    assert_inert(page, markup_app)
    screenshot(page, "ui-markup-answer.png")


def test_related_facts_of_a_refusal_show_the_markup_as_text(page: Page, markup_app: Served) -> None:
    message = ask(page, NOT_ANSWERED)  # the scripted model says "I don't know."
    wait_final(message)
    refusal = message.locator(".ka-refusal")
    expect(refusal).to_be_visible()
    facts = refusal.locator("li").filter(has_text="Tolvek")
    expect(facts).to_have_count(1)
    expect(facts).to_contain_text(OUTLET)
    expect(facts).to_contain_text("<script>window.__pwned=3</script>")
    expect(message.locator(".ka-sources")).to_contain_text(TITLE)
    assert_inert(page, markup_app)
    screenshot(page, "ui-markup-refusal.png")


def test_library_filter_and_removal_prompt_show_the_markup_as_text(page: Page, markup_app: Served) -> None:
    page.locator("#ka-outlets input").click()
    expect(page.get_by_role("option", name=OUTLET, exact=True)).to_be_visible()
    page.keyboard.press("Escape")

    page.get_by_role("tab", name="Library").click()
    row: Locator = page.locator("#ka-library-table div[role='row']").filter(has_text=DOC)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(TITLE)
    expect(row).to_contain_text(OUTLET)
    row.locator("[role='gridcell']").first.click()  # pick the document, then ask to remove it
    expect(page.locator("#ka-remove-choice input")).to_have_value(DOC)
    page.locator("#ka-remove").click()
    status = page.locator("#ka-library-status")
    expect(status).to_contain_text(f"Remove {DOC} ({TITLE})")
    page.locator("#ka-remove-cancel").click()
    expect(status).to_contain_text("Nothing removed")
    assert_inert(page, markup_app)
    screenshot(page, "ui-markup-library.png")


def test_a_web_pages_escaped_markup_shows_as_text(page: Page, markup_app: Served) -> None:
    record = markup_app.assistant.store.library.get(PAGE)
    assert record is not None
    assert record.title.startswith("<img src=x onerror=alert(1)>") and "<script>" in record.outlet
    assert "<i>outer basin</i>" in record.text
    assert markup_app.director is not None
    sentence = "The Elsby harbour board voted on Tuesday to raise the mooring levy"
    markup_app.director.queued.append(lambda prompt: f"{sentence} [{passage_number(prompt, 'mooring levy')}].")
    message = ask(page, LEVY)
    wait_final(message)
    source = message.locator(".ka-sources .ka-source").first
    expect(source).to_contain_text(record.title)
    expect(source).to_contain_text(record.outlet)
    expect(source.locator("blockquote")).to_contain_text("""levy <img src=x onerror="window.__pwned='body'"> by""")

    page.get_by_role("tab", name="Library").click()
    row = page.locator("#ka-library-table div[role='row']").filter(has_text=PAGE)
    expect(row).to_contain_text(record.title)
    expect(row).to_contain_text(record.outlet)
    assert_inert(page, markup_app)


def test_the_document_is_kept_as_written(markup_app: Served) -> None:
    record = markup_app.assistant.store.library.get(DOC)
    assert record is not None
    assert (record.title, record.outlet) == (TITLE, OUTLET)
    assert SENTENCE in record.text and SECOND in record.text, "escaping is for display only: the text is kept"
    assert Path(record.path).read_text(encoding="utf-8").count("<script>") == 1
