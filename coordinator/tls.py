"""The one trust store every HTTPS client of the coordinator uses: the system's, plus a CA file.

The forge, the CI API, the registry's digest check and the built-in staging smoke test all
verify TLS against the same roots: the operating system's trust store (where an internal CA
is installed with `update-ca-certificates`, and where Docker on the hosts looks too) and, when
the configuration names one, a PEM CA file *added* to it. Before, the registry check and the
smoke test used httpx's own default (certifi's bundle), so a registry or a staging URL behind
an internal CA in the system store failed there while the forge behind the same CA worked.

Verification is never switched off. A context is built once per CA file for the whole process:
loading the system store costs about 50 ms, and one context is safe to share between clients.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path


class CaFileError(ValueError):
    """A configured CA file cannot be loaded; callers name the setting it came from."""


@functools.lru_cache(maxsize=None)
def trust_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trust store, plus `ca_file` (PEM) when given; raises CaFileError when that
    file is missing, unreadable or holds no certificate. `ca_file` has no default on purpose:
    the cache keys on the arguments as passed, so `trust_context()` would build a second
    context beside `trust_context(None)`."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CaFileError(f"{ca_file} cannot be loaded ({reason}): point it at a PEM file of CA certificates") from exc
    return context


def untrusted_certificate(exc: BaseException) -> str | None:
    """Why the server's certificate was refused, when that is what `exc` (an httpx error, which
    wraps the ssl module's) comes down to; None for any other failure. Callers say so instead of
    "unreachable": waiting or resuming does not fix a CA that is missing from the trust store."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or str(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
