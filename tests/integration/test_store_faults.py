"""Faults of the disk and of the manifest during `assistant ingest`: a clear error, nothing lost, the next run
recovers.

The disk faults are real limits on a real embedded Chroma, set in the `assistant ingest` subprocess only: a
persist folder made read-only (as root, the subprocess also loses CAP_DAC_OVERRIDE, or it would write anyway)
and a file-size limit (RLIMIT_FSIZE: a write past it fails with EFBIG, as a full disk fails with ENOSPC).
The embedder is the deterministic fake (the store and the disk are what is tested); the seeds are the corpus.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.app import Assistant
from assistant.config import Settings
from assistant.library import DamagedRecordError
from assistant.store import ManifestError, StoreError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ASSISTANT_BIN = Path(sys.executable).with_name("assistant")
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
NOTES = 40  # new documents of one ingest run: enough to write well past a few kilobytes


def write_notes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(NOTES):
        sentences = " ".join(
            f"The Tolvek council heard report {i}.{j} on the spillway and the reservoir levels." for j in range(30)
        )
        (folder / f"council-note-{i:03d}.txt").write_text(f"ARDEN, May {i % 28 + 1}, 2021 -- {sentences}\n")
    return folder


def settings_for(persist_dir: Path) -> dict[str, str]:
    return {
        "ASSISTANT_PERSIST_DIR": str(persist_dir),
        "ASSISTANT_EMBEDDING": "fake:64",
        "ASSISTANT_LLM": "fake",
    }


def run_ingest(
    persist_dir: Path, folder: Path, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")} | settings_for(persist_dir)
    return subprocess.run(
        [str(ASSISTANT_BIN), "ingest", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=preexec,
        timeout=150,
        check=False,
    )


def snapshot(persist_dir: Path) -> tuple[dict[str, str], dict[str, tuple[str, str, str, int]]]:
    """(chunk id -> text, document -> (title, outlet, date, chunks)) of the index in persist_dir."""
    settings = Settings(persist_dir=persist_dir, embedding="fake:64", llm="fake")
    with Assistant.from_settings(settings) as assistant:
        chunks = {cid: text for cid, text, _ in assistant.store.all_chunks()}
        records = {r.source: (r.title, r.outlet, r.published, r.chunks) for r in assistant.documents()}
    return chunks, records


@pytest.fixture
def seeded(tmp_path: Path, seeds_dir: Path) -> Iterator[Path]:
    """A persist folder holding the seeds, indexed by `assistant ingest`."""
    persist_dir = tmp_path / "vs"
    done = run_ingest(persist_dir, seeds_dir)
    assert done.returncode == 0, done.stderr
    yield persist_dir
    for p in [persist_dir, *persist_dir.rglob("*")]:  # writable again, so that tmp_path can be removed
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def clean_index(tmp_path: Path, *folders: Path) -> tuple[dict[str, str], dict[str, Any]]:
    persist_dir = tmp_path / "clean"
    for folder in folders:
        assert run_ingest(persist_dir, folder).returncode == 0
    return snapshot(persist_dir)


def without_dac_override() -> None:
    """In the child, before exec: as root, drop the capabilities that let root write into a read-only folder."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def assert_clear_error(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after any progress bar
    assert last.startswith("Error: "), done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr


@pytest.mark.parametrize("what", ["folder", "database"])
def test_ingest_into_a_read_only_index_is_a_clear_error_and_loses_nothing(
    seeded: Path, tmp_path: Path, seeds_dir: Path, what: str
) -> None:
    before = snapshot(seeded)
    notes = write_notes(tmp_path / "notes")
    paths = [seeded, *seeded.rglob("*")] if what == "folder" else [p for p in seeded.rglob("*") if p.suffix != ".lock"]
    for p in paths:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    done = run_ingest(seeded, notes, without_dac_override)

    opening = "cannot be opened" if what == "folder" else "could not be opened"
    assert_clear_error(done, f"The index in {seeded} {opening}", "writable")
    for p in paths:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert snapshot(seeded) == before, "the index is as it was before the failed run"
    again = run_ingest(seeded, notes)
    assert again.returncode == 0, again.stderr
    assert snapshot(seeded) == clean_index(tmp_path, seeds_dir, notes)


def test_ingest_past_a_file_size_limit_is_a_clear_error_and_the_next_run_completes(
    seeded: Path, tmp_path: Path, seeds_dir: Path
) -> None:
    before_chunks, before_records = snapshot(seeded)
    notes = write_notes(tmp_path / "notes")
    limit = max(p.stat().st_size for p in seeded.rglob("*") if p.is_file()) + 16 * 1024

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes get EFBIG

    done = run_ingest(seeded, notes, small_disk)

    assert_clear_error(
        done, f"The index in {seeded} could not be written", "the disk may be full", "run the same ingest again"
    )
    chunks, records = snapshot(seeded)
    assert records == before_records, "no document record of the unfinished run, and every earlier one kept"
    assert before_chunks.items() <= chunks.items(), "every chunk indexed before is kept"
    again = run_ingest(seeded, notes)
    assert again.returncode == 0, again.stderr
    assert snapshot(seeded) == clean_index(tmp_path, seeds_dir, notes)


@pytest.mark.parametrize("damage", [{"index_version": "seven"}, {"index_version": -3}, {"fingerprint": 12345}], ids=str)
def test_a_damaged_manifest_is_a_clear_error_and_the_next_ingest_rebuilds(
    make_assistant: Callable[[Settings], Assistant], tmp_path: Path, seeds_dir: Path, damage: dict[str, Any]
) -> None:
    settings = Settings(persist_dir=tmp_path / "vs", embedding="fake:64", llm="fake")
    assistant = make_assistant(settings)
    first = assistant.ingest([seeds_dir], progress=False)
    chunks = {cid: text for cid, text, _ in assistant.store.all_chunks()}
    store = assistant.store
    store.collection.modify(metadata={**store.manifest, **damage})

    with Assistant.from_settings(settings) as other, pytest.raises(ManifestError) as err:
        other.ask("When was the working group set up?")  # a new session: nothing read before the damage
    message = str(err.value)
    assert message.startswith(f"The index manifest in {settings.persist_dir} is damaged (")
    assert "run `assistant ingest` on your documents again" in message
    assert isinstance(err.value, StoreError)  # what the chat, the APIs and the CLI report as a message

    report = assistant.ingest([seeds_dir], progress=False)
    assert report.rebuilt and report.damaged_manifest.startswith("The index manifest was damaged (")
    assert "It was rebuilt from the documents' files." in report.summary()
    assert {cid: text for cid, text, _ in store.all_chunks()} == chunks
    assert report.total_chunks == first.total_chunks
    assert store.manifest["fingerprint"] and store.version > 0
    answer = assistant.ask("When was the working group set up?")
    assert answer.text  # answered or refused: the index is usable again
    again = assistant.ingest([seeds_dir], progress=False)
    assert (again.added, again.removed, again.rebuilt) == (0, 0, False)


@pytest.mark.parametrize(
    "body", ["{not json", "[1, 2]", '{"source": "x"}'], ids=["not-json", "a-list", "fields-missing"]
)
def test_a_damaged_library_record_is_a_clear_error_and_the_next_ingest_reads_the_document_again(
    make_assistant: Callable[[Settings], Assistant], tmp_path: Path, seeds_dir: Path, body: str
) -> None:
    settings = Settings(persist_dir=tmp_path / "vs", embedding="fake:64", llm="fake")
    assistant = make_assistant(settings)
    assistant.ingest([seeds_dir], progress=False)
    before = {r.source: r for r in assistant.documents()}
    name = sorted(before)[1]
    library = assistant.store.library
    library.collection.upsert(ids=[name, "gone.txt"], documents=[body, body], embeddings=[[0.0], [0.0]])

    with pytest.raises(DamagedRecordError) as err:
        assistant.documents()
    message = str(err.value)
    assert message.startswith(f"The library record of {name} and 1 more in {settings.persist_dir} is damaged (")
    assert "run `assistant ingest` on your documents again" in message
    with pytest.raises(DamagedRecordError, match=f"The library record of {name} in "):
        library.get(name)
    assert assistant.ask("When was the working group set up?").text  # questions read the chunks, not the records

    report = assistant.ingest([seeds_dir], progress=False)
    assert report.damaged_records == sorted([name, "gone.txt"])
    assert "Damaged library records, read again from their files" in report.summary()
    assert (report.added, report.removed) == (0, 0), "the chunks were sound: nothing embedded again"
    after = {r.source: r for r in assistant.documents()}
    assert sorted(after) == sorted(before), "the record without a document is dropped"
    assert after[name] == before[name]
    assert assistant.ingest([seeds_dir], progress=False).damaged_records == []


def test_an_ingest_killed_with_sigkill_then_run_again_equals_a_clean_ingest(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):  # hundreds of documents: the kill lands well inside the run
        sentences = " ".join(f"The Arden ferry board minuted item {i}.{j} on timetables and fares." for j in range(6))
        (folder / f"board-minute-{i:03d}.txt").write_text(f"ARDEN, June {i % 28 + 1}, 2022 -- {sentences}\n")
    started = time.monotonic()
    clean = clean_index(tmp_path, folder)
    took = time.monotonic() - started
    assert len(clean[1]) == 300

    persist_dir = tmp_path / "killed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")} | settings_for(persist_dir)
    proc = subprocess.Popen(
        [str(ASSISTANT_BIN), "ingest", str(folder)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # into the writing: once the index holds a tenth of what the clean one holds on disk
    full = folder_bytes(tmp_path / "clean")
    deadline = time.monotonic() + 3 * took
    while time.monotonic() < deadline and folder_bytes(persist_dir) < full / 10 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL

    written = len(snapshot(persist_dir)[0])
    assert 0 < written < len(clean[0]), "the kill did not land inside the writing"
    again = run_ingest(persist_dir, folder)
    assert again.returncode == 0, again.stderr
    assert snapshot(persist_dir) == clean


def folder_bytes(folder: Path) -> int:
    """Bytes of every file below `folder` (0 while it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
