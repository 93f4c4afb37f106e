#!/usr/bin/python
"""A host's whole release in one module call: lock check, record, container, health, verified.

Why one call: over SSH every module call costs a fresh Python on the host and a round of
controller work, and the deploy used about ten per host (lock, record, pull and replace
through community.docker, inspect, probe, verified). This module does them in order on
the host, through the Docker Engine API on the local socket with the standard library only,
so a host needs Python 3 and a Docker engine and nothing else.

The order is the one the role always had: intent before action (the record names the new
release before the container changes, so a half-done replacement still has the previous
release on record for rollback), and the old container keeps serving until the new image
is on the host.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.docker_engine import Engine, EngineError, registry_digests
from ansible.module_utils.host_lock import LockError, acquire, describe, read_lock, refusal, release
from ansible.module_utils.release_probe import probe_slice
from ansible.module_utils.release_state import (
    RECORD_FILE,
    RecordError,
    discard,
    prepare,
    read_record,
    restore_target,
    timestamp,
    verify,
)

DOCUMENTATION = r"""
module: release_host
short_description: Deploy one release to this host and wait for it to be healthy, in one call
description:
  - C(deploy) checks the inputs and the deploy lock (O(lock_path)), checks that the Docker
    engine answers, records the release on the host and writes the env file (intent before
    action), pulls O(image)@O(digest) when the engine lacks it (the old container keeps
    serving meanwhile), replaces the container when it differs from the one wanted, polls
    /health and /version for one slice (O(slice) seconds) and, once healthy, marks the
    release verified in the record.
  - C(wait) polls for one more slice and marks the release verified once healthy; call it
    in an C(until) loop after a C(deploy) that returned C(healthy=false) without failing.
  - C(inspect) reads the record and what the container runs (state, restart count, version
    label, registry digest), changing nothing.
  - C(discard) stops and removes the container and records its release as bad (a failed
    first release, with nothing to go back to).
  - A failed replacement names the engine's own error and what the host runs now; when the
    new container cannot start, the old one is put back and started again.
  - With O(restore), a C(deploy) whose new release fails its health check (after moving the
    host) puts the release to restore back in the same call before it fails (O(restore_digest),
    else the record's previous release unless that is marked bad), records the failed one as
    bad, and health-checks the restored one for one slice (RV(restored), RV(restore_error)),
    so the rollback of this host needs no second remote call.
  - Never returns the container's inspect data or the environment (secrets).
  - Supports check mode (reports what would change; does not probe a container it would replace).
options:
  action:
    description: What to do.
    type: str
    choices: [deploy, wait, inspect, discard]
    default: deploy
  state_dir:
    description: The container's private state directory (record and env file live here).
    type: path
    required: true
  container_name:
    description: Name of the container.
    type: str
    required: true
  image:
    description: Image repository without tag or digest (deploy).
    type: str
  digest:
    description: Manifest digest to deploy, C(sha256:<64 hex>).
    type: str
  version:
    description: Version /version must answer.
    type: str
  release_id:
    description: The coordinator's release id, recorded with the release.
    type: str
    default: manual
  deployed_by:
    description: Who deploys, recorded with the release.
    type: str
    default: unknown
  replaces_bad:
    description: Record the release being replaced as bad (rollbacks).
    type: bool
    default: false
  bad_reason:
    description: Why the replaced (deploy) or discarded (discard) release is bad.
    type: str
    default: ""
  allow_bad_digest:
    description: Deploy O(digest) even when the host's record marks it bad (the operator's C(--force)).
    type: bool
    default: false
  env_file:
    description: Path of the container's env file (mode 0600).
    type: path
  env_content:
    description: The env file's content, one KEY=value per line; secret, never logged or returned.
    type: str
    default: ""
  published_port:
    description: Host port the service is published on.
    type: int
  container_port:
    description: Port the service listens on inside the container.
    type: int
    default: 8080
  bind_address:
    description: Host address the published port binds to.
    type: str
    default: 127.0.0.1
  restart_policy:
    description: Docker restart policy.
    type: str
    default: unless-stopped
  stop_timeout:
    description: Seconds Docker waits after SIGTERM before SIGKILL.
    type: int
    default: 10
  init:
    description: Run an init process as PID 1.
    type: bool
    default: true
  labels:
    description: Extra container labels (coordinator.* labels are always set).
    type: dict
    default: {}
  registry_username:
    description: Registry user for the pull; empty pulls anonymously.
    type: str
    default: ""
  registry_password:
    description: Registry password for the pull; secret, never logged or returned.
    type: str
    default: ""
  registry_url:
    description: Registry the credentials are for; empty takes the image's registry host.
    type: str
    default: ""
  docker_socket:
    description: Path of the Docker API unix socket.
    type: path
    default: /var/run/docker.sock
  api_timeout:
    description: Seconds for each Docker API call (a pull of a large image may need more).
    type: float
    default: 120
  restore:
    description:
      - When this C(deploy) moved the host and its release then fails the health check, put the
        release to restore back before returning (the call still fails, naming the new release's
        failure). Not done for a first release (nothing to restore) or when the record's previous
        release is marked bad and no O(restore_digest) is given; the caller decides then.
    type: bool
    default: false
  restore_image:
    description: Image repository of the release to restore (O(restore)); empty takes O(image).
    type: str
    default: ""
  restore_digest:
    description: Digest of the release to restore (the last verified one); empty takes the record's previous release.
    type: str
    default: ""
  restore_version:
    description: Version of the release to restore, with O(restore_digest).
    type: str
    default: ""
  restore_reason:
    description: Why the failed release is bad, recorded with it when it is restored over.
    type: str
    default: ""
  lock_path:
    description: The deploy lock directory; empty to skip the lock check.
    type: path
    default: ""
  lock_id:
    description: The lock this run holds; a live lock with another id refuses the deploy.
    type: str
    default: ""
  lock_acquire:
    description:
      - Take the lock at O(lock_path) with O(lock_id) in this call (deploy), after the engine
        answered and before anything changes; someone else's live lock refuses the deploy with
        RV(lock_held), an engine that does not answer with RV(not_ready), and no lock is taken.
      - For a run over one host, so that lock, deploy and unlock are one call.
    type: bool
    default: false
  lock_release:
    description:
      - Give the lock (O(lock_path), O(lock_id)) back once the release is healthy and verified
        (deploy, wait); a failed call keeps it, so the rollback runs under it.
    type: bool
    default: false
  lock_owner:
    description: Who takes the lock (O(lock_acquire)).
    type: str
    default: ""
  lock_reason:
    description: Why the lock is taken (O(lock_acquire)).
    type: str
    default: ""
  lock_ttl:
    description: Seconds until the lock taken with O(lock_acquire) expires.
    type: int
    default: 1800
  base_url:
    description: Base URL of the service on the host, e.g. C(http://127.0.0.1:8080).
    type: str
  health_path:
    description: Path of the health endpoint.
    type: str
    default: /health
  version_path:
    description: Path of the version endpoint.
    type: str
    default: /version
  timeout:
    description: Seconds the caller gives the service to become healthy (named in messages).
    type: float
    default: 300
  slice:
    description: Seconds one call polls before returning C(healthy=false).
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
    default: 1
  stable_seconds:
    description:
      - Seconds the service must stay healthy (answering, its container not restarted) after
        its first healthy answer; catches a release that answers once and then crash-loops.
    type: float
    default: 0.5
  mismatch_limit:
    description: Consecutive polls answering a wrong version before failing early.
    type: int
    default: 5
author: coordinator maintainers
"""

EXAMPLES = r"""
- name: Deploy the release and wait for /health and /version
  release_host:
    state_dir: /var/lib/coordinator/sample
    container_name: sample
    image: registry.example.com/acme/sample
    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    version: 1.2.0
    env_file: /var/lib/coordinator/sample/app.env
    published_port: 8080
    base_url: http://127.0.0.1:8080
  register: deployed
"""

RETURN = r"""
healthy:
  description: Whether the release passed its health check in this call.
  type: bool
  returned: always
lock:
  description: The deploy lock as this call left it (C(held), C(owner), C(lock_id), ...; C(taken_over) when an expired lock was replaced).
  type: dict
  returned: when O(lock_acquire) or O(lock_release) is set
locked:
  description: Whether this run holds the lock when the call ends.
  type: bool
  returned: when O(lock_acquire) or O(lock_release) is set
lock_held:
  description: True when someone else's live lock refused the deploy.
  type: bool
  returned: when the lock refused the call
not_ready:
  description: True when the Docker engine did not answer; nothing was changed and no lock taken.
  type: bool
  returned: when the engine check failed
fatal:
  description: Whether the call failed (do not call C(wait) after it).
  type: bool
  returned: always
stage:
  description: Where a failed call stopped (inputs, lock, engine, record, pull, container, health) or C(done).
  type: str
  returned: always
moved:
  description: Whether this call moved the host's record to another release (deploy).
  type: bool
  returned: always
record:
  description: The host's release record as left.
  type: dict
  returned: when it could be read
running:
  description: What the container runs (inspect) - C(container), C(exists), C(state), C(restart_count), C(version), C(digest).
  type: dict
  returned: when action is inspect
container_changed:
  description: Whether the container was replaced or started.
  type: bool
  returned: always
previous_serving:
  description: The version the old container serves after a failed replacement, when it does.
  type: str
  returned: when a replacement failed
msg:
  description: Why the call failed; after C(healthy=false), the message for when the deadline has passed.
  type: str
  returned: unless healthy
version:
  description: Last /version body.
  type: str
  returned: when probed
running_digest:
  description: The digest the container's image has (checked against O(digest)).
  type: str
  returned: when probed
last_status:
  description: What the last poll saw.
  type: str
  returned: when probed
polls:
  description: Polls made in this call.
  type: int
  returned: when probed
elapsed:
  description: Seconds this call spent polling.
  type: float
  returned: when probed
step_seconds:
  description: Seconds each step took in this call (checks, record, pull, container, health, verified).
  type: dict
  returned: always
timeout:
  description: O(timeout), echoed for progress displays.
  type: float
  returned: always
restored:
  description:
    - The release O(restore) put back (C(image), C(digest), C(version)) and what the host runs now
      (C(running_digest), C(previous_digest), C(previous_version), C(moved)), with C(healthy) (false while it
      is still starting, then wait for it with C(wait)) and the restore's C(step_seconds).
  type: dict
  returned: when O(restore) put a release back
restore_error:
  description: Why putting the release back failed (the host needs a person); RV(restore_stage) says where.
  type: str
  returned: when O(restore) tried and failed
restore_stage:
  description: Where putting the release back stopped (inputs, bad_digest, record, pull, container, health).
  type: str
  returned: when O(restore) tried and failed
"""

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._:/-]*$")
CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Fixed suffixes of the two temporary names a replacement uses; a crash leaves them behind
# and the next replacement removes them.
NEXT, REPLACED = "-next", "-replaced"


class StepFailed(Exception):
    """A step failed; ``stage`` says which, ``extra`` what the result should also carry."""

    def __init__(self, stage: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.stage = stage
        self.extra = extra


class StepClock:
    """Seconds per step of one call, returned as ``step_seconds`` (the bench reads where a call's time goes)."""

    def __init__(self, result: dict) -> None:
        self.seconds = result.setdefault("step_seconds", {})
        self.mark = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.seconds[step] = round(self.seconds.get(step, 0.0) + now - self.mark, 3)
        self.mark = now


def check_inputs(params: dict) -> None:
    """The old role's assertions, with its message (the coordinator and tests read it)."""
    image, digest = params["image"] or "", params["digest"] or ""
    port_ok = all(isinstance(params[key], int) and 1 <= params[key] <= 65535
                  for key in ("published_port", "container_port"))
    if not (IMAGE.match(image) and "@" not in image and ":" not in image.split("/")[-1] and DIGEST.match(digest)
            and (params["version"] or "") and CONTAINER_NAME.match(params["container_name"]) and port_ok):
        raise StepFailed("inputs", "bad release inputs: docker_release_image must be a repository without tag or digest "
                         "(got %s), docker_release_digest must be sha256:<64 hex> (got %s), docker_release_version "
                         "must be set, the container name must be a Docker name and ports must be 1-65535"
                         % (image, digest))
    for line in env_lines(params["env_content"]):
        key, sep, _ = line.partition("=")
        if not sep or not ENV_KEY.match(key):
            raise StepFailed("inputs", "docker_release_env: keys must be shell-style names and values must be "
                             "single-line strings (values are not shown)")


def env_lines(content: str) -> list[str]:
    """KEY=value lines of an env file, without comments and blank lines."""
    return [line for line in content.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def image_reference(params: dict) -> str:
    return "%s@%s" % (params["image"], params["digest"])


def wanted_config(params: dict) -> dict:
    """The container create body. Its non-secret settings are hashed into a label, so a
    container created from the same settings is recognised and left alone."""
    port = "%d/tcp" % params["container_port"]
    settings = {
        "image": image_reference(params),
        "port": [params["bind_address"], params["published_port"], params["container_port"]],
        "restart": params["restart_policy"],
        "stop_timeout": params["stop_timeout"],
        "init": params["init"],
        "labels": params["labels"],
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    labels = {str(key): str(value) for key, value in params["labels"].items()}
    labels.update({"coordinator.version": params["version"], "coordinator.digest": params["digest"],
                   "coordinator.settings": digest})
    return {
        "Image": image_reference(params),
        "Env": env_lines(params["env_content"]),
        "Labels": labels,
        "ExposedPorts": {port: {}},
        "StopTimeout": params["stop_timeout"],
        "HostConfig": {
            "PortBindings": {port: [{"HostIp": params["bind_address"], "HostPort": str(params["published_port"])}]},
            "RestartPolicy": {"Name": params["restart_policy"]},
            "Init": params["init"],
        },
    }


def is_current(container: dict | None, wanted: dict, image: dict | None) -> bool:
    """Whether the existing container was created from exactly the wanted settings and env."""
    if container is None:
        return False
    config = container.get("Config") or {}
    if (config.get("Labels") or {}).get("coordinator.settings") != wanted["Labels"]["coordinator.settings"]:
        return False
    # The container's env is the image's env with ours laid over it.
    expected = dict(line.split("=", 1) for line in ((image or {}).get("Config") or {}).get("Env") or [] if "=" in line)
    expected.update(dict(line.split("=", 1) for line in wanted["Env"]))
    actual = dict(line.split("=", 1) for line in config.get("Env") or [] if "=" in line)
    return actual == expected


def serving(engine: Engine, name: str, digest: str = "") -> str:
    """What the container ``name`` runs now, in words, for a failure message."""
    try:
        container = engine.inspect_container(name)
    except EngineError:
        return "what the container runs now is unknown"
    if container is None:
        return "the container does not exist now"
    labels = (container.get("Config") or {}).get("Labels") or {}
    state = (container.get("State") or {}).get("Status", "unknown")
    if digest and labels.get("coordinator.digest") == digest:
        return "the container now runs the new image (%s)" % state
    return "the container was not changed: the old container keeps serving %s%s" % (
        labels.get("coordinator.version") or "its release", "" if state == "running" else " (it is %s)" % state)


def ensure_image(engine: Engine, params: dict) -> dict:
    """The image's inspect data, pulling it by digest first when the engine lacks it."""
    reference = image_reference(params)
    image = engine.inspect_image(reference)
    if image is None:
        auth = None
        if params["registry_username"]:
            auth = {"username": params["registry_username"], "password": params["registry_password"],
                    "serveraddress": params["registry_url"] or params["image"].split("/")[0]}
        engine.pull(params["image"], params["digest"], auth)
        image = engine.inspect_image(reference)
    if image is None or params["digest"] not in registry_digests(image, params["image"]):
        raise EngineError("the engine has no image %s after pulling it" % reference)
    return image


def replace_container(engine: Engine, params: dict, wanted: dict, had_old: bool) -> None:
    """Create the new container beside the old one, then swap them; when the new one cannot
    start, the old one is renamed back and started again, and the error says so.
    ``had_old``: whether the caller's inspection found a container under the name."""
    name = params["container_name"]
    next_name, replaced_name = name + NEXT, name + REPLACED
    if not had_old and engine.inspect_container(replaced_name) is not None:
        engine.rename(replaced_name, name)  # a replacement cut short between its renames: keep the old one
        had_old = True
    engine.remove(next_name)
    engine.remove(replaced_name)
    engine.create_container(next_name, wanted)  # fails with the old container untouched
    if had_old:
        engine.stop(name, params["stop_timeout"])
        engine.rename(name, replaced_name)
    engine.rename(next_name, name)
    try:
        engine.start(name)
    except EngineError as error:
        raise StepFailed("container", "could not pull or start %s from %s: %s; %s"
                         % (name, image_reference(params), error, restore_old(engine, name, had_old))) from None
    if had_old:
        engine.remove(replaced_name)


def restore_old(engine: Engine, name: str, had_old: bool) -> str:
    """Put the old container back after the new one failed to start; say what runs now."""
    try:
        engine.remove(name)
        if not had_old:
            return "the container does not exist now"
        engine.rename(name + REPLACED, name)
        engine.start(name)
    except EngineError as error:
        return "the old container could not be put back (%s); what runs now is unknown" % error
    return serving(engine, name).replace("the container was not changed: the old container keeps",
                                         "the old container was started again and keeps")


def refuse_bad_digest(params: dict) -> None:
    """A digest this host's record marks bad failed here before: no second try unless the run says so.

    The host keeps this fact even when the coordinator's own record of the failure was lost
    (a database gone at the wrong moment), so `resume` cannot quietly deploy it again.
    """
    if params["allow_bad_digest"]:
        return
    try:
        record = read_record(os.path.join(params["state_dir"], RECORD_FILE))
    except RecordError as error:
        raise StepFailed("record", str(error)) from None
    for entry in (record.get("current"), record.get("previous")):
        if entry and entry.get("bad") and entry.get("digest") == params["digest"]:
            raise StepFailed("bad_digest", "%s is marked bad on this host (failed at %s: %s); deploy it again only "
                             "with --force" % (params["digest"], entry.get("marked_bad_at", "?"),
                                               entry.get("bad_reason") or "no reason recorded"), bad_digest=True)


def deploy(module: AnsibleModule, params: dict, result: dict) -> None:
    """The deploy steps in order; each raises StepFailed naming its stage."""
    clock = StepClock(result)
    check_inputs(params)
    taking = params["lock_acquire"] and params["lock_path"] and not module.check_mode
    if params["lock_path"] and not taking:
        refused = refusal(params["lock_path"], params["lock_id"], time.time())
        if refused:
            raise StepFailed("lock", "%s is %s" % (os.uname()[1], refused), lock_held=True)
    refuse_bad_digest(params)
    engine = Engine(params["docker_socket"], params["api_timeout"])
    try:
        engine.version()
    except EngineError as error:
        raise StepFailed("engine", "cannot run the deploy: %s" % error, not_ready=True,
                         **lock_report(params, locked=False)) from None
    if taking:
        take_lock(params, result)
    clock.lap("checks")
    if not put_in_place(module, engine, params, result, clock):
        return
    try:
        wait(module, params, result)
    except StepFailed as failure:
        if failure.stage == "health" and result["moved"] and params["restore"] and not module.check_mode:
            restore(module, engine, params, result)
        raise


def put_in_place(module: AnsibleModule, engine: Engine, params: dict, result: dict, clock: StepClock) -> bool:
    """Record the release, pull it and replace the container; whether its health is to be waited for."""
    try:
        prepared = prepare(params, now(), module.check_mode)
    except RecordError as error:
        raise StepFailed("record", str(error)) from None
    result.update(record=prepared["record"], moved=prepared["moved"], changed=prepared["changed"])
    clock.lap("record")
    wanted = wanted_config(params)
    stage = "pull"
    try:
        image = ensure_image(engine, params) if not module.check_mode else engine.inspect_image(image_reference(params))
        clock.lap("pull")
        stage = "container"
        container = engine.inspect_container(params["container_name"])
        current = is_current(container, wanted, image)
        exists = container is not None
        running = bool(((container or {}).get("State") or {}).get("Running"))
        # Only what the steps below need stays: the inspect data holds secrets.
        container = image = None
        if not current:
            if not module.check_mode:
                replace_container(engine, params, wanted, exists)
            result["container_changed"] = True
        elif not running:
            if not module.check_mode:
                engine.start(params["container_name"])
            result["container_changed"] = True
    except EngineError as error:
        raise StepFailed(stage, "could not pull or start %s from %s: %s; %s"
                         % (params["container_name"], image_reference(params), error,
                            serving(engine, params["container_name"], params["digest"]))) from None
    clock.lap("container")
    result["changed"] = result["changed"] or result["container_changed"]
    if module.check_mode and result["container_changed"]:
        result.update(healthy=True, last_status="not probed in check mode", stage="done")
        return False
    return True


def restore(module: AnsibleModule, engine: Engine, params: dict, result: dict) -> None:
    """Put the release to restore back after this call's release failed its health check (O(restore)).

    Why here: the rollback of this host would otherwise be a second module call (a fresh
    Python on the host, a round of controller tasks) after this one returned. It is the
    rollback deploy.yml would run, in the same steps: the release (the explicit one, else
    the recorded previous one; see restore_target) recorded as current with the failed one
    marked bad, the container replaced, one slice of the health wait and, once healthy, the
    verified mark. The lock this call holds stays held (it is given back only after a
    verified release of the run). Sets ``restored``, or ``restore_error`` and ``restore_stage``.
    """
    target = restore_target(result["record"], params["restore_image"], params["restore_digest"],
                            params["restore_version"])
    if target is None:
        return
    started = time.monotonic()
    back = dict(params, replaces_bad=True, bad_reason=params["restore_reason"], lock_acquire=False,
                lock_release=False, **target)
    outcome: dict = {"changed": False, "moved": False, "container_changed": False, "healthy": False}
    try:
        check_inputs(back)
        refuse_bad_digest(back)
        if put_in_place(module, engine, back, outcome, StepClock(outcome)):
            wait(module, back, outcome)
    except StepFailed as failure:
        result.update(restore_error=str(failure), restore_stage=failure.stage)
    result["record"] = outcome.get("record", result["record"])
    result["changed"] = result["changed"] or outcome["changed"]
    result["step_seconds"]["restore"] = round(time.monotonic() - started, 3)
    if "restore_error" in result:
        return
    previous = result["record"].get("previous") or {}
    result["restored"] = dict(target, running_digest=target["digest"], previous_digest=previous.get("digest"),
                              previous_version=previous.get("version"), moved=outcome["moved"],
                              healthy=outcome["healthy"], step_seconds=outcome["step_seconds"])


def wait(module: AnsibleModule, params: dict, result: dict) -> None:
    """One slice of the health wait; mark the release verified once healthy."""
    clock = StepClock(result)
    probed = probe_slice(probe_params(params), time.monotonic())
    result.update(probed)
    clock.lap("health")
    if probed["fatal"]:
        raise StepFailed("health", probed["msg"], **probed)
    if probed["healthy"]:
        try:
            verified = verify(params, now(), module.check_mode)
        except RecordError as error:
            raise StepFailed("record", str(error)) from None
        result["record"] = verified["record"]
        result["changed"] = result["changed"] or verified["changed"]
        clock.lap("verified")
        if params["lock_release"] and params["lock_path"] and not module.check_mode:
            give_lock_back(params, result)
    result["stage"] = "done"


def lock_report(params: dict, locked: bool) -> dict:
    """The lock as found now, for a result (empty when the call does not manage the lock)."""
    if not (params["lock_acquire"] or params["lock_release"]) or not params["lock_path"]:
        return {}
    return {"lock": describe(params["lock_path"], read_lock(params["lock_path"]), time.time()), "locked": locked}


def take_lock(params: dict, result: dict) -> None:
    """Take the run's lock before anything changes; someone else's live lock refuses the call."""
    path = params["lock_path"]
    try:
        os.makedirs(os.path.dirname(path.rstrip("/")), mode=0o700, exist_ok=True)
        taken = acquire(path, owner=params["lock_owner"], reason=params["lock_reason"], version=params["version"] or "",
                        ttl=params["lock_ttl"], lock_id=params["lock_id"], now=time.time())
    except (LockError, OSError) as error:
        raise StepFailed("lock", "could not lock %s: %s" % (os.uname()[1], error), lock_held=True,
                         **lock_report(params, locked=False)) from None
    result["lock"] = dict(taken["lock"], taken_over=taken.get("taken_over"))
    result["locked"] = True


def give_lock_back(params: dict, result: dict) -> None:
    """Release the run's lock after a verified release. The release stands either way, so a
    lock that is no longer ours (expired and taken over meanwhile) is reported, not fatal."""
    try:
        released = release(params["lock_path"], params["lock_id"], False, time.time())
    except (LockError, OSError) as error:
        result.update(lock_report(params, locked=False), lock_release_error=str(error))
        return
    # Who held it stays in the report (the coordinator audits it); a takeover found by this run too.
    lock = dict(released.get("released") or released["lock"], held=False, expired=False)
    taken_over = (result.get("lock") or {}).get("taken_over")
    if taken_over:
        lock["taken_over"] = taken_over
    result.update(lock=lock, locked=False, lock_released=True)


def probe_params(params: dict) -> dict:
    keys = ("base_url", "health_path", "version_path", "timeout", "slice", "interval", "request_timeout",
            "required_successes", "stable_seconds", "mismatch_limit", "docker_socket", "container_name")
    probe = {key: params[key] for key in keys}
    probe.update(expected_version=params["version"] or "", expected_digest=params["digest"] or "")
    return probe


def discard_release(module: AnsibleModule, params: dict, result: dict) -> None:
    """Remove the container of a failed first release and record that release as bad."""
    engine = Engine(params["docker_socket"], params["api_timeout"])
    try:
        if not module.check_mode:
            for name in (params["container_name"], params["container_name"] + NEXT):
                result["container_changed"] = engine.remove(name) or result["container_changed"]
        else:
            result["container_changed"] = engine.inspect_container(params["container_name"]) is not None
    except EngineError as error:
        raise StepFailed("container", "could not remove %s: %s" % (params["container_name"], error)) from None
    try:
        discarded = discard(params, now(), module.check_mode)
    except RecordError as error:
        raise StepFailed("record", str(error)) from None
    result.update(record=discarded["record"], changed=discarded["changed"] or result["container_changed"], stage="done")


def inspect(params: dict, result: dict) -> None:
    """What runs on the host, for status.yml; reads only."""
    name = params["container_name"]
    result["record"] = read_record(os.path.join(params["state_dir"], RECORD_FILE))
    engine = Engine(params["docker_socket"], params["api_timeout"])
    try:
        container = engine.inspect_container(name)
        running = {"container": name, "exists": container is not None, "state": "missing", "restart_count": 0,
                   "version": None, "digest": None}
        if container is not None:
            config = container.get("Config") or {}
            repository = str(config.get("Image") or "").split("@")[0]
            digests = registry_digests(engine.inspect_image(str(container.get("Image") or "")), repository)
            running.update(state=(container.get("State") or {}).get("Status", "unknown"),
                           restart_count=int(container.get("RestartCount") or 0),
                           version=(config.get("Labels") or {}).get("coordinator.version"),
                           digest=digests[0] if digests else None)
        container = None  # its Config.Env holds secrets
    except EngineError as error:
        raise StepFailed("engine", "cannot read container %s: %s" % (name, error)) from None
    result.update(running=running, stage="done")


def now() -> str:
    return timestamp(datetime.datetime.now(datetime.timezone.utc))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["deploy", "wait", "inspect", "discard"], "default": "deploy"},
            "state_dir": {"type": "path", "required": True},
            "container_name": {"type": "str", "required": True},
            "image": {"type": "str"},
            "digest": {"type": "str"},
            "version": {"type": "str"},
            "release_id": {"type": "str", "default": "manual"},
            "deployed_by": {"type": "str", "default": "unknown"},
            "replaces_bad": {"type": "bool", "default": False},
            "bad_reason": {"type": "str", "default": ""},
            "allow_bad_digest": {"type": "bool", "default": False},
            "env_file": {"type": "path"},
            "env_content": {"type": "str", "default": "", "no_log": True},
            "published_port": {"type": "int"},
            "container_port": {"type": "int", "default": 8080},
            "bind_address": {"type": "str", "default": "127.0.0.1"},
            "restart_policy": {"type": "str", "default": "unless-stopped"},
            "stop_timeout": {"type": "int", "default": 10},
            "init": {"type": "bool", "default": True},
            "labels": {"type": "dict", "default": {}},
            "registry_username": {"type": "str", "default": ""},
            "registry_password": {"type": "str", "default": "", "no_log": True},
            "registry_url": {"type": "str", "default": ""},
            "docker_socket": {"type": "path", "default": "/var/run/docker.sock"},
            "api_timeout": {"type": "float", "default": 120.0},
            "restore": {"type": "bool", "default": False},
            "restore_image": {"type": "str", "default": ""},
            "restore_digest": {"type": "str", "default": ""},
            "restore_version": {"type": "str", "default": ""},
            "restore_reason": {"type": "str", "default": ""},
            "lock_path": {"type": "path", "default": ""},
            "lock_id": {"type": "str", "default": ""},
            "lock_acquire": {"type": "bool", "default": False},
            "lock_release": {"type": "bool", "default": False},
            "lock_owner": {"type": "str", "default": ""},
            "lock_reason": {"type": "str", "default": ""},
            "lock_ttl": {"type": "int", "default": 1800},
            "base_url": {"type": "str"},
            "health_path": {"type": "str", "default": "/health"},
            "version_path": {"type": "str", "default": "/version"},
            "timeout": {"type": "float", "default": 300.0},
            "slice": {"type": "float", "default": 5.0},
            "interval": {"type": "float", "default": 0.5},
            "request_timeout": {"type": "float", "default": 5.0},
            "required_successes": {"type": "int", "default": 1},
            "stable_seconds": {"type": "float", "default": 0.5},
            "mismatch_limit": {"type": "int", "default": 5},
        },
        required_if=[
            ("action", "deploy", ("image", "digest", "version", "env_file", "published_port", "base_url")),
            ("action", "wait", ("digest", "version", "base_url")),
            ("action", "discard", ("digest",)),
        ],
        supports_check_mode=True,
    )
    params = module.params
    result: dict = {"changed": False, "moved": False, "container_changed": False, "healthy": False, "fatal": False,
                    "timeout": params["timeout"], "stage": "started"}
    try:
        if params["action"] == "deploy":
            deploy(module, params, result)
        elif params["action"] == "inspect":
            inspect(params, result)
        elif params["action"] == "wait":
            result["record"] = read_record(os.path.join(params["state_dir"], RECORD_FILE))
            wait(module, params, result)
        else:
            discard_release(module, params, result)
    except StepFailed as failure:
        result.update(failure.extra)
        result.update(healthy=False, fatal=True, stage=failure.stage)
        result.pop("msg", None)
        module.fail_json(msg=str(failure), **result)
    except RecordError as error:
        module.fail_json(msg=str(error), **{**result, "fatal": True, "stage": "record"})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
