"""An OpenAI-compatible API over the grounded assistant: `POST /v1/chat/completions` (streamed or not) and
`GET /v1/models`, served beside the chat UI by `assistant serve` (`openai_routes` -> `ui.launch(routes=...)`).

The last user message is the question, the earlier user / assistant messages are the conversation, and system
messages are ignored (the assistant's instructions are its own). The reply's text carries the [n] markers and
the response carries the checked citations (`citations`, with `refused`, `refusal_reason`,
`standalone_question` and `timings`), on the response or on the last chunk of a stream. A stream carries only
checked text: the model's draft is verified before the first word is sent. Extra request field `filters`:
{"outlets": [...], "since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}.

A key (`Settings.api_key_env` names its environment variable) is compared in constant time and never logged;
a non-loopback host needs one (`api_key_for`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from assistant.api import (
    AnswerGate,
    BusyError,
    RequestError,
    answer_data,
    check_filters,
    check_history,
    check_question,
    failure,
)
from assistant.chain import Answer, Message, Sources
from assistant.config import Settings
from assistant.retrieval import Filters

if TYPE_CHECKING:
    from assistant.app import Assistant

KEEPALIVE_S = 5.0  # an SSE comment while the answer is being made and checked
RETRY_AFTER_S = 30
_WORDS = re.compile(r"\S+\s*")


class ApiKeyError(ValueError):
    """The API would be served beyond loopback without a key."""


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_key_for(settings: Settings, host: str | None = None) -> str | None:
    """The API key from the environment variable `settings.api_key_env`; None on loopback without one.

    ApiKeyError when the host is not loopback and no key is set.
    """
    key = (os.environ.get(settings.api_key_env) or "").strip() or None
    host = settings.host if host is None else host
    if key is None and not is_loopback(host):
        raise ApiKeyError(
            f"Serving the OpenAI-compatible API on {host} (not loopback) needs an API key: set "
            f"${settings.api_key_env} to a secret, or ASSISTANT_OPENAI_API=false to serve the chat UI alone."
        )
    return key


# --- requests -------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat completion request that the assistant reads (others are accepted and
    ignored: temperature, max_tokens, ...)."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    n: int | None = 1
    stream_options: dict[str, Any] | None = None
    filters: dict[str, Any] | None = None


@dataclass(frozen=True)
class Asked:
    """A checked request: the question, the conversation before it and the filters."""

    question: str
    history: list[Message]
    filters: Filters | None
    stream: bool
    include_usage: bool


class ApiError(Exception):
    """An error answered as an OpenAI error object with an HTTP status."""

    def __init__(self, status: int, kind: str, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param = status, kind, code, param

    def body(self) -> dict[str, Any]:
        return {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}

    def response(self) -> JSONResponse:
        body = {"error": self.body()}
        headers: dict[str, str] = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if self.code == "busy":
            headers["Retry-After"] = str(RETRY_AFTER_S)
        elif self.status >= 500:
            headers["x-should-retry"] = "false"  # the OpenAI clients would retry a 5xx: the message says why
        return JSONResponse(body, status_code=self.status, headers=headers)


def _text(message: ChatMessage, i: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ApiError(
                400, "invalid_request_error", "unsupported_content", f"messages[{i}]: only text parts are read."
            )
        texts.append(part["text"])
    return "".join(texts)


def parse_request(body: bytes, settings: Settings) -> Asked:
    """The question, history and filters of a chat completion request; ApiError saying what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_request_error", "invalid_json", "The request body is not JSON.") from None
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise ApiError(
            400, "invalid_request_error", "invalid_request", f"{where}: {first.get('msg', 'invalid')}.", where
        ) from None
    if request.model != settings.api_model_name:
        raise ApiError(
            404,
            "invalid_request_error",
            "model_not_found",
            f"The model {request.model!r} does not exist here: use {settings.api_model_name!r} (GET /v1/models).",
            "model",
        )
    if request.n not in (None, 1):
        raise ApiError(400, "invalid_request_error", "unsupported_n", "Only n=1 is supported.", "n")
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(request.messages):
        if message.role in ("system", "developer"):
            continue  # the assistant's own instructions stand
        if message.role not in ("user", "assistant"):
            raise ApiError(
                400,
                "invalid_request_error",
                "unsupported_role",
                f"messages[{i}] has role {message.role!r}: only system, user and assistant messages are read.",
                "messages",
            )
        turns.append((message.role, _text(message, i)))
    if not turns or turns[-1][0] != "user":
        raise ApiError(
            400, "invalid_request_error", "no_question", "The last message must be the user's question.", "messages"
        )
    try:
        question = check_question(turns[-1][1])
        history = check_history([{"role": r, "content": c} for r, c in turns[:-1]], settings.api_max_history)
        filters = check_filters(request.filters)
    except RequestError as exc:
        raise ApiError(400, "invalid_request_error", exc.code, str(exc)) from None
    include_usage = bool((request.stream_options or {}).get("include_usage"))
    return Asked(question, history, filters, bool(request.stream), include_usage)


# --- responses ------------------------------------------------------------------------------------


def _extra(answer: Answer) -> dict[str, Any]:
    """What the assistant adds to an OpenAI response: the checked citations and how the answer was made."""
    data = answer_data(answer)
    keys = ("citations", "refused", "refusal_reason", "standalone_question", "timings")
    return {k: data[k] for k in keys}


def _usage(asked: Asked, answer: Answer, count: Callable[[str], int]) -> dict[str, int]:
    prompt = count(asked.question) + sum(count(m["content"]) for m in asked.history)
    completion = count(answer.text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _error_of(exc: Exception, question: str) -> ApiError:
    code, message = failure(exc, question)
    status = 503 if code in ("busy", "llm_unavailable", "index_unavailable") else 500
    return ApiError(status, "server_error", code, message)


def _sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


class ChatCompletions:
    """The two endpoints over one Assistant; every question goes through `gate`."""

    def __init__(self, assistant: Assistant, settings: Settings, gate: AnswerGate, key: str | None) -> None:
        self.assistant = assistant
        self.settings = settings
        self.gate = gate
        self._key = key.encode() if key else None
        self.created = int(time.time())

    def __repr__(self) -> str:  # never the key
        return f"ChatCompletions(model={self.settings.api_model_name!r}, key={'set' if self._key else 'none'})"

    # --- checks -----------------------------------------------------------------------------------

    def authorize(self, request: Request) -> None:
        if self._key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode() if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(given, self._key):
            raise ApiError(
                401,
                "invalid_request_error",
                "invalid_api_key",
                f"Missing or wrong API key: send 'Authorization: Bearer <the key in ${self.settings.api_key_env}>'.",
            )

    async def body(self, request: Request) -> bytes:
        limit = self.settings.api_max_body_kb * 1024
        too_large = ApiError(
            413, "invalid_request_error", "body_too_large", f"The request body is larger than {limit // 1024} KiB."
        )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    # --- endpoints --------------------------------------------------------------------------------

    def model_card(self) -> dict[str, Any]:
        return {"id": self.settings.api_model_name, "object": "model", "created": self.created, "owned_by": "local"}

    async def models(self, request: Request) -> Response:
        try:
            self.authorize(request)
        except ApiError as exc:
            return exc.response()
        return JSONResponse({"object": "list", "data": [self.model_card()]})

    async def model(self, request: Request) -> Response:
        try:
            self.authorize(request)
        except ApiError as exc:
            return exc.response()
        name = request.path_params.get("model", "")
        if name != self.settings.api_model_name:
            return ApiError(404, "invalid_request_error", "model_not_found", f"No model {name!r} here.").response()
        return JSONResponse(self.model_card())

    async def chat_completions(self, request: Request) -> Response:
        try:
            self.authorize(request)
            asked = parse_request(await self.body(request), self.settings)
        except ApiError as exc:
            return exc.response()
        if asked.stream:
            return StreamingResponse(
                self.stream(asked),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            answer = await run_in_threadpool(
                self.gate.ask, self.assistant, asked.question, asked.history, asked.filters
            )
        except Exception as exc:
            return _error_of(exc, asked.question).response()
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.settings.api_model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": _usage(asked, answer, self.assistant.count_tokens),
            **_extra(answer),
        }
        return JSONResponse(completion)

    async def stream(self, asked: Asked) -> AsyncIterator[str]:
        """SSE chunks: the role, then (after checking) the answer's words, a last chunk with the citations,
        usage if asked, and [DONE]. A failure is an error event. A client that goes away stops the answer."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Answer | Exception | None] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: Answer | Exception | None) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the loop is closed: the server is shutting down
                cancel.set()

        def work() -> None:
            parts = self.gate.stream(self.assistant, asked.question, asked.history, asked.filters, cancel)
            try:
                for part in parts:
                    if isinstance(part, Sources):
                        continue  # not sent; a gone client is noticed at the model's first words, as before
                    if cancel.is_set():
                        break
                    if isinstance(part, Answer):  # the Sources and the unchecked draft are not sent
                        put(part)
            except Exception as exc:
                put(exc)
            finally:
                parts.close()  # ends the model's generation and opens the gate
                put(None)

        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.settings.api_model_name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }

        worker = threading.Thread(target=work, name="openai-api-answer", daemon=True)
        try:
            yield _sse(chunk({"role": "assistant", "content": ""}))
            worker.start()
            final: Answer | None = None
            while True:
                try:
                    item = await asyncio.wait_for(events.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": checking the answer against the articles\n\n"
                    continue
                if item is None:
                    break
                if isinstance(item, Exception):
                    break
                final = item
            if final is None or isinstance(item, Exception):
                failed = item if isinstance(item, Exception) else RuntimeError("the pipeline gave no answer")
                yield _sse({"error": _error_of(failed, asked.question).body()})
                yield _sse("[DONE]")
                return
            for word in _WORDS.findall(final.text):
                yield _sse(chunk({"content": word}))
            yield _sse(chunk({}, "stop", **_extra(final)))
            if asked.include_usage:
                usage = _usage(asked, final, self.assistant.count_tokens)
                yield _sse({**chunk({}), "choices": [], "usage": usage})
            yield _sse("[DONE]")
        finally:
            cancel.set()  # on a disconnect the worker stops at the model's next words


def openai_routes(assistant: Assistant, settings: Settings, gate: AnswerGate, key: str | None) -> list[BaseRoute]:
    """The routes of the OpenAI-compatible API (for `ui.launch(app, settings, routes=...)`).

    `key` (from `api_key_for`) is required of every request when given; ApiKeyError when there is none and
    `settings.host` is not loopback.
    """
    if key is None and not is_loopback(settings.host):
        raise ApiKeyError(
            f"The OpenAI-compatible API on {settings.host} (not loopback) needs an API key: "
            f"set ${settings.api_key_env}."
        )
    api = ChatCompletions(assistant, settings, gate, key)
    router = APIRouter()
    router.add_api_route("/v1/models", api.models, methods=["GET"], include_in_schema=False)
    router.add_api_route("/v1/models/{model:path}", api.model, methods=["GET"], include_in_schema=False)
    router.add_api_route("/v1/chat/completions", api.chat_completions, methods=["POST"], include_in_schema=False)
    return list(router.routes)


__all__ = ["ApiKeyError", "BusyError", "ChatCompletions", "api_key_for", "is_loopback", "openai_routes"]
