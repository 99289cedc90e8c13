"""Incremental ingestion into a real embedded Chroma in tmp_path, with fake embeddings that are counted."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from assistant.chunking import chunk_text
from assistant.cli import main
from assistant.config import Settings
from assistant.corpus import DocumentReader, load_document
from assistant.ingest import Indexer, IngestReport, index_fingerprint
from assistant.store import Store

EDIT_003 = ("hinder negotiations", "stall the negotiations")


class CountingEmbeddings(Embeddings):
    """Deterministic fake vectors; remembers every text it was asked to embed."""

    def __init__(self, size: int = 64) -> None:
        self.inner = DeterministicFakeEmbedding(size=size)
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@dataclass
class Index:
    """One store with counting embeddings, and the settings to ingest with."""

    settings: Settings
    store: Store
    embeddings: CountingEmbeddings
    count_tokens: Callable[[str], int]
    reports: list[IngestReport] = field(default_factory=list)

    def ingest(self, *paths: Path, **changes: Any) -> IngestReport:
        settings = self.settings.model_copy(update=changes) if changes else self.settings
        self.embeddings.embedded.clear()
        report = Indexer(self.store, settings, self.count_tokens, progress=False).ingest(paths)
        self.reports.append(report)
        return report

    def chunks(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """id -> (text, metadata) of every chunk in the store."""
        return {cid: (text, meta) for cid, text, meta in self.store.all_chunks()}

    def ids_by_source(self) -> dict[str, set[str]]:
        return {source: set(doc.chunk_ids) for source, doc in self.store.documents().items()}


@pytest.fixture
def index(fake_settings: Settings, count_tokens: Callable[[str], int]) -> Iterator[Index]:
    embeddings = CountingEmbeddings()
    store = Store(fake_settings, embeddings)
    try:
        yield Index(fake_settings, store, embeddings, count_tokens)
    finally:
        store.close()


@pytest.fixture
def corpus(tmp_path: Path, seeds_dir: Path) -> Path:
    """A copy of seeds/ (with the sidecars) that a test may edit."""
    return Path(shutil.copytree(seeds_dir, tmp_path / "corpus"))


def expected_chunks(folder: Path, settings: Settings, count: Callable[[str], int]) -> dict[str, list[str]]:
    out = {}
    for path in sorted(folder.glob("*.txt")):
        doc = load_document(path)
        chunks = chunk_text(doc.text, doc.source, count, settings.chunk_size, settings.chunk_overlap)
        out[doc.source] = [c.text for c in chunks]
    return out


def assert_offsets_match_files(index: Index, folder: Path) -> None:
    """Every chunk's start/end point at its text in the document as it is now."""
    texts = {p.name: load_document(p).text for p in folder.glob("*.txt")}
    for cid, (text, meta) in index.chunks().items():
        assert texts[meta["source"]][meta["start"] : meta["end"]] == text, cid


# --- first run and re-run ------------------------------------------------------------------------


def test_ingest_seeds_indexes_five_documents(index: Index, seeds_dir: Path) -> None:
    report = index.ingest(seeds_dir)
    expected = expected_chunks(seeds_dir, index.settings, index.count_tokens)
    total = sum(len(v) for v in expected.values())
    assert report.documents == 5
    assert report.added == total == report.total_chunks == index.store.count()
    assert (report.unchanged, report.removed, report.skipped, report.rebuilt) == (0, 0, [], False)
    assert report.documents_changed == sorted(expected)
    assert sorted(index.embeddings.embedded) == sorted(t for v in expected.values() for t in v)
    stored = index.chunks()
    by_source: dict[str, list[str]] = {}
    for text, meta in sorted(stored.values(), key=lambda tm: (tm[1]["source"], tm[1]["chunk_index"])):
        by_source.setdefault(meta["source"], []).append(text)
    assert by_source == expected
    assert_offsets_match_files(index, seeds_dir)


def test_chunk_metadata_carries_the_document_metadata(index: Index, seeds_dir: Path) -> None:
    index.ingest(seeds_dir)
    metas = [meta for _, meta in index.chunks().values() if meta["source"].startswith("004")]
    assert metas
    for meta in metas:
        assert meta["outlet"] == "The Korea Herald (via Pan Pacific Agency)"
        assert meta["published"] == "2020-07-02"
        assert meta["published_int"] == 20200702
        assert meta["title"] == "S. Korean FM vows all-out efforts to resume dialogue with N. Korea"
        assert meta["path"] == str((seeds_dir / "004_9b0f2f2dea799358.txt").resolve())
        assert 0 < meta["tokens"] <= index.settings.chunk_size


def test_ingest_twice_changes_nothing_and_embeds_nothing(index: Index, seeds_dir: Path) -> None:
    first = index.ingest(seeds_dir)
    ids = set(index.chunks())
    version, manifest = index.store.version, index.store.manifest
    again = index.ingest(seeds_dir)
    assert index.embeddings.embedded == []
    assert (again.added, again.removed, again.updated) == (0, 0, 0)
    assert again.unchanged == first.added == again.total_chunks
    assert again.documents_changed == []
    assert set(index.chunks()) == ids
    assert index.store.version == version
    assert index.store.manifest == manifest
    assert f"0 chunks added, {first.added} unchanged, 0 removed" in again.summary()


def test_ingest_twice_reads_only_what_changed(index: Index, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index.ingest(corpus)
    read: list[str] = []
    parse = DocumentReader.parse

    def counting(self: DocumentReader, path: Path, *args: Any, **kwargs: Any) -> Any:
        read.append(path.name)
        return parse(self, path, *args, **kwargs)

    monkeypatch.setattr(DocumentReader, "parse", counting)
    again = index.ingest(corpus)
    assert read == []
    assert again.documents == 5 and again.documents_changed == []
    edited = corpus / "003_064ee402f8c2cb2b.txt"
    edited.write_text(edited.read_text(encoding="utf-8").replace(*EDIT_003), encoding="utf-8")
    third = index.ingest(corpus)
    assert read == [edited.name]
    assert third.documents_changed == [edited.name]
    indexer = Indexer(index.store, index.settings, index.count_tokens, progress=False)
    fourth = indexer.ingest([corpus], overrides={"title": "A title the user gave"})  # new of every file
    assert len(read) == 1 + 5
    assert {r["title"] for _, (_, r) in index.chunks().items()} == {"A title the user gave"}
    assert fourth.documents == 5


# --- edits ---------------------------------------------------------------------------------------


def test_editing_one_file_replaces_only_its_changed_chunks(index: Index, corpus: Path) -> None:
    index.ingest(corpus)
    before = index.ids_by_source()
    path = corpus / "003_064ee402f8c2cb2b.txt"
    path.write_text(path.read_text(encoding="utf-8").replace(*EDIT_003), encoding="utf-8")

    report = index.ingest(corpus)

    after = index.ids_by_source()
    name = "003_064ee402f8c2cb2b.txt"
    assert report.documents_changed == [name]
    assert {s: ids for s, ids in after.items() if s != name} == {s: ids for s, ids in before.items() if s != name}
    added, gone = after[name] - before[name], before[name] - after[name]
    assert (report.added, report.removed) == (len(added), len(gone)) == (1, 1)
    assert report.unchanged == sum(len(ids) for ids in after.values()) - 1
    assert index.embeddings.embedded == [index.chunks()[added.pop()][0]]
    assert EDIT_003[1] in index.embeddings.embedded[0]
    assert index.store.count() == report.total_chunks == sum(len(ids) for ids in before.values())
    assert_offsets_match_files(index, corpus)


def test_an_edit_that_shifts_offsets_relabels_the_later_chunks(index: Index, corpus: Path) -> None:
    index.ingest(corpus)
    name = "001_fd24264b0bd6d25d.txt"
    before = {cid: meta for cid, (_, meta) in index.chunks().items() if meta["source"] == name}
    path = corpus / name
    # one character shorter, same token count: the first chunk changes, the later ones only move
    path.write_text(path.read_text("utf-8").replace("said Tuesday.", "said Monday.", 1), "utf-8")
    report = index.ingest(corpus)
    after = {cid: meta for cid, (_, meta) in index.chunks().items() if meta["source"] == name}
    kept = set(before) & set(after)
    assert report.documents_changed == [name]
    assert (report.added, report.removed) == (1, 1)
    assert report.updated == len(kept) == len(before) - 1 >= 1
    assert index.embeddings.embedded == [index.chunks()[(set(after) - kept).pop()][0]]
    for cid in kept:
        assert (after[cid]["start"], after[cid]["end"]) == (before[cid]["start"] - 1, before[cid]["end"] - 1)
        assert after[cid]["doc_hash"] != before[cid]["doc_hash"]
    assert_offsets_match_files(index, corpus)


def test_a_sidecar_edit_relabels_chunks_without_embedding(index: Index, corpus: Path) -> None:
    index.ingest(corpus)
    name = "002_34619f7877ea231f.txt"
    sidecar = corpus / f"{name}.meta.yaml"
    sidecar.write_text(sidecar.read_text(encoding="utf-8").replace("2025-12-12", "2025-12-13"), "utf-8")
    report = index.ingest(corpus)
    n = len(index.ids_by_source()[name])
    assert index.embeddings.embedded == []
    assert (report.added, report.removed, report.updated) == (0, 0, n)
    assert report.documents_changed == [name]
    dates = {m["published"] for _, m in index.chunks().values() if m["source"] == name}
    assert dates == {"2025-12-13"}


def test_a_removed_file_loses_its_chunks(index: Index, corpus: Path) -> None:
    index.ingest(corpus)
    before = index.ids_by_source()
    name = "003_064ee402f8c2cb2b.txt"
    (corpus / name).unlink()
    report = index.ingest(corpus)
    assert report.documents_removed == [name]
    assert report.removed == len(before[name])
    assert name not in index.ids_by_source()
    assert index.store.count() == sum(len(ids) for ids in before.values()) - len(before[name])
    assert f"Removed (file gone): {name}" in report.summary()


def test_ingesting_one_file_does_not_remove_the_others(index: Index, corpus: Path) -> None:
    index.ingest(corpus)
    count = index.store.count()
    report = index.ingest(corpus / "001_fd24264b0bd6d25d.txt")
    assert (report.documents, report.added, report.removed) == (1, 0, 0)
    assert index.store.count() == count


def test_changing_chunk_size_rebuilds(index: Index, seeds_dir: Path) -> None:
    first = index.ingest(seeds_dir)
    version = index.store.version
    report = index.ingest(seeds_dir, chunk_size=100)
    assert report.rebuilt
    assert "index was rebuilt" in report.summary()
    assert report.total_chunks == index.store.count() != first.total_chunks
    assert report.added == report.total_chunks == len(index.embeddings.embedded)
    assert all(meta["tokens"] <= 100 for _, meta in index.chunks().values())
    manifest = index.store.manifest
    assert manifest["chunk_size"] == 100
    assert (
        manifest["fingerprint"]
        == index_fingerprint(index.settings.model_copy(update={"chunk_size": 100}))["fingerprint"]
    )
    assert index.store.version > version
    assert not index.ingest(seeds_dir, chunk_size=100).rebuilt


def test_a_rebuild_keeps_documents_from_other_folders(index: Index, corpus: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.md").write_text("Envoys meet\n\nThe envoys met in Seoul on Monday.\n", "utf-8")
    index.ingest(corpus)
    index.ingest(other)
    report = index.ingest(corpus, chunk_overlap=10)
    assert report.rebuilt
    assert "note.md" in index.ids_by_source()
    assert report.documents == 6


def test_a_rebuild_respects_the_file_size_limit(index: Index, tmp_path: Path) -> None:
    small = tmp_path / "a" / "small.txt"
    small.parent.mkdir()
    small.write_text("Envoys meet\n\nThe envoys met in Seoul on Monday.\n", "utf-8")
    index.ingest(small, max_file_mb=0.001)
    small.write_text("Envoys meet\n\n" + "The envoys met in Seoul on Monday.\n" * 100, "utf-8")
    other = tmp_path / "b" / "other.txt"
    other.parent.mkdir()
    other.write_text("Allies talk\n\nThe allies talked.\n", "utf-8")
    report = index.ingest(other, max_file_mb=0.001, chunk_size=100)
    assert report.rebuilt
    assert report.skipped == [("small.txt", "small.txt: 0.0 MB is over the 0.001 MB limit per file")]


# --- bad files -----------------------------------------------------------------------------------


def write_bad_files(folder: Path) -> dict[str, str]:
    """Files ingest must skip, with the words their reason must contain."""
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "latin1.txt").write_bytes("Réunion à Séoul\n".encode("latin-1"))
    (folder / "slides.pdf").write_bytes(b"%PDF-1.4\n")
    (folder / "oneline.txt").write_bytes(b"x" * 150_000)
    (folder / "dump.txt").write_bytes(b"y" * 20_000_000)
    return {
        "empty.txt": "empty file",
        "binary.txt": "this is a PNG image, not a document",
        "latin1.txt": "not valid UTF-8",
        "slides.pdf": "not a readable PDF",
        "oneline.txt": "a single line of 150,000 characters",
        "dump.txt": "20.0 MB is over the 10 MB limit per file",
    }


def test_bad_files_are_skipped_with_reasons_and_good_ones_indexed(index: Index, corpus: Path) -> None:
    bad = write_bad_files(corpus)
    report = index.ingest(corpus)
    assert report.documents == 5
    assert sorted(index.ids_by_source()) == sorted(p.name for p in corpus.glob("0*.txt"))
    assert sorted(name for name, _ in report.skipped) == sorted(bad)
    for name, reason in report.skipped:
        assert reason.startswith(f"{name}: ")
        assert bad[name] in reason
    summary = report.summary()
    assert "Skipped 6 file(s):" in summary
    for _, reason in report.skipped:
        assert f"  - {reason}" in summary
    assert re.match(r"Indexed 5 documents in \d+\.\d s: \d+ chunks added, 0 unchanged, 0 removed;", summary)


def test_a_document_whose_file_turns_bad_keeps_its_chunks(index: Index, corpus: Path) -> None:
    index.ingest(corpus)
    before = index.ids_by_source()
    name = "002_34619f7877ea231f.txt"
    (corpus / name).write_bytes(b"\xff\xfe not UTF-8 any more \xc3\x28")
    report = index.ingest(corpus)
    assert index.ids_by_source() == before
    assert (report.added, report.removed) == (0, 0)
    assert [n for n, _ in report.skipped] == [name]
    reason = report.skipped[0][1]
    assert reason.startswith(f"{name}: not valid UTF-8")
    assert reason.endswith("(its previously indexed version is kept)")
    assert "Skipped 1 file(s):" in report.summary()


def test_a_missing_path_is_reported(index: Index, tmp_path: Path) -> None:
    report = index.ingest(tmp_path / "nope")
    assert report.skipped == [(str(tmp_path / "nope"), f"{tmp_path / 'nope'}: no such file or folder")]
    assert report.total_chunks == 0


def test_the_same_file_name_in_two_folders_is_skipped_once(index: Index, corpus: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    twin.mkdir()
    shutil.copy(corpus / "003_064ee402f8c2cb2b.txt", twin)
    for _ in range(2):
        report = index.ingest(corpus, twin)
        assert report.documents == 5
        assert [n for n, _ in report.skipped] == ["003_064ee402f8c2cb2b.txt"]
        assert report.skipped[0][1].endswith(
            f"same file name as {corpus / '003_064ee402f8c2cb2b.txt'}; rename one of them"
        )


def test_hidden_files_and_sidecars_are_not_documents(index: Index, corpus: Path) -> None:
    (corpus / ".hidden.txt").write_text("Secret\n\nNot to be indexed.\n", "utf-8")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "notes.txt").write_text("Secret\n\nNot to be indexed.\n", "utf-8")
    report = index.ingest(corpus)
    assert report.skipped == []
    assert report.documents == 5


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSISTANT_PERSIST_DIR", str(tmp_path / "cli-store"))
    monkeypatch.setenv("ASSISTANT_EMBEDDING", "fake:64")
    monkeypatch.setenv("ASSISTANT_LLM", "fake")


@pytest.mark.usefixtures("cli_env")
def test_cli_ingest_twice(seeds_dir: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["ingest", str(seeds_dir)])
    assert first.exit_code == 0, first.output
    match = re.match(
        r"Indexed 5 documents in \d+\.\d s: (\d+) chunks added, 0 unchanged, 0 removed; \1 chunks",
        first.output,
    )
    assert match, first.output
    n = match.group(1)
    second = runner.invoke(main, ["ingest", str(seeds_dir)])
    assert second.exit_code == 0, second.output
    assert re.fullmatch(
        rf"Indexed 5 documents in \d+\.\d s: 0 chunks added, {n} unchanged, 0 removed; "
        rf"{n} chunks in the index\.\n",
        second.output,
    )


@pytest.mark.usefixtures("cli_env")
def test_cli_ingest_json(corpus: Path) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    result = CliRunner().invoke(main, ["ingest", "--json", str(corpus)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["documents"] == 5
    assert report["added"] == report["total_chunks"] > 0
    assert report["skipped"] == [{"file": "empty.txt", "reason": "empty.txt: empty file"}]
    assert report["rebuilt"] is False
    assert sorted(report["documents_changed"]) == sorted(p.name for p in corpus.glob("0*.txt"))


@pytest.mark.usefixtures("cli_env")
def test_cli_ingest_lists_skipped_files(corpus: Path) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    result = CliRunner().invoke(main, ["ingest", str(corpus)])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("Skipped 1 file(s):\n  - empty.txt: empty file\n")


@pytest.mark.usefixtures("cli_env")
def test_cli_config_shows_settings_from_the_environment() -> None:
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    assert "embedding = 'fake:64'\n    Embedding model:" in result.output
    assert "chunk_size = 200\n    Target chunk length in tokens (tiktoken).\n" in result.output


@pytest.mark.usefixtures("cli_env")
def test_cli_ingest_into_a_locked_store_fails_with_advice(
    seeds_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_LOCK_TIMEOUT_S", "0.2")
    settings = Settings(persist_dir=tmp_path / "cli-store", embedding="fake:64")
    with Store(settings, DeterministicFakeEmbedding(size=64)) as holder, holder.writing():
        result = CliRunner().invoke(main, ["ingest", str(seeds_dir)])
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: The index in {tmp_path / 'cli-store'} is in use by another process")
    assert "set ASSISTANT_CHROMA_URL" in result.output


@pytest.mark.usefixtures("cli_env")
def test_cli_ingest_with_a_bad_setting_says_so(seeds_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_EMBEDDING", "bogus")
    result = CliRunner().invoke(main, ["ingest", str(seeds_dir)])
    assert result.exit_code == 2
    assert result.output == ("Error: Unknown embedding 'bogus': use 'local:<model name or path>' or 'fake[:dim]'\n")


@pytest.mark.usefixtures("cli_env")
def test_cli_config_with_an_invalid_value_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CHUNK_SIZE", "5")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: 1 validation error for Settings\nchunk_size\n")
    assert "greater than or equal to 20" in result.output
    assert result.output.endswith("Check the ASSISTANT_* environment variables and assistant.toml.\n")


def test_assistant_from_settings_ingests(
    make_assistant: Callable[[Settings], Any], fake_settings: Settings, seeds_dir: Path
) -> None:
    assistant = make_assistant(fake_settings)
    report = assistant.ingest([seeds_dir], progress=False)
    assert report.documents == 5
    assert assistant.store.count() == report.total_chunks > 0
