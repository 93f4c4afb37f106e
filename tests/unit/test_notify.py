"""Notifications: per-target results, redacted labels, and never an exception."""

from __future__ import annotations

import subprocess
import sys

import pytest

import coordinator.notify as notify
from coordinator.notify import Notifier, NotifyResult, redact_url


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("json://user:hunter2@127.0.0.1:8080/hook", "json://user:****@127.0.0.1:8080/hook"),
        ("json://127.0.0.1:8080/hook?+Authorization=Bearer%20s3cr3t", "json://127.0.0.1:8080/hook"),
        ("form://hooks.example/in/ABCDEFGHIJKLMNOPQRST", "form://hooks.example/in/A...T"),
        ("slack://T0000AAAA/B1111BBBB/abcdefghijklmnopqrstuvwx", "slack://T...A/B...B/a...x"),
        ("unknown://token@host", "unknown://***"),
    ],
)
def test_labels_never_show_credentials_tokens_or_queries(url: str, label: str) -> None:
    assert redact_url(url) == label


def test_no_targets_is_a_success_with_nothing_sent() -> None:
    result = Notifier([], []).announce("title", "body")
    assert (result.ok, result.succeeded, result.failed) == (True, [], [])


def test_an_invalid_url_is_reported_as_failed_not_raised() -> None:
    result = Notifier(["unknown://s3cr3t@host"], []).announce("title", "body")
    assert result.failed == ["unknown://***"]
    assert "not a valid apprise URL" in result.errors["unknown://***"]
    assert not result.ok


def test_announce_and_escalate_use_their_own_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(Notifier, "_send_one", lambda self, url, title, body, kind: (sent.append((url, kind)) or True, ""))
    notifier = Notifier(["json://127.0.0.1:1/announce"], ["json://127.0.0.1:1/page"])
    notifier.announce("t", "b")
    notifier.escalate("t", "b")
    assert sent == [("json://127.0.0.1:1/announce", "info"), ("json://127.0.0.1:1/page", "failure")]


def test_a_crashing_plugin_is_a_failed_target_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        def notify(self, **_: object) -> bool:
            raise RuntimeError("plugin bug with https://user:s3cr3t@example")

    monkeypatch.setattr(notify, "_load", lambda url, timeout: Exploding())
    result = Notifier(["json://127.0.0.1:1/x"], []).announce("t", "b")
    assert result.failed == ["json://127.0.0.1:1/x"]
    assert "s3cr3t" not in result.errors["json://127.0.0.1:1/x"]


def test_failure_messages_have_the_urls_secret_parts_scrubbed() -> None:
    url = "json://bot:pa55word@127.0.0.1:9/hooks/T0KENVALUE123?key=APIKEY999"
    message = "Failed to send to bot:pa55word@127.0.0.1:9 path /hooks/T0KENVALUE123 with APIKEY999"
    scrubbed = notify._scrub(message, url)
    for secret in ("pa55word", "T0KENVALUE123", "APIKEY999"):
        assert secret not in scrubbed


def test_result_is_ok_only_without_failures() -> None:
    assert NotifyResult(succeeded=["a"]).ok
    assert not NotifyResult(succeeded=["a"], failed=["b"]).ok


def test_importing_the_module_does_not_import_apprise() -> None:
    code = "import sys, coordinator.notify; print('apprise' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
