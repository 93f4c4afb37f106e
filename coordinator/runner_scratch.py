"""Where ansible-runner's private data dirs live: a per-user 0700 dir outside the state dir.

Why not the state dir: it can fill up (or turn read-only) in the middle of a release, and
the rollback playbook that must then run needs a data dir of its own. So each playbook run
gets a private dir under `$XDG_RUNTIME_DIR/coordinator-runner` (a per-user tmpfs) or, without
one, `<system temp dir>/coordinator-runner-<uid>`, both 0700 and owned by this user; a root
that is not (another user made it first, it is a symlink) is not used, and the run falls
back to a fresh `mkdtemp` dir of its own.

Leftovers of killed runs are swept before each run, and only those: every run dir holds an
`owner` file its run keeps flock'ed until it is done. The kernel frees that lock when the
process dies, so a sweep that can take it knows the run is gone; one that cannot leaves the
dir alone (a `lock status` started next to a running release never removes its dirs). A dir
whose `owner` is not locked (yet) is removed only if the pid in its name is gone as well.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coordinator.processes import pid_alive

OWNER = "owner"
PREFIX = "run-"


def scratch_root() -> Path | None:
    """This user's private root for run dirs, created 0700; None if it cannot be trusted or made."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK | os.X_OK):
        root = Path(runtime) / "coordinator-runner"
    else:
        root = Path(tempfile.gettempdir()) / f"coordinator-runner-{os.getuid()}"
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None  # not ours alone: never put a run's files where another user can reach them
    return root


def _pid_in_name(name: str) -> int | None:
    parts = name.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def sweep(root: Path) -> list[Path]:
    """Remove the run dirs under `root` whose run is gone; return what was removed."""
    removed = []
    for path in sorted(root.glob(f"{PREFIX}*")):
        try:
            fd = os.open(path / OWNER, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            pid = _pid_in_name(path.name)
            if pid is None or not pid_alive(pid):  # made, never locked, and its process is gone
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            continue
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its run is alive
            pid = _pid_in_name(path.name)
            if pid is not None and pid_alive(pid):
                continue  # unlocked but its process lives: between creating `owner` and locking it
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


@contextmanager
def private_run_dir() -> Iterator[Path]:
    """A fresh 0700 dir for one playbook run, locked as ours while it runs and removed after."""
    root = scratch_root()
    if root is not None:
        sweep(root)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-" if root else "coordinator-runner-", dir=root))
    os.chmod(path, 0o700)
    fd = os.open(path / OWNER, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)
