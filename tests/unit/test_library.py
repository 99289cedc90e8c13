"""The library across documents: syndicated copies indexed once, an outlet's shared chrome, overrides that
stay, `assistant docs` and `docs remove` (real Chroma in tmp_path, fake embeddings; texts written here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import Assistant, Settings
from assistant.cli import main

WIRE = [
    "Harbour pilots in Velmar and Ostrade agreed on Wednesday to share one radar picture of the strait, "
    "officials from both port authorities said after a meeting in the old customs house.",
    "The agreement covers the twelve miles of water between the two breakwaters and takes effect at the start "
    "of the next shipping season, when traffic through the strait is heaviest.",
    "Pilots on both sides have asked for a common picture since a near collision between two tankers in the "
    "channel three winters ago, which an inquiry blamed on conflicting radar readings.",
]


def page(outlet: str, date: str, intro: str, paragraphs: list[str], chrome: str = "", title: str = "") -> str:
    body = "\n\n".join(paragraphs)
    title = title or "Radar picture to be shared"
    return f"{outlet.upper()}\n{chrome}\n{title}\n\nDate: {date}\n\n{intro}\n\n{body}\n"


@pytest.fixture
def assistant(tmp_path: Path) -> Assistant:
    settings = Settings(persist_dir=tmp_path / "vs", embedding="fake", upload_dir=tmp_path / "uploads")
    with Assistant.from_settings(settings) as a:
        yield a


def test_a_syndicated_story_is_indexed_once_and_says_who_else_ran_it(assistant: Assistant, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    intro_a = "The Strait Gazette has learned the details of a deal that pilots have sought for years."
    intro_b = "Readers of the Harbour Weekly asked us what the new radar deal means for ferry passengers."
    (docs / "gazette.txt").write_text(page("Strait Gazette", "2024-05-08", intro_a, WIRE), "utf-8")
    (docs / "weekly.txt").write_text(page("Harbour Weekly", "2024-05-09", intro_b, WIRE), "utf-8")
    assistant.ingest([docs], progress=False)
    records = {r.source: r for r in assistant.documents()}
    texts = [text for _, text, _ in assistant.store.all_chunks()]
    for paragraph in WIRE:
        assert sum(paragraph in t for t in texts) >= 1
        assert paragraph not in records["weekly.txt"].text  # the later copy is not indexed again
    assert intro_b in records["weekly.txt"].text
    assert records["gazette.txt"].also_reported_by == ["Harbour Weekly (weekly.txt)"]
    assert any("also reported by Harbour Weekly" in f for f in records["gazette.txt"].flags)
    metas = [m for _, _, m in assistant.store.all_chunks() if m["source"] == "gazette.txt"]
    assert all(m["also_reported_by"] == "Harbour Weekly (weekly.txt)" for m in metas)


def test_a_whole_copy_has_no_chunks_of_its_own(assistant: Assistant, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "first.txt").write_text(page("Strait Gazette", "2024-05-08", WIRE[0], WIRE[1:]), "utf-8")
    (docs / "copy.txt").write_text(page("Port News", "2024-05-10", WIRE[0], WIRE[1:]), "utf-8")
    report = assistant.ingest([docs], progress=False)
    records = {r.source: r for r in assistant.documents()}
    assert records["copy.txt"].chunks == 0 and records["copy.txt"].copy_of == "first.txt"
    assert "copy of first.txt" in records["copy.txt"].flags
    again = assistant.ingest([docs], progress=False)
    assert (again.added, again.removed, again.documents_changed) == (0, 0, [])
    assert report.total_chunks == again.total_chunks


def test_lines_an_outlet_prints_on_every_page_are_chrome(assistant: Assistant, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    tagline = "Independent news from both shores since 1921"
    titles = {"a.txt": "Radar picture to be shared", "b.txt": "Ferry fares to rise in June"}
    for name, date, text in (("a.txt", "2024-05-08", WIRE[0]), ("b.txt", "2024-06-01", WIRE[1])):
        (docs / name).write_text(page("Strait Gazette", date, text, [], tagline, titles[name]), "utf-8")
    assistant.ingest([docs], progress=False)
    for record in assistant.documents():
        assert tagline not in record.text
        assert record.removed.get("repeated on the outlet's other pages") == 2  # the masthead and the tagline
        assert record.title == titles[record.source]


def test_overrides_are_remembered_and_a_sidecar_is_not_needed(assistant: Assistant, tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text(f"Radar deal\n\n{WIRE[0]}\n", "utf-8")
    assistant.ingest([path], outlet="Velmar Port News", published="2024-05-01", progress=False)
    assistant.ingest([path], progress=False)
    (record,) = assistant.documents()
    assert (record.outlet, record.published) == ("Velmar Port News", "2024-05-01")
    assert record.overrides == {"outlet": "Velmar Port News", "published": "2024-05-01"}
    chunk_meta = [m for _, _, m in assistant.store.all_chunks()]
    assert {m["outlet"] for m in chunk_meta} == {"Velmar Port News"}


def test_removing_a_document_drops_its_chunks_and_record(assistant: Assistant, tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(f"Radar deal\n\n{WIRE[0]}\n", "utf-8")
    b.write_text(f"Ferry fares\n\n{WIRE[2]}\n", "utf-8")
    assistant.ingest([a, b], progress=False)
    assert assistant.remove_document("a.txt") >= 1
    assert [r.source for r in assistant.documents()] == ["b.txt"]
    assert {m["source"] for _, _, m in assistant.store.all_chunks()} == {"b.txt"}
    assert a.exists()  # a file outside the upload folder is the user's: never deleted
    with pytest.raises(KeyError):
        assistant.remove_document("a.txt")


def test_docs_cli_lists_and_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_PERSIST_DIR", str(tmp_path / "vs"))
    monkeypatch.setenv("ASSISTANT_EMBEDDING", "fake")
    path = tmp_path / "a.txt"
    path.write_text(f"Radar deal agreed\n\nDate: 2024-05-08\n\n{WIRE[0]}\n", "utf-8")
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(path), "--outlet", "Strait Gazette"]).exit_code == 0
    listed = runner.invoke(main, ["docs"])
    assert listed.exit_code == 0
    assert "a.txt  [text, 1 chunk(s)]" in listed.output
    assert "outlet    Strait Gazette  (given with the document (outlet); 1.00)" in listed.output
    assert "published 2024-05-08  (published 'Date: 2024-05-08'; 0.95)" in listed.output
    as_json = json.loads(runner.invoke(main, ["docs", "--json"]).output)
    assert as_json[0]["title"] == "Radar deal agreed" and "text" not in as_json[0]
    bad = runner.invoke(main, ["ingest", str(path), "--published", "03/05/2024"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    gone = runner.invoke(main, ["docs", "remove", "a.txt", "nope.txt"])
    assert "Removed a.txt (1 chunk(s))." in gone.output
    assert gone.exit_code == 2 and "Not in the library: nope.txt" in gone.output
    assert "The library is empty" in runner.invoke(main, ["docs"]).output


def test_adding_a_document_reads_only_the_documents_it_changes(
    assistant: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.corpus import DocumentReader

    read: list[str] = []
    parse = DocumentReader.parse

    def counting(self: DocumentReader, path: Path, *args: object, **kwargs: object) -> object:
        read.append(path.name)
        return parse(self, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DocumentReader, "parse", counting)
    tagline = "Independent news from both shores since 1921"
    old = tmp_path / "old"
    old.mkdir()
    (old / "a.txt").write_text(page("Strait Gazette", "2024-05-08", WIRE[0], [], tagline, "Radar deal"), "utf-8")
    (old / "b.txt").write_text(page("Port News", "2024-05-09", WIRE[1], [], "", "Ferry fares"), "utf-8")
    assistant.ingest([old], progress=False)
    read.clear()
    unrelated = tmp_path / "c.txt"
    unrelated.write_text(page("Harbour Weekly", "2024-06-01", WIRE[2], [], "", "Tug strike"), "utf-8")
    assistant.ingest([unrelated], progress=False)
    assert read == ["c.txt"]  # a.txt and b.txt were judged from their records
    read.clear()
    sibling = tmp_path / "d.txt"  # same outlet, same tagline: a.txt's tagline is now the outlet's chrome
    sibling.write_text(
        page("Strait Gazette", "2024-06-02", "Pilots struck a deal today.", [], tagline, "Pilots"), "utf-8"
    )
    assistant.ingest([sibling], progress=False)
    assert sorted(read) == ["a.txt", "d.txt"]
    records = {r.source: r for r in assistant.documents()}
    assert tagline not in records["a.txt"].text
    assert {m["source"] for _, _, m in assistant.store.all_chunks()} == {"a.txt", "b.txt", "c.txt", "d.txt"}
    read.clear()
    copy = tmp_path / "e.txt"  # an earlier copy of b.txt's story: b.txt now cites it as the first publication
    copy.write_text(page("Wire Daily", "2024-05-01", WIRE[1], [], "", "Fares"), "utf-8")
    assistant.ingest([copy], progress=False)
    assert sorted(read) == ["b.txt", "e.txt"]
    records = {r.source: r for r in assistant.documents()}
    assert WIRE[1] not in records["b.txt"].text and WIRE[1] in records["e.txt"].text
    assert records["e.txt"].also_reported_by == ["Port News (b.txt)"]
