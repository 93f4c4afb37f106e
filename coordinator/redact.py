"""The one secret redactor: every value that must never be printed passes through here.

Tokens, DSNs and their passwords are registered once, where they are read, and every line
the coordinator prints (output and the final error line) is redacted against them. A DSN
that cannot be parsed is never quoted, in whole or in part: the parser's own message echoes
the offending token, which may be the password, so callers get `dsn_problem()` instead.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MASK = "***"
_MIN_LENGTH = 4  # shorter values would mask ordinary words
_KEYWORD_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)")


class Redactor:
    """The set of values never to print; `redact` masks each wherever it occurs."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, value: str | None) -> None:
        """Never print `value` (ignored when empty or too short to be a secret)."""
        if value and len(value) >= _MIN_LENGTH and value not in self._secrets:
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)  # a longer secret first: its parts stay masked whole

    def add_dsn(self, dsn: str | None) -> None:
        """Register a DSN and every spelling of its password (raw, percent-decoded, quoted)."""
        if not dsn:
            return
        self.add(dsn)
        for secret in dsn_passwords(dsn):
            self.add(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


PROCESS = Redactor()
"""The process's redactor. Shared on purpose: the CLI prints the final error line after the
command's context is gone, and a secret registered anywhere must be masked there too."""


def dsn_passwords(dsn: str) -> list[str]:
    """Every form the password of `dsn` may take in a message, without trusting the DSN to parse."""
    found: list[str] = []
    if "://" in dsn:
        userinfo = dsn.split("://", 1)[1].rsplit("@", 1)[0] if "@" in dsn else ""
        if ":" in userinfo:
            raw = userinfo.split(":", 1)[1]
            found += [raw, _safe_unquote(raw)]
        try:
            query = urlsplit(dsn).query
        except ValueError:
            query = dsn.split("?", 1)[1] if "?" in dsn else ""
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            if key.strip() == "password":
                found += [value, _safe_unquote(value)]
    for match in _KEYWORD_PASSWORD.finditer(dsn):
        value = match.group(1)
        found += [value, value.strip("'"), value.strip("'").replace("\\'", "'")]
        # an unquoted value with a space: the parser's error names what follows the space
        found += [part for part in dsn[match.start(1):].split() if part]
    return [value for value in dict.fromkeys(found) if value]


def _safe_unquote(value: str) -> str:
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return value


def dsn_problem(source: str) -> str:
    """The message for a DSN that does not parse: where it came from and how to fix it, nothing of it."""
    return (f"the database DSN from {source} cannot be parsed (not shown: it may hold the password); "
            "check it: percent-encode special characters in a postgresql:// URL (% as %25, @ as %40), "
            "and quote key=value values that contain spaces (password='a b')")
