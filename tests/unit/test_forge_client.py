"""What the forge client makes of Gitea's answers, quirks included (GITEA-NOTES.md)."""

from __future__ import annotations

import httpx
import pytest

from coordinator.errors import ExitCode, ForgeError
from coordinator.forge import GiteaClient, LabelMissing, ReleaseExists, StatusState
from tests.scripted_api import ScriptedAPI, reply

REPO = "/api/v1/repos/acme/sample"
SHA = "c" * 40
RELEASE = {"id": 7, "tag_name": "v1.0.0", "name": "v1.0.0", "body": "old notes",
           "html_url": "https://forge.test/acme/sample/releases/tag/v1.0.0", "draft": False, "prerelease": False}


@pytest.fixture
def api() -> ScriptedAPI:
    return ScriptedAPI()


@pytest.fixture
def client(api: ScriptedAPI) -> GiteaClient:
    return GiteaClient("https://forge.test", "acme", "sample", "tok", transport=api.transport(),
                       sleep=lambda _: None)


def issue(number: int, *, labels: tuple[str, ...] = (), milestone: int | None = None, pull: bool = False) -> dict:
    return {
        "number": number, "title": f"issue {number}", "state": "open",
        "html_url": f"https://forge.test/acme/sample/issues/{number}",
        "labels": [{"id": i, "name": name} for i, name in enumerate(labels)],
        "milestone": {"id": milestone, "title": "1.0.0"} if milestone else None,
        "pull_request": {"merged": False} if pull else None,
    }


# -- combined status ------------------------------------------------------------------


def test_no_statuses_on_gitea_125_is_no_ci_not_green(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/commits/{SHA}/status", reply(200, {"state": "", "sha": SHA, "total_count": 0, "statuses": None}))
    status = client.combined_status(SHA)
    assert status.outcome is StatusState.NONE
    assert not status.is_success
    assert status.statuses == []


def test_no_statuses_on_gitea_126_says_pending_but_is_no_ci(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/commits/{SHA}/status", reply(200, {"state": "pending", "sha": SHA, "total_count": 0, "statuses": None}))
    status = client.combined_status(SHA)
    assert status.outcome is StatusState.NONE
    assert not status.is_success


def test_green_needs_at_least_one_status(api: ScriptedAPI, client: GiteaClient) -> None:
    body = {"state": "success", "sha": SHA, "total_count": 1,
            "statuses": [{"context": "ci/build", "status": "success", "target_url": "https://ci.test/1"}]}
    api.on("GET", f"{REPO}/commits/{SHA}/status", reply(200, body))
    status = client.combined_status(SHA)
    assert status.is_success
    assert status.statuses[0].context == "ci/build"


def test_warning_counts_as_failure(api: ScriptedAPI, client: GiteaClient) -> None:
    body = {"state": "warning", "sha": SHA, "total_count": 1, "statuses": [{"context": "lint", "status": "warning"}]}
    api.on("GET", f"{REPO}/commits/{SHA}/status", reply(200, body))
    status = client.combined_status(SHA)
    assert status.is_failure
    assert not status.is_success


# -- tags and refs --------------------------------------------------------------------


def test_tag_gives_the_peeled_commit(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/tags/v1.0.0", reply(200, {"name": "v1.0.0", "id": "a" * 40, "commit": {"sha": SHA}}))
    tag = client.get_tag("v1.0.0")
    assert tag is not None and tag.commit_sha == SHA


def test_missing_tag_is_none(client: GiteaClient) -> None:
    assert client.get_tag("v9.9.9") is None


def test_ref_lookup_picks_the_exact_ref_from_a_prefix_match(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/git/refs/tags/v1.0.0", reply(200, [
        {"ref": "refs/tags/v1.0.0-rc1", "object": {"sha": "1" * 40, "type": "commit"}},
        {"ref": "refs/tags/v1.0.0", "object": {"sha": "2" * 40, "type": "tag"}},
    ]))
    ref = client.get_ref("tags/v1.0.0")
    assert ref is not None and ref.object_sha == "2" * 40 and ref.object_type == "tag"


def test_ref_lookup_accepts_a_single_object(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/git/refs/tags/v1.0.0",
           reply(200, {"ref": "refs/tags/v1.0.0", "object": {"sha": "2" * 40, "type": "commit"}}))
    ref = client.get_ref("refs/tags/v1.0.0")
    assert ref is not None and ref.ref == "refs/tags/v1.0.0"


def test_ref_lookup_with_only_longer_names_is_none(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/git/refs/tags/v1.0", reply(200, [
        {"ref": "refs/tags/v1.0.0", "object": {"sha": "1" * 40, "type": "commit"}},
        {"ref": "refs/tags/v1.0.1", "object": {"sha": "2" * 40, "type": "commit"}},
    ]))
    assert client.get_ref("tags/v1.0") is None


# -- issues and labels ----------------------------------------------------------------


def test_blocker_issues_are_listed_without_pull_requests(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/labels", reply(200, [{"id": 1, "name": "release-blocker"}]))
    api.on("GET", f"{REPO}/issues", reply(200, [issue(3, labels=("release-blocker",)),
                                                issue(4, labels=("release-blocker",), pull=True)]))
    blockers = client.open_issues_with_label("release-blocker")
    assert [i.number for i in blockers] == [3]
    query = api.calls[-1].query
    assert query["type"] == "issues" and query["state"] == "open" and query["labels"] == "release-blocker"


def test_an_unknown_label_is_an_error_not_an_empty_list(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/labels", reply(200, [{"id": 1, "name": "bug"}]))
    with pytest.raises(LabelMissing, match="label 'release-blocker' does not exist in acme/sample") as caught:
        client.open_issues_with_label("release-blocker")
    assert "\n" not in caught.value.message
    assert "https://forge.test/acme/sample/labels" in caught.value.message
    assert "forge.blocker_label" in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE and not isinstance(caught.value, ForgeError)
    assert api.served("GET", f"{REPO}/issues") == 0


def test_closing_an_issue_accepts_gitea_201(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("PATCH", f"{REPO}/issues/3", reply(201, issue(3)))
    client.close_issue(3)
    assert api.calls[0].json == {"state": "closed"}


def test_closing_an_issue_is_retried_because_it_sets_absolute_state(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("PATCH", f"{REPO}/issues/3", reply(504), reply(201, issue(3)))
    client.close_issue(3)
    assert api.served("PATCH", f"{REPO}/issues/3") == 2


# -- milestones -----------------------------------------------------------------------


def test_milestone_is_found_by_exact_title(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/milestones", reply(200, [
        {"id": 1, "title": "1.0.0-rc", "state": "open"},
        {"id": 2, "title": "1.0.0", "state": "open", "closed_at": "1970-01-01T00:00:00Z"},
    ]))
    milestone = client.find_milestone("1.0.0")
    assert milestone is not None and milestone.id == 2
    assert milestone.closed_at is None  # the epoch means "unset"
    assert api.calls[0].query["state"] == "all"


def test_issues_in_milestone_are_checked_by_milestone_id(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/milestones", reply(200, [{"id": 2, "title": "1.0.0", "state": "open"}]))
    api.on("GET", f"{REPO}/issues", reply(200, [issue(5, milestone=2), issue(6, milestone=9), issue(7, milestone=2, pull=True)]))
    milestone = client.find_milestone("1.0.0")
    assert milestone is not None
    assert [i.number for i in client.issues_in_milestone(milestone)] == [5]
    assert api.calls[-1].query == {"state": "open", "type": "issues", "milestones": "1.0.0", "page": "1", "limit": "50"}


def test_closing_a_milestone_patches_its_state(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("PATCH", f"{REPO}/milestones/2", reply(200, {"id": 2, "title": "1.0.0", "state": "closed"}))
    client.close_milestone(2)
    assert api.calls[0].json == {"state": "closed"}


# -- releases -------------------------------------------------------------------------


def test_release_by_tag_is_none_when_missing(client: GiteaClient) -> None:
    assert client.release_by_tag("v1.0.0") is None


def test_create_release_sends_the_tag_and_commit(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("POST", f"{REPO}/releases", reply(201, RELEASE))
    release = client.create_release("v1.0.0", "v1.0.0", "notes", SHA)
    assert release.id == 7
    assert api.calls[0].json == {"tag_name": "v1.0.0", "name": "v1.0.0", "body": "notes", "draft": False,
                                 "prerelease": False, "target_commitish": SHA}


def test_create_release_conflict_raises_release_exists(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("POST", f"{REPO}/releases", reply(409, {"message": "Release is has no Tag", "url": "u"}))
    with pytest.raises(ReleaseExists) as caught:
        client.create_release("v1.0.0", "v1.0.0", "notes", SHA)
    assert caught.value.status == 409


def test_create_release_is_not_retried_blindly_on_a_gateway_error(api: ScriptedAPI, client: GiteaClient) -> None:
    # The 503 may have come after the forge created it: look it up before posting again.
    api.on("POST", f"{REPO}/releases", reply(503), reply(201, RELEASE))
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(404))
    client.create_release("v1.0.0", "v1.0.0", "notes", SHA)
    assert [(c.method, c.path) for c in api.calls] == [
        ("POST", f"{REPO}/releases"), ("GET", f"{REPO}/releases/tags/v1.0.0"), ("POST", f"{REPO}/releases")]


def test_create_release_that_timed_out_but_happened_is_found_by_tag(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("POST", f"{REPO}/releases", httpx.ReadTimeout("timed out"))
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(200, RELEASE))
    release = client.create_release("v1.0.0", "v1.0.0", "notes", SHA)
    assert release.id == 7
    assert api.served("POST", f"{REPO}/releases") == 1


def test_create_release_is_never_retried_on_a_client_error(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("POST", f"{REPO}/releases", reply(422, {"message": "tag_name is invalid", "url": "u"}))
    with pytest.raises(ForgeError, match="tag_name is invalid"):
        client.create_release("bad tag", "x", "y", SHA)
    assert api.served("POST", f"{REPO}/releases") == 1


def test_upsert_updates_an_existing_release_instead_of_duplicating(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(200, RELEASE))
    api.on("PATCH", f"{REPO}/releases/7", reply(200, {**RELEASE, "body": "new notes"}))
    release = client.upsert_release("v1.0.0", "v1.0.0", "new notes", SHA)
    assert release.body == "new notes"
    assert api.served("POST", f"{REPO}/releases") == 0
    assert api.calls[-1].json == {"name": "v1.0.0", "body": "new notes"}


def test_upsert_leaves_an_identical_release_alone(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(200, RELEASE))
    client.upsert_release("v1.0.0", "v1.0.0", "old notes", SHA)
    assert [c.method for c in api.calls] == ["GET"]


def test_upsert_after_a_409_race_updates_the_release_that_won(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(404), reply(200, RELEASE))
    api.on("POST", f"{REPO}/releases", reply(409, {"message": "exists", "url": "u"}))
    api.on("PATCH", f"{REPO}/releases/7", reply(200, {**RELEASE, "body": "notes"}))
    assert client.upsert_release("v1.0.0", "v1.0.0", "notes", SHA).body == "notes"
    assert api.served("POST", f"{REPO}/releases") == 1


def test_upsert_creates_when_there_is_none(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("POST", f"{REPO}/releases", reply(201, RELEASE))
    assert client.upsert_release("v1.0.0", "v1.0.0", "old notes", SHA).id == 7
