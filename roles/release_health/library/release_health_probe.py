#!/usr/bin/python
"""Poll a released service's /health and /version for one slice of its deadline.

Why a module rather than ``uri`` with ``until``: the wait must end early when the
container has exited or is restart-looping (an image whose entrypoint exits would
otherwise hold a deploy for the whole deadline), and that needs the container state
checked between HTTP polls, which ``until`` cannot do. The running image's digest is read
from the same Docker socket, which saves the two extra module calls (about 1.2 s over SSH)
that docker_container_info and docker_image_info cost.

Why slices: Ansible (and so ansible-runner) sees a module's result only when it returns,
so a 300 s wait in one call is silent. The role calls the probe in an ``until`` loop; each
call polls for about ``slice`` seconds and returns, and each call that ends without a
healthy answer is a ``runner_retry`` event the coordinator prints as progress. Ansible
templates the arguments once for all the retries, so a call cannot learn what earlier
calls saw: the overall deadline is kept by the role on the controller, and a streak of
healthy (or wrong-version) answers under way when the slice ends is finished before the
call returns, so that no streak is ever cut in two.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.parse
from typing import NoReturn

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: release_health_probe
short_description: Poll /health and /version for one slice of the deadline, failing early on a dead container
description:
  - When O(expected_digest) is set, first checks that the image of O(container_name) has
    that registry digest (its C(RepoDigests)), and fails at once when it has not or the
    container does not exist.
  - Then polls the health and version URLs every O(interval) seconds until
    O(required_successes) consecutive polls answer 200 (and the version matches), or
    O(slice) seconds have passed (the last poll falls on the end of the slice). A streak
    of healthy or wrong-version answers under way when the slice ends is finished first,
    so a call may run a few polls longer.
  - A call that ends without a healthy answer returns C(healthy=false) without failing,
    so the caller can call it again (C(until)) and report progress in between; its
    C(msg) is worded as the failure message for when the caller's deadline has passed.
  - Between polls it reads the container state from the Docker API (unix socket) and fails
    at once (C(fatal=true)) when the container has exited, is restarting or its restart
    count grows, and when /version keeps answering a different version.
  - Never returns the container's inspect data (its environment holds secrets).
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
  expected_digest:
    description:
      - Registry digest (C(sha256:...)) the container's image must have; empty to skip.
      - Requires O(container_name).
    type: str
    default: ""
  container_name:
    description: Container whose image and state are checked; empty to skip the state checks.
    type: str
    default: ""
  docker_socket:
    description: Path of the Docker API unix socket.
    type: path
    default: /var/run/docker.sock
  timeout:
    description:
      - Seconds the caller gives the service to become healthy (the deadline). Named in
        C(msg) and echoed back; one call never polls longer than this.
    type: float
    default: 300
  slice:
    description:
      - Seconds one call polls before returning C(healthy=false), so that the caller can
        report progress. Raised to O(interval) when smaller.
    type: float
    default: 5
  interval:
    description: Seconds between polls.
    type: float
    default: 0.5
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

EXAMPLES = r"""
- name: Wait for /health and /version until the deadline
  release_health_probe:
    base_url: http://127.0.0.1:8080
    container_name: sample
    expected_version: 1.2.0
    expected_digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    timeout: 300
    slice: 5
  register: probe
  until: probe.healthy | default(false) or probe.fatal | default(true)
  retries: 60
  delay: 0
"""

RETURN = r"""
healthy:
  description: Whether the service passed in this call.
  type: bool
  returned: always
fatal:
  description: Whether the service cannot become healthy (the call failed); a caller must not call again.
  type: bool
  returned: always
msg:
  description:
    - Why the call failed, or, when it returned C(healthy=false), the failure message for
      when the deadline has passed (C(no healthy answer within the 300 s deadline from <base_url>: last <last_status>)).
  type: str
  returned: unless healthy
version:
  description: Last body of the version endpoint (stripped).
  type: str
  returned: unless fatal
running_digest:
  description: O(expected_digest) when the container's image has it, else null.
  type: str
  returned: always
last_status:
  description:
    - What the last poll saw, e.g. C(/health answered 503), C(/version says '1.0.0', expected '1.1.0'),
      C(connection refused), C(healthy).
  type: str
  returned: unless fatal
polls:
  description: Number of polls made in this call.
  type: int
  returned: unless fatal
elapsed:
  description: Seconds this call spent polling.
  type: float
  returned: always
timeout:
  description: O(timeout), echoed back so that a progress display can tell the time left.
  type: float
  returned: always
container_state:
  description: Last observed container state (status, restart count, exit code).
  type: dict
  returned: when container_name is set and a poll was made
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
    """The service cannot become healthy; the message is the whole one-line reason."""


def docker_get(socket_path: str, path: str, timeout: float) -> tuple[int, dict]:
    """GET a Docker API path; return (status, decoded JSON body, empty unless 200)."""
    connection = _UnixHTTPConnection(socket_path, timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, json.loads(body) if response.status == 200 else {}


def inspect_container(socket_path: str, name: str, timeout: float) -> dict | None:
    """The container's inspect data (secrets included: never return it), or None when it does not exist."""
    status, data = docker_get(socket_path, "/containers/%s/json" % urllib.parse.quote(name, safe=""), timeout)
    if status == 404:
        return None
    if status != 200:
        raise ProbeFailed("Docker API answered %d for container %s" % (status, name))
    return data


def check_digest(params: dict) -> str:
    """Return the expected digest when the container's image has it; raise ProbeFailed otherwise."""
    name, expected = params["container_name"], params["expected_digest"]
    socket_path, timeout = params["docker_socket"], params["request_timeout"]
    container = inspect_container(socket_path, name, timeout)
    if container is None:
        raise ProbeFailed("container %s does not exist on %s" % (name, socket.gethostname()))
    # Only the image ID leaves the inspect data: its Config.Env holds the release's secrets.
    image_id = str(container.get("Image") or "")
    del container
    status, image = docker_get(socket_path, "/images/%s/json" % urllib.parse.quote(image_id, safe=""), timeout)
    if status not in (200, 404):
        raise ProbeFailed("Docker API answered %d for image %s" % (status, image_id))
    digests = sorted({str(repo_digest).rsplit("@", 1)[-1] for repo_digest in image.get("RepoDigests") or []})
    if expected not in digests:
        raise ProbeFailed(
            "%s on %s runs image %s with digests %s, expected %s"
            % (name, socket.gethostname(), image_id, ", ".join(digests) or "none", expected)
        )
    return expected


def container_state(socket_path: str, name: str, timeout: float) -> dict | None:
    """Return the container's State plus RestartCount, or None when it does not exist."""
    data = inspect_container(socket_path, name, timeout)
    if data is None:
        return None
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


def describe_error(error: Exception, timeout: float) -> str:
    """A short text for a failed request, e.g. "connection refused"."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    # What a published port answers while nothing listens in the container yet.
    if isinstance(error, (http.client.RemoteDisconnected, ConnectionResetError)):
        return "connection closed without an answer"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "no answer within %g s" % timeout
    return str(error) or type(error).__name__


def poll_once(params: dict) -> tuple[bool, str, str]:
    """One look at both endpoints: (answered 200 twice, version body, what was seen)."""
    base = params["base_url"].rstrip("/")
    try:
        health_status, _ = http_get(base + params["health_path"], params["request_timeout"])
        version_status, version_body = http_get(base + params["version_path"], params["request_timeout"])
    except (OSError, http.client.HTTPException) as error:
        return False, "", describe_error(error, params["request_timeout"])
    version = version_body.strip()
    if health_status != 200:
        return False, version, "%s answered %d" % (params["health_path"], health_status)
    if version_status != 200:
        return False, version, "%s answered %d" % (params["version_path"], version_status)
    return True, version, "healthy"


def poll_one_slice(params: dict, started: float) -> dict:
    """Poll for one slice; return the outcome, or raise ProbeFailed when the service cannot become healthy."""
    slice_s = min(max(params["slice"], params["interval"]), params["timeout"])
    # Past the slice a streak is finished, but never for longer than the longest streak.
    overtime_limit = max(params["required_successes"], params["mismatch_limit"])
    expected = params["expected_version"].strip()
    successes = mismatches = polls = overtime = 0
    baseline = state = None
    while True:
        polls += 1
        if params["container_name"]:
            state, baseline = check_container(params, baseline)
        answered, version, status = poll_once(params)
        if answered and expected and version != expected:
            mismatches += 1
            answered = False
            status = "%s says %r, expected %r" % (params["version_path"], version, expected)
            if mismatches >= params["mismatch_limit"]:
                raise ProbeFailed(
                    "%s is not healthy: %s (%d polls in a row)" % (params["base_url"], status, mismatches)
                )
        else:
            mismatches = 0
        successes = successes + 1 if answered else 0
        outcome = {
            "healthy": successes >= params["required_successes"],
            "version": version,
            "last_status": status,
            "polls": polls,
            "elapsed": round(time.monotonic() - started, 2),
        }
        if state is not None:
            outcome["container_state"] = state
        if outcome["healthy"]:
            return outcome
        left = slice_s - (time.monotonic() - started)
        if left <= 0:
            overtime += 1
            if not (successes or mismatches) or overtime > overtime_limit:
                return outcome
        # The last poll of a slice falls on its end, so that a call takes the whole slice.
        time.sleep(min(params["interval"], left) if left > 0 else params["interval"])


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_url": {"type": "str", "required": True},
            "health_path": {"type": "str", "default": "/health"},
            "version_path": {"type": "str", "default": "/version"},
            "expected_version": {"type": "str", "default": ""},
            "expected_digest": {"type": "str", "default": ""},
            "container_name": {"type": "str", "default": ""},
            "docker_socket": {"type": "path", "default": "/var/run/docker.sock"},
            "timeout": {"type": "float", "default": 300.0},
            "slice": {"type": "float", "default": 5.0},
            "interval": {"type": "float", "default": 0.5},
            "request_timeout": {"type": "float", "default": 5.0},
            "required_successes": {"type": "int", "default": 3},
            "mismatch_limit": {"type": "int", "default": 5},
        },
        supports_check_mode=True,
    )
    params = module.params
    started = time.monotonic()
    # Returned by every outcome, so a caller can always read them.
    common = {"changed": False, "timeout": params["timeout"], "running_digest": None}

    def fail(msg: str) -> NoReturn:
        module.fail_json(msg=msg, healthy=False, fatal=True, elapsed=round(time.monotonic() - started, 2), **common)

    if urllib.parse.urlsplit(params["base_url"]).scheme not in ("http", "https"):
        fail("base_url must start with http:// or https:// (got %s)" % params["base_url"])
    if params["timeout"] <= 0 or params["slice"] <= 0 or params["interval"] <= 0 or params["required_successes"] < 1:
        fail("timeout, slice and interval must be > 0 and required_successes >= 1")
    if params["expected_digest"] and not params["container_name"]:
        fail("expected_digest needs container_name (the container whose image is checked)")
    try:
        if params["expected_digest"]:
            common["running_digest"] = check_digest(params)
        outcome = poll_one_slice(params, started)
    except ProbeFailed as failure:
        fail(str(failure))
    except (OSError, ValueError) as error:
        fail("cannot read the container from %s: %s" % (params["docker_socket"], error))
    if not outcome["healthy"]:
        outcome["msg"] = "no healthy answer within the %g s deadline from %s: last %s" % (
            params["timeout"], params["base_url"], outcome["last_status"]
        )
    module.exit_json(fatal=False, **common, **outcome)


if __name__ == "__main__":
    main()
