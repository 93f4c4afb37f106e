"""The host-side deploy lock, shared by the deploy_lock and release_host modules.

The lock is a directory created atomically with ``mkdir``; ``info.json`` inside it says who
holds it, why, and until when. A deploy that finds someone else's unexpired lock must not
touch the host, whichever module it runs in.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import uuid

INFO = "info.json"
# A lock directory without info.json is one being written right now, or the debris of a
# crash between mkdir and write; after this many seconds it counts as stale.
INCOMPLETE_GRACE_S = 60


def iso_utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_lock(path: str) -> dict | None:
    """The lock's info, ``{}`` if the directory has no readable info yet, None if free."""
    try:
        with open(os.path.join(path, INFO), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {} if os.path.isdir(path) else None
    except ValueError:
        return {}


def is_expired(path: str, info: dict, now: float) -> bool:
    if "expires_epoch" in info:
        return now >= float(info["expires_epoch"])
    try:
        return now - os.stat(path).st_mtime > INCOMPLETE_GRACE_S
    except FileNotFoundError:
        return True


def describe(path: str, info: dict | None, now: float) -> dict:
    """The lock as reported to the playbook (and read by ``coordinator lock status``)."""
    if info is None:
        return {"path": path, "held": False, "expired": False}
    report = {key: info.get(key) for key in ("owner", "reason", "version", "lock_id", "acquired_at", "expires_at", "host")}
    report.update({"path": path, "held": True, "expired": is_expired(path, info, now)})
    return report


def refusal(path: str, lock_id: str, now: float) -> str | None:
    """Why a run holding ``lock_id`` must not change the host (someone else's live lock), or None."""
    held = read_lock(path)
    if held is None or held.get("lock_id") == lock_id or is_expired(path, held, now):
        return None
    return (
        "locked by %s since %s (reason: %s, lock id %s, expires %s); run under it with "
        "deploy_lock_id=%s, or release it with playbooks/lock.yml -e deploy_lock_action=release -e deploy_lock_id=%s"
        % (held.get("owner", "?"), held.get("acquired_at", "?"), held.get("reason") or "-",
           held.get("lock_id", "?"), held.get("expires_at", "?"), held.get("lock_id", "?"), held.get("lock_id", "?"))
    )


class LockError(Exception):
    """The lock cannot be acquired or released; the message says by whom and what to do."""


def write_info(path: str, info: dict) -> None:
    """Write info.json atomically inside the lock directory we just created."""
    temporary = os.path.join(path, ".%s.tmp" % INFO)
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, os.path.join(path, INFO))


def remove_lock(path: str, expected_id: str | None) -> dict:
    """Move the lock aside (atomic) and delete it; return what was removed.

    When ``expected_id`` is given and the lock moved aside is not that one (someone
    replaced it in between), it is put back and the call fails.
    """
    tombstone = "%s.removed-%s" % (path, uuid.uuid4().hex[:8])
    os.rename(path, tombstone)
    removed = read_lock(tombstone) or {}
    if expected_id is not None and removed.get("lock_id") != expected_id:
        try:
            os.rename(tombstone, path)
        except OSError:
            pass
        raise LockError("the lock at %s changed while it was being removed; try again" % path)
    shutil.rmtree(tombstone, ignore_errors=True)
    return removed


def acquire(path: str, *, owner: str, reason: str, version: str, ttl: int, lock_id: str, now: float) -> dict:
    """Take the lock at ``path`` (free, ours by ``lock_id``, or expired and taken over), or raise LockError."""
    if not owner:
        raise LockError("deploy_lock_owner is required to acquire the lock")
    lock_id = lock_id or uuid.uuid4().hex[:16]
    info = {
        "owner": owner,
        "reason": reason,
        "version": version,
        "lock_id": lock_id,
        "host": socket.gethostname(),
        "acquired_at": iso_utc(now),
        "expires_at": iso_utc(now + ttl),
        "expires_epoch": now + ttl,
    }
    taken_over = None
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        held = read_lock(path)
        if held is None:  # released between our mkdir and our read: try once more
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                raise LockError("the lock at %s is contended right now; try again" % path)
        elif held.get("lock_id") == lock_id:
            return {"changed": False, "acquired": True, "lock": describe(path, held, now)}
        elif is_expired(path, held, now):
            taken_over = remove_lock(path, held.get("lock_id") if held else None)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                raise LockError("another run took over the expired lock at %s first" % path)
        else:
            raise LockError(
                "locked by %s since %s (reason: %s, version: %s, lock id %s, expires %s); "
                "wait, or release it with deploy_lock_action=release deploy_lock_id=%s"
                % (
                    held.get("owner", "?"),
                    held.get("acquired_at", "?"),
                    held.get("reason") or "-",
                    held.get("version") or "-",
                    held.get("lock_id", "?"),
                    held.get("expires_at", "?"),
                    held.get("lock_id", "<id>"),
                )
            )
    write_info(path, info)
    result = {"changed": True, "acquired": True, "lock": describe(path, info, now)}
    if taken_over is not None:
        result["taken_over"] = describe(path, taken_over, now)
    return result


def release(path: str, lock_id: str, force: bool, now: float) -> dict:
    """Give the lock at ``path`` back when it is ``lock_id``'s (or ``force``), or raise LockError."""
    held = read_lock(path)
    if held is None:
        return {"changed": False, "acquired": False, "lock": describe(path, None, now)}
    if held.get("lock_id") != lock_id and not force:
        raise LockError(
            "the lock at %s is held by %s with lock id %s, not %r; pass that id as "
            "deploy_lock_id, or deploy_lock_force=true to break it"
            % (path, held.get("owner", "?"), held.get("lock_id", "?"), lock_id)
        )
    removed = remove_lock(path, held.get("lock_id") if held else None)
    return {"changed": True, "acquired": False, "lock": describe(path, None, now), "released": describe(path, removed, now)}
