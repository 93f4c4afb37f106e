"""Chat and webhook notifications through apprise, which never fail a release.

A release that is live and verified stays live even when Slack is down: `announce` and
`escalate` never raise for a delivery problem. They return which targets succeeded and
which failed, so the caller can record the failures as pending and retry them later.

Target URLs often embed credentials (webhook tokens, passwords, `+Authorization`
headers). Results and messages name targets only by a redacted label, so a URL's secret
parts never reach the terminal, the release record or the audit trail.

apprise is imported inside the functions that need it: importing it costs more than the
whole `coordinator --help` budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from apprise import Apprise

__all__ = ["NotifyResult", "Notifier", "redact_url"]

# Generic webhook schemes, where apprise's privacy mode leaves the path readable even
# though a webhook path is often itself the secret.
_WEBHOOK_SCHEMES = {"json", "jsons", "form", "forms", "xml", "xmls"}
_LONG_SEGMENT = 12


@dataclass
class NotifyResult:
    """Per target outcome, each target named by its redacted label."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


class Notifier:
    """Sends announcements and escalations to the configured apprise URLs."""

    def __init__(self, announce_urls: Sequence[str], escalate_urls: Sequence[str], *, timeout: float = 10) -> None:
        self.announce_urls = list(announce_urls)
        self.escalate_urls = list(escalate_urls)
        self.timeout = timeout

    def announce(self, title: str, body: str) -> NotifyResult:
        """Tell people a release is live (info). Never raises for delivery problems."""
        return self._send(self.announce_urls, title, body, kind="info")

    def escalate(self, title: str, body: str) -> NotifyResult:
        """Page people about a rollback or a failed rollback. Never raises for delivery problems."""
        return self._send(self.escalate_urls, title, body, kind="failure")

    def _send(self, urls: Sequence[str], title: str, body: str, *, kind: str) -> NotifyResult:
        result = NotifyResult()
        for url in urls:
            label = redact_url(url)
            delivered, reason = self._send_one(url, title, body, kind)
            if delivered:
                result.succeeded.append(label)
            else:
                result.failed.append(label)
                result.errors[label] = _scrub(reason, url)
        return result

    def _send_one(self, url: str, title: str, body: str, kind: str) -> tuple[bool, str]:
        import apprise

        with apprise.LogCapture(level=apprise.logging.WARNING) as captured:
            try:
                service = _load(url, self.timeout)
                if service is None:
                    return False, "not a valid apprise URL (unknown scheme or missing parts)"
                delivered = bool(service.notify(body=body, title=title, notify_type=kind,
                                                body_format=apprise.NotifyFormat.MARKDOWN))
            except Exception as exc:  # noqa: BLE001 - a plugin bug must not fail a live release
                return False, f"{exc.__class__.__name__} in the notification plugin"
            log = captured.getvalue()
        if delivered:
            return True, ""
        return False, _last_message(log) or "delivery failed"


def _load(url: str, timeout: float) -> "Apprise | None":
    """An Apprise object holding just `url`, with our connect/read timeouts applied."""
    import apprise

    service = apprise.Apprise()
    if not service.add(url):
        return None
    for plugin in service:
        plugin.socket_connect_timeout = timeout
        plugin.socket_read_timeout = timeout
    return service


def redact_url(url: str) -> str:
    """A label for `url` that is safe to print: no password, token, query or long path segment.

    Uses apprise's own privacy form (which knows each service's token fields), then drops
    the query string (headers and tokens travel there) and masks long path segments of
    generic webhooks. An URL apprise cannot parse becomes `scheme://***`.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else "?"
    privacy = _privacy_url(url)
    if privacy is None:
        return f"{scheme}://***"
    parts = urlsplit(privacy)
    path = parts.path.rstrip("/")
    if scheme in _WEBHOOK_SCHEMES:
        path = "/".join(_mask(segment) for segment in path.split("/"))
    return f"{parts.scheme}://{parts.netloc}{path}"


def _privacy_url(url: str) -> str | None:
    try:
        import apprise

        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # noqa: BLE001 - an unparsable URL just gets the fully masked label
        return None
    if plugin is None:
        return None
    return str(plugin.url(privacy=True))


def _mask(segment: str) -> str:
    if len(segment) < _LONG_SEGMENT:
        return segment
    return f"{segment[0]}...{segment[-1]}"


def _last_message(log: str) -> str:
    """The last warning apprise logged (e.g. 'A Connection error occurred ...'), one line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if not lines:
        return ""
    # LogCapture's format is "<asctime> - <LEVEL> - <message>".
    return lines[-1].split(" - ", 2)[-1]


def _scrub(text: str, url: str) -> str:
    """Remove every part of `url` that might be secret from a message apprise produced."""
    for fragment in sorted(_url_fragments(url), key=len, reverse=True):
        text = text.replace(fragment, "***")
    return text


def _url_fragments(url: str) -> set[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    fragments: set[str] = set()
    values: list[Any] = [parts.username, parts.password, parts.netloc]
    values += parts.path.split("/")
    for pair in parts.query.split("&"):
        values += pair.split("=", 1)
    for value in values:
        if value and len(str(value)) >= 3 and not re.fullmatch(r"[\d.:]+", str(value)):
            fragments.add(str(value))
    return fragments
