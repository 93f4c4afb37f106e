"""A scripted HTTP server for tests of the forge client and CI providers, without sockets.

    api = ScriptedAPI()
    api.on("GET", "/api/v1/repos/acme/sample/tags/v1.0.0", reply(503), reply(200, {...}))
    client = GiteaClient("https://forge.test", "acme", "sample", "t0ken", transport=api.transport())

Each route answers with its replies in order and repeats the last one; a reply may be an
`httpx.Response`, an exception to raise (a timeout), or a function of the request.
Every exchange is recorded in `api.calls`, so contract tests can validate both sides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union
from urllib.parse import parse_qsl

import httpx

Reply = Union[httpx.Response, Exception, Callable[[httpx.Request], httpx.Response]]


def reply(status: int = 200, body: Any = None, *, headers: dict[str, str] | None = None,
          content: bytes | None = None) -> httpx.Response:
    """A canned response: JSON `body`, or raw `content` (a zip)."""
    if content is not None:
        return httpx.Response(status, content=content, headers=headers)
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class Call:
    """One request the client sent, and what it got back (None when it raised)."""

    method: str
    url: str
    path: str
    query: dict[str, Any]
    json: Any
    headers: httpx.Headers
    status: int | None = None
    response_json: Any = None


@dataclass
class _Route:
    method: str
    path: str
    replies: list[Reply]
    served: int = 0

    def next(self) -> Reply:
        item = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return item


@dataclass
class ScriptedAPI:
    """Routes by exact method and path (query ignored); unknown routes answer 404."""

    routes: list[_Route] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def on(self, method: str, path: str, *replies: Reply) -> ScriptedAPI:
        if not replies:
            raise ValueError("give at least one reply")
        self.routes = [r for r in self.routes if (r.method, r.path) != (method.upper(), path)]
        self.routes.append(_Route(method.upper(), path, list(replies)))
        return self

    def served(self, method: str, path: str) -> int:
        return sum(1 for call in self.calls if call.method == method.upper() and call.path == path)

    def handle(self, request: httpx.Request) -> httpx.Response:
        query: dict[str, Any] = {}
        for key, value in parse_qsl(request.url.query.decode(), keep_blank_values=True):
            query.setdefault(key, []).append(value)
        flat = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
        body = json.loads(request.content) if request.content else None
        call = Call(request.method, str(request.url), request.url.path, flat, body, request.headers)
        self.calls.append(call)
        route = next((r for r in self.routes if r.method == request.method and r.path == request.url.path), None)
        if route is None:
            response = httpx.Response(404, json={"message": "not found", "url": str(request.url)})
        else:
            item = route.next()
            if isinstance(item, Exception):
                raise item
            response = item(request) if callable(item) and not isinstance(item, httpx.Response) else item
            # A canned response may be served many times: hand out a fresh copy each time.
            response = httpx.Response(response.status_code, headers=response.headers, content=response.content)
        call.status = response.status_code
        if response.headers.get("content-type", "").startswith("application/json"):
            call.response_json = json.loads(response.content)
        return response

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)
