#!/usr/bin/python
"""Wait until a released service answers /health and /version, or fail as soon as it cannot.

Why a module rather than ``uri`` with ``until``: the wait must end early when the
container has exited or is restart-looping (an image whose entrypoint exits would
otherwise hold a deploy for the whole deadline), and that needs the container state
checked between HTTP polls, which ``until`` cannot do.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.parse

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: release_health_probe
short_description: Poll /health and /version until healthy, failing early on a dead container
description:
  - Polls the health and version URLs every O(interval) seconds until O(required_successes)
    consecutive polls answer 200 (and the version matches), or O(timeout) passes.
  - Between polls it reads the container state from the Docker API (unix socket) and fails
    at once when the container has exited, is restarting or its restart count grows.
  - Fails early as well when /version keeps answering a different version.
options:
  base_url:
    description: Base URL of the service, e.g. C(http://127.0.0.1:45081).
    type: str
    required: true
  health_path:
    description: Path of the health endpoint.
    type: str
    default: /health
  version_path:
    description: Path of the version endpoint.
    type: str
    default: /version
  expected_version:
    description: Version /version must answer (surrounding whitespace ignored); empty to skip.
    type: str
    default: ""
  container_name:
    description: Container whose state is watched; empty to skip the state checks.
    type: str
    default: ""
  docker_socket:
    description: Path of the Docker API unix socket.
    type: path
    default: /var/run/docker.sock
  timeout:
    description: Seconds until the service must be healthy (the deadline).
    type: float
    default: 300
  interval:
    description: Seconds between polls.
    type: float
    default: 1
  request_timeout:
    description: Seconds for each HTTP request.
    type: float
    default: 5
  required_successes:
    description: Consecutive healthy polls needed to pass.
    type: int
    default: 3
  mismatch_limit:
    description: Consecutive polls answering a wrong version before failing early.
    type: int
    default: 5
author: coordinator maintainers
"""

RETURN = r"""
healthy:
  description: Whether the service passed.
  type: bool
  returned: always
version:
  description: Last body of the version endpoint (stripped).
  type: str
  returned: always
polls:
  description: Number of polls made.
  type: int
  returned: always
elapsed:
  description: Seconds spent waiting.
  type: float
  returned: always
container_state:
  description: Last observed container state (status, restart count, exit code).
  type: dict
  returned: when container_name is set
"""


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the Docker daemon's unix socket."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


class ProbeFailed(Exception):
    """The service cannot become healthy; the message says why."""


def container_state(socket_path: str, name: str, timeout: float) -> dict | None:
    """Return the container's State plus RestartCount, or None when it does not exist."""
    connection = _UnixHTTPConnection(socket_path, timeout)
    try:
        connection.request("GET", "/containers/%s/json" % urllib.parse.quote(name, safe=""))
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status == 404:
        return None
    if response.status != 200:
        raise ProbeFailed("Docker API answered %d for container %s" % (response.status, name))
    data = json.loads(body)
    state = data.get("State") or {}
    return {
        "status": state.get("Status", "unknown"),
        "restarting": bool(state.get("Restarting")),
        "exit_code": state.get("ExitCode"),
        "error": state.get("Error") or "",
        "restart_count": int(data.get("RestartCount") or 0),
    }


def http_get(url: str, timeout: float) -> tuple[int, str]:
    """GET without proxies (targets are the host's own ports); return (status, body)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("GET", path, headers={"Accept": "text/plain"})
        response = connection.getresponse()
        return response.status, response.read(65536).decode("utf-8", errors="replace")
    finally:
        connection.close()


def check_container(params: dict, baseline: dict | None) -> tuple[dict, dict]:
    """Fail early when the watched container cannot serve; return (state, baseline)."""
    name = params["container_name"]
    state = container_state(params["docker_socket"], name, params["request_timeout"])
    if state is None:
        raise ProbeFailed("container %s does not exist" % name)
    if baseline is None:
        baseline = state
    if state["status"] in ("exited", "dead"):
        raise ProbeFailed(
            "container %s has exited (exit code %s%s); not waiting for the deadline"
            % (name, state["exit_code"], ", " + state["error"] if state["error"] else "")
        )
    if state["restarting"] or state["restart_count"] > baseline["restart_count"]:
        raise ProbeFailed(
            "container %s is restart-looping (restarted %d times, last exit code %s); "
            "not waiting for the deadline" % (name, state["restart_count"], state["exit_code"])
        )
    if state["status"] != "running":
        raise ProbeFailed("container %s is %s, not running" % (name, state["status"]))
    return state, baseline


def poll_once(params: dict) -> tuple[bool, str, str]:
    """One look at both endpoints: (healthy, version body, what is wrong)."""
    base = params["base_url"].rstrip("/")
    try:
        health_status, _ = http_get(base + params["health_path"], params["request_timeout"])
        version_status, version_body = http_get(base + params["version_path"], params["request_timeout"])
    except (OSError, http.client.HTTPException) as error:
        return False, "", "no answer from %s: %s" % (base, error)
    version = version_body.strip()
    if health_status != 200:
        return False, version, "%s answered %d" % (params["health_path"], health_status)
    if version_status != 200:
        return False, version, "%s answered %d" % (params["version_path"], version_status)
    return True, version, ""


def wait_until_healthy(params: dict) -> dict:
    """Poll until healthy; raise ProbeFailed with the reason otherwise."""
    started = time.monotonic()
    deadline = started + params["timeout"]
    expected = params["expected_version"].strip()
    successes = mismatches = polls = 0
    baseline = state = None
    problem = "no poll made"
    version = ""
    while True:
        polls += 1
        if params["container_name"]:
            state, baseline = check_container(params, baseline)
        answered, version, problem = poll_once(params)
        if answered and expected and version != expected:
            mismatches += 1
            answered = False
            problem = "%s answers %r, expected %r" % (params["version_path"], version, expected)
            if mismatches >= params["mismatch_limit"]:
                raise ProbeFailed(problem + " (%d polls in a row)" % mismatches)
        else:
            mismatches = 0
        successes = successes + 1 if answered else 0
        if successes >= params["required_successes"]:
            return {
                "healthy": True,
                "version": version,
                "polls": polls,
                "elapsed": round(time.monotonic() - started, 2),
                "container_state": state or {},
            }
        if time.monotonic() + params["interval"] > deadline:
            raise ProbeFailed("not healthy within %ss: %s" % (params["timeout"], problem))
        time.sleep(params["interval"])


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_url": {"type": "str", "required": True},
            "health_path": {"type": "str", "default": "/health"},
            "version_path": {"type": "str", "default": "/version"},
            "expected_version": {"type": "str", "default": ""},
            "container_name": {"type": "str", "default": ""},
            "docker_socket": {"type": "path", "default": "/var/run/docker.sock"},
            "timeout": {"type": "float", "default": 300.0},
            "interval": {"type": "float", "default": 1.0},
            "request_timeout": {"type": "float", "default": 5.0},
            "required_successes": {"type": "int", "default": 3},
            "mismatch_limit": {"type": "int", "default": 5},
        },
        supports_check_mode=True,
    )
    params = module.params
    if urllib.parse.urlsplit(params["base_url"]).scheme not in ("http", "https"):
        module.fail_json(msg="base_url must start with http:// or https:// (got %s)" % params["base_url"])
    if params["timeout"] <= 0 or params["interval"] <= 0 or params["required_successes"] < 1:
        module.fail_json(msg="timeout and interval must be > 0 and required_successes >= 1")
    started = time.monotonic()
    try:
        result = wait_until_healthy(params)
    except ProbeFailed as failure:
        module.fail_json(
            msg="%s is not healthy: %s" % (params["base_url"], failure),
            healthy=False,
            elapsed=round(time.monotonic() - started, 2),
        )
    except (OSError, ValueError) as error:
        module.fail_json(msg="cannot read the container state from %s: %s" % (params["docker_socket"], error), healthy=False)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
