"""The OpenAI-compatible backend (`ASSISTANT_LLM=openai-compatible`): langchain-openai's ChatOpenAI, made to
refuse a broken reply instead of passing it on as a whole one.

A streamed reply must end with a finish_reason. One that breaks off (the server dies, stalls past the timeout,
or closes the connection without finishing) raises LLMUnavailableError saying so, and a reply with no
OpenAI-compatible events at all (an HTML page, a JSON body that is not a chat chunk) says what the server sent.
The pipeline then shows the error, never the unfinished text checked as if it were the answer.
Imported only when that backend is chosen (`assistant.llm.make_chat_model`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI

from assistant.llm import LLMUnavailableError, exception_chain, is_timeout


class CheckedChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose stream is either whole (it ends with a finish_reason) or an LLMUnavailableError."""

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        where = f"The LLM at {self.openai_api_base or 'the remote backend'}"
        pieces, finished = 0, False
        try:
            for chunk in super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
                if (chunk.generation_info or {}).get("finish_reason"):
                    finished = True
                if chunk.text:
                    pieces += 1
                yield chunk
        except LLMUnavailableError:
            raise
        except Exception as exc:
            if not pieces:
                raise  # nothing was said yet: describe_llm_error names the failure
            chain = exception_chain(exc)
            why = (
                f"no more words for {self.request_timeout} s"
                if any(is_timeout(err) for err in chain)
                else f"{type(chain[-1]).__name__}: {chain[-1]}"
            )
            raise LLMUnavailableError(
                f"{where} broke off its answer after {pieces} piece(s) ({why}); the unfinished answer is not used: "
                "check the server and ask again."
            ) from exc
        if finished:
            return
        if pieces:
            raise LLMUnavailableError(
                f"{where} closed its reply in the middle of the answer (after {pieces} piece(s), with no "
                "finish_reason); the unfinished answer is not used: check the server and ask again."
            )
        raise LLMUnavailableError(
            f"{where} sent no OpenAI-compatible stream events (no text and no finish_reason): check that "
            "ASSISTANT_LLM_BASE_URL is an OpenAI-compatible endpoint (usually ending in /v1)."
        )
