"""The packaged sentence-transformers embedding (all-MiniLM-L6-v2) exported once to ONNX, so that answering
needs neither torch nor transformers: onnxruntime and the tokenizer give the same vectors (cosine > 0.99999)
in a fraction of the start-up time.

`make install` runs `python -m assistant.onnx_export`; the export lands in the model cache with an
`export.json` that records the file's sha256, checked once at load (assistant/embeddings.py). Without an export
the embedding runs through sentence-transformers as before.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPORT_FORMAT = 1  # bump when the layout below changes: older exports are then made again
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class ExportError(RuntimeError):
    """The model could not be exported; the message says why and what to do."""


@dataclass(frozen=True)
class Export:
    """An exported model: its folder (model.onnx, tokenizer.json), the file's sha256 and the longest input."""

    folder: Path
    sha256: str
    max_length: int

    @property
    def model_file(self) -> Path:
        return self.folder / "model.onnx"


def export_dir(cache_dir: Path, name: str) -> Path:
    """Where the export of the model `name` (a packaged model's name or a folder's path) lives in the cache."""
    key = re.sub(r"[^a-z0-9._-]+", "-", name.lower().removeprefix("sentence-transformers/")).strip("-.")
    return Path(cache_dir).expanduser() / "onnx" / (key or "model")


def read_export(folder: Path) -> Export | None:
    """The export in `folder`, or None when there is none (or one of an older layout, or a broken record)."""
    try:
        record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
        return None
    sha, length = record.get("sha256"), record.get("max_length")
    if not isinstance(sha, str) or not isinstance(length, int):
        return None
    if not (folder / "model.onnx").is_file() or not (folder / "tokenizer.json").is_file():
        return None
    return Export(folder, sha, length)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _max_length(source: Path) -> int:
    """The longest input the sentence-transformers model reads (its max_seq_length; 256 for MiniLM)."""
    try:
        config = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 256


def _pooling_is_mean(source: Path) -> bool:
    """Whether the model pools by the mean of its token vectors (what the ONNX embedding reproduces)."""
    path = source / "1_Pooling" / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # a bare transformers folder: mean pooling, the sentence-transformers default
    return bool(config.get("pooling_mode_mean_tokens")) and not any(
        config.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_lasttoken")
    )


def export_model(source: Path, target: Path) -> Export:
    """Export the BERT-style model in `source` (a sentence-transformers folder) to `target`; the export made
    before is kept if it is of the current layout. Written to a temporary folder, then moved into place."""
    existing = read_export(target)
    if existing is not None:
        return existing
    if not (source / "tokenizer.json").is_file():
        raise ExportError(f"{source} has no tokenizer.json: it is not a model folder that can be exported.")
    if not _pooling_is_mean(source):
        raise ExportError(f"{source} does not pool by the mean of its tokens: its ONNX export would differ.")
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ExportError(f"Exporting {source.name} needs torch and transformers ({exc}): run `make install`.") from exc

    class LastHidden(torch.nn.Module):
        """The model's token vectors for the three BERT inputs, given by name."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = LastHidden(AutoModel.from_pretrained(str(source))).eval()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        ids = torch.ones((1, 8), dtype=torch.long)
        axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
        try:
            torch.onnx.export(
                model,
                (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                str(scratch / "model.onnx"),
                dynamo=False,
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
            )
        except Exception as exc:  # torch raises several of its own types here
            raise ExportError(f"torch could not export {source.name} to ONNX ({exc}).") from exc
        shutil.copyfile(source / "tokenizer.json", scratch / "tokenizer.json")
        record = {
            "format": EXPORT_FORMAT,
            "source": str(source),
            "sha256": _sha256(scratch / "model.onnx"),
            "max_length": _max_length(source),
            "torch": torch.__version__,
        }
        (scratch / "export.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    made = read_export(target)
    if made is None:
        raise ExportError(f"The export in {target} could not be read back.")
    return made


def main(argv: list[str] | None = None) -> int:
    """Export the configured local embedding model to the model cache (what `make install` runs)."""
    from assistant.config import Settings
    from assistant.embeddings import packaged_model_dir

    parser = argparse.ArgumentParser(description="Export the local embedding model to ONNX, once.")
    parser.parse_args(argv)
    settings = Settings()
    kind, _, name = settings.embedding.partition(":")
    if kind != "local":
        print(f"The embedding is {settings.embedding!r}: nothing to export.")
        return 0
    source = packaged_model_dir(name) or (Path(name) if Path(name).is_dir() else None)
    if source is None:
        print(f"The embedding model {name!r} is not installed as a folder: nothing to export.")
        return 0
    try:
        made = export_model(source, export_dir(settings.model_cache_dir, name))
    except ExportError as exc:
        print(f"Not exported (answers use sentence-transformers instead): {exc}", file=sys.stderr)
        return 1
    print(f"ONNX export of {name}: {made.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
