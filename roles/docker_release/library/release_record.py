#!/usr/bin/python
"""The host-side release record of one container, and its env file, in one module call.

Why a module: over SSH each module call costs 0.4-1.3 s, and a deploy used five for its
bookkeeping (create the state directory, read the record, write it, write the env file,
write it again once verified). ``prepare`` does the first four in one call and ``verify``
the last; ``read`` serves the read-only entry points.

The record file stays what ``to_nice_json`` wrote before this module existed (same keys,
same layout), because status.yml, the tests and the coordinator read it.
"""

from __future__ import annotations

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.release_state import RECORD_FILE, RecordError, discard, prepare, read_record, timestamp, verify

DOCUMENTATION = r"""
module: release_record
short_description: Read, prepare or verify the release record of a container
description:
  - The record C(<state_dir>/release.json) holds the C(current) and C(previous) release
    of one container, so a rollback knows where to go back to.
  - C(read) returns the record; a missing file is a host without releases yet
    (C(current) and C(previous) null), an unreadable or corrupt one fails naming the path.
  - C(prepare) runs before the container is replaced (intent before action). It ensures
    O(state_dir) exists with mode 0700; when the recorded current digest differs from
    O(digest) it records O(image)@O(digest) as current and the old current as previous
    (marked bad when O(replaces_bad)); and it writes O(env_content) to O(env_file)
    (mode 0600). Files are replaced atomically and only when their content changes.
  - C(verify) marks the current release verified when its digest is O(digest).
  - C(discard) is for a failed first release whose container was removed: when the current
    release is O(digest) it becomes the previous one, marked bad with O(bad_reason), and the
    host has no current release.
  - Supports check mode, reporting what would change without writing.
options:
  state_dir:
    description: The container's private state directory, C(<state_root>/<container>).
    type: path
    required: true
  action:
    description: What to do.
    type: str
    choices: [read, prepare, verify, discard]
    default: read
  image:
    description: Image repository of the release to record (prepare).
    type: str
  digest:
    description: Manifest digest of the release to record (prepare), verify (verify) or discard (discard).
    type: str
  version:
    description: Version of the release to record (prepare).
    type: str
  release_id:
    description: The coordinator's release id, recorded with the release (prepare).
    type: str
    default: manual
  deployed_by:
    description: Who deploys, recorded with the release (prepare).
    type: str
    default: unknown
  replaces_bad:
    description: Record the release being replaced as bad (prepare; set by rollbacks).
    type: bool
    default: false
  bad_reason:
    description: Why the replaced (prepare) or discarded (discard) release is bad.
    type: str
    default: ""
  env_file:
    description: Path of the container's env file (prepare).
    type: path
  env_content:
    description:
      - Content of the env file, rendered by the role (prepare). Secrets: never logged
        or returned.
      - One string rather than the env dict, because Ansible masks every no_log value
        wherever it occurs as a substring of the result; a short secret such as C(2)
        would otherwise garble every digest and timestamp in the returned record.
    type: str
author: coordinator maintainers
"""

RETURN = r"""
record:
  description: The record as found (read), as left or as it would be left in check mode (prepare, verify).
  type: dict
  returned: always
  sample: {"current": {"version": "1.2.0", "digest": "sha256:...", "verified": false}, "previous": null}
moved:
  description: Whether the record now names another current digest than before (prepare).
  type: bool
  returned: when action is prepare
path:
  description: Path of the record file.
  type: str
  returned: always
"""

def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state_dir": {"type": "path", "required": True},
            "action": {"type": "str", "choices": ["read", "prepare", "verify", "discard"], "default": "read"},
            "image": {"type": "str"},
            "digest": {"type": "str"},
            "version": {"type": "str"},
            "release_id": {"type": "str", "default": "manual"},
            "deployed_by": {"type": "str", "default": "unknown"},
            "replaces_bad": {"type": "bool", "default": False},
            "bad_reason": {"type": "str", "default": ""},
            "env_file": {"type": "path"},
            "env_content": {"type": "str", "no_log": True},
        },
        required_if=[
            ("action", "prepare", ("image", "digest", "version", "env_file", "env_content")),
            ("action", "verify", ("digest",)),
            ("action", "discard", ("digest",)),
        ],
        supports_check_mode=True,
    )
    params = module.params
    now = timestamp(datetime.datetime.now(datetime.timezone.utc))
    try:
        if params["action"] == "prepare":
            result = prepare(params, now, module.check_mode)
        elif params["action"] == "verify":
            result = verify(params, now, module.check_mode)
        elif params["action"] == "discard":
            result = discard(params, now, module.check_mode)
        else:
            path = os.path.join(params["state_dir"], RECORD_FILE)
            result = {"changed": False, "record": read_record(path), "path": path}
    except RecordError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
