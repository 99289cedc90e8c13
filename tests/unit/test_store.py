"""The Chroma store: the embedded store's process lock, the manifest, search and server URL errors."""

from __future__ import annotations

import fcntl
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from assistant.config import Settings
from assistant.ingest import Indexer, index_fingerprint
from assistant.store import LOCK_FILE, ProcessLock, Store, StoreError, StoreLockedError

# Another process that opens the same embedded store and holds it ("read") or its write lock ("write").
_HOLDER = """
import sys, time
from pathlib import Path
from langchain_core.embeddings import DeterministicFakeEmbedding
from assistant.config import Settings
from assistant.store import Store

store = Store(Settings(persist_dir=Path(sys.argv[1]), embedding="fake:8"), DeterministicFakeEmbedding(size=8))
if sys.argv[2] == "write":
    with store.writing():
        print("ready", flush=True)
        time.sleep(120)
else:
    print("ready", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def hold(tmp_path: Path) -> Iterator[Callable[[Path, str], subprocess.Popen[str]]]:
    """Start a process holding the store at `persist_dir` ('read' or 'write'); killed after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(persist_dir: Path, mode: str) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(persist_dir), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        started.append(proc)
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout=60)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            proc.kill()
            pytest.fail(f"the lock holder did not start: {proc.communicate()[1][-2000:]}")
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


def settings_for(persist_dir: Path, **changes: object) -> Settings:
    return Settings(persist_dir=persist_dir, embedding="fake:8", llm="fake", **changes)


def open_store(settings: Settings) -> Store:
    return Store(settings, DeterministicFakeEmbedding(size=8))


# --- the process lock ----------------------------------------------------------------------------


def test_a_writer_in_another_process_locks_the_store_out(
    tmp_path: Path, hold: Callable[[Path, str], subprocess.Popen[str]]
) -> None:
    persist = tmp_path / "vs"
    writer = hold(persist, "write")
    settings = settings_for(persist, lock_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(StoreLockedError) as err:
        open_store(settings)
    waited = time.monotonic() - started
    assert 0.9 <= waited <= settings.lock_timeout_s + 2
    message = str(err.value)
    assert f"The index in {persist} is in use by another process (pid {writer.pid})." in message
    assert "ASSISTANT_CHROMA_URL" in message
    assert "chroma run --path DIR" in message

    writer.kill()
    writer.wait(timeout=10)
    with open_store(settings) as store, store.writing():
        assert store.count() == 0


def test_readers_do_not_block_each_other_but_block_a_writer(
    tmp_path: Path, hold: Callable[[Path, str], subprocess.Popen[str]]
) -> None:
    persist = tmp_path / "vs"
    reader = hold(persist, "read")
    settings = settings_for(persist, lock_timeout_s=1)
    started = time.monotonic()
    store = open_store(settings)
    try:
        assert time.monotonic() - started < 1  # no waiting for the other reader
        assert store.count() == 0
        with pytest.raises(StoreLockedError), store.writing():
            pytest.fail("got the write lock while another process reads")
        reader.kill()
        reader.wait(timeout=10)
        # the failed upgrade left this store holding its shared lock: a writer elsewhere still waits
        probe = ProcessLock(persist / LOCK_FILE, timeout_s=0)
        with pytest.raises(StoreLockedError):
            probe.acquire(fcntl.LOCK_EX)
        probe.release()

        with store.writing():
            assert (persist / LOCK_FILE).read_text().strip() == str(os.getpid())
        assert (persist / LOCK_FILE).read_text() == ""  # no stale pid once the writer is done
    finally:
        store.close()


def test_two_stores_in_one_process_share_reads(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "vs", lock_timeout_s=0.2)
    with open_store(settings) as one, open_store(settings) as two:
        assert one.count() == two.count() == 0


def test_closing_releases_the_lock(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "vs", lock_timeout_s=0)
    store = open_store(settings)
    store.close()
    store.close()  # twice is fine
    probe = ProcessLock(tmp_path / "vs" / LOCK_FILE, timeout_s=0)
    probe.acquire(fcntl.LOCK_EX)
    probe.release()


# --- the manifest --------------------------------------------------------------------------------


def test_manifest_records_the_fingerprint_and_version_bumps_only_on_change(
    tmp_path: Path, seeds_dir: Path, count_tokens: Callable[[str], int]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in seeds_dir.glob("00[12]*"):
        (corpus / path.name).write_bytes(path.read_bytes())
    settings = settings_for(tmp_path / "vs")
    with open_store(settings) as store:
        indexer = Indexer(store, settings, count_tokens, progress=False)
        assert store.version == 0
        indexer.ingest([corpus])
        manifest = store.manifest
        fingerprint = index_fingerprint(settings)
        for key in (
            "fingerprint",
            "chunk_size",
            "chunk_overlap",
            "tokenizer",
            "embedding",
            "pipeline_version",
        ):
            assert manifest[key] == fingerprint[key]
        assert manifest["chunk_size"] == 200
        assert manifest["chunk_overlap"] == 40
        assert manifest["embedding"] == "fake:8"
        assert store.version == 1

        indexer.ingest([corpus])
        assert store.version == 1
        assert store.manifest == manifest

        path = corpus / "001_fd24264b0bd6d25d.txt"
        path.write_text(path.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
        indexer.ingest([corpus])
        assert store.version == 2

    with open_store(settings) as store:  # the manifest lives in the store, so it survives a reopen
        assert store.version == 2
        assert store.manifest["fingerprint"] == index_fingerprint(settings)["fingerprint"]


def test_reset_drops_chunks_and_bumps_the_version(tmp_path: Path) -> None:
    with open_store(settings_for(tmp_path / "vs")) as store:
        store.add(["a"], ["some text"], [{"source": "a.txt"}], [[0.1] * 8])
        before = store.version
        store.reset()
        assert store.count() == 0
        assert store.version == before + 1


# --- content and search --------------------------------------------------------------------------


def test_dense_search_finds_the_chunk_and_honours_filters(
    tmp_path: Path, seeds_dir: Path, count_tokens: Callable[[str], int]
) -> None:
    settings = settings_for(tmp_path / "vs")
    with open_store(settings) as store:
        assert store.dense_search(store.embeddings.embed_query("anything"), k=3) == []
        Indexer(store, settings, count_tokens, progress=False).ingest([seeds_dir])
        chunk_id, text, _meta = next(c for c in store.all_chunks() if c[2]["source"].startswith("003"))
        hits = store.dense_search(store.embeddings.embed_query(text), k=3)
        assert len(hits) == 3
        assert hits[0][0] == chunk_id
        assert hits[0][1] == pytest.approx(0, abs=1e-5)
        only_yonhap = store.dense_search(store.embeddings.embed_query(text), k=50, where={"outlet": "Yonhap"})
        assert only_yonhap
        got = store.collection.get(ids=[cid for cid, _ in only_yonhap], include=["metadatas"])
        assert {m["outlet"] for m in got["metadatas"]} == {"Yonhap"}
        assert store.dense_search(store.embeddings.embed_query(text), k=0) == []


def test_documents_lists_each_source_with_its_chunks(
    tmp_path: Path, seeds_dir: Path, count_tokens: Callable[[str], int]
) -> None:
    settings = settings_for(tmp_path / "vs")
    with open_store(settings) as store:
        Indexer(store, settings, count_tokens, progress=False).ingest([seeds_dir])
        docs = store.documents()
        assert sorted(docs) == sorted(p.name for p in seeds_dir.glob("*.txt"))
        assert sum(len(d.chunk_ids) for d in docs.values()) == store.count()
        for source, doc in docs.items():
            assert doc.path == str((seeds_dir / source).resolve())
            assert len(doc.doc_hash) == 32
            assert all(start < end for start, end in doc.chunk_ids.values())


def test_delete_removes_only_the_given_ids(tmp_path: Path) -> None:
    with open_store(settings_for(tmp_path / "vs")) as store:
        store.add(["a", "b"], ["text a", "text b"], [{"source": "a.txt"}, {"source": "b.txt"}], [[0.1] * 8] * 2)
        store.delete(["a"])
        store.delete([])
        assert [c[0] for c in store.all_chunks()] == ["b"]


# --- server URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["notaurl", "http://127.0.0.1:notaport", "ftp://127.0.0.1:8000"])
def test_a_malformed_chroma_url_is_a_store_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(StoreError, match=r"is not a URL like http://127\.0\.0\.1:8000") as err:
        open_store(settings_for(tmp_path / "vs", chroma_url=url))
    assert f"ASSISTANT_CHROMA_URL={url!r}" in str(err.value)
    assert not (tmp_path / "vs").exists()  # a server URL never touches the embedded store


def test_two_threads_of_one_process_write_one_after_the_other(tmp_path: Path) -> None:
    import threading
    import time

    from assistant.embeddings import make_embeddings
    from assistant.store import Store

    inside: list[int] = []
    overlap: list[bool] = []
    with Store(Settings(persist_dir=tmp_path / "vs"), make_embeddings("fake:8", 8)) as store:

        def write() -> None:
            with store.writing():
                inside.append(1)
                overlap.append(len(inside) > 1)
                time.sleep(0.05)
                inside.pop()

        threads = [threading.Thread(target=write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    assert overlap == [False] * 4
