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
import json
import os
import stat
import tempfile
from dataclasses import dataclass

from ansible.module_utils.basic import AnsibleModule

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

RECORD_FILE = "release.json"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DIR_MODE = 0o700
FILE_MODE = 0o600


class RecordError(Exception):
    """The record or the env file cannot be read or written; the message names the path."""


@dataclass(frozen=True)
class Release:
    """The release ``prepare`` records as current."""

    image: str
    digest: str
    version: str
    release_id: str
    replaces_bad: bool


def empty_record() -> dict:
    """The record of a host that has had no release yet."""
    return {"current": None, "previous": None}


def timestamp(moment: datetime.datetime) -> str:
    """UTC in the record's format (what ``now(utc=true, fmt=...)`` gave the old tasks)."""
    return moment.astimezone(datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)


def parse_record(text: str, path: str) -> dict:
    """The record in ``text``, or RecordError naming ``path`` when it is not one."""
    try:
        record = json.loads(text)
    except ValueError as error:
        raise RecordError(
            "the release record %s is not valid JSON (%s); fix it, or move it aside to make the host "
            "count as having no recorded release" % (path, error)
        ) from None
    if not isinstance(record, dict) or any(
        not isinstance(record.get(key), (dict, type(None))) for key in ("current", "previous")
    ):
        raise RecordError(
            "the release record %s is not an object with 'current' and 'previous' releases (each an object "
            "or null); fix it, or move it aside to make the host count as having no recorded release" % path
        )
    return {**empty_record(), **record}


def read_record(path: str) -> dict:
    """The record at ``path``; a missing file is a host without releases yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return empty_record()
    except (OSError, UnicodeDecodeError) as error:
        raise RecordError("cannot read the release record %s: %s" % (path, error)) from None
    return parse_record(text, path)


def record_json(record: dict) -> str:
    """The file content, byte for byte what ``to_nice_json`` plus a newline wrote before."""
    return json.dumps(record, indent=4, sort_keys=True, separators=(",", ": ")) + "\n"


def needs_move(record: dict, digest: str) -> bool:
    """Whether recording ``digest`` changes the record: redeploying the same digest does not."""
    return (record["current"] or {}).get("digest") != digest


def compose_record(record: dict, release: Release, deployed_by: str, bad_reason: str, now: str) -> dict:
    """The record after moving to ``release``: the old current becomes previous.

    A rollback (``release.replaces_bad``) marks the replaced release bad, so a second
    rollback does not bounce back to it.
    """
    old = record["current"]
    if release.replaces_bad and old:
        previous = {**old, "bad": True, "marked_bad_at": now, "bad_reason": bad_reason}
    else:
        previous = old
    return {
        "current": {
            "version": release.version,
            "digest": release.digest,
            "image": release.image,
            "deployed_by": deployed_by,
            "deployed_at": now,
            "release_id": release.release_id,
            "verified": False,
        },
        "previous": previous,
    }


def mark_verified(record: dict, digest: str, now: str) -> dict | None:
    """The record with its current release verified, or None when there is nothing to mark."""
    current = record["current"]
    if not current or current.get("digest") != digest or current.get("verified"):
        return None
    return {**record, "current": {**current, "verified": True, "verified_at": now}}


def mark_discarded(record: dict, digest: str, bad_reason: str, now: str) -> dict | None:
    """The record after a failed first release was removed: nothing current, the release kept as bad.

    None when the current release is another one (nothing of ours to discard).
    """
    current = record["current"]
    if not current or current.get("digest") != digest:
        return None
    return {"current": None, "previous": {**current, "bad": True, "marked_bad_at": now, "bad_reason": bad_reason}}


def write_atomically(path: str, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half.

    The temporary file lives in the same directory (``os.replace`` is atomic only within
    one filesystem) and is private from its creation: the env file holds secrets.
    """
    directory = os.path.dirname(path) or "."
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path), suffix=".tmp")
    except OSError as error:
        raise RecordError("cannot write %s: %s" % (path, error)) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise RecordError("cannot write %s: %s" % (path, error)) from None
    fsync_directory(directory)


def fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (best effort: some filesystems refuse)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def ensure_private_dir(path: str, check_mode: bool) -> bool:
    """Ensure ``path`` is a directory with mode 0700, creating missing parents 0700 too
    (as ``ansible.builtin.file`` did); return whether anything changed."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if not check_mode:
            parent = os.path.dirname(path.rstrip("/"))
            if parent and not os.path.isdir(parent):
                ensure_private_dir(parent, check_mode)
            try:
                os.mkdir(path, DIR_MODE)
                os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
            except OSError as error:
                raise RecordError("cannot create the state directory %s: %s" % (path, error)) from None
        return True
    except OSError as error:
        raise RecordError("cannot inspect the state directory %s: %s" % (path, error)) from None
    if not stat.S_ISDIR(info.st_mode):
        raise RecordError("the state directory %s exists but is not a directory" % path)
    return ensure_mode(path, info, DIR_MODE, check_mode)


def ensure_mode(path: str, info: os.stat_result, mode: int, check_mode: bool) -> bool:
    if stat.S_IMODE(info.st_mode) == mode:
        return False
    if not check_mode:
        try:
            os.chmod(path, mode)
        except OSError as error:
            raise RecordError("cannot set mode %o on %s: %s" % (mode, path, error)) from None
    return True


def ensure_record_mode(path: str, check_mode: bool) -> bool:
    """Keep an unchanged record private (a hand-edited copy may have come back 0644)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise RecordError("cannot inspect the release record %s: %s" % (path, error)) from None
    return ensure_mode(path, info, FILE_MODE, check_mode)


def ensure_file(path: str, data: bytes, check_mode: bool) -> bool:
    """Ensure the private file ``path`` holds ``data``; return whether anything changed."""
    try:
        with open(path, "rb") as handle:
            unchanged = handle.read() == data
            info = os.fstat(handle.fileno())
    except FileNotFoundError:
        unchanged, info = False, None
    except OSError as error:
        raise RecordError("cannot read %s: %s" % (path, error)) from None
    if unchanged and info is not None:
        return ensure_mode(path, info, FILE_MODE, check_mode)
    if not check_mode:
        write_atomically(path, data)
    return True


def prepare(params: dict, now: str, check_mode: bool) -> dict:
    """Record the release before the container is replaced, and write its env file."""
    state_dir = params["state_dir"]
    path = os.path.join(state_dir, RECORD_FILE)
    release = Release(
        image=params["image"],
        digest=params["digest"],
        version=params["version"],
        release_id=params["release_id"],
        replaces_bad=params["replaces_bad"],
    )
    changed = ensure_private_dir(state_dir, check_mode)
    record = read_record(path)
    moved = needs_move(record, release.digest)
    if moved:
        record = compose_record(record, release, params["deployed_by"], params["bad_reason"], now)
        if not check_mode:
            write_atomically(path, record_json(record).encode("utf-8"))
        changed = True
    else:
        changed = ensure_record_mode(path, check_mode) or changed
    changed = ensure_file(params["env_file"], params["env_content"].encode("utf-8"), check_mode) or changed
    return {"changed": changed, "record": record, "moved": moved, "path": path}


def verify(params: dict, now: str, check_mode: bool) -> dict:
    """Mark the current release verified after its health check passed."""
    path = os.path.join(params["state_dir"], RECORD_FILE)
    record = read_record(path)
    verified = mark_verified(record, params["digest"], now)
    if verified is None:
        return {"changed": False, "record": record, "path": path}
    if not check_mode:
        write_atomically(path, record_json(verified).encode("utf-8"))
    return {"changed": True, "record": verified, "path": path}


def discard(params: dict, now: str, check_mode: bool) -> dict:
    """Record a removed first release as bad; the host then has no current release."""
    path = os.path.join(params["state_dir"], RECORD_FILE)
    record = read_record(path)
    discarded = mark_discarded(record, params["digest"], params["bad_reason"], now)
    if discarded is None:
        return {"changed": False, "record": record, "path": path}
    if not check_mode:
        write_atomically(path, record_json(discarded).encode("utf-8"))
    return {"changed": True, "record": discarded, "path": path}


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
