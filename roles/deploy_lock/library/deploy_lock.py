#!/usr/bin/python
"""A host-side deploy lock: an atomic ``mkdir`` holding who, why, what and until when.

Why ``mkdir``: creating a directory either succeeds or fails atomically on every local
filesystem, so two operators (or a coordinator and an operator) cannot both win. Unlike
Kamal's lock it expires: a lock past its expiry may be taken over, so a cancelled job
cannot block deploys for weeks. Releasing needs the lock's id (or an explicit force).
"""

from __future__ import annotations

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.docker_engine import Engine, EngineError
from ansible.module_utils.host_lock import LockError, acquire, describe, read_lock, release

DOCUMENTATION = r"""
module: deploy_lock
short_description: Acquire, release or report a host-side deploy lock
description:
  - The lock is the directory O(path), created atomically with C(mkdir); C(info.json)
    inside it holds owner, reason, version, lock id and expiry.
  - C(acquire) succeeds when the lock is free, already ours (same O(lock_id)), or expired
    (taken over; the old holder is returned in RV(taken_over)).
  - C(release) removes the lock when O(lock_id) matches, or when O(force) is set.
options:
  path:
    description: Lock directory; acquiring creates its parent (mode 0700) when missing.
    type: path
    required: true
  action:
    description: What to do.
    type: str
    choices: [acquire, release, status]
    default: status
  owner:
    description: Who holds the lock (required to acquire).
    type: str
    default: ""
  reason:
    description: Why the lock is held.
    type: str
    default: ""
  version:
    description: Release version being deployed under the lock.
    type: str
    default: ""
  ttl:
    description: Seconds until the lock expires and may be taken over.
    type: int
    default: 1800
  lock_id:
    description: Id of the lock; generated when acquiring without one.
    type: str
    default: ""
  force:
    description: Release the lock even when O(lock_id) does not match.
    type: bool
    default: false
  docker_socket:
    description:
      - When set, C(acquire) first checks that the Docker engine answers on this unix socket
        and fails with RV(not_ready) (taking no lock) when it does not, so a host that cannot
        run the deploy is never locked. Empty skips the check.
    type: path
    default: ""
author: coordinator maintainers
"""

RETURN = r"""
lock:
  description: The lock as found or left (C(held), C(expired), C(owner), C(reason), C(version), C(lock_id), C(acquired_at), C(expires_at), C(host), C(path)).
  type: dict
  returned: always
acquired:
  description: Whether this call holds the lock now (acquire only).
  type: bool
  returned: always
not_ready:
  description: True when the host cannot run a deploy (O(docker_socket) does not answer); no lock was taken.
  type: bool
  returned: when acquire failed on the engine check
taken_over:
  description: The expired lock that was replaced, if any.
  type: dict
  returned: when an expired lock was taken over
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "action": {"type": "str", "choices": ["acquire", "release", "status"], "default": "status"},
            "owner": {"type": "str", "default": ""},
            "reason": {"type": "str", "default": ""},
            "version": {"type": "str", "default": ""},
            "ttl": {"type": "int", "default": 1800},
            "lock_id": {"type": "str", "default": ""},
            "force": {"type": "bool", "default": False},
            "docker_socket": {"type": "path", "default": ""},
        },
        supports_check_mode=False,
    )
    params = module.params
    if params["ttl"] <= 0:
        module.fail_json(msg="deploy_lock_ttl must be a positive number of seconds (got %s)" % params["ttl"])
    if params["action"] == "acquire" and params["docker_socket"]:
        try:
            Engine(params["docker_socket"], timeout=10).version()
        except EngineError as error:
            module.fail_json(msg="cannot run the deploy: %s" % error, acquired=False, not_ready=True,
                             lock=describe(params["path"], read_lock(params["path"]), time.time()))
    if params["action"] == "acquire":
        os.makedirs(os.path.dirname(params["path"].rstrip("/")), mode=0o700, exist_ok=True)
    now = time.time()
    try:
        if params["action"] == "acquire":
            result = acquire(params["path"], owner=params["owner"], reason=params["reason"], version=params["version"],
                             ttl=params["ttl"], lock_id=params["lock_id"], now=now)
        elif params["action"] == "release":
            result = release(params["path"], params["lock_id"], params["force"], now)
        else:
            result = {"changed": False, "acquired": False, "lock": describe(params["path"], read_lock(params["path"]), now)}
    except LockError as error:
        module.fail_json(msg=str(error), acquired=False, lock=describe(params["path"], read_lock(params["path"]), now))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
