"""A real `chroma run` server: ingest the seeds over HTTP with the real MiniLM, search, restart, re-ingest."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from assistant import store as store_module
from assistant.app import Assistant
from assistant.config import Settings
from assistant.embeddings import make_embeddings
from assistant.store import Store, StoreError

pytestmark = pytest.mark.integration

CHROMA = Path(sys.executable).with_name("chroma")
HEARTBEAT_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ChromaServer:
    path: Path
    log: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(CHROMA),
                    "run",
                    "--path",
                    str(self.path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + HEARTBEAT_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"chroma run exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"chroma run gave no heartbeat in {HEARTBEAT_TIMEOUT_S} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    if not CHROMA.exists():
        pytest.fail(f"{CHROMA} is missing: install chromadb into the virtualenv")
    server = ChromaServer(tmp_path / "chroma-data", tmp_path / "chroma.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_ingest_search_and_restart_against_a_chroma_server(
    chroma_server: ChromaServer,
    make_assistant: Callable[[Settings], Assistant],
    seeds_dir: Path,
    tmp_path: Path,
) -> None:
    settings = Settings(chroma_url=chroma_server.url, persist_dir=tmp_path / "unused", llm="fake")
    assert settings.embedding == "local:all-MiniLM-L6-v2"
    assistant = make_assistant(settings)
    report = assistant.ingest([seeds_dir], progress=False)
    assert report.documents == 5
    assert report.added == report.total_chunks > 0
    assert not (tmp_path / "unused").exists()  # the server holds the data, not the embedded store

    store, embeddings = assistant.store, assistant.store.embeddings
    hits = store.dense_search(embeddings.embed_query("When was the working group set up?"), k=3)
    got = store.collection.get(ids=[cid for cid, _ in hits], include=["metadatas"])
    assert "001_fd24264b0bd6d25d.txt" in {m["source"] for m in got["metadatas"]}

    again = assistant.ingest([seeds_dir], progress=False)
    assert (again.added, again.removed) == (0, 0)
    assert again.unchanged == report.total_chunks
    version = store.version
    assistant.close()

    chroma_server.stop()
    chroma_server.start()  # same data path, new port
    restarted = Settings(chroma_url=chroma_server.url, persist_dir=tmp_path / "unused", llm="fake")
    with Store(restarted, embeddings) as store:
        assert store.count() == report.total_chunks
        assert store.version == version
        assert sorted(store.documents()) == sorted(p.name for p in seeds_dir.glob("*.txt"))
        library = store.library.all()  # the document records live on the server too
        assert sorted(library) == sorted(store.documents())
        assert library["001_fd24264b0bd6d25d.txt"].outlet == "Yonhap"


def test_an_unreachable_chroma_url_fails_fast_with_advice(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        Store(Settings(chroma_url=url, persist_dir=tmp_path / "vs"), make_embeddings("fake:8"))
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert message.startswith(f"Chroma at {url} did not answer: start it with `chroma run --path DIR")
    assert "or unset ASSISTANT_CHROMA_URL" in message


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (into the kernel's backlog) but never answers a byte."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield int(silent.getsockname()[1])


@pytest.fixture
def full_port() -> Iterator[int]:
    """A port whose accept backlog is full: a new connection hangs in the handshake."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        fillers = []
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(silent.getsockname())
            fillers.append(filler)
        try:
            yield int(silent.getsockname()[1])
        finally:
            for filler in fillers:
                filler.close()


@pytest.mark.parametrize("port_fixture", ["silent_port", "full_port"])
def test_a_server_that_never_answers_fails_within_the_timeout(
    request: pytest.FixtureRequest, port_fixture: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "CONNECT_TIMEOUT_S", 1.0)
    url = f"http://127.0.0.1:{request.getfixturevalue(port_fixture)}"
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"Chroma at {url} did not answer"):
        Store(Settings(chroma_url=url, persist_dir=tmp_path / "vs"), make_embeddings("fake:8"))
    assert time.monotonic() - started < 5
