"""Health probing shared by the release_health_probe and release_host modules.

One poll reads /health and /version over HTTP and the container's state from the Docker
engine; a slice polls until the service has stayed healthy for a short stability window
after its first healthy answer (or the slice's end), failing early
(ProbeFailed) when the container has exited, restart-loops or keeps answering a wrong
version, so a broken release never holds a deploy for its whole deadline.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.parse

from ansible.module_utils.docker_engine import Engine, EngineError, registry_digests


class ProbeFailed(Exception):
    """The service cannot become healthy; the message is the whole one-line reason."""


def engine_of(params: dict) -> Engine:
    """The engine a probe reads the container from (each request bounded by request_timeout)."""
    return Engine(params["docker_socket"], params["request_timeout"])


def check_digest(params: dict) -> str:
    """Return the expected digest when the container's image has it; raise ProbeFailed otherwise."""
    name, expected = params["container_name"], params["expected_digest"]
    engine = engine_of(params)
    container = engine.inspect_container(name)
    if container is None:
        raise ProbeFailed("container %s does not exist on %s" % (name, socket.gethostname()))
    # Only the image ID leaves the inspect data: its Config.Env holds the release's secrets.
    image_id = str(container.get("Image") or "")
    del container
    digests = registry_digests(engine.inspect_image(image_id), "")
    if expected not in digests:
        raise ProbeFailed(
            "%s on %s runs image %s with digests %s, expected %s"
            % (name, socket.gethostname(), image_id, ", ".join(digests) or "none", expected)
        )
    return expected


def container_state(params: dict) -> dict | None:
    """Return the container's State plus RestartCount, or None when it does not exist."""
    data = engine_of(params).inspect_container(params["container_name"])
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
    state = container_state(params)
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


# Polls before the first healthy answer come quickly at first (a service usually answers
# within a few hundred ms of its start) and back off to the configured interval.
FIRST_POLL_S = 0.05


def poll_one_slice(params: dict, started: float) -> dict:
    """Poll for one slice; return the outcome, or raise ProbeFailed when the service cannot become healthy.

    Healthy means: a healthy answer, then healthy answers (and no restart of the container)
    for ``stable_seconds`` after it, at least ``required_successes`` in a row. Before the
    first healthy answer the polls back off from FIRST_POLL_S to ``interval``, so the wait
    ends soon after the service is up instead of on a fixed poll grid.
    """
    slice_s = min(max(params["slice"], params["interval"]), params["timeout"])
    stable_s = max(float(params.get("stable_seconds") or 0.0), 0.0)
    # Past the slice a streak is finished, but never for longer than the longest streak.
    overtime_limit = max(params["required_successes"], params["mismatch_limit"],
                         int(stable_s / params["interval"]) + 2)
    expected = params["expected_version"].strip()
    successes = mismatches = polls = overtime = 0
    baseline = state = None
    first_healthy: float | None = None
    pause = min(FIRST_POLL_S, params["interval"])
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
        polled_at = time.monotonic()
        successes = successes + 1 if answered else 0
        if answered and successes == 1:
            first_healthy = polled_at
        elif not answered:
            first_healthy = None
        stable_for = polled_at - first_healthy if first_healthy is not None else 0.0
        outcome = {
            "healthy": successes >= params["required_successes"] and stable_for >= stable_s,
            "version": version,
            "last_status": status,
            "polls": polls,
            "elapsed": round(polled_at - started, 2),
        }
        if state is not None:
            outcome["container_state"] = state
        if outcome["healthy"]:
            return outcome
        left = slice_s - (polled_at - started)
        if left <= 0:
            overtime += 1
            if not (successes or mismatches) or overtime > overtime_limit:
                return outcome
        if first_healthy is not None:
            # In the stability window: the last poll falls on its end.
            pause = min(params["interval"], max(stable_s - stable_for, 0.0)) or params["interval"]
        else:
            pause = min(pause * 2, params["interval"]) if polls > 1 else pause
        # The last poll of a slice falls on its end, so that a call takes the whole slice.
        time.sleep(min(pause, left) if left > 0 else pause)


def validate(params: dict) -> str | None:
    """Why the probe's parameters cannot work, or None."""
    if urllib.parse.urlsplit(params["base_url"]).scheme not in ("http", "https"):
        return "base_url must start with http:// or https:// (got %s)" % params["base_url"]
    if params["timeout"] <= 0 or params["slice"] <= 0 or params["interval"] <= 0 or params["required_successes"] < 1:
        return "timeout, slice and interval must be > 0 and required_successes >= 1"
    if float(params.get("stable_seconds") or 0.0) < 0:
        return "stable_seconds must be >= 0 (got %s)" % params["stable_seconds"]
    if params["expected_digest"] and not params["container_name"]:
        return "expected_digest needs container_name (the container whose image is checked)"
    return None


def probe_slice(params: dict, started: float) -> dict:
    """One call's worth of probing, as a module result: ``fatal`` (with ``msg``) when the
    service cannot become healthy, else ``healthy`` and what the last poll saw; an
    unhealthy result's ``msg`` is worded for when the caller's deadline has passed."""
    result: dict = {"timeout": params["timeout"], "running_digest": None}
    problem = validate(params)
    try:
        if problem:
            raise ProbeFailed(problem)
        if params["expected_digest"]:
            result["running_digest"] = check_digest(params)
        outcome = poll_one_slice(params, started)
    except (ProbeFailed, EngineError) as failure:
        result.update(healthy=False, fatal=True, msg=str(failure), elapsed=round(time.monotonic() - started, 2))
        return result
    if not outcome["healthy"]:
        outcome["msg"] = "no healthy answer within the %g s deadline from %s: last %s" % (
            params["timeout"], params["base_url"], outcome["last_status"]
        )
    result.update(fatal=False, **outcome)
    return result
