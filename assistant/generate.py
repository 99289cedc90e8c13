"""Generate: the prompt from the selected passages, and the model's streamed answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from assistant.config import Settings
from assistant.llm import LLMUnavailableError, describe_llm_error
from assistant.prompts import Prompts
from assistant.quarantine import masked
from assistant.retrieval import Passage
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

    def __call__(self, turn: Turn) -> Iterator[str]:
        """Yield the model's text deltas; `turn.raw` holds the whole text at the end."""
        turn.messages, turn.passages = self.messages(turn.standalone, turn.passages)
        turn.trace["prompt_tokens_estimate"] = sum(self.count_tokens(str(m.content)) for m in turn.messages)
        t = time.perf_counter()
        try:
            for chunk in self.llm.stream(turn.messages):
                delta = chunk.content if isinstance(chunk.content, str) else ""
                if delta:
                    if "first_token_s" not in turn.timings:
                        turn.timings["first_token_s"] = turn.elapsed()
                    turn.raw += delta
                    yield delta
        except LLMUnavailableError:
            raise
        except Exception as exc:  # a remote backend's connection, timeout or HTTP error
            raise LLMUnavailableError(describe_llm_error(exc, self.settings)) from exc
        turn.timings["generate_s"] = time.perf_counter() - t
        turn.trace["model_output"] = turn.raw

    def prime(self) -> None:
        """Run the fixed prompt prefix (system prompt and worked examples) through the model once.

        A model with a prompt cache (the embedded one) then reuses it for every question.
        """
        messages, _ = self.messages("", [])
        self.llm.invoke([*messages[:-1], HumanMessage("Ready?")], max_tokens=1)

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
