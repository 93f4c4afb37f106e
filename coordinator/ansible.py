"""ansible-runner behind one call: playbook + inventory + vars in, a typed result out.

Results are read from the event stream (per-host stats, failed tasks and the
`coordinator_hosts` stats the playbooks publish), never by scraping stdout. Each run gets a
fresh private data dir (0700, outside the state dir: `coordinator.runner_scratch`) that is
removed afterwards, and `suppress_env_files` keeps
environment and extra vars off the disk: nothing secret outlives the run. What Ansible said
is kept, redacted, in the run log (`coordinator.run_logs`), whose path failures name.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from coordinator import failpoints
from coordinator.ansible_cfg import layered_ansible_cfg
from coordinator.causes import whole_cause
from coordinator.inventory import require_hosts, require_inventory, target_group
from coordinator.release import HostState
from coordinator.run_logs import RunLog, open_run_log, secrets_to_redact
from coordinator.runner_scratch import private_run_dir
from coordinator.strategy import AnsibleStrategy, strategy_envvars


@dataclass
class HostOutcome:
    ok: int = 0
    changed: int = 0
    failed: bool = False
    unreachable: bool = False
    failed_task: str | None = None
    message: str | None = None


@dataclass
class PlaybookResult:
    playbook: str
    status: str  # successful, failed, timeout, canceled
    rc: int
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    reported: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_dir: Path | None = None  # the run log's folder (stdout.txt, events.jsonl), when one was kept

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0 and not self.failed_hosts

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(name for name, host in self.hosts.items() if host.failed or host.unreachable)

    def host_states(self) -> dict[str, HostState]:
        """What each host reported about its release, in the record's own shape."""
        states: dict[str, HostState] = {}
        for name, data in self.reported.items():
            states[name] = HostState(
                version=data.get("version"),
                digest=data.get("running_digest") or data.get("digest"),
                previous_version=data.get("previous_version"),
                previous_digest=data.get("previous_digest"),
                healthy=data.get("healthy"),
            )
        return states

    def summary(self) -> str:
        """One line naming each failing host and the whole cause, and where the full log is."""
        parts = []
        for name in self.failed_hosts:
            host = self.hosts[name]
            why = "unreachable" if host.unreachable else f"task {host.failed_task!r} failed"
            detail = f": {whole_cause(host.message, see=self.log_hint())}" if host.message else ""
            parts.append(f"{name} {why}{detail}")
        if not parts and not self.ok:
            parts.append(f"ansible-runner ended {self.status} (rc {self.rc})")
        if not parts:
            return "all hosts ok"
        return self.with_log("; ".join(parts))

    def with_log(self, text: str) -> str:
        """`text` and, for a failed run that kept a log, where that log is."""
        return f"{text} (full log: {self.log_hint()})" if self.log_dir is not None and not self.ok else text

    def log_hint(self) -> str:
        return str(self.log_dir / "stdout.txt") if self.log_dir is not None else "the Ansible output"


ProgressCallback = Callable[[str], None]

# The deploy call waits for the first slice ("Deploy the release and wait for /health ..."),
# the calls after it for one slice each ("Wait for /health ... until the deadline"); one
# host's wait is followed across both tasks.
_HEALTH_WAIT_TASKS = ("Wait for /health", "Deploy the release and wait for /health")
_TASK_ENDS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")


@dataclass(frozen=True)
class _HealthWaitSoFar:
    """One host's health wait up to an event."""

    waited_s: float | None  # since the wait's runner_on_start; None when the events carry no time
    earlier_polls: int = 0  # polls reported by the slices before this event


class _ProgressLines:
    """Turns events into progress lines, following each host's health wait across its retries.

    The probe returns once per slice (a `runner_retry` event each), so the time waited and
    the polls made are summed here. Times are the events' `created` stamps: the
    controller's clock, which also keeps the role's deadline.
    """

    def __init__(self) -> None:
        self._started: dict[str, datetime | None] = {}
        self._polls: dict[str, int] = {}

    def for_event(self, event: dict[str, Any]) -> str | None:
        kind, data = event.get("event"), event.get("event_data", {})
        return _progress_line(kind, data, self._follow_health_wait(kind, data, _created_at(event)))

    def _follow_health_wait(self, kind: str | None, data: dict[str, Any], created: datetime | None) -> _HealthWaitSoFar | None:
        host = data.get("host")
        if not host or not _is_health_wait(data):
            return None
        if kind == "runner_on_start":
            if host not in self._started:  # else the wait goes on from the deploy call's slice
                self._started[host], self._polls[host] = created, 0
            return None
        if host not in self._started:
            return None
        started = self._started[host]
        so_far = _HealthWaitSoFar(
            waited_s=(created - started).total_seconds() if created and started else None,
            earlier_polls=self._polls[host],
        )
        result = data.get("res") or {}
        if kind == "runner_retry":
            self._polls[host] += int(result.get("polls") or 0)
        elif kind == "runner_on_ok" and result.get("healthy") is False and not result.get("fatal"):
            self._polls[host] += int(result.get("polls") or 0)  # the deploy call's slice; the wait goes on
        elif kind in _TASK_ENDS:
            del self._started[host], self._polls[host]
        return so_far


def _is_health_wait(data: dict[str, Any]) -> bool:
    return str(data.get("task", "")).startswith(_HEALTH_WAIT_TASKS)


def _message_of(result: dict[str, Any]) -> str | None:
    if result.get("_ansible_no_log"):
        return "(output hidden by no_log)"
    message = result.get("msg") or result.get("stderr") or result.get("reason")
    if not message:
        return None
    if "Host key verification failed" in str(message):
        # ssh's first lines are a banner of @ signs; the cause is at the end.
        return ("Failed to connect to the host via ssh: Host key verification failed (the host's key is not the one "
                "pinned in known_hosts)")
    return whole_cause(str(message), limit=None) or None  # cut where it is shown, next to the log's path


def runner_envvars(ansible_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a playbook run: our ansible.cfg and roles, and SSH host keys checked.

    ansible-runner turns host key checking off unless ANSIBLE_HOST_KEY_CHECKING is set,
    which would make ssh accept any host key (Ansible passes StrictHostKeyChecking=no
    before the inventory's own options, and ssh takes the first value). Deploying to a host
    we cannot identify is exactly what the pinned known_hosts is there to stop.
    """
    return {
        "ANSIBLE_CONFIG": str(ansible_dir / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ansible_dir / "roles"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "ANSIBLE_NOCOLOR": "1",
        **(extra or {}),
    }


def run_playbook(
    *,
    ansible_dir: Path,
    playbook: str,
    inventory: Path,
    extravars: dict[str, Any],
    ident: str,
    strategy: AnsibleStrategy,
    env: dict[str, str] | None = None,
    timeout_s: float = 1800,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    run_log_dir: Path | None = None,
    control_dir: Path | None = None,
    allow_no_hosts: bool = False,
) -> PlaybookResult:
    """Run `playbooks/<playbook>` against `inventory` and return what happened per host.

    An inventory path that does not exist, or a successful run that matched no host, raises
    NoHosts (exit 2): acting on nobody is never a success, unless the environment says
    `allow_no_hosts` (a staging that is only a formality).

    The runner's private data dir never lives in the state dir (`runner_scratch`): a full
    state dir must not stop the rollback playbook. With `run_log_dir` (the state dir), the
    run's output and events are kept in its run log (`result.log_dir`), best effort. `control_dir`
    holds the SSH ControlMaster sockets (the run's `Context.ssh_control`), so the playbook
    runs of one coordinator run reuse their connections; without it Ansible's default applies.
    `strategy` is the config's `ansible.strategy`, required so that no run can leave it out:
    it is set after `env`, so nothing a caller or the operator's shell passes replaces it.
    """
    import ansible_runner  # heavy: imported only when a playbook actually runs

    group = target_group(playbook, extravars)
    if not allow_no_hosts:
        require_inventory(inventory, group)
    result = PlaybookResult(playbook=playbook, status="unknown", rc=-1)
    run_log: RunLog | None = None
    progress = _ProgressLines()

    def handle_event(event: dict[str, Any]) -> bool:
        data = event.get("event_data", {})
        host = data.get("host")
        kind = event.get("event")
        if run_log is not None:
            run_log.record(event)
        if kind == "runner_on_ok":
            failpoints.hit(f"during:{ident}")
        if kind == "runner_on_failed" and host and not data.get("ignore_errors"):
            outcome = result.hosts.setdefault(host, HostOutcome())
            outcome.failed = True
            outcome.failed_task = data.get("task")
            outcome.message = _message_of(data.get("res", {}))
        elif kind == "runner_on_unreachable" and host:
            outcome = result.hosts.setdefault(host, HostOutcome())
            outcome.unreachable = True
            outcome.failed_task = data.get("task")
            outcome.message = _message_of(data.get("res", {}))
        elif kind == "playbook_on_stats":
            _read_stats(result, data)
        if on_progress is not None:
            line = progress.for_event(event)
            if line:
                on_progress(line)
        return False  # do not keep event files on disk

    scratch = ExitStack()
    try:
        private_dir = scratch.enter_context(private_run_dir())
        # Ours is the base ansible.cfg; an operator's ANSIBLE_CONFIG is layered on top for this run.
        envvars = runner_envvars(ansible_dir, {"ANSIBLE_CONFIG": str(layered_ansible_cfg(ansible_dir, private_dir)),
                                               **(env or {}), **strategy_envvars(strategy)})
        if control_dir is not None:
            envvars["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_dir)
        if run_log_dir is not None:
            try:
                run_log = open_run_log(run_log_dir, ident, playbook,
                                       secrets_to_redact(os.environ, envvars, extravars))
                result.log_dir = run_log.folder
            except OSError as error:  # a full or read-only state dir: the playbook (maybe a rollback) still runs
                if on_progress is not None:
                    on_progress(f"run log not kept ({error.strerror or error}); the playbook runs without it")
        runner = ansible_runner.run(
            private_data_dir=str(private_dir),
            project_dir=str(ansible_dir),
            playbook=str(ansible_dir / "playbooks" / playbook),
            inventory=str(inventory),
            extravars=extravars,
            envvars=envvars,
            ident=ident,
            quiet=True,
            suppress_env_files=True,
            suppress_ansible_output=True,
            event_handler=handle_event,
            cancel_callback=(lambda: cancel.is_set()) if cancel is not None else None,
            timeout=int(timeout_s),
        )
        result.status = runner.status
        result.rc = runner.rc if runner.rc is not None else -1
    finally:
        scratch.close()
        if run_log is not None:
            run_log.note(f"ansible-runner ended {result.status} (rc {result.rc})")
            run_log.close()
    if result.status == "successful" and not allow_no_hosts:
        require_hosts(inventory, group, set(result.hosts))
    return result


def _read_stats(result: PlaybookResult, data: dict[str, Any]) -> None:
    """Fold playbook_on_stats into the per-host outcomes (dark = unreachable)."""
    for name in data.get("processed") or {}:
        result.hosts.setdefault(name, HostOutcome())
    for name, count in (data.get("ok") or {}).items():
        result.hosts.setdefault(name, HostOutcome()).ok = count
    for name, count in (data.get("changed") or {}).items():
        result.hosts.setdefault(name, HostOutcome()).changed = count
    for name in data.get("failures") or {}:
        result.hosts.setdefault(name, HostOutcome()).failed = True
    for name in data.get("dark") or {}:
        result.hosts.setdefault(name, HostOutcome()).unreachable = True
    artifact = data.get("artifact_data") or {}
    reported = artifact.get("coordinator_hosts") or {}
    if isinstance(reported, dict):
        result.reported = {str(k): v for k, v in reported.items() if isinstance(v, dict)}


def _created_at(event: dict[str, Any]) -> datetime | None:
    """When ansible-runner created the event (its clock runs on the controller, like the deadline)."""
    try:
        return datetime.fromisoformat(str(event["created"]))
    except (KeyError, ValueError):
        return None


def _progress_line(kind: str | None, data: dict[str, Any], health_wait: _HealthWaitSoFar | None = None) -> str | None:
    """One plain line for the events worth showing, or None.

    `health_wait` is the host's health wait up to this event, when the event belongs to one.
    """
    if kind == "playbook_on_play_start":
        return f"play: {data.get('play', '')}"
    res = data.get("res") or {}
    host = data.get("host", "?")
    if kind == "runner_on_start" and _is_health_wait(data):
        return f"  {host}: {data.get('task', '')} ..."
    if kind == "runner_retry" and "last_status" in res:
        left = ""
        if health_wait is not None and health_wait.waited_s is not None and "timeout" in res:
            left = f", {max(0, math.ceil(float(res['timeout']) - health_wait.waited_s))} s left"
        return (f"  {host}: waiting for health: attempt {res.get('attempts', '?')}/{res.get('retries', '?')}, "
                f"last {res['last_status']}{left}")
    if kind == "runner_on_ok" and "polls" in res and res.get("healthy"):
        polls = int(res["polls"]) + (health_wait.earlier_polls if health_wait else 0)
        waited = res.get("elapsed", "?")  # this slice's only, unless the whole wait is known
        if health_wait is not None and health_wait.waited_s is not None:
            waited = round(health_wait.waited_s, 1)
        return f"  {host}: healthy, /version {res.get('version', '?')} after {polls} poll(s) in {waited} s"
    if kind in _TASK_ENDS:
        state = {"runner_on_ok": "ok", "runner_on_failed": "FAILED", "runner_on_unreachable": "UNREACHABLE",
                 "runner_on_skipped": "skipped"}[kind]
        if kind == "runner_on_ok" and res.get("changed"):
            state = "changed"
        if state in ("ok", "skipped"):
            return None  # only what changes or fails is worth a line
        why = _message_of(res) if state in ("FAILED", "UNREACHABLE") and not data.get("ignore_errors") else None
        return f"  {host}: {data.get('task', '')} [{state}]" + (f": {whole_cause(why, see='the run log')}" if why else "")
    return None
