"""The Chroma store: embedded (PersistentClient + a process lock) or a server (HttpClient)."""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from langchain_core.embeddings import Embeddings

from assistant.config import Settings

if TYPE_CHECKING:
    from assistant.library import Library

LOCK_FILE = ".assistant.lock"
CONNECT_TIMEOUT_S = 5.0  # for a Chroma server's first answer


class StoreError(RuntimeError):
    """The store cannot be used; the message says why and what to do."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store."""


class ManifestError(StoreError):
    """The manifest kept in the collection's metadata is damaged; the next ingest rebuilds it."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


# Chroma calls that change the index: a failure in one of them may leave part of an ingest run written
_WRITES = frozenset({"add", "upsert", "update", "delete", "modify", "delete_collection", "create_collection"})


def _failure_types() -> tuple[type[BaseException], ...]:
    """What a Chroma call raises when the server or the disk fails (not when it is called wrongly)."""
    import httpx
    from chromadb.errors import InternalError

    return (httpx.HTTPError, OSError, InternalError)


def _store_failure(location: str, server: bool, method: str, exc: BaseException) -> StoreError:
    """The sentence for a Chroma call that failed: where, what, and what to do next."""
    why = f"{type(exc).__name__}: {exc}".strip()
    if server:
        head = f"Chroma at {location} did not answer ({why}): check that `chroma run` is still running there"
    else:
        verb = "written" if method in _WRITES else "read"
        head = (
            f"The index in {location} could not be {verb} ({why}): the disk may be full or the folder "
            "read-only; free some space or make it writable"
        )
    if method in _WRITES:
        return StoreError(f"{head}, then run the same ingest again to complete it. Documents indexed before are kept.")
    return StoreError(f"{head}, then try again.")


class _Guarded:
    """A Chroma client or collection whose failures (server gone, disk full, read-only) are StoreErrors."""

    def __init__(self, target: Any, location: str, server: bool) -> None:
        self._target = target
        self._location = location
        self._server = server

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        failures = _failure_types()

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = value(*args, **kwargs)
            except failures as exc:
                raise _store_failure(self._location, self._server, name, exc) from exc
            if name.endswith("collection"):  # get_collection, get_or_create_collection, create_collection
                return _Guarded(result, self._location, self._server)
            return result

        return call

    @property
    def unguarded(self) -> Any:
        """The Chroma object itself (for libraries that check its type)."""
        return self._target

    def __repr__(self) -> str:
        return f"_Guarded({self._target!r})"


@dataclass
class IndexedDocument:
    """What the store holds of one document."""

    source: str
    doc_hash: str
    path: str
    chunk_ids: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (start, end)


class ProcessLock:
    """An advisory file lock: shared for readers, exclusive for the one writer (embedded store only)."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._fd: int | None = None
        self.mode: int | None = None

    def acquire(self, mode: int) -> None:
        """Take (or convert to) `fcntl.LOCK_SH` / `LOCK_EX`, or raise StoreLockedError after the timeout."""
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(
                    f"The index in {self.path.parent} cannot be opened: its lock file {self.path.name} cannot be "
                    f"written ({exc.strerror}). Make the folder writable (or free space on its disk), or set "
                    "ASSISTANT_PERSIST_DIR to a writable folder."
                ) from exc
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    holder = self._holder()
                    raise StoreLockedError(
                        f"The index in {self.path.parent} is in use by another process{holder}. "
                        "Wait for it to finish, stop it, or run a Chroma server (`chroma run --path DIR "
                        "--host 127.0.0.1 --port 8000`) and set ASSISTANT_CHROMA_URL so several "
                        "processes can share the index."
                    ) from exc
                time.sleep(0.05)
        if mode == fcntl.LOCK_EX:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        elif self.mode == fcntl.LOCK_EX:
            os.ftruncate(self._fd, 0)  # no longer the writer: name no stale pid in others' errors
        self.mode = mode

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid else ""

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            self.mode = None


def manifest_problem(manifest: dict[str, Any]) -> str:
    """What is wrong with a manifest read from the collection ('' when nothing is)."""
    version = manifest.get("index_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        return f"index_version is {version!r}, not a count"
    fingerprint = manifest.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        return f"fingerprint is {fingerprint!r}, not a digest"
    return ""


def _make_client(settings: Settings) -> Any:
    import chromadb
    import httpx
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            port = url.port or (443 if url.scheme == "https" else 8000)
        except ValueError:
            port = 0
        if not url.hostname or url.scheme not in ("http", "https") or not port:
            raise StoreError(f"ASSISTANT_CHROMA_URL={settings.chroma_url!r} is not a URL like http://127.0.0.1:8000")
        try:
            # Chroma's own HTTP client has no timeout and would wait forever on a silent host;
            # /api/v2 is the API of the pinned chromadb 1.5 (client and `chroma run` alike).
            host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
            httpx.get(f"{url.scheme}://{host}:{port}/api/v2/heartbeat", timeout=CONNECT_TIMEOUT_S).raise_for_status()
            client = chromadb.HttpClient(
                host=url.hostname, port=port, ssl=url.scheme == "https", settings=chroma_settings
            )
            client.heartbeat()
        except Exception as exc:
            raise StoreError(
                f"Chroma at {settings.chroma_url} did not answer: start it with `chroma run --path DIR "
                f"--host {url.hostname} --port {port}` or unset ASSISTANT_CHROMA_URL ({exc})"
            ) from exc
        return client
    try:
        settings.persist_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.persist_dir), settings=chroma_settings)
    except _failure_types() as exc:
        raise StoreError(
            f"The index in {settings.persist_dir} could not be opened ({type(exc).__name__}: {exc}): check that "
            "the folder is readable and writable and the disk is not full, or set ASSISTANT_PERSIST_DIR to "
            "another folder."
        ) from exc


class Store:
    """One Chroma collection with its embedding model; holds the embedded store's lock while open."""

    def __init__(self, settings: Settings, embeddings: Embeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.location = settings.chroma_url or str(settings.persist_dir)
        self._lock: ProcessLock | None = None
        self._library: Library | None = None
        self._writer = threading.RLock()  # one writing thread at a time (flock is per process, not per thread)
        if not settings.chroma_url:
            self._lock = ProcessLock(settings.persist_dir / LOCK_FILE, settings.lock_timeout_s)
            self._lock.acquire(fcntl.LOCK_SH)
        try:
            self.client = _Guarded(_make_client(settings), self.location, bool(settings.chroma_url))
            self.collection = self._open_collection()
        except BaseException:
            self.close()
            raise

    @property
    def library(self) -> Library:
        """The document records kept beside the chunks (opened on first use)."""
        if self._library is None:
            from assistant.library import Library

            self._library = Library(self.client, self.settings.collection, self.location)
        return self._library

    def _open_collection(self) -> Any:
        return self.client.get_or_create_collection(
            self.settings.collection,
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )

    def close(self) -> None:
        """Release the embedded store's lock (the client itself needs no closing)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the exclusive write lock for the duration of the block: against other threads of this process
        (any store) and, for the embedded store, against other processes."""
        with self._writer:
            yield from self._process_writing()

    def _process_writing(self) -> Iterator[None]:
        if self._lock is None:
            yield
            return
        try:
            self._lock.acquire(fcntl.LOCK_EX)
        except StoreLockedError:
            # flock(2) drops the shared lock before a conversion that then fails: take it back.
            self._lock.acquire(fcntl.LOCK_SH)
            raise
        try:
            yield
        finally:
            self._lock.acquire(fcntl.LOCK_SH)

    # --- manifest --------------------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        """What was indexed with which settings (kept in the collection's own metadata); ManifestError if damaged."""
        manifest = self._raw_manifest()
        if problem := manifest_problem(manifest):
            raise ManifestError(
                f"The index manifest in {self.location} is damaged ({problem}): run `assistant ingest` on your "
                "documents again to rebuild the index from their files.",
                problem,
            )
        return manifest

    def _raw_manifest(self) -> dict[str, Any]:
        self.collection = self.client.get_collection(self.settings.collection)
        return dict(self.collection.metadata or {})

    @property
    def version(self) -> int:
        """A number that changes whenever the indexed content changes."""
        return int(self.manifest.get("index_version", 0))

    def _next_version(self) -> int:
        """One more than the current version; a damaged one is replaced by the clock (it only has to change)."""
        current = self._raw_manifest()
        if manifest_problem(current):
            return time.time_ns() // 1000
        return int(current.get("index_version", 0)) + 1

    def write_manifest(self, values: dict[str, Any], bump: bool) -> None:
        current = self._raw_manifest()
        damaged = bool(manifest_problem(current))
        if damaged:
            current = {k: v for k, v in current.items() if k not in ("index_version", "fingerprint")}
        version = self._next_version() if bump or damaged else current.get("index_version", 0)
        current.update(values)
        current["index_version"] = version
        current["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.collection.modify(metadata=current)

    def reset(self) -> None:
        """Drop every chunk (used when the chunking or embedding settings change, or the manifest is damaged)."""
        version = self._next_version() - 1
        self.client.delete_collection(self.settings.collection)
        self.collection = self._open_collection()
        self.collection.modify(metadata={"index_version": version + 1})

    # --- content ---------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.collection.count())

    def documents(self) -> dict[str, IndexedDocument]:
        """Every indexed document with its hash, path and chunk ids."""
        out: dict[str, IndexedDocument] = {}
        for ids, metas in self._pages(include=["metadatas"]):
            for chunk_id, meta in zip(ids, metas, strict=True):
                source = str(meta["source"])
                doc = out.setdefault(
                    source, IndexedDocument(source, str(meta.get("doc_hash", "")), str(meta.get("path", "")))
                )
                doc.chunk_ids[chunk_id] = (int(meta.get("start", 0)), int(meta.get("end", 0)))
        return out

    def all_chunks(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(id, text, metadata) of every chunk, page by page."""
        for ids, metas, docs in self._pages(include=["metadatas", "documents"]):
            yield from zip(ids, docs, metas, strict=True)

    def _pages(self, include: list[str], page: int = 5000) -> Iterator[Any]:
        offset = 0
        while True:
            got = self.collection.get(include=include, limit=page, offset=offset)
            if not got["ids"]:
                return
            if "documents" in include:
                yield got["ids"], got["metadatas"], got["documents"]
            else:
                yield got["ids"], got["metadatas"]
            offset += len(got["ids"])

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        vectors: Sequence[Sequence[float]],
    ) -> None:
        self.collection.upsert(
            ids=list(ids), documents=list(texts), metadatas=list(metadatas), embeddings=list(vectors)
        )

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        if ids:
            self.collection.update(ids=list(ids), metadatas=list(metadatas))

    def delete(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), 5000):
            self.collection.delete(ids=list(ids[i : i + 5000]))

    def dense_search(
        self, query_vector: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine distance) of the k nearest chunks matching `where`."""
        if k <= 0:
            return []
        try:
            got = self.collection.query(
                query_embeddings=[list(query_vector)], n_results=k, where=where or None, include=["distances"]
            )
        except Exception:
            # an empty collection gives empty results; counting first would cost ~7 ms a query at 100k chunks
            if self.count() == 0:
                return []
            raise
        return list(zip(got["ids"][0], got["distances"][0], strict=True))

    def as_langchain(self) -> Any:
        """The same collection as a langchain-chroma vector store (for `as_retriever()` and friends)."""
        from langchain_chroma import Chroma

        return Chroma(
            client=self.client.unguarded,
            collection_name=self.settings.collection,
            embedding_function=self.embeddings,
            create_collection_if_not_exists=False,
        )
