"""The seeds indexed with the real all-MiniLM-L6-v2 in an embedded store: dense search finds each article."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.app import Assistant
from assistant.config import Settings

pytestmark = pytest.mark.integration

PROBES = [
    ("When was the working group set up?", "001_fd24264b0bd6d25d.txt"),
    ("How often will the working group meet?", "000_ec390470196d8f97.txt"),
    ("What did Pompeo and the South Korean foreign minister discuss in Warsaw?", "003_064ee402f8c2cb2b.txt"),
    ("What did Kang Kyung-wha say about the trade dispute with Japan?", "004_9b0f2f2dea799358.txt"),
    (
        "When will South Korea and the US begin regular consultations on North Korea policy?",
        "002_34619f7877ea231f.txt",
    ),
]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    folder = tmp_path_factory.mktemp("real")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse isolation has not run yet
        for name in [n for n in os.environ if n.startswith("ASSISTANT_")]:
            mp.delenv(name)
        mp.setitem(Settings.model_config, "toml_file", folder / "assistant.toml")
        settings = Settings(persist_dir=folder / "vs", llm="fake")
    assert settings.embedding == "local:all-MiniLM-L6-v2"
    assistant = Assistant.from_settings(settings)
    seeds = Path(__file__).resolve().parents[2] / "seeds"
    report = assistant.ingest([seeds], progress=False)
    assert (report.documents, report.skipped) == (5, [])
    yield assistant
    assistant.close()


def sources(assistant: Assistant, question: str, k: int = 3) -> list[str]:
    store = assistant.store
    hits = store.dense_search(store.embeddings.embed_query(question), k=k)
    got = store.collection.get(ids=[cid for cid, _ in hits], include=["metadatas"])
    by_id = {cid: meta["source"] for cid, meta in zip(got["ids"], got["metadatas"], strict=True)}
    return [by_id[cid] for cid, _ in hits]


@pytest.mark.parametrize(("question", "source"), PROBES, ids=[s[:3] for _, s in PROBES])
def test_dense_search_finds_the_right_article_in_the_top_3(indexed: Assistant, question: str, source: str) -> None:
    assert source in sources(indexed, question)


def test_vectors_are_minilm_and_normalised(indexed: Assistant) -> None:
    vector = indexed.store.embeddings.embed_query("working group")
    assert len(vector) == 384
    assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-4)


def test_reingest_with_the_real_model_embeds_nothing(indexed: Assistant) -> None:
    seeds = Path(__file__).resolve().parents[2] / "seeds"
    report = indexed.ingest([seeds], progress=False)
    assert (report.added, report.removed, report.updated) == (0, 0, 0)
    assert report.unchanged == report.total_chunks == indexed.store.count()


def test_a_web_page_and_a_pdf_are_indexed_and_found_with_the_real_model(indexed: Assistant, tmp_path: Path) -> None:
    from fpdf import FPDF

    page = tmp_path / "ferries.html"
    page.write_text(
        "<html><head><title>Ferry pact signed | Strait Gazette</title>"
        '<meta property="article:published_time" content="2024-06-03"></head><body>'
        "<nav>Home | Ports | Weather</nav><article><h1>Ferry pact signed</h1>"
        "<p>Two island councils signed a pact on Monday to run a single winter ferry timetable, "
        "ending years of duplicated crossings.</p></article></body></html>",
        encoding="utf-8",
    )
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for line in (
        "Lighthouse survey report",
        "Date: 2024-06-10",
        "The survey found that the northern lighthouse lamp had been dimmed by salt and needed a new lens.",
    ):
        pdf.multi_cell(0, 6, line)
        pdf.ln(2)
    pdf.output(str(tmp_path / "lighthouse.pdf"))
    report = indexed.ingest([page, tmp_path / "lighthouse.pdf"], progress=False)
    assert report.skipped == [] and report.added >= 2
    assert sources(indexed, "Why was the northern lighthouse lamp dim?", k=1) == ["lighthouse.pdf"]
    assert sources(indexed, "Which councils agreed on one winter ferry timetable?", k=1) == ["ferries.html"]
    records = {r.source: r for r in indexed.documents()}
    assert (records["ferries.html"].outlet, records["ferries.html"].published) == ("Strait Gazette", "2024-06-03")
    assert (records["lighthouse.pdf"].kind, records["lighthouse.pdf"].published) == ("pdf", "2024-06-10")
    for name in ("ferries.html", "lighthouse.pdf"):
        indexed.remove_document(name)
