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

API_PREFIX = "/v1.41"  # Docker 20.10+; every engine since speaks it


class EngineError(Exception):
    """The engine refused or could not be reached; the message is the engine's own, in one line."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


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


class Engine:
    """The endpoints a release needs; every call raises EngineError with the engine's message."""

    def __init__(self, socket_path: str = "/var/run/docker.sock", timeout: float = 120.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def request(self, method: str, path: str, query: dict | None = None, body: object = None,
                headers: dict | None = None, timeout: float | None = None) -> tuple[int, bytes]:
        """One API call; (status, body). Raises EngineError when the socket does not answer."""
        url = API_PREFIX + path + ("?" + urllib.parse.urlencode(query) if query else "")
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
        """The engine's version report (answers only when the engine is up)."""
        return self._json("GET", "/version")  # type: ignore[return-value]

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
