"""The one place that prints.

Plain lines, so CI logs stay readable; a leading marker tells the kind of line. Anything
that looks like a configured secret is redacted before it reaches the terminal.
"""

from __future__ import annotations

import sys
from typing import TextIO

from coordinator.redact import PROCESS, Redactor


class Output:
    """info / step / success / warn / error, with secret redaction."""

    def __init__(self, stream: TextIO | None = None, err: TextIO | None = None, *, quiet: bool = False,
                 redactor: Redactor | None = None) -> None:
        self._stream = stream
        self._err = err
        self.quiet = quiet
        self.redactor = redactor or PROCESS

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    @property
    def err(self) -> TextIO:
        return self._err or sys.stderr

    def add_secret(self, value: str | None) -> None:
        """Never print this value (tokens read from the environment or a file)."""
        self.redactor.add(value)

    def add_dsn(self, dsn: str) -> None:
        """Never print this DSN nor its password, however it is spelled."""
        self.redactor.add_dsn(dsn)

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    def _print(self, text: str, *, err: bool = False) -> None:
        stream = self.err if err else self.stream
        stream.write(self.redact(text) + "\n")
        stream.flush()

    def line(self, text: str = "") -> None:
        self._print(text)

    def info(self, text: str) -> None:
        if not self.quiet:
            self._print(f"  {text}")

    def step(self, text: str) -> None:
        if not self.quiet:
            self._print(f"==> {text}")

    def success(self, text: str) -> None:
        self._print(f"ok  {text}")

    def warn(self, text: str) -> None:
        self._print(f"!!  {text}", err=True)

    def error(self, text: str) -> None:
        self._print(f"error: {text}", err=True)

    def alarm(self, text: str) -> None:
        """Something a person must act on now (rollback, failed rollback)."""
        bar = "!" * 72
        self._print(f"{bar}\n!!  {text}\n{bar}", err=True)
