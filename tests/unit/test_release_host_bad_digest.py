"""release_host refuses a digest its own record marks bad, unless the run allows it (`--force`):
the host keeps the fact even when the coordinator's record of the failure was lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_release_host_logic import DIGEST, rh

GOOD = "sha256:" + "b" * 64


def host_with_record(tmp_path: Path, previous_bad: bool) -> dict[str, object]:
    (tmp_path / "release.json").write_text(json.dumps({
        "current": {"version": "1.0.0", "digest": GOOD, "verified": True},
        "previous": {"version": "1.1.0", "digest": DIGEST, "bad": previous_bad, "marked_bad_at": "2026-12-06T04:00:00Z",
                     "bad_reason": "v1.1.0 failed verification: /health answered 404"}}))
    return {"state_dir": str(tmp_path), "digest": DIGEST, "allow_bad_digest": False}


def test_a_digest_marked_bad_is_refused_naming_when_and_why(tmp_path: Path) -> None:
    with pytest.raises(rh.StepFailed) as refused:
        rh.refuse_bad_digest(host_with_record(tmp_path, previous_bad=True))
    assert refused.value.stage == "bad_digest"
    message = str(refused.value)
    assert f"{DIGEST} is marked bad on this host (failed at 2026-12-06T04:00:00Z: v1.1.0 failed verification" in message
    assert "only with --force" in message


def test_the_run_may_allow_it(tmp_path: Path) -> None:
    rh.refuse_bad_digest({**host_with_record(tmp_path, previous_bad=True), "allow_bad_digest": True})


def test_a_digest_not_marked_bad_passes(tmp_path: Path) -> None:
    rh.refuse_bad_digest(host_with_record(tmp_path, previous_bad=False))
    rh.refuse_bad_digest({"state_dir": str(tmp_path / "new-host"), "digest": DIGEST, "allow_bad_digest": False})
