"""wait_for_run: poll with growing intervals, bounded by a deadline, honest about unknowns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from coordinator.ci import ArtifactManifest, CIRun, RunConclusion, RunStatus, wait_for_run
from coordinator.errors import BuildFailed, ForgeError
from tests.unit.fakes import FakeClock

SHA = "a" * 40
URL = "https://forge.test/acme/sample/actions/runs/5"


def run(status: RunStatus, conclusion: RunConclusion | None = None) -> CIRun:
    return CIRun(id="5", status=status, conclusion=conclusion, html_url=URL, head_sha=SHA)


@dataclass
class ScriptedProvider:
    """Answers each poll with the next scripted item (a run, None, or an error to raise)."""

    script: Sequence[CIRun | None | ForgeError]
    polls: list[str] = field(default_factory=list)
    kind: str = "scripted"

    def _next(self) -> CIRun | None:
        item = self.script[min(len(self.polls) - 1, len(self.script) - 1)]
        if isinstance(item, ForgeError):
            raise item
        return item

    def find_tag_run(self, tag: str, commit_sha: str) -> CIRun | None:
        self.polls.append("find")
        return self._next()

    def get_run(self, run_id: str) -> CIRun:
        self.polls.append(f"get {run_id}")
        result = self._next()
        assert result is not None
        return result

    def fetch_artifact_manifest(self, run: CIRun) -> ArtifactManifest:
        raise NotImplementedError

    def close(self) -> None:
        pass



def wait(provider: ScriptedProvider, clock: FakeClock, *, timeout_s: float = 60, progress: list | None = None) -> CIRun:
    def on_progress(current: CIRun | None, elapsed: float) -> None:
        if progress is not None:
            progress.append((current.status if current else None, elapsed))

    return wait_for_run(provider, "v1.0.0", SHA, timeout_s=timeout_s, poll_interval_s=1.0, on_progress=on_progress,
                        max_interval_s=4.0, sleep=clock.sleep, clock=clock)


def test_waits_until_the_run_completes_and_returns_it() -> None:
    provider = ScriptedProvider([None, run(RunStatus.QUEUED), run(RunStatus.IN_PROGRESS),
                                 run(RunStatus.COMPLETED, RunConclusion.SUCCESS)])
    result = wait(provider, FakeClock(start=100.0))
    assert result.conclusion is RunConclusion.SUCCESS
    assert provider.polls == ["find", "find", "get 5", "get 5"]


def test_a_failed_run_is_returned_for_the_caller_to_judge() -> None:
    provider = ScriptedProvider([run(RunStatus.COMPLETED, RunConclusion.FAILURE)])
    assert wait(provider, FakeClock(start=100.0)).conclusion is RunConclusion.FAILURE


def test_the_poll_interval_grows_up_to_the_cap() -> None:
    clock = FakeClock(start=100.0)
    provider = ScriptedProvider([run(RunStatus.IN_PROGRESS)] * 6 + [run(RunStatus.COMPLETED, RunConclusion.SUCCESS)])
    wait(provider, clock)
    assert clock.sleeps == [1.0, 1.5, 2.25, 3.375, 4.0, 4.0]


def test_progress_is_reported_on_every_poll_with_the_elapsed_time() -> None:
    progress: list = []
    provider = ScriptedProvider([None, run(RunStatus.IN_PROGRESS), run(RunStatus.COMPLETED, RunConclusion.SUCCESS)])
    wait(provider, FakeClock(start=100.0), progress=progress)
    assert progress == [(None, 0.0), (RunStatus.IN_PROGRESS, 1.0), (RunStatus.COMPLETED, 2.5)]


def test_a_run_that_never_completes_is_build_failed_with_its_url() -> None:
    clock = FakeClock(start=100.0)
    with pytest.raises(BuildFailed, match=URL):
        wait(ScriptedProvider([run(RunStatus.IN_PROGRESS)]), clock, timeout_s=30)
    assert clock.now - 100.0 == pytest.approx(30.0)


def test_no_run_at_all_before_the_deadline_is_build_failed() -> None:
    with pytest.raises(BuildFailed, match="no CI run started for v1.0.0"):
        wait(ScriptedProvider([None]), FakeClock(start=100.0), timeout_s=10)


def test_a_run_of_transport_failures_is_ci_status_unknown_not_build_failed() -> None:
    down = ForgeError("forge GET /x unreachable after 4 attempt(s): ConnectError", endpoint="GET /x", status=None)
    provider = ScriptedProvider([run(RunStatus.IN_PROGRESS), down])
    with pytest.raises(ForgeError, match="CI status unknown") as caught:
        wait(provider, FakeClock(start=100.0))
    assert not isinstance(caught.value, BuildFailed)
    assert "resume" in caught.value.message


def test_a_single_failed_poll_is_tolerated() -> None:
    blip = ForgeError("forge GET /x answered HTTP 503", endpoint="GET /x", status=503)
    provider = ScriptedProvider([run(RunStatus.IN_PROGRESS), blip, run(RunStatus.COMPLETED, RunConclusion.SUCCESS)])
    assert wait(provider, FakeClock(start=100.0)).conclusion is RunConclusion.SUCCESS


def test_a_client_error_stops_at_once() -> None:
    denied = ForgeError("forge GET /x answered HTTP 401: bad token", endpoint="GET /x", status=401)
    provider = ScriptedProvider([denied])
    with pytest.raises(ForgeError, match="401"):
        wait(provider, FakeClock(start=100.0))
    assert provider.polls == ["find"]


def test_the_returned_run_knows_the_tag_it_was_waited_for() -> None:
    provider = ScriptedProvider([run(RunStatus.IN_PROGRESS), run(RunStatus.COMPLETED, RunConclusion.SUCCESS)])
    assert wait(provider, FakeClock(start=100.0)).tag == "v1.0.0"
