"""The host-side release record of one container, and its env file.

Shared by the release_record module (read, verify, discard for the read-only and by-hand
entry points) and release_host (the whole deploy in one call). The record file stays what
``to_nice_json`` wrote before these modules existed (same keys, same layout), because
status.yml, the tests and the coordinator read it. Files are replaced atomically and stay
private (0700 directory, 0600 files): the env file holds secrets.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
import tempfile
from dataclasses import dataclass

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


def restore_target(record: dict, image: str, digest: str, version: str) -> dict | None:
    """The release to put back after the current one (just recorded) failed, or None to leave it to the caller.

    The choice is the one deploy.yml's rollback makes (the role's plan_rollback): the explicit
    release (``digest``/``version``, the coordinator's last verified one; ``image`` its
    repository) when given, else the recorded previous release. None when there was no
    previous release (a first release: removed, not rolled back), when the previous one is
    marked bad without an explicit release (the host was rolled back before: the caller says
    so), or when the explicit release is the failed one itself.
    """
    current, previous = record.get("current") or {}, record.get("previous")
    if not previous:
        return None
    if digest:
        if digest == current.get("digest") or not version:
            return None
        return {"image": image or current.get("image") or "", "digest": digest, "version": version}
    if previous.get("bad"):
        return None
    return {"image": previous.get("image") or "", "digest": previous.get("digest") or "",
            "version": previous.get("version") or ""}


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
