"""Durable writes: whole-file replacement and fsync'd appends."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from coordinator.fsutil import append_line_durable, atomic_write_text


def test_atomic_write_creates_the_file_with_the_text(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write_text(target, '{"a": 1}\n')
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n'


def test_atomic_write_is_private_by_default(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write_text(target, "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_atomic_write_applies_the_requested_mode(tmp_path: Path) -> None:
    target = tmp_path / "notes.md"
    atomic_write_text(target, "x", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_write_replaces_existing_content_entirely(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("a much longer old content that must not survive", encoding="utf-8")
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"


def test_atomic_write_keeps_the_old_file_and_leaves_no_temp_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "bad \udcff surrogate")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_atomic_write_keeps_utf8_and_newlines_verbatim(tmp_path: Path) -> None:
    target = tmp_path / "notes.md"
    atomic_write_text(target, "Grüße\r\nline\n")
    assert target.read_bytes() == "Grüße\r\nline\n".encode()


def test_append_adds_a_newline_when_missing(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    append_line_durable(log, "one")
    append_line_durable(log, "two\n")
    assert log.read_text(encoding="utf-8") == "one\ntwo\n"


def test_append_never_rewrites_existing_bytes(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"first\n")
    inode = log.stat().st_ino
    append_line_durable(log, "second")
    assert log.read_bytes() == b"first\nsecond\n"
    assert log.stat().st_ino == inode


def test_append_creates_a_private_file(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    append_line_durable(log, "x")
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
