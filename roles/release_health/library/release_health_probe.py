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

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.release_probe import probe_slice

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
            "required_successes": {"type": "int", "default": 1},
            "stable_seconds": {"type": "float", "default": 0.5},
            "mismatch_limit": {"type": "int", "default": 5},
        },
        supports_check_mode=True,
    )
    result = probe_slice(module.params, time.monotonic())
    if result["fatal"]:
        module.fail_json(changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
