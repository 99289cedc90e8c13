"""The Library tab's pure helpers: safe upload names, limits checked before reading, table rows, messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.ingest import IngestReport
from assistant.library import DocumentRecord
from assistant.store import StoreError
from assistant.ui_library import (
    COLUMNS,
    Accepted,
    LibraryActions,
    copy_into,
    how_found,
    message_html,
    new_batch_dir,
    outcome_of,
    plan_upload,
    sanitize_name,
    table_rows,
    table_value,
    unique_name,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.html", "evil.html"),
        ("/abs/path/note.md", "note.md"),
        (".hidden.txt", "hidden.txt"),
        ("...dots.md", "dots.md"),
        ("bad\x00na\x1bme\n.txt", "badname.txt"),
        ("rtl\u202eтxt.html", "rtlтxt.html"),
        ("  spaced   out  .txt", "spaced out .txt"),
        ("..", ""),
        ("../", ""),
        ("", ""),
        ("\x01\x02", ""),
        ("Seoul – 서울 talks.html", "Seoul – 서울 talks.html"),
    ],
)
def test_sanitize_name_keeps_names_inside_the_folder(given: str, expected: str) -> None:
    assert sanitize_name(given) == expected


def test_sanitize_name_bounds_length_and_keeps_the_suffix() -> None:
    name = sanitize_name("x" * 400 + ".html")
    assert len(name) <= 150
    assert name.endswith(".html")


def test_unique_name_never_reuses_a_name_in_the_upload() -> None:
    assert unique_name("a.txt", set()) == "a.txt"
    assert unique_name("a.txt", {"a.txt"}) == "a-2.txt"
    assert unique_name("A.TXT", {"a.txt", "a-2.txt"}) == "A-3.TXT"


def _sized(*items: tuple[str, int]) -> list[tuple[Path, int]]:
    return [(Path("/tmp/gradio/abc") / name, size) for name, size in items]


def test_plan_upload_checks_type_size_and_count_before_reading() -> None:
    plan = plan_upload(
        _sized(("ok.html", 1000), ("big.pdf", 2_500_000), ("image.png", 10), ("notes.md", 5), ("late.txt", 5)),
        max_files=4,
        max_file_mb=2,
    )
    assert [a.name for a in plan.accepted] == ["ok.html", "notes.md"]
    reasons = dict(plan.rejected)
    assert "big.pdf" in reasons["big.pdf"] and "2.5 MB" in reasons["big.pdf"] and "2 MB limit" in reasons["big.pdf"]
    assert "not a supported type" in reasons["image.png"]
    assert "at most 4 files" in reasons["late.txt"]


def test_plan_upload_renames_a_second_file_of_the_same_name() -> None:
    plan = plan_upload(_sized(("a.txt", 5), (".a.txt", 5)), max_files=10, max_file_mb=1)
    assert [a.name for a in plan.accepted] == ["a.txt", "a-2.txt"]
    assert any("a-2.txt" in note for note in plan.notes)


def test_plan_upload_limit_sizes_below_one_megabyte() -> None:
    plan = plan_upload(_sized(("x.txt", 60_000)), max_files=10, max_file_mb=0.05)
    assert plan.accepted == []
    assert plan.rejected[0][1] == "x.txt: not uploaded: 60 KB is over the 0.05 MB limit per file"


def test_copy_into_never_overwrites(tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_text("text")
    batch = new_batch_dir(tmp_path / "uploads")
    assert batch.parent == tmp_path / "uploads"
    [copied] = copy_into(batch, [Accepted(src, "src.txt", "doc.txt")])
    assert copied.read_text() == "text"
    with pytest.raises(FileExistsError):
        copy_into(batch, [Accepted(src, "src.txt", "doc.txt")])
    with pytest.raises(ValueError, match="leave the upload folder"):
        copy_into(batch, [Accepted(src, "src.txt", "../escape.txt")])
    assert new_batch_dir(tmp_path / "uploads") != batch


def _record(**values: object) -> DocumentRecord:
    base: dict[str, object] = {
        "source": "a.html",
        "path": "/x/a.html",
        "kind": "html",
        "title": "Allies meet",
        "outlet": "Yonhap",
        "published": "2021-03-17",
        "byline": "",
        "updated": "",
        "chunks": 3,
    }
    base.update(values)
    return DocumentRecord(**base)  # type: ignore[arg-type]


def test_how_found_is_short() -> None:
    record = _record(
        provenance={
            "published": "stamp 'TOKYO, June 8, 2022 (Yonhap) -- The nuclear envoys'",
            "outlet": "dateline 'SEOUL, Jul 2, 2020 (Yonhap) -- South Korea'",
            "title": "web page metadata (title)",
        },
        confidence={"published": 0.85, "outlet": 0.85, "title": 0.9},
    )
    assert how_found(record) == "date: stamp (0.85); outlet: dateline (0.85); title: web page metadata (0.90)"
    assert how_found(_record()) == ""


def test_table_rows_are_plain_text_with_undated_and_flags() -> None:
    payload = "<img src=x onerror=alert(1)>"
    rows = table_rows(
        [
            _record(title=f"{payload}\nsecond line", outlet="<b>Bold</b>", flags=["undated", "<script>x</script>"]),
            _record(source="b.txt", published="", title="", outlet=""),
        ]
    )
    assert rows[0] == [
        "a.html",
        f"{payload} second line",  # kept as text: the Dataframe shows it literally, never as HTML
        "<b>Bold</b>",
        "2021-03-17",
        "",
        3,
        "undated; <script>x</script>",
    ]
    assert rows[1][3] == "undated"
    frame = table_value([_record()])
    assert list(frame.columns) == list(COLUMNS)
    assert table_value([]).shape == (0, len(COLUMNS))


def test_messages_escape_what_they_show() -> None:
    box = message_html("notice", "Upload <b>", ["<img src=x onerror=alert(1)>.txt: empty file"], ["<script>"])
    assert "<img" not in box and "<script>" not in box and "<b>" not in box
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in box


def test_outcome_names_added_unchanged_and_skipped_files() -> None:
    plan = plan_upload(_sized(("a.html", 5), ("b.txt", 5), ("c.txt", 5), ("big.pdf", 10**9)), 10, 1)
    report = IngestReport(
        documents=2,
        added=4,
        documents_changed=["a.html"],
        skipped=[("c.txt", "c.txt: this is a PNG image, not a document")],
    )
    out = outcome_of(plan, report, ["a.html", "b.txt", "c.txt"], {"a.html": "the earlier upload of the same name"})
    assert out.added == ["a.html"]
    assert out.unchanged == ["b.txt"]
    assert out.problems[0].startswith("big.pdf: not uploaded: 1000.0 MB is over the 1 MB limit")
    assert out.problems[1] == "c.txt: this is a PNG image, not a document"
    shown = out.to_html()
    assert "a.html replaces the earlier upload of the same name" in shown
    assert "2 file(s) not added" in shown
    assert shown.count("<li>") == 2


class _BrokenStoreAssistant:
    """Stands in for Assistant: every store call fails as a locked store does."""

    class _Library:
        def get(self, name: str) -> None:
            raise StoreError("the index is locked by another process (pid 1)")

    def __init__(self) -> None:
        self.store = type("S", (), {"library": self._Library()})()

    def documents(self) -> list[DocumentRecord]:
        raise StoreError("the index is locked by another process (pid 1)")

    def ingest(self, paths: object, progress: object = None) -> IngestReport:
        raise StoreError("the index is locked by another process (pid 1)")

    def remove_document(self, name: str) -> int:
        raise KeyError(name)


def _actions(tmp_path: Path, assistant: object) -> LibraryActions:
    settings = Settings(persist_dir=tmp_path / "vs", upload_dir=tmp_path / "uploads", max_file_mb=1)
    return LibraryActions(assistant, settings)  # type: ignore[arg-type]


def test_a_store_error_is_a_message_and_the_copies_are_dropped(tmp_path: Path) -> None:
    actions = _actions(tmp_path, _BrokenStoreAssistant())
    src = tmp_path / "a.txt"
    src.write_text("Officials met in Seoul.")
    shown = actions.upload([src])
    assert "The library could not be changed" in shown and "locked by another process" in shown
    assert "Traceback" not in shown
    assert list((tmp_path / "uploads").iterdir()) == [], "nothing is left in the upload folder"
    assert "could not be changed" in actions.remove("a.txt")
    message, confirm = actions.describe("a.txt")
    assert not confirm and "not available" in message


def test_an_upload_with_nothing_usable_reads_nothing(tmp_path: Path) -> None:
    actions = _actions(tmp_path, _BrokenStoreAssistant())  # the store is never reached
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG")
    shown = actions.upload([png])
    assert "Nothing was added" in shown and "photo.png: not uploaded: not a supported type" in shown
    assert "Nothing uploaded" in actions.upload([])
    assert not (tmp_path / "uploads").exists()
