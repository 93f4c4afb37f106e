"""Ansible callback for the bench's census run: per host, each task's action and duration.

Enabled only for the (unmeasured) census scenario, through ANSIBLE_CALLBACK_PLUGINS /
ANSIBLE_CALLBACKS_ENABLED=bench_census, and writes JSON to $BENCH_CENSUS_OUT at the end of
the playbook. A task counts as controller-side when its action runs only in the
controller's action plugin (set_fact, assert, include_role, ...); every other task sends
a module to the host and runs a fresh Python there.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase  # type: ignore[import-untyped]

CONTROLLER_ONLY = {
    "set_fact", "assert", "fail", "debug", "include_role", "import_role", "include_tasks", "import_tasks",
    "include_vars", "meta", "set_stats", "validate_argument_spec", "add_host", "group_by", "pause", "noop",
}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_census"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[tuple[str, str], float] = {}
        self._tasks: dict[str, list[dict[str, Any]]] = {}
        self._run_started = time.perf_counter()

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._started[(host.get_name(), task._uuid)] = time.perf_counter()

    def _ended(self, result: Any, status: str) -> None:
        host, task = result._host.get_name(), result._task
        started = self._started.pop((host, task._uuid), None)
        action = str(getattr(task, "resolved_action", None) or task.action).rsplit(".", 1)[-1]
        entry = {
            "task": task.get_name(), "action": action, "status": status,
            "where": "controller" if action in CONTROLLER_ONLY else "host",
            "seconds": None if started is None else time.perf_counter() - started,
        }
        steps = (getattr(result, "_result", None) or {}).get("step_seconds")
        if isinstance(steps, dict):  # release_host says where its call's time went on the host
            entry["step_seconds"] = steps
        self._tasks.setdefault(host, []).append(entry)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._ended(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._ended(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._ended(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._ended(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        out = os.environ.get("BENCH_CENSUS_OUT")
        if out:
            with open(out, "w", encoding="utf-8") as handle:
                json.dump({"seconds": time.perf_counter() - self._run_started, "hosts": self._tasks}, handle)
