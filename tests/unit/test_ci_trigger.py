"""Who triggered a CI run, read from each Actions flavour's run object (pure parsing).

The releaser of a release started from CI is this login, so the order matters: the user
who triggered *this* attempt before the one who caused the first run.
"""

from __future__ import annotations

from coordinator.ci._actions import actions_run, login_of
from coordinator.ci.base import RunStatus
from coordinator.ci.forgejo_actions import ForgejoActionsProvider

SHA = "c" * 40


def gitea_run(**extra: object) -> dict[str, object]:
    return {"id": 12, "status": "in_progress", "head_sha": SHA, "run_number": 3, "event": "workflow_dispatch",
            "repository": {"full_name": "acme/shop"}, **extra}


def test_gitea_trigger_actor_comes_before_actor() -> None:
    run = actions_run(gitea_run(actor={"login": "carol"}, trigger_actor={"login": "alice"}))
    assert (run.actor, run.repository, run.status, run.head_sha) == ("alice", "acme/shop", RunStatus.IN_PROGRESS, SHA)


def test_gitea_actor_is_used_when_there_is_no_trigger_actor() -> None:
    assert actions_run(gitea_run(actor={"login": "carol"})).actor == "carol"


def test_an_empty_or_malformed_user_names_nobody() -> None:
    assert actions_run(gitea_run(trigger_actor={"login": " "}, actor=None)).actor == ""
    assert login_of("alice", {"name": "x"}, None) == ""


def test_github_names_the_first_user_triggering_actor() -> None:
    run = actions_run(gitea_run(actor={"login": "carol"}, triggering_actor={"login": "alice"}),
                      actor_fields=("triggering_actor", "actor"))
    assert run.actor == "alice"


def test_forgejo_names_the_trigger_user_and_reads_commit_sha() -> None:
    run = ForgejoActionsProvider._run({"id": 5, "status": "running", "commit_sha": SHA, "index_in_repo": 2,
                                       "trigger_user": {"login": "alice"}, "repository": {"full_name": "acme/shop"}})
    assert (run.actor, run.head_sha, run.repository, run.status) == ("alice", SHA, "acme/shop", RunStatus.IN_PROGRESS)


def test_a_run_without_repository_says_nothing_about_it() -> None:
    assert actions_run({"id": 1, "status": "queued"}).repository == ""
