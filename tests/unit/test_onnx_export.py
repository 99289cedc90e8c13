"""Finding an ONNX export of the embedding model: what counts as one, where it lives, when it is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.embeddings import ExportedOnnxEmbeddings, SentenceTransformerEmbeddings, make_embeddings
from assistant.onnx_export import EXPORT_FORMAT, ExportError, export_dir, export_model, read_export


def fake_export(folder: Path, **record: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"not really a model")
    (folder / "tokenizer.json").write_text("{}")
    data = {"format": EXPORT_FORMAT, "sha256": "ab" * 32, "max_length": 256} | record
    (folder / "export.json").write_text(json.dumps(data))
    return folder


def test_an_export_is_read_from_its_record(tmp_path: Path) -> None:
    export = read_export(fake_export(tmp_path / "m"))
    assert export is not None and export.sha256 == "ab" * 32 and export.max_length == 256
    assert export.model_file == tmp_path / "m" / "model.onnx"


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: (f / "export.json").unlink(),
        lambda f: (f / "export.json").write_text("{not json"),
        lambda f: (f / "export.json").write_text(json.dumps({"format": EXPORT_FORMAT - 1, "sha256": "x"})),
        lambda f: (f / "export.json").write_text(json.dumps({"format": EXPORT_FORMAT, "max_length": 256})),
        lambda f: (f / "model.onnx").unlink(),
        lambda f: (f / "tokenizer.json").unlink(),
    ],
)
def test_an_incomplete_or_older_export_is_no_export(tmp_path: Path, damage) -> None:
    folder = fake_export(tmp_path / "m")
    damage(folder)
    assert read_export(folder) is None


def test_the_export_folder_stays_inside_the_cache_whatever_the_name(tmp_path: Path) -> None:
    assert export_dir(tmp_path, "sentence-transformers/all-MiniLM-L6-v2") == tmp_path / "onnx" / "all-minilm-l6-v2"
    for name in ("/abs/path/to/model", "../../escape", "..", ""):
        folder = export_dir(tmp_path, name)
        assert folder.parent == tmp_path / "onnx" and folder.name not in ("", ".", "..")


def test_a_local_embedding_runs_from_its_export_when_there_is_one(tmp_path: Path) -> None:
    assert isinstance(make_embeddings("local:all-MiniLM-L6-v2", cache_dir=tmp_path), SentenceTransformerEmbeddings)
    fake_export(export_dir(tmp_path, "all-MiniLM-L6-v2"))
    assert isinstance(make_embeddings("local:all-MiniLM-L6-v2", cache_dir=tmp_path), ExportedOnnxEmbeddings)
    off = make_embeddings("local:all-MiniLM-L6-v2", cache_dir=tmp_path, exported=False)
    assert isinstance(off, SentenceTransformerEmbeddings)
    assert isinstance(make_embeddings("local:all-MiniLM-L6-v2"), SentenceTransformerEmbeddings)  # no cache


def test_a_folder_that_is_not_a_model_is_not_exported(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(ExportError, match=r"tokenizer\.json"):
        export_model(tmp_path / "src", tmp_path / "out")
    (tmp_path / "src" / "tokenizer.json").write_text("{}")
    (tmp_path / "src" / "1_Pooling").mkdir()
    (tmp_path / "src" / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(ExportError, match="mean"):
        export_model(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_install_step_has_nothing_to_export_for_a_non_local_embedding(monkeypatch, capsys) -> None:
    from assistant.onnx_export import main

    monkeypatch.setenv("ASSISTANT_EMBEDDING", "fake:8")
    assert main([]) == 0
    assert "nothing to export" in capsys.readouterr().out
