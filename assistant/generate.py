"""Generate: the prompt from the selected passages, and the model's streamed answer."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from assistant.config import Settings
from assistant.llm import LLMUnavailableError, describe_llm_error
from assistant.prompts import Prompts
from assistant.quarantine import masked
from assistant.retrieval import Passage
from assistant.stages import stage
from assistant.turn import Turn

_TEMPLATE_TOKENS = 8  # chat-template tokens per message


class Generator:
    """Builds the messages for a Turn's passages and streams the model's text into `turn.raw`."""

    def __init__(
        self, settings: Settings, llm: BaseChatModel, prompts: Prompts, count_tokens: Callable[[str], int]
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.prompts = prompts
        self.count_tokens = count_tokens
        self._primed = False
        self._loading: threading.Thread | None = None
        self._loading_lock = threading.Lock()

    def preload(self) -> None:
        """Start loading an in-process model and its saved prompt prefix in the background (once), so a first
        question's search and parse run while the model loads. A failure here is the first answer's to report."""
        load = getattr(self.llm, "load", None)
        if self._primed or not callable(load) or getattr(self.llm, "loaded", True):
            return
        with self._loading_lock:
            if self._loading is not None:
                return

            def work() -> None:
                try:
                    load()
                    self.prime()
                except Exception:
                    return

            self._loading = threading.Thread(target=work, name="model-preload", daemon=True)
            self._loading.start()

    def __call__(self, turn: Turn) -> Iterator[str]:
        """Yield the model's text deltas; `turn.raw` holds the whole text at the end."""
        if not turn.messages:
            self.prepare(turn)
        if not self._primed and callable(getattr(self.llm, "restore_prefix", None)):
            with stage("prime_s"):  # a first question in a new process: the saved prefix, in milliseconds
                loading = self._loading
                if loading is not None:
                    loading.join()
                turn.trace["prime"] = self.prime()
        t = first = time.perf_counter()
        try:
            for chunk in self.llm.stream(turn.messages):
                usage = getattr(chunk, "usage_metadata", None)
                if usage:  # the model's own count: the whole prompt, and the part read from its cache
                    turn.trace["prompt_tokens"] = usage.get("input_tokens")
                    turn.trace["cached_tokens"] = (usage.get("input_token_details") or {}).get("cache_read")
                    turn.trace["completion_tokens"] = usage.get("output_tokens")
                delta = chunk.content if isinstance(chunk.content, str) else ""
                if delta:
                    if "first_token_s" not in turn.timings:
                        first = time.perf_counter()
                        turn.timings["first_token_s"] = turn.elapsed()
                        turn.timings["prompt_s"] = first - t  # reading the prompt, up to the first token
                    turn.raw += delta
                    yield delta
        except LLMUnavailableError:
            raise
        except Exception as exc:  # a remote backend's connection, timeout or HTTP error
            raise LLMUnavailableError(describe_llm_error(exc, self.settings)) from exc
        done = time.perf_counter()
        turn.timings["generate_s"] = done - t
        turn.timings["generation_s"] = done - first if "prompt_s" in turn.timings else 0.0
        turn.trace["model_output"] = turn.raw

    def prepare(self, turn: Turn) -> None:
        """The messages for the Turn's best evidence; `turn.prompt_passages` becomes what the model reads."""
        turn.messages, turn.prompt_passages = self.messages(turn.standalone, turn.prompt_passages)
        turn.trace["prompt_tokens_estimate"] = sum(self.count_tokens(str(m.content)) for m in turn.messages)
        turn.trace["prompt_passages"] = len(turn.prompt_passages)

    def prime(self) -> str:
        """Run the fixed prompt prefix (system prompt, worked examples, the user turn's fixed opening) through
        the model once; what it did: 'restored', 'read' or 'primed already'.

        A model with a prompt cache (the embedded one) then reuses it for every question. A model that can
        save what it read (`save_prefix`) keeps it on disk, so the next process restores it in milliseconds
        instead of reading it again (the state is tied to the prefix's text: editing a prompt reads it anew).
        """
        if self._primed:
            return "primed already"
        messages, _ = self.messages("", [])
        opening = self.prompts.render("answer", passages="", question="").split("\n\n", 1)[0]
        prefix = [*messages[:-1], HumanMessage(opening)]
        name = hashlib.sha256(
            json.dumps([[m.type, str(m.content)] for m in prefix], ensure_ascii=False).encode()
        ).hexdigest()[:24]
        restore = getattr(self.llm, "restore_prefix", None)
        if callable(restore) and restore(name):
            self._primed = True
            return "restored"
        self.llm.invoke(prefix, max_tokens=1)
        save = getattr(self.llm, "save_prefix", None)
        if callable(save):
            save(name)
        self._primed = True
        return "read"

    def messages(self, question: str, passages: list[Passage]) -> tuple[list[BaseMessage], list[Passage]]:
        """System prompt, worked examples and the user prompt within the context window.

        The system prompt and the examples never change, so the model's prompt cache keeps them between
        questions. When the window is too small, the examples go first, then the weakest passages.
        """
        system = SystemMessage(self.prompts.render("system"))
        shots: list[BaseMessage] = [
            HumanMessage(text) if role == "user" else AIMessage(text) for role, text in self.prompts.examples()
        ]
        budget = self.settings.llm_context_window - self.settings.llm_max_tokens
        kept = list(passages)
        while True:
            body = "\n".join(
                self.prompts.render(
                    "passage",
                    n=i + 1,
                    outlet=p.outlet or "unknown outlet",
                    published=p.published or "undated",
                    text=" ".join(masked(p).text.split()),  # quarantined text never reaches the model
                )
                for i, p in enumerate(kept)
            )
            user = HumanMessage(self.prompts.render("answer", passages=body, question=question))
            messages = [system, *shots, user]
            used = sum(self.count_tokens(str(m.content)) + _TEMPLATE_TOKENS for m in messages)
            if used <= budget:
                return messages, kept
            if shots:
                shots = []
            elif len(kept) > 1:
                kept.pop()
            else:
                return messages, kept
