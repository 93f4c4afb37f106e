"""CPU-seconds one measured action costs the controller and the "hosts", from Linux accounting.

Everything here runs on one machine (the hosts are loopback sshd sessions), and every
process lives in the same cgroup except the app containers, so the split is made by
process tree from /proc and getrusage, not by cgroup:

controller  this process's own CPU (ansible-runner's in-process event handling, the
            recipe's health polling) plus its reaped children (getrusage RUSAGE_SELF +
            RUSAGE_CHILDREN deltas): ansible-playbook, its forks and their ssh clients.
            The ssh ControlPersist masters detach from the playbook; this process is made
            a child subreaper so they are re-parented here, and `end_ssh_masters` stops
            and reaps them after the run so their CPU lands in RUSAGE_CHILDREN too.
target      the sandbox sshd listener's tree: utime+stime+cutime+cstime of the listener and
            every live descendant (per-connection sshd processes, the shells and module
            Pythons they start, the docker CLI of the recipe); what exited was reaped by
            its parent and sits in the parent's cutime/cstime. Plus dockerd, containerd and
            the containerd shims (utime+stime+cutime+cstime deltas of the live processes).
machine     busy CPU-seconds of the whole machine (/proc/stat); what is neither of the
            above (the app containers' own start-up, runc, shims that ended in the run,
            anything else on the box) is the difference.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.timing import machine_busy_seconds

TICKS = os.sysconf("SC_CLK_TCK")
DOCKER_DAEMONS = ("dockerd", "containerd")  # comm prefixes; containerd-shim* included
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    started: int  # start time in ticks since boot: (pid, started) names one process
    own_s: float  # utime + stime
    reaped_s: float  # cutime + cstime: children it has waited for

    @property
    def total_s(self) -> float:
        return self.own_s + self.reaped_s


def _read(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is field 3 of proc(5): ppid 4, utime 14, stime 15, cutime 16, cstime 17, starttime 22
    return Proc(pid=pid, ppid=int(fields[1]), comm=comm, started=int(fields[19]),
                own_s=(int(fields[11]) + int(fields[12])) / TICKS, reaped_s=(int(fields[13]) + int(fields[14])) / TICKS)


def processes() -> dict[int, Proc]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _read(int(entry))) is not None:
            found[proc.pid] = proc
    return found


def tree_seconds(root: int, procs: dict[int, Proc]) -> float:
    """CPU-seconds spent by `root` and everything it started, as far as /proc still knows."""
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid in procs:
            total += procs[pid].total_s
            stack.extend(children.get(pid, []))
    return total


def become_subreaper() -> None:
    """Orphans of our descendants (ssh ControlPersist masters) are re-parented to us, not init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def end_ssh_masters(deadline_s: float = 10.0) -> None:
    """Stop the ssh masters adopted from the last run and reap them (their CPU then counts)."""
    me = os.getpid()
    adopted = [proc.pid for proc in processes().values() if proc.ppid == me and proc.comm == "ssh"]
    for pid in adopted:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    until = time.monotonic() + deadline_s
    for pid in adopted:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() > until:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)


@dataclass(frozen=True)
class Snapshot:
    controller_self_s: float
    controller_children_s: float
    sshd_tree_s: float
    docker: dict[tuple[int, int], float]
    machine_s: float


def snapshot(sshd_pid: int) -> Snapshot:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    procs = processes()
    docker = {(p.pid, p.started): p.total_s for p in procs.values() if p.comm.startswith(DOCKER_DAEMONS)}
    return Snapshot(controller_self_s=me.ru_utime + me.ru_stime, controller_children_s=kids.ru_utime + kids.ru_stime,
                    sshd_tree_s=tree_seconds(sshd_pid, procs), docker=docker, machine_s=machine_busy_seconds())


@dataclass(frozen=True)
class Cost:
    """What one measured action cost: wall seconds and CPU-seconds by side."""

    seconds: float
    controller_runner_s: float  # this process (ansible-runner in-process, or the recipe's polling)
    controller_playbook_s: float  # reaped children: ansible-playbook tree and ssh clients
    target_sshd_s: float  # the sshd sessions and what they ran
    target_docker_s: float  # dockerd + containerd (+ shims alive at both ends)
    machine_s: float

    @property
    def controller_s(self) -> float:
        return self.controller_runner_s + self.controller_playbook_s

    @property
    def target_s(self) -> float:
        return self.target_sshd_s + self.target_docker_s


def measure(action: Callable[[], object], sshd_pid: int) -> Cost:
    """Run `action` and return its wall time (ssh masters excluded) and CPU by side (included)."""
    end_ssh_masters()
    before = snapshot(sshd_pid)
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    end_ssh_masters()
    _wait_for_sessions_to_close(sshd_pid)
    after = snapshot(sshd_pid)
    docker = sum(value - before.docker.get(key, 0.0) for key, value in after.docker.items())
    return Cost(seconds=seconds, controller_runner_s=after.controller_self_s - before.controller_self_s,
                controller_playbook_s=after.controller_children_s - before.controller_children_s,
                target_sshd_s=after.sshd_tree_s - before.sshd_tree_s, target_docker_s=docker,
                machine_s=after.machine_s - before.machine_s)


def _wait_for_sessions_to_close(sshd_pid: int, deadline_s: float = 5.0) -> None:
    """Closed connections are reaped by the listener (and so counted in its cutime) shortly after."""
    until = time.monotonic() + deadline_s
    while time.monotonic() < until:
        if not any(proc.ppid == sshd_pid for proc in processes().values()):
            return
        time.sleep(0.05)
