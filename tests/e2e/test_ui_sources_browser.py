"""The sources of an answer in headless Chromium: listed in the chat's draft (and the side panel) while the
model has not written its first word, kept under its words while it writes, replaced by the checked answer."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from test_ui_browser import app_page, ask, assert_only_local_requests, screenshot, wait_final
from ui_harness import WAIT_MS, WORKING_GROUP, Served, answer_from

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

expect.set_options(timeout=WAIT_MS)
TITLE = "U.S., S. Korea coordinate regularly on N.K. policy"  # the seed article that answers WORKING_GROUP


@pytest.fixture
def page(browser: Browser, served: Served) -> Iterator[Page]:
    with app_page(browser, served.url) as page:
        yield page


def prompt_passages(prompt: str) -> list[str]:
    return [line for line in prompt.splitlines() if re.match(r"\[\d+\] \(", line)]


def test_the_sources_show_before_the_models_first_word(page: Page, served: Served) -> None:
    assert served.director is not None
    release = threading.Event()

    def held(prompt: str) -> str:
        release.wait(60)  # the model has its prompt but writes nothing until the test lets it
        return answer_from(prompt)

    served.director.queued.append(held)
    served.llm.delay_s = 0.3  # then it writes slowly, so the draft with its words can be seen too
    page.locator("#ka-details").get_by_text("Retrieved passages and the question used").click()
    try:
        message = ask(page, WORKING_GROUP)
        reading = message.locator(".ka-reading")
        expect(reading).to_be_visible()
        expect(message.locator(".ka-drafting")).to_have_text("Reading the passages below; the answer follows.")
        expect(reading.locator(".ka-sources-title")).to_have_text(re.compile(r"Reading \d+ passages?"))
        article = reading.locator(".ka-source-head").filter(has_text=TITLE).first
        expect(article).to_be_visible()
        expect(article).to_contain_text("Yonhap")
        expect(article).to_contain_text("August 19, 2020")
        details = page.locator("#ka-details .ka-details")
        expect(details).to_contain_text("Question used for search: " + WORKING_GROUP)
        expect(details.locator(".ka-passage").first).to_be_visible()

        deadline = time.monotonic() + WAIT_MS / 1000
        while not served.director.prompts and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        (prompt,) = served.director.prompts  # the model is reading its prompt, and has written nothing
        heads = reading.locator(".ka-source-head")
        expect(heads).to_have_count(len(prompt_passages(prompt)))
        for n, line in enumerate(prompt_passages(prompt), 1):
            outlet = re.match(r"\[\d+\] \(([^,]+),", line)
            assert outlet is not None
            expect(heads.nth(n - 1)).to_contain_text(f"[{n}] {outlet.group(1)} · ")  # numbered as in the prompt
        expect(message).not_to_contain_text("The working group was set up")
        expect(message.locator(".ka-drafting")).not_to_contain_text("Drafting")
        screenshot(page, "ui-sources-before-first-word.png")
    finally:
        release.set()

    # while the model writes, its words come first and the passages stay under them
    page.wait_for_function(
        """() => [...document.querySelectorAll("#ka-chat [data-testid='bot']")].some(m => {
               const reading = m.querySelector(".ka-reading");
               const at = m.textContent.indexOf("The working group");
               return m.querySelector(".ka-drafting") && reading && at >= 0
                   && at < m.textContent.indexOf(reading.textContent);
           })""",
        polling="raf",
        timeout=WAIT_MS,
    )
    wait_final(message)
    expect(message).to_contain_text("The working group was set up in November 2018")
    expect(message.locator(".ka-reading")).to_have_count(0)  # the checked answer replaced the draft
    source = message.locator(".ka-sources .ka-source").first
    expect(source).to_contain_text(TITLE)
    expect(source.locator("blockquote mark")).to_contain_text("set up in November 2018")
    expect(page.locator("#ka-details .ka-passage mark").first).to_contain_text("November 2018")
    assert_only_local_requests(page, served)
    screenshot(page, "ui-sources-answer.png")
