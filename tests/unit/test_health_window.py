"""The health gate's stability window (release_probe.poll_one_slice) against a real local HTTP server."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.test_release_host_logic import load_release_host

load_release_host()
import ansible.module_utils.release_probe as probe  # noqa: E402  (loaded from the role by the line above)


class _Service(http.server.BaseHTTPRequestHandler):
    answer: Callable[[str], tuple[int, str]]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, body = type(self).answer(self.path)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[tuple[str, type[_Service]]]:
    handler = type("Handler", (_Service,), {"answer": staticmethod(lambda path: (200, "1.2.0"))})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def slice_params(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {"base_url": base_url, "health_path": "/health", "version_path": "/version", "timeout": 10.0,
            "slice": 2.0, "interval": 0.1, "request_timeout": 1.0, "required_successes": 1, "stable_seconds": 0.3,
            "mismatch_limit": 5, "container_name": "", "expected_version": "1.2.0", "expected_digest": "", **overrides}


def test_a_healthy_service_passes_after_the_stability_window_not_a_fixed_poll_count(service: Any) -> None:
    url, _handler = service
    started = time.monotonic()
    outcome = probe.poll_one_slice(slice_params(url), started)
    assert outcome["healthy"] is True
    assert outcome["elapsed"] >= 0.3  # the window is kept, however fast the answers
    assert outcome["polls"] >= 2  # the first answer and at least one at the window's end


def test_without_a_window_the_first_healthy_answer_passes(service: Any) -> None:
    url, _handler = service
    outcome = probe.poll_one_slice(slice_params(url, stable_seconds=0.0), time.monotonic())
    assert outcome["healthy"] is True and outcome["polls"] == 1


def test_a_service_that_answers_once_and_then_fails_does_not_pass(service: Any) -> None:
    url, handler = service
    answers = iter([(200, "ok"), (200, "1.2.0")])
    handler.answer = staticmethod(lambda path: next(answers, (500, "down")))
    outcome = probe.poll_one_slice(slice_params(url, slice=0.6), time.monotonic())
    assert outcome["healthy"] is False
    assert outcome["last_status"] == "/health answered 500"


def test_the_first_polls_come_quickly_so_a_fast_start_is_seen_early(service: Any) -> None:
    url, handler = service
    up_at = time.monotonic() + 0.3
    handler.answer = staticmethod(lambda path: (200, "1.2.0") if time.monotonic() >= up_at else (503, "starting"))
    started = time.monotonic()
    outcome = probe.poll_one_slice(slice_params(url, interval=1.0, stable_seconds=0.0), started)
    assert outcome["healthy"] is True
    # Polls 1 s apart would see it on the 2nd poll; backing off from 0.05 s takes more, shorter ones.
    assert outcome["polls"] >= 3


def test_a_negative_window_is_refused_naming_the_field(service: Any) -> None:
    url, _handler = service
    assert probe.validate(slice_params(url, stable_seconds=-1)) == "stable_seconds must be >= 0 (got -1)"
