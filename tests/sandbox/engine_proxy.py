"""A unix-socket front for the real dockerd that answers like another Docker Engine version.

Debian's engine is whatever the distribution ships; the engines our users run are newer
(Docker 29 refuses every client below API 1.44) or older. This proxy sits in front of the
real engine's socket and speaks for one of them, so the hosts' client negotiates against
the answers those engines give while the containers, images and pulls stay real:

- `engine29`: the unversioned `GET /version` reports ApiVersion 1.52, MinAPIVersion 1.44
  and Version 29.0.0; a path under /v1.43 or lower gets the real engine's 400 ("client
  version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your
  client to a newer version").
- `too-old`: an engine older than our minimum: ApiVersion 1.40, MinAPIVersion 1.12,
  Version 19.03.15; a path above /v1.40 gets that engine's 400 ("client version 1.52 is
  too new. Maximum supported API version is 1.40").
- `future`: an engine that dropped every version we speak: ApiVersion 1.60, MinAPIVersion
  1.53, Version 40.0.0 (no such engine yet; Docker raises its minimum every few releases).

Accepted requests go to the real engine without their version prefix (the real engine's
own latest), answers come back whole. `versions_seen` records the version prefix of every
request, so a test can check which version the client spoke.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import socketserver
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tests.sandbox.http_front import FrontHandler, ServedInThread
from pathlib import Path

_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass(frozen=True)
class Persona:
    """What an engine says about its API versions."""

    version: str
    api: tuple[int, int]
    min_api: tuple[int, int]


PERSONAS = {
    "engine29": Persona("29.0.0", (1, 52), (1, 44)),
    "too-old": Persona("19.03.15", (1, 40), (1, 12)),
    "future": Persona("40.0.0", (1, 60), (1, 53)),
}


def _text(version: tuple[int, int]) -> str:
    return "%d.%d" % version


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class EngineProxy(ServedInThread):
    """The proxy on `socket_path` in a thread, in front of `engine_socket`; a context manager."""

    def __init__(self, socket_path: Path, persona: str, engine_socket: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path
        self.persona = PERSONAS[persona]
        self.engine_socket = engine_socket
        self.versions_seen: list[str] = []
        self._lock = threading.Lock()
        if socket_path.exists():
            socket_path.unlink()
        super().__init__(_Server(str(socket_path), _handler_for(self)), "engine-proxy")
        os.chmod(socket_path, 0o600)

    def close(self) -> None:
        super().close()
        self.socket_path.unlink(missing_ok=True)

    def refusal(self, version: tuple[int, int]) -> str | None:
        """The engine's 400 message for a client speaking `version`, or None when it accepts it."""
        if version < self.persona.min_api:
            return (f"client version {_text(version)} is too old. Minimum supported API version is "
                    f"{_text(self.persona.min_api)}, please upgrade your client to a newer version")
        if version > self.persona.api:
            return f"client version {_text(version)} is too new. Maximum supported API version is {_text(self.persona.api)}"
        return None

    def note(self, version: str) -> None:
        with self._lock:
            self.versions_seen.append(version)


def _handler_for(proxy: EngineProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(FrontHandler):
        def address_string(self) -> str:
            return "unix"  # a unix socket's peer has no address

        def route(self) -> None:
            body = self.read_body()
            match = _VERSIONED.match(self.path)
            if match is None:
                proxy.note("")
                if self.path.split("?", 1)[0] == "/version":
                    self._version()
                else:
                    self._forward(self.path, body)
                return
            version = (int(match.group(1)), int(match.group(2)))
            proxy.note(_text(version))
            refusal = proxy.refusal(version)
            if refusal is not None:
                self.send(400, json.dumps({"message": refusal}).encode("utf-8"), {"Content-Type": "application/json"})
                return
            if match.group(3).split("?", 1)[0] == "/version":
                self._version()
                return
            self._forward(match.group(3), body)

        def _version(self) -> None:
            status, data, _ = self._call("GET", "/version", b"")
            report = json.loads(data) if status == 200 else {}
            report.update(Version=proxy.persona.version, ApiVersion=_text(proxy.persona.api),
                          MinAPIVersion=_text(proxy.persona.min_api))
            self.send(200, json.dumps(report).encode("utf-8"), {"Content-Type": "application/json",
                                                                  "Api-Version": _text(proxy.persona.api)})

        def _forward(self, path: str, body: bytes) -> None:
            status, data, headers = self._call(self.command, path, body)
            self.send(status, data, headers)

        def _call(self, method: str, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
            headers = {key: value for key, value in self.headers.items() if key.lower() not in _HOP_BY_HOP}
            connection = _UnixConnection(proxy.engine_socket, timeout=300)
            try:
                connection.request(method, path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                kept = {key: value for key, value in response.getheaders() if key.lower() not in _HOP_BY_HOP}
                return response.status, data, kept
            finally:
                connection.close()

    return Handler
