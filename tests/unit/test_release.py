from datetime import UTC, datetime

from coordinator.release import Approval, BuildInfo, Release, Stage

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def built_release() -> Release:
    release = Release(id="shop-1.0.0", project="shop", version="1.0.0", tag="v1.0.0", operator="alice")
    release.commit_sha = "c" * 40
    release.build = BuildInfo(run_id="7", run_url="http://ci/7", conclusion="success", image="r/acme/shop", digest=DIGEST_A)
    release.smoke_result = "passed"
    for stage in (Stage.VALIDATE, Stage.TAG, Stage.BUILD, Stage.STAGE):
        release.mark_completed(stage)
    return release


def approval_for(release: Release, **changes) -> Approval:
    fields = dict(operator="bob", confirmed_at=datetime.now(UTC), tag=release.tag, commit_sha=release.commit_sha,
                  run_id=release.build.run_id, digest=release.build.digest, smoke="passed")
    fields.update(changes)
    return Approval(**fields)


def test_next_stage_is_the_first_incomplete_one():
    assert built_release().next_stage is Stage.APPROVE


def test_approval_matches_the_exact_artifact():
    release = built_release()
    release.approvals.append(approval_for(release))
    assert len(release.valid_approvals()) == 1


def test_new_digest_voids_the_approval():
    release = built_release()
    release.approvals.append(approval_for(release))
    release.build = release.build.model_copy(update={"digest": DIGEST_B})
    assert release.valid_approvals() == []


def test_approval_for_another_run_or_commit_does_not_count():
    release = built_release()
    release.approvals.append(approval_for(release, run_id="8"))
    release.approvals.append(approval_for(release, commit_sha="d" * 40))
    assert release.valid_approvals() == []


def test_reopen_forgets_the_stage_and_everything_after_it():
    release = built_release()
    release.reopen_from(Stage.BUILD)
    assert release.completed == [Stage.VALIDATE, Stage.TAG]


def test_reference_pins_the_digest():
    assert built_release().build.reference == f"r/acme/shop@{DIGEST_A}"


def test_a_failed_first_release_is_marked_bad_like_a_rollback():
    from coordinator.driver import _status_after
    from coordinator.errors import FirstReleaseFailed
    from coordinator.release import MARKED_BAD, ReleaseStatus

    status = _status_after(FirstReleaseFailed("first release of v1.0.0 to production failed"), ReleaseStatus.IN_PROGRESS)

    assert status is ReleaseStatus.FIRST_RELEASE_FAILED
    assert status in MARKED_BAD
