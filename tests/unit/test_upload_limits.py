"""Upload limits of the Library tab, end to end through LibraryActions.upload with a real store: count and size
limits, type told by content (not by the extension alone), and names that try to leave the upload folder."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.app import Assistant
from assistant.config import Settings
from assistant.ui_library import LibraryActions, escape_reason, plan_upload

ARTICLE = (
    "Pier {n} reopens\n\nBy Ana Lorne\n\nBRENN, June 3, 2025 (Brenn Gazette) -- Pier {n} of the port of Brenn "
    "reopened on Monday after repairs that took {n} weeks, the harbour master said. {more}\n"
)
MORE = [
    "",
    "Fishing boats will use it first.",
    "A cafe opens beside it in July.",
    "The ferry to Aldport moves there in autumn.",
    "Cranes for the cargo quay arrive next year.",
    "Divers checked the piles in April.",
    "The council paid half of the cost.",
    "Anglers may fish from its end again.",
]


def _article(n: int) -> str:
    return ARTICLE.format(n=n, more=MORE[n % len(MORE)])


@pytest.fixture
def library(tmp_path: Path, make_assistant: Callable[[Settings], Assistant]) -> tuple[LibraryActions, Settings]:
    settings = Settings(
        persist_dir=tmp_path / "vs",
        embedding="fake:64",
        llm="fake",
        upload_dir=tmp_path / "uploads",
        max_file_mb=0.01,
        max_upload_files=3,
    )
    return LibraryActions(make_assistant(settings), settings), settings


def _file(folder: Path, name: str, data: bytes | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _indexed(actions: LibraryActions) -> dict[str, str]:
    return {r.source: r.kind for r in actions.records()}


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../x.txt", "climbs out of its folder"),
        ("..", "climbs out of its folder"),
        ("..\\..\\windows\\x.html", "climbs out of its folder"),
        ("/etc/passwd.txt", "absolute path"),
        ("\\\\server\\share\\x.txt", "absolute path"),
        ("C:\\Users\\me\\x.txt", "absolute path"),
        ("c:x.txt", "absolute path"),
        ("notes\x00.txt", "NUL"),
        ("sub/dir.txt", "folder path"),
    ],
)
def test_a_name_that_leaves_the_upload_folder_is_turned_away_with_a_reason(name: str, why: str) -> None:
    assert why in escape_reason(name)
    plan = plan_upload([(Path("/tmp/gradio/1/a"), 10, name), (Path("/tmp/gradio/2/ok.txt"), 10)], 5, 1)
    assert [a.name for a in plan.accepted] == ["ok.txt"]
    [(_, reason)] = plan.rejected
    assert reason.startswith(f"{name!r}: not uploaded: the file name") and "leave the upload folder" in reason


@pytest.mark.parametrize("name", ["report.txt", "Seoul – 서울 talks.html", ".hidden.md", "a..b.txt", "Re: pier.txt"])
def test_plain_names_are_not_taken_for_paths(name: str) -> None:
    assert escape_reason(name) == ""


def test_an_upload_keeps_within_its_folder_and_indexes_the_rest(
    tmp_path: Path, library: tuple[LibraryActions, Settings]
) -> None:
    actions, settings = library
    # on Linux a backslash is part of a file's name: this one names no folder, but it reads as a path elsewhere
    sneaky = _file(tmp_path / "in", "..\\..\\escape.txt", _article(1))
    plain = _file(tmp_path / "in", "pier.txt", _article(2))
    shown = html.unescape(actions.upload([sneaky, plain]))
    assert "'..\\\\..\\\\escape.txt': not uploaded: the file name climbs out of its folder" in shown
    assert "Added or updated 1 document(s): pier.txt" in shown
    assert _indexed(actions) == {"pier.txt": "text"}
    written = [p for p in tmp_path.rglob("*escape*") if p != sneaky]
    assert written == [], "nothing of the rejected file is written anywhere"
    assert all(p.resolve().is_relative_to(settings.upload_dir.resolve()) for p in settings.upload_dir.rglob("*"))


def test_the_type_is_told_by_content_not_by_the_extension(
    tmp_path: Path, library: tuple[LibraryActions, Settings]
) -> None:
    actions, _ = library
    png = _file(tmp_path / "in", "photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40)
    page = _file(
        tmp_path / "in",
        "page.txt",
        "<!doctype html><html><head><title>Pier 7 reopens - Brenn Gazette</title></head><body><article>"
        "<h1>Pier 7 reopens</h1><p>Pier 7 of the port of Brenn reopened on Monday after repairs that took seven "
        "weeks, the harbour master said at the pier.</p></article></body></html>",
    )
    fake_pdf = _file(tmp_path / "in", "scan.pdf", _article(3))
    shown = html.unescape(actions.upload([png, page, fake_pdf]))
    assert "photo.txt: this is a PNG image, not a document" in shown
    assert "scan.pdf: named .pdf but it is not a PDF" in shown
    assert _indexed(actions) == {"page.txt": "html"}  # a web page saved as .txt is read as one


def test_count_and_size_limits_name_each_file_and_index_the_others(
    tmp_path: Path, library: tuple[LibraryActions, Settings]
) -> None:
    actions, settings = library
    big = _file(tmp_path / "in", "big.txt", _article(4) * 200)  # over max_file_mb (10 KB)
    files = [big, *(_file(tmp_path / "in", f"pier-{n}.txt", _article(n)) for n in (5, 6, 7))]
    shown = html.unescape(actions.upload(files))
    assert "big.txt: not uploaded:" in shown and "over the 0.01 MB limit per file" in shown
    assert "pier-7.txt: not uploaded: at most 3 files per upload (this one had 4)" in shown
    assert set(_indexed(actions)) == {"pier-5.txt", "pier-6.txt"}
    assert settings.max_upload_files == 3


def test_a_path_with_a_nul_is_a_message_not_an_error(library: tuple[LibraryActions, Settings]) -> None:
    actions, _ = library
    shown = actions.upload(["/tmp/gradio/abc/evil\x00.txt"])
    assert "The upload could not be read" in shown and "Traceback" not in shown
