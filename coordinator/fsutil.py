"""Durable file writes: a crash leaves either the old file or the new one, never half.

Two primitives every part of the coordinator uses for state it must not lose:

* `atomic_write_text` replaces a whole file (run state, approvals, records) so a reader
  never sees a partly written file, even after power loss.
* `append_line_durable` adds one line to a log (the audit trail) and makes it reach the
  disk before returning, without ever rewriting what is already there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["append_line_durable", "atomic_write_text", "fsync_dir"]


def fsync_dir(directory: Path) -> None:
    """Flush a folder's entries so a rename or a new file in it survives power loss."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` with `text` (UTF-8) atomically and durably, with permissions `mode`.

    The temp file lives in the same folder (so `os.replace` is a same-filesystem rename)
    and is created with `mode` from the start, so secrets-adjacent state is never
    world-readable even for an instant. The parent folder must already exist.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp_path = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def append_line_durable(path: Path, line: str, mode: int = 0o600) -> None:
    """Append `line` (a newline is added if missing) to `path` and fsync before returning.

    Opened with O_APPEND so concurrent writers never overwrite each other's bytes; the
    whole line goes out in one `write` call. Callers that need ordering across processes
    (the audit log) hold their own lock around this. A newly created file also gets its
    folder entry fsync'd.
    """
    path = Path(path)
    data = (line if line.endswith("\n") else line + "\n").encode("utf-8")
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent if str(path.parent) else Path("."))


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte: `os.write` may write fewer bytes than asked (e.g. on a signal)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
