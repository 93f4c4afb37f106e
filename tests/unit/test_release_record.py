"""The release_record module: the host-side record of a container's releases, and its env file."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import stat
import sys
from pathlib import Path
from types import ModuleType

import pytest
from ansible.plugins.filter.core import to_nice_json

MODULE_PATH = Path(__file__).resolve().parents[2] / "roles" / "docker_release" / "module_utils" / "release_state.py"

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
NOW = "2025-01-02T03:04:05Z"
LATER = "2025-01-02T03:09:00Z"
ENV = "# Managed by the docker_release role; values are secrets.\nAPI_SECRET=canary-123\n"


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release_record", MODULE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


rr = load_module()


def release(digest: str = NEW, version: str = "2.0.0", replaces_bad: bool = False) -> object:
    return rr.Release(image="registry/acme/sample", digest=digest, version=version, release_id="rel-2",
                      replaces_bad=replaces_bad)


def current(digest: str = OLD, version: str = "1.0.0", **extra: object) -> dict:
    return {"version": version, "digest": digest, "image": "registry/acme/sample", "deployed_by": "alice",
            "deployed_at": "2025-01-01T00:00:00Z", "release_id": "rel-1", "verified": True, **extra}


def params(state_dir: Path, digest: str = NEW, **overrides: object) -> dict:
    return {"state_dir": str(state_dir), "image": "registry/acme/sample", "digest": digest, "version": "2.0.0",
            "release_id": "rel-2", "deployed_by": "bob", "replaces_bad": False, "bad_reason": "",
            "env_file": str(state_dir / "app.env"), "env_content": ENV, **overrides}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "sample"


# Reading


def test_a_missing_record_is_a_host_without_releases(tmp_path: Path) -> None:
    assert rr.read_record(str(tmp_path / "release.json")) == {"current": None, "previous": None}


def test_a_corrupt_record_fails_naming_its_path(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(rr.RecordError, match=str(path)):
        rr.read_record(str(path))


def test_a_record_that_is_not_an_object_of_releases_fails_naming_its_path(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    path.write_text('{"current": "1.0.0", "previous": null}', encoding="utf-8")
    with pytest.raises(rr.RecordError, match=str(path)):
        rr.read_record(str(path))


def test_a_record_is_read_as_written(tmp_path: Path) -> None:
    record = {"current": current(), "previous": None}
    path = tmp_path / "release.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    assert rr.read_record(str(path)) == record


# Composing


def test_the_first_release_has_no_previous() -> None:
    record = rr.compose_record(rr.empty_record(), release(), "bob", "", NOW)
    assert record == {
        "current": {"version": "2.0.0", "digest": NEW, "image": "registry/acme/sample", "deployed_by": "bob",
                    "deployed_at": NOW, "release_id": "rel-2", "verified": False},
        "previous": None,
    }


def test_a_deploy_keeps_the_replaced_release_as_previous_unchanged() -> None:
    record = rr.compose_record({"current": current(), "previous": None}, release(), "bob", "", NOW)
    assert record["previous"] == current()
    assert record["current"]["digest"] == NEW


def test_a_rollback_marks_the_replaced_release_bad_with_time_and_reason() -> None:
    old = {"current": current(), "previous": current(digest=NEW)}
    record = rr.compose_record(old, release(replaces_bad=True), "bob", "health check failed", NOW)
    assert record["previous"] == current(bad=True, marked_bad_at=NOW, bad_reason="health check failed")


def test_a_rollback_onto_an_empty_host_has_no_previous_to_mark() -> None:
    record = rr.compose_record(rr.empty_record(), release(replaces_bad=True), "bob", "why", NOW)
    assert record["previous"] is None


def test_redeploying_the_recorded_digest_does_not_move_the_host() -> None:
    assert not rr.needs_move({"current": current(), "previous": None}, OLD)
    assert rr.needs_move({"current": current(), "previous": None}, NEW)
    assert rr.needs_move(rr.empty_record(), NEW)


def test_verifying_the_current_release_records_when() -> None:
    record = {"current": current(verified=False), "previous": None}
    assert rr.mark_verified(record, OLD, LATER) == {"current": current(verified=True, verified_at=LATER),
                                                     "previous": None}


@pytest.mark.parametrize(
    "record, digest",
    [
        ({"current": None, "previous": None}, OLD),
        ({"current": current(verified=False), "previous": None}, NEW),
        ({"current": current(verified=True, verified_at=NOW), "previous": None}, OLD),
    ],
    ids=["no current release", "another release", "already verified"],
)
def test_there_is_nothing_to_verify(record: dict, digest: str) -> None:
    assert rr.mark_verified(record, digest, LATER) is None


def test_timestamps_are_utc_in_the_record_format() -> None:
    moment = datetime.datetime(2025, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert rr.timestamp(moment) == "2025-01-02T03:04:05Z"


def test_the_record_file_is_what_to_nice_json_wrote() -> None:
    record = {"current": current(verified=False), "previous": current(bad=True, bad_reason="ünïcode reason")}
    assert rr.record_json(record) == to_nice_json(record) + "\n"


# Writing


def test_an_atomic_write_is_private_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    path.write_text("a much longer old content that must not survive", encoding="utf-8")
    rr.write_atomically(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert mode(path) == 0o600
    assert [entry.name for entry in tmp_path.iterdir()] == ["release.json"]


def test_an_atomic_write_that_cannot_happen_fails_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "release.json"
    with pytest.raises(rr.RecordError, match=str(path)):
        rr.write_atomically(str(path), b"new")


# prepare


def test_prepare_creates_a_private_directory_record_and_env_file(state_dir: Path) -> None:
    result = rr.prepare(params(state_dir), NOW, check_mode=False)
    assert result["changed"] and result["moved"]
    assert mode(state_dir) == 0o700
    assert mode(state_dir.parent) == 0o700
    assert mode(state_dir / "release.json") == 0o600
    assert mode(state_dir / "app.env") == 0o600
    assert (state_dir / "app.env").read_text(encoding="utf-8") == ENV
    assert json.loads((state_dir / "release.json").read_text(encoding="utf-8")) == result["record"]
    assert result["record"]["current"]["digest"] == NEW


def test_prepare_never_returns_the_env_content(state_dir: Path) -> None:
    result = rr.prepare(params(state_dir), NOW, check_mode=False)
    assert "canary-123" not in json.dumps(result)
    assert "canary-123" not in (state_dir / "release.json").read_text(encoding="utf-8")


def test_prepare_twice_changes_nothing(state_dir: Path) -> None:
    rr.prepare(params(state_dir), NOW, check_mode=False)
    before = (state_dir / "release.json").read_bytes()
    result = rr.prepare(params(state_dir), LATER, check_mode=False)
    assert not result["changed"] and not result["moved"]
    assert (state_dir / "release.json").read_bytes() == before


def test_prepare_rewrites_only_an_env_file_whose_content_differs(state_dir: Path) -> None:
    rr.prepare(params(state_dir), NOW, check_mode=False)
    result = rr.prepare(params(state_dir, env_content=ENV + "MORE=1\n"), LATER, check_mode=False)
    assert result["changed"] and not result["moved"]
    assert (state_dir / "app.env").read_text(encoding="utf-8") == ENV + "MORE=1\n"


def test_prepare_makes_a_loosened_env_file_private_again(state_dir: Path) -> None:
    rr.prepare(params(state_dir), NOW, check_mode=False)
    os.chmod(state_dir / "app.env", 0o644)
    assert rr.prepare(params(state_dir), LATER, check_mode=False)["changed"]
    assert mode(state_dir / "app.env") == 0o600


def test_prepare_moves_the_old_release_to_previous(state_dir: Path) -> None:
    rr.prepare(params(state_dir, digest=OLD), NOW, check_mode=False)
    result = rr.prepare(params(state_dir, digest=NEW, replaces_bad=True, bad_reason="rollback"), LATER,
                        check_mode=False)
    record = json.loads((state_dir / "release.json").read_text(encoding="utf-8"))
    assert result["moved"]
    assert record["current"]["digest"] == NEW
    assert record["previous"]["digest"] == OLD
    assert record["previous"]["bad"] is True
    assert record["previous"]["marked_bad_at"] == LATER


def test_prepare_in_check_mode_reports_the_change_and_writes_nothing(state_dir: Path) -> None:
    result = rr.prepare(params(state_dir), NOW, check_mode=True)
    assert result["changed"] and result["moved"]
    assert result["record"]["current"]["digest"] == NEW
    assert not state_dir.parent.exists()


def test_prepare_fails_on_a_corrupt_record_before_touching_the_env_file(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, mode=0o700)
    (state_dir / "release.json").write_text("garbage", encoding="utf-8")
    with pytest.raises(rr.RecordError, match="release.json"):
        rr.prepare(params(state_dir), NOW, check_mode=False)
    assert not (state_dir / "app.env").exists()


# verify


def test_verify_marks_the_recorded_release_and_then_changes_nothing(state_dir: Path) -> None:
    rr.prepare(params(state_dir), NOW, check_mode=False)
    first = rr.verify({"state_dir": str(state_dir), "digest": NEW}, LATER, check_mode=False)
    second = rr.verify({"state_dir": str(state_dir), "digest": NEW}, LATER, check_mode=False)
    record = json.loads((state_dir / "release.json").read_text(encoding="utf-8"))
    assert first["changed"] and not second["changed"]
    assert record["current"]["verified"] is True
    assert record["current"]["verified_at"] == LATER
    assert mode(state_dir / "release.json") == 0o600


def test_verify_leaves_another_release_alone(state_dir: Path) -> None:
    rr.prepare(params(state_dir), NOW, check_mode=False)
    result = rr.verify({"state_dir": str(state_dir), "digest": OLD}, LATER, check_mode=False)
    assert not result["changed"]
    assert result["record"]["current"]["verified"] is False


def test_verify_in_check_mode_writes_nothing(state_dir: Path) -> None:
    rr.prepare(params(state_dir), NOW, check_mode=False)
    before = (state_dir / "release.json").read_bytes()
    result = rr.verify({"state_dir": str(state_dir), "digest": NEW}, LATER, check_mode=True)
    assert result["changed"] and result["record"]["current"]["verified"] is True
    assert (state_dir / "release.json").read_bytes() == before


def test_discarding_a_failed_first_release_keeps_it_as_bad() -> None:
    record = {"current": current(verified=False), "previous": None}
    assert rr.mark_discarded(record, OLD, "health failed", LATER) == {
        "current": None,
        "previous": current(verified=False, bad=True, marked_bad_at=LATER, bad_reason="health failed"),
    }


def test_discarding_another_release_changes_nothing() -> None:
    assert rr.mark_discarded({"current": current(), "previous": None}, NEW, "x", LATER) is None
    assert rr.mark_discarded(rr.empty_record(), NEW, "x", LATER) is None


def test_discard_writes_the_record_once(state_dir: Path) -> None:
    rr.prepare(params(state_dir), NOW, check_mode=False)
    first = rr.discard({"state_dir": str(state_dir), "digest": NEW, "bad_reason": "exited"}, LATER, check_mode=False)
    again = rr.discard({"state_dir": str(state_dir), "digest": NEW, "bad_reason": "exited"}, LATER, check_mode=False)
    assert first["changed"] and not again["changed"]
    saved = json.loads((state_dir / "release.json").read_text())
    assert saved["current"] is None and saved["previous"]["bad"] is True


# restore_target: what a deploy call that failed its health check puts back (release_host restore).

KNOWN_GOOD = "sha256:" + "c" * 64


def failed_over(previous: dict | None) -> dict:
    """The record right after a deploy of NEW (2.0.0) moved the host from `previous`."""
    return {"current": current(NEW, "2.0.0", verified=False), "previous": previous}


def test_the_recorded_previous_release_is_restored_when_no_explicit_one_is_given() -> None:
    assert rr.restore_target(failed_over(current()), "", "", "") == {
        "image": "registry/acme/sample", "digest": OLD, "version": "1.0.0"}


def test_the_explicit_release_wins_over_the_recorded_previous_one() -> None:
    assert rr.restore_target(failed_over(current()), "other/repo", KNOWN_GOOD, "0.9.0") == {
        "image": "other/repo", "digest": KNOWN_GOOD, "version": "0.9.0"}
    # Without an image the failed release's repository is taken, as rollback.yml does.
    assert rr.restore_target(failed_over(current()), "", KNOWN_GOOD, "0.9.0")["image"] == "registry/acme/sample"


def test_nothing_is_restored_in_the_call_when_the_play_must_decide() -> None:
    # A first release: nothing to go back to (deploy.yml removes it).
    assert rr.restore_target(failed_over(None), "", KNOWN_GOOD, "0.9.0") is None
    # The previous release is marked bad and no verified one is known: the play says "already rolled back".
    assert rr.restore_target(failed_over(current(bad=True)), "", "", "") is None
    # The explicit release is the one that failed, or is given without its version.
    assert rr.restore_target(failed_over(current()), "", NEW, "2.0.0") is None
    assert rr.restore_target(failed_over(current()), "", KNOWN_GOOD, "") is None
