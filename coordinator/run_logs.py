"""What Ansible said, kept: every playbook run's full output and event stream.

ansible-runner's private folder is deleted after each run (it would hold secrets), so
without this a failed deploy leaves only the one-line summary. Each run gets its own folder
`<state_dir>/logs/<ident>/<UTC time>-<playbook>/` (ident = release id + environment +
playbook, or the command's name), holding `stdout.txt` (Ansible's own output, at the
verbosity `-v`/ANSIBLE_VERBOSITY asks for) and `events.jsonl` (one event per line, as the
runner reported it). Folders are 0700 and files 0600, because hosts, paths and task output
are not for every local user; values that look like secrets are replaced by `***` before
anything is written. Old runs are pruned by age and by count when a new run starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from coordinator.redact import Redactor

KEEP_DAYS = 30
"""Run folders older than this are removed when a new run starts."""

KEEP_RUNS = 200
"""At most this many run folders are kept (the newest)."""

# Environment variables and extra vars whose values are redacted from the logs by name.
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|DSN|DATABASE_URL|CREDENTIAL|PRIVATE|API_KEY|AUTH", re.IGNORECASE)
_MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


def logs_root(state_dir: Path) -> Path:
    return state_dir / "logs"


def secrets_to_redact(*sources: Mapping[str, Any]) -> list[str]:
    """Values of secret-looking names in the given mappings (env, extra vars), longest first."""
    found = {str(value) for source in sources for name, value in source.items()
             if _SECRET_NAME.search(str(name)) and isinstance(value, str) and len(value) >= _MIN_SECRET_LEN}
    return sorted(found, key=len, reverse=True)


class RunLog:
    """One playbook run's folder: `stdout.txt` and `events.jsonl`, written as events arrive."""

    def __init__(self, folder: Path, secrets: Iterable[str]) -> None:
        self.folder = folder
        self._redactor = Redactor()
        for secret in secrets:
            self._redactor.add(secret)
        self._stdout = _private_file(folder / "stdout.txt")
        self._events = _private_file(folder / "events.jsonl")
        self.failure: OSError | None = None
        """Why the log stopped being written (a full disk): the run goes on, the log is cut."""

    @property
    def stdout_path(self) -> Path:
        return self.folder / "stdout.txt"

    def redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def record(self, event: Mapping[str, Any]) -> None:
        """Keep one runner event: its stdout lines and the whole event, redacted."""
        stdout = event.get("stdout")
        self._write(self._stdout, self.redact(str(stdout)) + "\n" if stdout else "")
        self._write(self._events, self.redact(json.dumps(event, default=str, sort_keys=True)) + "\n")

    def _write(self, handle: TextIO, text: str) -> None:
        """Best effort: a log that cannot be written never stops the playbook it records
        (a rollback on a full state dir must still run)."""
        if not text or self.failure is not None:
            return
        try:
            handle.write(text)
        except OSError as error:
            self.failure = error

    def note(self, text: str) -> None:
        """A line of our own in stdout.txt (how the run ended), marked as the coordinator's."""
        self._write(self._stdout, f"[coordinator] {self.redact(text)}\n")

    def close(self) -> None:
        for handle in (self._stdout, self._events):
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as error:
                self.failure = self.failure or error
            finally:
                try:
                    handle.close()
                except OSError:
                    pass  # the flush above already said why; nothing more can be kept


def open_run_log(state_dir: Path, ident: str, playbook: str, secrets: Iterable[str],
                 *, now: datetime | None = None) -> RunLog:
    """Create this run's folder (pruning old ones first) and open its files."""
    root = logs_root(state_dir)
    _private_dir(root)
    prune(root)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    release_dir = root / _safe_name(ident)
    _private_dir(release_dir)
    folder = release_dir / f"{stamp}-{_safe_name(playbook.removesuffix('.yml'))}"
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    return RunLog(folder, secrets)


def runs_for(state_dir: Path, release_id: str, environments: Iterable[str]) -> list[Path]:
    """A release's run folders (idents `<release id>-<environment>-<playbook>`), oldest first."""
    root = logs_root(state_dir)
    if not root.is_dir():
        return []
    prefixes = tuple(f"{release_id}-{env}-" for env in environments)
    folders = [run for ident in root.iterdir() if ident.is_dir() and ident.name.startswith(prefixes)
               for run in ident.iterdir() if run.is_dir()]
    return sorted(folders, key=lambda run: run.name)


def prune(root: Path, *, keep_days: float = KEEP_DAYS, keep_runs: int = KEEP_RUNS, now: float | None = None) -> list[Path]:
    """Remove run folders older than `keep_days`, then all but the newest `keep_runs`; return what went."""
    if not root.is_dir():
        return []
    runs = sorted((run for ident in root.iterdir() if ident.is_dir() for run in ident.iterdir() if run.is_dir()),
                  key=lambda run: run.stat().st_mtime, reverse=True)
    cutoff = (now if now is not None else time.time()) - keep_days * 86400
    removed = [run for index, run in enumerate(runs) if index >= keep_runs or run.stat().st_mtime < cutoff]
    for run in removed:
        shutil.rmtree(run, ignore_errors=True)
    for ident in root.iterdir():
        if ident.is_dir() and not any(ident.iterdir()):
            ident.rmdir()
    return removed


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:120] or "run"


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _private_file(path: Path) -> TextIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")
