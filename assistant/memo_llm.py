"""A chat model wrapper that answers a prompt it has seen before from a memo, without calling the model.

>>> memo = MemoChatModel(inner=make_chat_model(settings))
>>> memo.invoke(messages); memo.invoke(messages)   # the second is served from the memo
>>> memo.calls, memo.hits
(1, 1)

With greedy decoding (temperature 0) a model gives one reply per prompt, so a sweep that asks the same
questions under many settings (`assistant eval --calibrate`) pays only for the prompts that differ. The memo
is keyed by the messages, the stop sequences and the call's other arguments (max_tokens, ...); invoke and
stream share it. A stream that is not read to its end is not kept.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr


class MemoChatModel(BaseChatModel):
    """Wraps a chat model; identical calls are answered from a memo. `calls` and `hits` count both kinds."""

    inner: BaseChatModel = Field(description="The chat model that answers prompts not in the memo.")

    _memo: dict[str, tuple[AIMessage, tuple[str, ...]]] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: int = PrivateAttr(default=0)
    _hits: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return f"memo({self.inner._llm_type})"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"inner": self.inner._identifying_params}

    @property
    def calls(self) -> int:
        """Calls that reached the inner model."""
        return self._calls

    @property
    def hits(self) -> int:
        """Calls answered from the memo."""
        return self._hits

    def load(self) -> None:
        """Load the inner model now, if it loads at all (the embedded one does)."""
        load = getattr(self.inner, "load", None)
        if callable(load):
            load()

    def close(self) -> None:
        """Close the inner model, if it holds anything; the memo stays."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    @staticmethod
    def key(messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> str:
        """The memo key of one call: its messages (ids aside), stop sequences and other arguments."""
        plain = [m.model_copy(update={"id": None}) for m in messages]
        return json.dumps([dumps(plain), stop, kwargs], sort_keys=True, default=repr)

    def _lookup(self, key: str) -> tuple[AIMessage, tuple[str, ...]] | None:
        with self._lock:
            found = self._memo.get(key)
            if found is not None:
                self._hits += 1
            else:
                self._calls += 1
            return found

    def _keep(self, key: str, message: AIMessage, pieces: tuple[str, ...]) -> None:
        with self._lock:
            self._memo[key] = (message, pieces)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        key = self.key(messages, stop, kwargs)
        found = self._lookup(key)
        if found is None:
            reply = self.inner.invoke(messages, stop=stop, **kwargs)
            message = reply if isinstance(reply, AIMessage) else AIMessage(content=reply.content)
            found = (message, (message.text,))
            self._keep(key, *found)
        return ChatResult(generations=[ChatGeneration(message=found[0].model_copy())])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        key = self.key(messages, stop, kwargs)
        found = self._lookup(key)
        if found is not None:  # replayed in the pieces the model wrote
            for piece in found[1]:
                if run_manager is not None:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
            return
        pieces: list[str] = []
        whole: AIMessageChunk | None = None
        for chunk in self.inner.stream(messages, stop=stop, **kwargs):
            piece = chunk.text
            if piece:
                pieces.append(piece)
                if run_manager is not None:
                    run_manager.on_llm_new_token(piece)
            whole = chunk if whole is None else whole + chunk
            yield ChatGenerationChunk(message=chunk)
        text = "".join(pieces)
        message = AIMessage(
            content=text,
            usage_metadata=whole.usage_metadata if whole is not None else None,
            response_metadata=whole.response_metadata if whole is not None else {},
        )
        self._keep(key, message, tuple(pieces))
