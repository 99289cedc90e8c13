"""The Assistant: the one place where the components are built from Settings and wired together."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from assistant.chain import Answer, AnswerChain, Message, Sources
from assistant.config import Settings
from assistant.embeddings import make_embeddings, uses_torch
from assistant.ingest import Indexer, IngestReport
from assistant.language import Language, QuestionLexicon
from assistant.lexical import Analyzer
from assistant.lexicon import Aliases
from assistant.library import DocumentRecord
from assistant.prompts import Prompts
from assistant.rerank import Reranker, make_reranker, make_sentence_judge
from assistant.retrieval import Filters, HybridRetriever
from assistant.store import Store
from assistant.tokens import get_encoding


class Assistant:
    """Grounded question answering over the indexed corpus.

    >>> a = Assistant.from_settings()
    >>> ans = a.ask("When was the U.S.-South Korea working group set up?")
    >>> ans.text, ans.refused, ans.citations[0].quote
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        count_tokens: Callable[[str], int],
        llm_factory: Callable[[], BaseChatModel],
        reranker: Reranker | None = None,
        judge: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.judge = judge
        self.store = store
        self.count_tokens = count_tokens
        self.analyzer = Analyzer(aliases=Aliases.load(settings.aliases_file))
        self.retriever = HybridRetriever(store, self.analyzer, settings, reranker)
        self.prompts = Prompts.load(settings.prompts_dir)
        self._llm_factory = llm_factory
        self._llm: BaseChatModel | None = None
        self._answer_chain: AnswerChain | None = None
        self._lock = threading.Lock()
        self._warm_lock = threading.Lock()
        self._warmed = False

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, llm: BaseChatModel | None = None, **overrides: Any
    ) -> Assistant:
        """Build every component from settings (defaults: assistant.toml and ASSISTANT_* env vars).

        `llm` plugs in any LangChain chat model instead of the one `settings.llm` names.
        """
        settings = settings or Settings(**overrides)
        encoding = get_encoding(settings.tokenizer)

        def count_tokens(text: str) -> int:
            return len(encoding.encode(text, disallowed_special=()))

        def llm_factory() -> BaseChatModel:
            from assistant.llm import make_chat_model

            return llm if llm is not None else make_chat_model(settings)

        embeddings = make_embeddings(
            settings.embedding,
            settings.embedding_batch_size,
            threads=settings.onnx_threads,
            cache_dir=settings.model_cache_dir,
            exported=settings.embedding_onnx,
        )
        reranker = make_reranker(settings)
        judge = make_sentence_judge(settings, reranker)
        return cls(settings, Store(settings, embeddings), count_tokens, llm_factory, reranker, judge)

    # --- components, built on first use --------------------------------------------------------

    @property
    def llm(self) -> BaseChatModel:
        """The chat model (the embedded one is loaded once per process, on first use or `warm()`)."""
        with self._lock:
            if self._llm is None:
                self._llm = self._llm_factory()
            return self._llm

    @property
    def answer_chain(self) -> AnswerChain:
        if self._answer_chain is None:
            language = Language(
                self.settings.spacy_model,
                QuestionLexicon.load(extra=self.settings.questions_file),
                max_label_words=self.settings.speaker_label_words,
                hide_torch=self.settings.spacy_hides_torch and not uses_torch(self.store.embeddings),
            )
            self._answer_chain = AnswerChain(
                self.settings,
                self.retriever,
                self.llm,
                self.prompts,
                self.analyzer,
                self.count_tokens,
                language,
                self.judge,
            )
        return self._answer_chain

    @property
    def chain(self) -> Runnable[Any, Answer]:
        """The LangChain Runnable behind ask(): invoke / batch / stream with {"question", "history", "filters"}."""
        return self.answer_chain.runnable()

    def warm(self) -> None:
        """Load the model, the embeddings, the reranker, spaCy and the BM25 index now, so the first question pays
        no load time. Safe to call again (what is loaded stays loaded); `ask` and `stream` call it on a cold
        Assistant.

        The loads run side by side: the embedded model (its own server process) in one thread, spaCy in
        another, the index, embeddings and cross-encoder in the caller's; each mostly waits on disk, memory or
        a subprocess. The embedded model also reads the fixed system prompt and worked examples once (or
        restores them from disk), so even the first question only pays for its own passages.
        """
        with self._warm_lock:
            if self._warmed:
                return
            chain = self.answer_chain  # built once here, before the threads share it
            failed: list[BaseException] = []

            def guarded(load: Callable[[], object]) -> Callable[[], None]:
                def run() -> None:
                    try:
                        load()
                    except BaseException as exc:  # raised again below, in the caller's thread
                        failed.append(exc)

                return run

            def load_llm() -> None:
                load = getattr(self.llm, "load", None)
                if callable(load):
                    load()
                    chain.prime()  # an in-process model: its fixed prompt prefix, restored or read

            threads = [
                threading.Thread(target=guarded(load_llm), name="warm-llm", daemon=True),
                threading.Thread(
                    target=guarded(lambda: chain.language.question("Who said what, and when?")),  # loads spaCy
                    name="warm-spacy",
                    daemon=True,
                ),
            ]
            for thread in threads:
                thread.start()
            try:
                self.retriever.lexical_index()
                self.store.embeddings.embed_query("warm up")
                for model in (self.retriever.reranker, self.judge):
                    load_model = getattr(model, "load", None)
                    if callable(load_model):
                        load_model()
            finally:
                for thread in threads:
                    thread.join()
            if failed:
                raise failed[0]
            self._warmed = True

    # --- questions -----------------------------------------------------------------------------

    def ask(self, question: str, history: Sequence[Message] | None = None, filters: Filters | None = None) -> Answer:
        """Answer one question (history: [{"role": "user"|"assistant", "content": ...}, ...])."""
        final: Answer | None = None
        self._warm_for_question()
        for part in self.answer_chain.run(question, history, filters):
            if isinstance(part, Answer) and part.final:
                final = part
        assert final is not None
        return final

    def stream(
        self, question: str, history: Sequence[Message] | None = None, filters: Filters | None = None
    ) -> Iterator[Sources | str | Answer]:
        """Yield the Sources the model is about to read (always first, before the model is called), then text
        as the model writes it, then the verified Answer (always last)."""
        self._warm_for_question()
        for part in self.answer_chain.run(question, history, filters):
            if isinstance(part, Sources):
                yield part
            else:
                yield part if part.final else part.text

    def _warm_for_question(self) -> None:
        """A cold Assistant's first question loads every component side by side (`warm`), not one after another
        as the steps reach them. A component that fails to load is left to the step that uses it, which meets
        the same failure and answers with its own error or refusal, as without the warm-up."""
        if self._warmed:
            return
        with contextlib.suppress(Exception):  # reported by the step that needs the component
            self.warm()

    # --- the index -----------------------------------------------------------------------------

    def ingest(
        self,
        paths: Iterable[Path | str],
        progress: bool | None = None,
        *,
        title: str | None = None,
        outlet: str | None = None,
        published: str | None = None,
    ) -> IngestReport:
        """Index files and folders incrementally; see IngestReport.summary().

        `title`, `outlet` and `published` (a date) override what is read from every file given.
        """
        overrides = {k: v for k, v in {"title": title, "outlet": outlet, "published": published}.items() if v}
        indexer = Indexer(self.store, self.settings, self.count_tokens, progress)
        return indexer.ingest((Path(p) for p in paths), overrides)

    def documents(self) -> list[DocumentRecord]:
        """Every document in the library (title, outlet, date, how each was found, chunks, flags), by name."""
        return sorted(self.store.library.all().values(), key=lambda r: r.source)

    def remove_document(self, name: str) -> int:
        """Remove one document from the index and the library; the chunks removed. KeyError if unknown.

        A file that was uploaded through the UI is deleted too; any other file is left where it is.
        """
        record = self.store.library.get(name)
        removed = Indexer(self.store, self.settings, self.count_tokens, False).remove(name)
        if record is not None:
            path = Path(record.path)
            if path.is_relative_to(self.settings.upload_dir.resolve()) and path.is_file():
                path.unlink()
        return removed

    def close(self) -> None:
        """Release the store's lock and the model."""
        close = getattr(self._llm, "close", None)
        if callable(close):
            close()
        self.store.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
