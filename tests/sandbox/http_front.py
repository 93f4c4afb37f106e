"""The request handler both stand-in fronts share: HTTP/1.1 with a length on every answer, quiet.

The token-auth registry front and the Docker engine front answer some requests themselves
and pass the rest on; each only decides in `route()`, and each runs in a thread of the
test process for as long as a `with` block.
"""

from __future__ import annotations

import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Self


class FrontHandler(BaseHTTPRequestHandler):
    """Every method goes to `route()`; answers always carry Content-Length, so keep-alive clients work."""

    protocol_version = "HTTP/1.1"

    def route(self) -> None:
        raise NotImplementedError

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.route()

    def do_HEAD(self) -> None:  # noqa: N802
        self.route()

    def do_POST(self) -> None:  # noqa: N802
        self.route()

    def do_DELETE(self) -> None:  # noqa: N802
        self.route()

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        """One whole answer; no body for HEAD."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", headers.get("Content-Length") or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class ServedInThread:
    """A socketserver run in a daemon thread for as long as a `with` block: stopped and closed on exit, also on failure."""

    def __init__(self, server: socketserver.BaseServer, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
