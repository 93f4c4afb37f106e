"""Reading the host-side deploy lock, shared by the deploy_lock and release_host modules.

The lock is a directory created atomically with ``mkdir``; ``info.json`` inside it says who
holds it, why, and until when. A deploy that finds someone else's unexpired lock must not
touch the host, whichever module it runs in.
"""

from __future__ import annotations

import datetime
import json
import os

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
