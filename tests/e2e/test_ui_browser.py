"""The chat UI in a real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

`make test` installs chromium when it is missing; without it these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from ui_harness import ARTIFACTS, WAIT_MS, WORKING_GROUP, Served, answer_from

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

expect.set_options(timeout=WAIT_MS)
PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@contextmanager
def app_page(browser: Browser, url: str, height: int = 1000) -> Iterator[Page]:
    """A fresh page on the app at `url`; every request it makes is recorded in page.requested."""
    context = browser.new_context(viewport={"width": 1400, "height": height})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.requested = requested  # type: ignore[attr-defined]
    page.goto(url, timeout=WAIT_MS)
    expect(page.locator("#ka-question textarea")).to_be_visible()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, served: Served) -> Iterator[Page]:
    with app_page(browser, served.url) as page:
        yield page


def bot_messages(page: Page) -> Locator:
    return page.locator("#ka-chat [data-testid='bot']")


def ask(page: Page, question: str) -> Locator:
    """Type the question, press Enter; return the (future) assistant message of this turn."""
    before = bot_messages(page).count()
    page.locator("#ka-question textarea").fill(question)
    page.locator("#ka-question textarea").press("Enter")
    expect(bot_messages(page)).to_have_count(before + 1)
    return bot_messages(page).nth(before)


def wait_final(message: Locator) -> None:
    """Until the message is no longer a draft (verified answer, refusal or notice)."""
    expect(message.locator(".ka-drafting")).to_have_count(0)
    expect(message).not_to_be_empty()


def assert_only_local_requests(page: Page, served: Served) -> None:
    remote = [u for u in page.requested if not u.startswith((served.url, "data:", "blob:"))]  # type: ignore[attr-defined]
    assert remote == [], f"the page loaded something from elsewhere: {remote}"


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_streamed_answer_with_sources_and_passages(page: Page, served: Served) -> None:
    served.llm.delay_s = 0.15
    message = ask(page, WORKING_GROUP)

    expect(message.locator(".ka-drafting")).to_be_visible()
    expect(message).to_contain_text("The working group", timeout=WAIT_MS)  # streamed words, before checking
    expect(page.locator("#ka-stop")).to_be_visible()
    wait_final(message)

    expect(message).to_contain_text("The working group was set up in November 2018")
    expect(message).to_contain_text("[1]")
    source = message.locator(".ka-sources .ka-source").first
    expect(source).to_contain_text("Yonhap")
    expect(source).to_contain_text("August 19, 2020")
    expect(source).to_contain_text("U.S., S. Korea coordinate regularly on N.K. policy")
    expect(source.locator("blockquote mark")).to_contain_text("set up in November 2018")
    expect(page.locator("#ka-send")).to_be_visible()
    expect(page.locator("#ka-stop")).to_be_hidden()

    page.locator("#ka-details").get_by_text("Retrieved passages and the question used").click()
    details = page.locator("#ka-details .ka-details")
    expect(details).to_contain_text("Question used for search: " + WORKING_GROUP)
    expect(details.locator(".ka-passage").first).to_be_visible()
    expect(details.locator(".ka-passage mark").first).to_contain_text("November 2018")

    assert_only_local_requests(page, served)
    screenshot(page, "ui-answer.png")


def test_html_payloads_are_inert(page: Page, served: Served) -> None:
    assert served.director is not None
    question = ask(page, f"When was the working group set up? {PAYLOAD}")
    wait_final(question)
    user = page.locator("#ka-chat [data-testid='user']").first
    expect(user).to_contain_text(re.compile(r"<script>window\.(__)?pwned=1</script>"))  # shown as text
    page.locator("#ka-chat [role='log']").evaluate("e => { e.scrollTop = 0; }")
    screenshot(page, "ui-payload-question.png")

    served.director.queued.append(lambda prompt: answer_from(prompt, f" Note: {PAYLOAD} ![t](http://192.0.2.1/t.png)"))
    served.llm.delay_s = 0.4
    message = ask(page, WORKING_GROUP)
    # the draft shows the payload as text (checked on every frame: the draft lasts about a second)
    page.wait_for_function(
        """() => [...document.querySelectorAll("#ka-chat [data-testid='bot']")].some(
               m => m.querySelector(".ka-drafting") && m.textContent.includes('<img src=x onerror='))""",
        polling="raf",
        timeout=WAIT_MS,
    )
    screenshot(page, "ui-payload-draft.png")
    wait_final(message)
    expect(message.locator(".ka-sources mark")).to_contain_text("November 2018")
    page.locator("#ka-details").get_by_text("Retrieved passages and the question used").click()

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("[...document.scripts].filter(s => s.textContent.includes('__pwned')).length") == 0
    assert page.locator("#ka-chat img, #ka-details img").count() == 0
    assert page.locator("[onerror]").count() == 0
    assert_only_local_requests(page, served)
    screenshot(page, "ui-payload.png")


def test_refusal_is_shown_differently(page: Page) -> None:
    message = ask(page, "What is the population of Pyongyang?")
    wait_final(message)
    refusal = message.locator(".ka-refusal")
    expect(refusal).to_be_visible()
    expect(refusal.locator(".ka-label")).to_have_text("Not answered from the articles")
    border = refusal.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert border == "rgb(217, 119, 6)"
    screenshot(page, "ui-refusal.png")


def test_stop_ends_the_answer_and_the_next_question_works(page: Page, served: Served) -> None:
    served.llm.delay_s = 0.5
    message = ask(page, WORKING_GROUP)
    expect(message).to_contain_text("The working group")  # streaming has begun
    page.locator("#ka-stop").click()
    expect(message).to_contain_text("Stopped")
    expect(message).not_to_contain_text("November")
    expect(message.locator(".ka-drafting")).to_have_count(0)
    expect(page.locator("#ka-send")).to_be_visible()
    expect(page.locator("#ka-stop")).to_be_hidden()

    served.llm.delay_s = 0.0
    message = ask(page, WORKING_GROUP)
    wait_final(message)
    expect(message.locator(".ka-sources mark")).to_contain_text("November 2018")


def test_example_question_and_new_chat(page: Page) -> None:
    page.locator("#ka-chat").get_by_text("Where did Pompeo and Kang Kyung-wha meet in February 2019?").click()
    expect(bot_messages(page)).to_have_count(1)
    message = bot_messages(page).first
    wait_final(message)
    expect(message).to_contain_text("Warsaw")

    page.locator("#ka-new").click()
    expect(bot_messages(page)).to_have_count(0)


def test_thumbs_and_comment_are_saved(page: Page, served: Served) -> None:
    path = served.settings.feedback_path
    before = path.read_text().splitlines() if path.exists() else []
    message = ask(page, WORKING_GROUP)
    wait_final(message)

    page.locator("#ka-chat button[aria-label='Like']").last.click()
    expect(page.locator("#ka-feedback-status")).to_contain_text("is saved")
    page.locator("#ka-comment textarea").fill("Clear and well sourced.")
    page.get_by_role("button", name="Send comment").click()
    expect(page.locator("#ka-feedback-status")).to_contain_text("comment saved")

    records = [json.loads(line) for line in path.read_text().splitlines()[len(before) :]]
    assert [r["rating"] for r in records] == ["up", "up"]
    assert [r["comment"] for r in records] == ["", "Clear and well sourced."]
    for r in records:
        assert r["question"] == WORKING_GROUP
        assert "November 2018" in r["answer"]
        assert r["citations"][0]["outlet"] == "Yonhap"
        assert r["timestamp"].endswith("+00:00")
    assert records[0]["id"] == records[1]["id"]


def test_a_second_user_sees_the_queue_position(browser: Browser, page: Page, served: Served) -> None:
    served.llm.delay_s = 0.4
    first = ask(page, WORKING_GROUP)
    expect(first).to_contain_text("The working group")  # the one generation slot is busy

    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        second = other.new_page()
        second.goto(served.url, timeout=WAIT_MS)
        second.locator("#ka-question textarea").fill("Who is Lee Do-hoon's U.S. counterpart?")
        second.locator("#ka-question textarea").press("Enter")
        expect(second.locator("#ka-chat [data-testid='status-tracker']").first).to_contain_text("queue: 1/1")
        served.llm.delay_s = 0.0
        expect(second.locator("#ka-chat [data-testid='bot']")).to_contain_text("Stephen Biegun")
    finally:
        other.close()
    wait_final(first)


def test_new_chat_during_an_answer_clears_it(page: Page, served: Served) -> None:
    served.llm.delay_s = 0.4
    message = ask(page, WORKING_GROUP)
    expect(message).to_contain_text("The working group")
    page.locator("#ka-new").click()
    expect(bot_messages(page)).to_have_count(0)
    page.wait_for_timeout(1500)  # the stopped answer must not come back
    expect(bot_messages(page)).to_have_count(0)
    expect(page.locator("#ka-send")).to_be_visible()

    served.llm.delay_s = 0.0
    message = ask(page, "Who is Lee Do-hoon's U.S. counterpart?")
    wait_final(message)
    expect(message).to_contain_text("Stephen Biegun")
    assert served.director is not None and served.director.rewrites == [], "the cleared turn is not in the history"
