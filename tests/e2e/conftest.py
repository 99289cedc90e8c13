"""Fixtures of the end-to-end tests: one fake-model chat UI per module, reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright
from ui_harness import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Served, fake_server


@pytest.fixture(scope="module")
def fake_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One fake-model server per test module."""
    with fake_server(tmp_path_factory.mktemp("ui")) as served:
        yield served


@pytest.fixture
def served(fake_app: Served) -> Iterator[Served]:
    """The module's fake server, with the model's queue, delay and call log reset for each test."""
    assert fake_app.director is not None
    fake_app.director.queued.clear()
    fake_app.director.prompts.clear()
    fake_app.llm.delay_s = 0.0
    yield fake_app
    fake_app.llm.delay_s = 0.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module."""
    assert CHROMIUM.is_file(), (
        f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium); the browser tests need it."
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=WAIT_MS)
        yield browser
        browser.close()
