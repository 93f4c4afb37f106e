#!/usr/bin/python
"""Can this host take a release? One read-only look at what a deploy needs on the host.

Why a module of its own: a deploy that finds out half-way that the host's Python lacks a
library, or that no Docker engine answers, fails after the lock is taken and the release
record written. Looking first, with nothing but the standard library (so the look itself
cannot fail on a missing import), lets the operator fix the host before anything moves.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.docker_engine import Engine, EngineError, EngineVersionError

DOCUMENTATION = r"""
module: host_preflight
short_description: Report whether a host can take a release (read-only)
description:
  - Looks at the Python running the module, the Python libraries the deploy modules
    import, the Docker engine on its local socket, and whether the release state
    directory can be written. Changes nothing; never fails on a finding.
options:
  state_dir:
    description: Where release records and env files live (created by the first deploy).
    type: path
    required: true
  docker_socket:
    description: The Docker engine's Unix socket.
    type: path
    default: /var/run/docker.sock
  python_modules:
    description: Python libraries the host must be able to import (the coordinator's own modules need none).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for the Docker engine to answer.
    type: float
    default: 5
"""

EXAMPLES = r"""
- name: Look at the host before deploying
  host_preflight:
    state_dir: /var/lib/coordinator
  register: preflight
"""

RETURN = r"""
ready:
  description: True when every finding is ok.
  type: bool
  returned: always
findings:
  description: One entry per check, C({check, ok, detail}); detail says the fix when not ok.
  type: list
  elements: dict
  returned: always
python:
  description: C({version, executable}) of the Python that ran the module.
  type: dict
  returned: always
docker_version:
  description: The engine's version, or null when it did not answer.
  type: str
  returned: always
"""


def finding(check: str, ok: bool, detail: str) -> dict:
    return {"check": check, "ok": ok, "detail": detail}


def check_libraries(names: list[str]) -> list[dict]:
    found = []
    for name in names:
        if importlib.util.find_spec(name) is not None:
            found.append(finding(f"python library {name}", True, "importable"))
        else:
            found.append(finding(f"python library {name}", False,
                                 f"{sys.executable} cannot import {name}: install it for that Python "
                                 f"(Debian: apt-get install python3-{name}) or set ansible_python_interpreter "
                                 "to a Python that has it"))
    return found


def docker_engine_version(socket_path: str, timeout: float) -> tuple[str | None, str]:
    """The engine's version and a detail line; (None, why) when it does not answer."""
    if not os.path.exists(socket_path):
        return None, f"no Docker engine socket at {socket_path}: install and start the engine (Debian: docker.io)"
    try:
        version = str(Engine(socket_path, timeout).version().get("Version") or "?")
    except EngineVersionError as exc:
        return None, str(exc)  # it answers: starting it is not the fix
    except EngineError as exc:
        return None, f"{exc}: start it (systemctl start docker)"
    except ValueError as exc:
        return None, f"the Docker engine at {socket_path} answered GET /version with no JSON ({exc})"
    return version, f"engine {version} answers on {socket_path}"


def check_state_dir(path: str) -> dict:
    """Writable means: the directory, or the nearest existing parent the first deploy creates it in."""
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return finding("state directory", False, f"{probe} is not a directory, so {path} cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        return finding("state directory", False,
                       f"{probe} is not writable by {os.geteuid()} (read-only or wrong owner), so {path} cannot be written")
    where = path if probe == path else f"{path} (created on the first deploy under {probe})"
    return finding("state directory", True, f"writable: {where}")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state_dir": {"type": "path", "required": True},
            "docker_socket": {"type": "path", "default": "/var/run/docker.sock"},
            "python_modules": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    python = {"version": ".".join(str(part) for part in sys.version_info[:3]), "executable": sys.executable}
    findings = [finding("python", sys.version_info >= (3, 8), f"{python['version']} at {python['executable']}")]
    findings += check_libraries(params["python_modules"])
    docker_version, docker_detail = docker_engine_version(params["docker_socket"], params["timeout"])
    findings.append(finding("docker engine", docker_version is not None, docker_detail))
    findings.append(check_state_dir(params["state_dir"]))
    module.exit_json(changed=False, ready=all(item["ok"] for item in findings), findings=findings,
                     python=python, docker_version=docker_version)


if __name__ == "__main__":
    main()
