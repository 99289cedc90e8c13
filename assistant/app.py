"""The Assistant: the one place where the components are built from Settings and wired together."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from assistant.config import Settings
from assistant.embeddings import make_embeddings
from assistant.ingest import IngestReport, Indexer
from assistant.store import Store
from assistant.tokens import get_encoding


class Assistant:
    """Grounded question answering over the indexed corpus."""

    def __init__(self, settings: Settings, store: Store, count_tokens: Callable[[str], int]) -> None:
        self.settings = settings
        self.store = store
        self.count_tokens = count_tokens

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        """Build every component from settings (defaults: assistant.toml and ASSISTANT_* env vars)."""
        settings = settings or Settings()
        encoding = get_encoding(settings.tokenizer)

        def count_tokens(text: str) -> int:
            return len(encoding.encode(text, disallowed_special=()))

        embeddings = make_embeddings(settings.embedding, settings.embedding_batch_size)
        return cls(settings, Store(settings, embeddings), count_tokens)

    def ingest(self, paths: Iterable[Path], progress: bool | None = None) -> IngestReport:
        """Index files and folders incrementally; see IngestReport.summary()."""
        return Indexer(self.store, self.settings, self.count_tokens, progress).ingest(paths)

    def close(self) -> None:
        """Release the store (and its lock)."""
        self.store.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
