"""A token-auth front for the real registry: how Docker Hub, GHCR and Gitea's registry answer.

Debian's docker-registry answers everyone; real registries answer an anonymous request
with `401` and a challenge (the distribution token-auth spec: `Bearer realm,service,scope`,
or `Basic`). This loopback HTTP proxy demands exactly that in front of the real registry,
so the coordinator's challenge flow and dockerd's authenticated pull are tested against a
real registry's manifests and blobs:

- `GET /token?service=..&scope=repository:<name>:pull` (or the OAuth POST form) issues a
  token, anonymous or for a user presenting Basic credentials; wrong credentials get 401.
- `/v2/...` without a valid token (or, in Basic mode, valid Basic credentials): 401 with
  the challenge. A token whose holder may not pull the repository: 401 insufficient_scope
  for the anonymous, 403 DENIED for a known user (as GHCR and Harbor answer).
- Everything else is passed to the registry unchanged (404 for a missing tag included).

Who may pull what is `Access`: users and passwords, and per user (`""` = anonymous) the
repository patterns (fnmatch) they may pull. Every request is recorded in `seen`, so tests
can check what a client sent (never the secrets themselves: only the scheme and user).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import http.client
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.sandbox.http_front import FrontHandler, ServedInThread

SERVICE = "coordinator-test-registry"
_REPOSITORY = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags)/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
               "proxy-authenticate", "content-length"}


@dataclass
class Access:
    """Who may pull what: `users` name -> password; `pulls` user ("" anonymous) -> repository patterns."""

    users: dict[str, str] = field(default_factory=dict)
    pulls: dict[str, list[str]] = field(default_factory=dict)
    scheme: str = "bearer"  # "bearer" (token-auth spec) or "basic"

    def may_pull(self, user: str, repository: str) -> bool:
        return any(fnmatch.fnmatchcase(repository, pattern) for pattern in self.pulls.get(user, []))


@dataclass(frozen=True)
class Seen:
    """One request the front answered: method, path, the scheme and user it authenticated with, and our status."""

    method: str
    path: str
    scheme: str  # "", "basic", "bearer"
    user: str | None  # None: no or invalid credentials; "" anonymous token
    status: int


class TokenRegistry(ServedInThread):
    """The proxy, started on 127.0.0.1 (an ephemeral port unless given) in a thread; a context manager."""

    def __init__(self, upstream: str, access: Access, port: int = 0) -> None:
        self.upstream = upstream
        self.access = access
        self.seen: list[Seen] = []
        self._tokens: dict[str, tuple[str, set[str]]] = {}
        self._lock = threading.Lock()
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        server.daemon_threads = True
        super().__init__(server, "token-registry")
        self._port = int(server.server_address[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def realm(self) -> str:
        return f"http://{self.address}/token"

    def issue(self, user: str, scopes: list[str]) -> str:
        """A token for `user` granting pull on the scopes' repositories it may pull."""
        granted = set()
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repository, _, actions = rest.rpartition(":")
            if kind == "repository" and "pull" in actions.split(",") and self.access.may_pull(user, repository):
                granted.add(repository)
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = (user, granted)
        return token

    def token_holder(self, token: str) -> tuple[str, set[str]] | None:
        with self._lock:
            return self._tokens.get(token)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)


def _basic_user(header: str, users: dict[str, str]) -> str | None:
    """The user of a valid `Basic` header, else None."""
    if not header.lower().startswith("basic "):
        return None
    try:
        name, _, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    expected = users.get(name)
    return name if expected is not None and secrets.compare_digest(expected, password) else None


def _handler_for(front: TokenRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(FrontHandler):
        def route(self) -> None:
            path = urlsplit(self.path).path
            if path == "/token":
                self._token()
            elif path == "/v2" or path.startswith("/v2/"):
                self._registry(path)
            else:
                self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": "not a registry path"}]})

        def _token(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            header = self.headers.get("Authorization", "")
            user: str | None = ""
            if self.command == "POST":  # the OAuth2 password grant docker uses with a refresh token
                form = parse_qs(self.read_body().decode("utf-8", errors="replace"))
                query = {**query, **form}
                name, password = form.get("username", [""])[0], form.get("password", [""])[0]
                if name:
                    header = "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()
            if header:
                user = _basic_user(header, front.access.users)
            if user is None:
                front.record(Seen(self.command, "/token", "basic", None, 401))
                self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                return
            token = front.issue(user, query.get("scope", []))
            front.record(Seen(self.command, "/token", "basic" if user else "", user, 200))
            self._answer(200, {"token": token, "access_token": token, "expires_in": 300})

        def _registry(self, path: str) -> None:
            match = _REPOSITORY.match(path)
            repository = match.group(1) if match else None
            header = self.headers.get("Authorization", "")
            scheme = header.split(" ", 1)[0].lower() if header else ""
            if front.access.scheme == "basic":
                user = _basic_user(header, front.access.users)
                allowed = user is not None and (repository is None or front.access.may_pull(user, repository))
            else:
                holder = front.token_holder(header[7:].strip()) if scheme == "bearer" else None
                user = holder[0] if holder else None
                allowed = holder is not None and (repository is None or repository in holder[1])
            if user is None or (not allowed and user == ""):
                front.record(Seen(self.command, path, scheme, user, 401))
                self._challenge(repository, insufficient=user == "")
                return
            if not allowed:
                front.record(Seen(self.command, path, scheme, user, 403))
                self._answer(403, {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]})
                return
            self._forward(lambda status: front.record(Seen(self.command, path, scheme, user, status)))

        def _challenge(self, repository: str | None, insufficient: bool) -> None:
            if front.access.scheme == "basic":
                challenge = f'Basic realm="{SERVICE}"'
            else:
                challenge = f'Bearer realm="{front.realm}",service="{SERVICE}"'
                if repository:
                    challenge += f',scope="repository:{repository}:pull"'
                if insufficient:
                    challenge += ',error="insufficient_scope"'
            self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                         {"WWW-Authenticate": challenge})

        def _forward(self, record: Callable[[int], None]) -> None:
            """Pass the request to the real registry and its answer back, headers and body unchanged.

            The answer is recorded before it is sent: a client that got it finds it in `seen`.
            """
            body = self.read_body()
            headers = {key: value for key, value in self.headers.items()
                       if key.lower() not in _HOP_BY_HOP and key.lower() != "authorization"}
            connection = http.client.HTTPConnection(front.upstream, timeout=60)
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                record(response.status)
                headers = {key: value for key, value in response.getheaders() if key.lower() not in _HOP_BY_HOP}
                if self.command == "HEAD":  # the size of what a GET would send
                    headers["Content-Length"] = response.getheader("Content-Length") or "0"
                self.send(response.status, data, headers)
            finally:
                connection.close()

        def _answer(self, status: int, document: dict, headers: dict[str, str] | None = None) -> None:
            self.send(status, json.dumps(document).encode("utf-8"), {
                "Content-Type": "application/json", "Docker-Distribution-API-Version": "registry/2.0", **(headers or {})})

    return Handler
