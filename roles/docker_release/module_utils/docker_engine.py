"""A small Docker Engine API client over the host's unix socket, standard library only.

Why not community.docker and the Docker SDK: they need ``requests`` in the target's Python
and import it (with the SDK) in every module call, about 0.5 CPU-s each. The deploy needs a
dozen endpoints; speaking them directly makes "Python 3 and a Docker engine" all a host
needs, and a whole deploy one module call.

Secrets: container inspect data and create bodies hold the release's environment. Nothing
here logs or returns them; callers keep only the fields they need.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import urllib.parse

MIN_API = (1, 41)  # Docker 20.10: the oldest engine whose answers this client reads
MAX_API = (1, 52)  # Docker 29: the newest API this client was checked against (endpoints and fields it uses)

# socket path -> (the engine's GET /version report, the API version chosen): one negotiation
# per socket for the whole module call, however many Engine objects it makes (a health wait
# makes one per poll). Docker 20.10 answers GET /version by running `runc --version` and
# `docker-init --version` on the host, so asking once per poll cost a host two processes a
# poll. One process is one module call, so an engine upgraded between calls is seen anew.
_NEGOTIATED: dict = {}


class EngineError(Exception):
    """The engine refused or could not be reached; the message is the engine's own, in one line."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class EngineVersionError(EngineError):
    """The engine answers, but shares no API version with this client: upgrading one side is the fix."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "no message"


def parse_api_version(text: object) -> tuple[int, int] | None:
    """Read "1.52" as (1, 52); None for anything else."""
    major, dot, minor = str(text or "").strip().partition(".")
    if not dot or not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


def format_api_version(version: tuple[int, int]) -> str:
    return "%d.%d" % version


def choose_api_version(report: dict, socket_path: str = "the Docker engine") -> tuple[int, int]:
    """The API version to speak with an engine, from its unversioned GET /version report.

    The highest both sides speak: min(our MAX_API, the engine's ApiVersion). Engine 29 refuses
    clients below 1.44, older engines refuse clients above their own version, so a fixed
    version breaks on one side or the other. Raises EngineError naming both sides' versions
    when they share none.
    """
    current = parse_api_version(report.get("ApiVersion"))
    if current is None:
        raise EngineError("%s reports no usable ApiVersion (%r) in GET /version" % (socket_path, report.get("ApiVersion")))
    minimum = parse_api_version(report.get("MinAPIVersion")) or current
    engine = "Docker engine %s at %s (API %s to %s)" % (
        report.get("Version") or "?", socket_path, format_api_version(minimum), format_api_version(current))
    if current < MIN_API:
        raise EngineVersionError("the %s is too old: this coordinator needs API %s or newer; upgrade the engine"
                          % (engine, format_api_version(MIN_API)))
    if minimum > MAX_API:
        raise EngineVersionError("the %s no longer speaks API %s, the newest this coordinator knows: upgrade coordinator"
                          % (engine, format_api_version(MAX_API)))
    return min(current, MAX_API)


class Engine:
    """The endpoints a release needs; every call raises EngineError with the engine's message.

    The API version is negotiated on first use (one unversioned GET /version) and kept for
    the rest of the module call (shared by every Engine on the same socket: _NEGOTIATED).
    """

    def __init__(self, socket_path: str = "/var/run/docker.sock", timeout: float = 120.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._report: dict | None = None
        self._api: tuple[int, int] | None = None

    @property
    def api_version(self) -> str:
        """The negotiated API version, e.g. "1.50" (asks the engine the first time)."""
        if self._api is None:
            self.version()
        assert self._api is not None
        return format_api_version(self._api)

    def request(self, method: str, path: str, query: dict | None = None, body: object = None,
                headers: dict | None = None, timeout: float | None = None, versioned: bool = True) -> tuple[int, bytes]:
        """One API call; (status, body). Raises EngineError when the socket does not answer."""
        prefix = "/v" + self.api_version if versioned else ""
        url = prefix + path + ("?" + urllib.parse.urlencode(query) if query else "")
        sent_headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            sent_headers["Content-Type"] = "application/json"
        connection = _UnixHTTPConnection(self.socket_path, self.timeout if timeout is None else timeout)
        try:
            connection.request(method, url, body=payload, headers=sent_headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            raise EngineError("the Docker engine at %s does not answer: %s"
                              % (self.socket_path, _one_line(str(error) or type(error).__name__))) from None
        finally:
            connection.close()

    def _json(self, method: str, path: str, ok: tuple = (200,), **kwargs: object) -> object:
        status, data = self.request(method, path, **kwargs)  # type: ignore[arg-type]
        if status not in ok:
            raise EngineError(_message(data, status), status)
        return json.loads(data) if data else None

    def version(self) -> dict:
        """The engine's version report, asked unversioned; raises EngineError when we share no API version.

        Every engine answers the unversioned path, whatever API versions it accepts; the
        answer is kept, so the negotiation costs one request per socket per module call.
        """
        if self._report is None and self.socket_path in _NEGOTIATED:
            self._report, self._api = _NEGOTIATED[self.socket_path]
        if self._report is None:
            status, data = self.request("GET", "/version", versioned=False)
            if status != 200:
                raise EngineError(_message(data, status), status)
            try:
                report = json.loads(data)
            except ValueError:
                raise EngineError("the Docker engine at %s answered GET /version with no JSON" % self.socket_path) from None
            self._api = choose_api_version(report if isinstance(report, dict) else {}, self.socket_path)
            self._report = report
            _NEGOTIATED[self.socket_path] = (report, self._api)
        return dict(self._report)

    def inspect_container(self, name: str) -> dict | None:
        """Inspect data (with secrets: never return it whole), or None when there is no such container."""
        return self._inspect("/containers/%s/json" % _quote(name))

    def inspect_image(self, reference: str) -> dict | None:
        """Inspect data of an image by id or reference, or None when the engine lacks it."""
        return self._inspect("/images/%s/json" % _quote(reference))

    def _inspect(self, path: str) -> dict | None:
        status, data = self.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise EngineError(_message(data, status), status)
        return json.loads(data)

    def pull(self, repository: str, digest: str, auth: dict | None = None) -> None:
        """Pull ``repository@digest``. The engine streams progress and reports a failed pull
        inside a 200 answer, so every line is read for an error."""
        headers = {"X-Registry-Auth": _auth_header(auth)} if auth else None
        status, data = self.request("POST", "/images/create", query={"fromImage": repository, "tag": digest},
                                    headers=headers)
        if status != 200:
            raise EngineError(_message(data, status), status)
        for line in data.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("error"):
                raise EngineError(_one_line(event["error"]))

    def create_container(self, name: str, config: dict) -> str:
        """Create (not start) a container; returns its id."""
        created = self._json("POST", "/containers/create", ok=(201,), query={"name": name}, body=config)
        return str(created["Id"])  # type: ignore[index]

    def start(self, name: str) -> None:
        self._json("POST", "/containers/%s/start" % _quote(name), ok=(204, 304))

    def stop(self, name: str, timeout_s: int) -> None:
        # The HTTP wait must outlast the engine's own stop timeout.
        self._json("POST", "/containers/%s/stop" % _quote(name), ok=(204, 304), query={"t": timeout_s},
                   timeout=self.timeout + timeout_s)

    def rename(self, name: str, new_name: str) -> None:
        self._json("POST", "/containers/%s/rename" % _quote(name), ok=(204,), query={"name": new_name})

    def remove(self, name: str) -> bool:
        """Force-remove a container; False when there was none."""
        status, data = self.request("DELETE", "/containers/%s" % _quote(name), query={"force": "true"})
        if status == 404:
            return False
        if status != 204:
            raise EngineError(_message(data, status), status)
        return True


def _quote(name: str) -> str:
    # Image references keep their slashes and colons, as the engine expects them in the path.
    return urllib.parse.quote(name, safe="/:")


def _message(data: bytes, status: int) -> str:
    try:
        message = json.loads(data).get("message")
    except (ValueError, AttributeError):
        message = data.decode("utf-8", errors="replace")
    return "%s (HTTP %d)" % (_one_line(message or ""), status)


def _auth_header(auth: dict) -> str:
    raw = json.dumps({key: auth[key] for key in ("username", "password", "serveraddress") if auth.get(key)})
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")


def registry_digests(image: dict | None, repository: str) -> list[str]:
    """The registry digests an image has for ``repository`` (from its RepoDigests)."""
    found = set()
    for repo_digest in (image or {}).get("RepoDigests") or []:
        repo, _, digest = str(repo_digest).rpartition("@")
        if not repository or repo == repository:
            found.add(digest)
    return sorted(found)
