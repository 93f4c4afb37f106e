"""Notifications over real HTTP to an in-process receiver on 127.0.0.1.

apprise does the sending exactly as it would to a chat service's webhook; the receiver
records what arrived so the tests can check title and body reached the other side.
"""

from __future__ import annotations

import json
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from coordinator.notify import Notifier

TITLE = "sample v1.2.0 released to production"
BODY = "**sample v1.2.0** is live on prod1, prod2\n- Digest: `sha256:feed`"


@dataclass
class Received:
    path: str
    content_type: str
    body: bytes


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append(Received(self.path, self.headers.get("Content-Type", ""), self.rfile.read(length)))
            status = 500 if self.path.startswith("/broken") else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Traffic must stay on 127.0.0.1: never route it through a configured proxy."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_json_target_receives_title_and_body(receiver: Receiver) -> None:
    url = receiver.url("json", "/hooks/announce")
    result = Notifier([url], []).announce(TITLE, BODY)
    assert (result.ok, result.succeeded) == (True, [url])
    (request,) = receiver.requests
    payload = json.loads(request.body)
    assert (request.path, payload["title"], payload["message"]) == ("/hooks/announce", TITLE, BODY)


def test_form_target_receives_title_and_body(receiver: Receiver) -> None:
    result = Notifier([receiver.url("form", "/form")], []).announce(TITLE, BODY)
    assert result.ok
    (request,) = receiver.requests
    fields = parse_qs(request.body.decode())
    assert (fields["title"], fields["message"]) == ([TITLE], [BODY])


def test_xml_target_receives_title_and_body(receiver: Receiver) -> None:
    result = Notifier([receiver.url("xml", "/xml")], []).announce(TITLE, BODY)
    assert result.ok
    (request,) = receiver.requests
    texts = {element.tag.rsplit("}", 1)[-1]: element.text for element in ET.fromstring(request.body).iter()}
    assert (texts["Subject"], texts["Message"]) == (TITLE, BODY)


def test_escalation_goes_to_the_escalation_targets_only(receiver: Receiver) -> None:
    notifier = Notifier([receiver.url("json", "/announce")], [receiver.url("json", "/page")])
    assert notifier.escalate("ROLLED BACK v1.2.0", "production rolled back to 1.1.0").ok
    assert [request.path for request in receiver.requests] == ["/page"]
    assert json.loads(receiver.requests[0].body)["type"] == "failure"


def test_a_closed_port_is_a_reported_failure_not_an_exception() -> None:
    url = f"json://127.0.0.1:{closed_port()}/hook"
    result = Notifier([url], []).announce(TITLE, BODY)
    assert (result.ok, result.failed) == (False, [url])
    assert result.errors[url]


def test_one_failing_target_does_not_stop_the_others(receiver: Receiver) -> None:
    dead = f"json://127.0.0.1:{closed_port()}/hook"
    alive = receiver.url("json", "/ok")
    result = Notifier([dead, alive], []).announce(TITLE, BODY)
    assert (result.failed, result.succeeded) == ([dead], [alive])


def test_an_error_status_is_a_failure(receiver: Receiver) -> None:
    url = receiver.url("json", "/broken")
    result = Notifier([url], []).announce(TITLE, BODY)
    assert result.failed == [url]
    assert "500" in result.errors[url]


def test_credentials_in_a_target_url_never_appear_in_the_result(receiver: Receiver) -> None:
    url = f"json://bot:pa55word@127.0.0.1:{receiver.port}/broken?+X-Api-Key=K3Y-VALUE"
    result = Notifier([url], []).announce(TITLE, BODY)
    rendered = repr(result)
    assert "pa55word" not in rendered and "K3Y-VALUE" not in rendered
    assert receiver.requests[0].path.startswith("/broken")
