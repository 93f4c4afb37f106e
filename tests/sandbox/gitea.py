"""A stand-in Gitea 1.26 that also plays CI, for the sandbox and the contract tests.

    python -m tests.sandbox.gitea --host 127.0.0.1 --port 45300 --git-root DIR/git \\
        --registry 127.0.0.1:45000 --token-file DIR/forge-token \\
        --state-file DIR/forge-state.json --log DIR/gitea.log

In-process (tests): `StandinGitea(git_root, registry, token).start()` returns the base URL
(an ephemeral 127.0.0.1 port by default); `.stop()` ends the server and the CI threads.

The API (`gitea_api`) answers as Gitea 1.26 does for the endpoints the coordinator uses,
quirks included; the CI (`ci`) turns pushed `v*` tags into Actions runs that build real
images. See docs/CONTRACTS.md section 2.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qsl, urlsplit

from tests.sandbox.ci import Builder, CIRunner, baseline
from tests.sandbox.gitea_api import ForgeAPI, Reply, Request
from tests.sandbox.gitea_store import Store

HOST = "127.0.0.1"
MAX_BODY_BYTES = 1 << 20
log = logging.getLogger("sandbox.gitea")


class _Handler(BaseHTTPRequestHandler):
    """Translates HTTP to `ForgeAPI.handle` and back; logs method, path and status only
    (never headers: they carry the token)."""

    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, the body waits for a delayed ACK.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            reply = self.server.api.error(413, f"request body over {MAX_BODY_BYTES} bytes")
        else:
            body = self.rfile.read(length) if length else b""
            request = Request(method=self.command, path=parts.path, query=dict(parse_qsl(parts.query)),
                              headers={k.lower(): v for k, v in self.headers.items()}, body=body)
            try:
                reply = self.server.api.handle(request)
            except Exception:
                log.exception("%s %s crashed", self.command, parts.path)
                reply = self.server.api.error(500, "internal error in the stand-in; see its log")
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.info("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ForgeAPI


class StandinGitea:
    """The server and its CI, startable in-process; state persists to `state_file`."""

    def __init__(self, git_root: Path, registry: str, token: str, *, host: str = HOST, port: int = 0,
                 state_file: Path | None = None, builder: Builder | None = None) -> None:
        if not token:
            raise ValueError("token is empty; give the stand-in the token clients will send")
        self.git_root = Path(git_root)
        self.host, self.port = host, port
        self.store = Store(state_file)
        fresh = not self.store.repos
        self.ci = CIRunner(self.store, self.git_root, registry, builder)
        self.api = ForgeAPI(self.store, self.git_root, token, lambda: self.base_url,
                            secrets.token_bytes(32), self.reset)
        if fresh:
            baseline(self.store, self.git_root)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        """Bind, serve in a background thread, start CI; return the base URL."""
        server = _Server((self.host, self.port), _Handler)
        server.api = self.api
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="standin-gitea-http", daemon=True)
        self._thread.start()
        self.ci.start()
        log.info("stand-in Gitea serving %s for %s", self.base_url, self.git_root)
        return self.base_url

    def stop(self) -> None:
        self.ci.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None

    def reset(self) -> None:
        """Forget issues, releases, runs, statuses and config; existing tags count as seen."""
        self.store.reset()
        baseline(self.store, self.git_root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox.gitea", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=45300)
    parser.add_argument("--git-root", type=Path, required=True, help="holds {owner}/{repo}.git bare repos")
    parser.add_argument("--registry", required=True, help="host:port images are pushed to")
    parser.add_argument("--token-file", type=Path, required=True, help="file holding the accepted token")
    parser.add_argument("--state-file", type=Path, required=True, help="JSON file the state persists to")
    parser.add_argument("--log", type=Path, required=True, help="log file")
    args = parser.parse_args(argv)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        token = args.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"cannot read --token-file {args.token_file}: {exc.strerror}; create it first", file=sys.stderr)
        return 2
    if not token:
        print(f"--token-file {args.token_file} is empty; write the token into it", file=sys.stderr)
        return 2
    standin = StandinGitea(args.git_root, args.registry, token, host=args.host, port=args.port,
                           state_file=args.state_file)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    standin.start()
    while not stopping.wait(1.0):
        pass
    standin.stop()
    log.info("stand-in Gitea stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
