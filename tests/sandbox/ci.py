"""The stand-in's CI: watch the bare repositories and act like Gitea Actions would.

A poller thread reads every bare repo's refs every 0.2 s. A new `v*` tag (or a `v*` tag
moved to another commit) becomes an Actions run (event `push`) that one worker thread
takes through queued → in_progress → completed: it exports the tag's tree, builds and
pushes the image with `sandbox.imagebuild.build_and_push`, and on success publishes the
`artifact-manifest` artifact the coordinator reads. A new head on a branch gets the
commit status `ci/standin` = success while `branch_ci` is on. Runs created by a workflow
dispatch (the API's, with the dispatching user as actor) are "coordinator jobs": they
stay in progress, building nothing, until `POST /_standin/finish_run` ends them.

Both threads stop within one poll interval of `stop()`; every wait is bounded.
"""

from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from tests.sandbox import gitea_git as git
from tests.sandbox.gitea_api import discover_repos
from tests.sandbox.gitea_render import ADMIN_LOGIN
from tests.sandbox.gitea_store import Artifact, CommitStatus, RepoState, Run, RunConclusion, RunStatus, Store, now_iso

POLL_INTERVAL_S = 0.2
TAG_PATTERN_PREFIX = "v"
BRANCH_CONTEXT = "ci/standin"
ARTIFACT_NAME = "artifact-manifest"
MANIFEST_FILE = "artifact-manifest.json"

_WAKE = ("", 0)  # queue item that only wakes the worker so it sees the stop flag
Builder = Callable[[Path, str, str], str]
log = logging.getLogger("sandbox.gitea.ci")


def default_builder(source_dir: Path, image: str, tag: str) -> str:
    """The real build, imported late so the server starts even where docker is absent."""
    from tests.sandbox.imagebuild import build_and_push

    return build_and_push(source_dir, image, tag)


def baseline(store: Store, git_root: Path) -> None:
    """Record every existing tag as already seen, so only tags pushed from now on build
    (what `reset` and a first start promise). Branch heads stay unseen: they get their
    `ci/standin` status on the next poll."""
    for full_name, bare in discover_repos(git_root).items():
        try:
            tags = git.tag_shas(bare)
        except git.GitUnavailable:
            continue
        with store.change():
            state = store.repo(full_name)
            state.seen_tags = tags
            state.tags_baselined = True


class CIRunner:
    """Owns the poller and worker threads; `start()` / `stop()` are idempotent."""

    def __init__(self, store: Store, git_root: Path, registry: str, builder: Builder | None = None) -> None:
        self.store = store
        self.git_root = git_root
        self.registry = registry
        self.builder = builder or default_builder
        self._stop = threading.Event()
        self._queue: queue.Queue[tuple[str, int]] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        with self.store.lock:  # runs a previous process left unfinished start over
            for full_name, state in self.store.repos.items():
                for item in sorted(state.runs, key=lambda r: r.id):
                    if item.status != RunStatus.COMPLETED and item.event == "push":  # dispatched jobs build nothing
                        item.status = RunStatus.QUEUED.value
                        self._queue.put((full_name, item.id))
        self._threads = [threading.Thread(target=self._poll_loop, name="standin-ci-poll", daemon=True),
                         threading.Thread(target=self._work_loop, name="standin-ci-work", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._queue.put(_WAKE)  # the worker may be blocked on the queue
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []

    # -- polling -----------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # keep CI alive; the log says what broke
                log.exception("CI poll failed")
            self._stop.wait(POLL_INTERVAL_S)

    def poll_once(self) -> None:
        for full_name, bare in discover_repos(self.git_root).items():
            try:
                tags, heads = git.tag_shas(bare), git.branch_heads(bare)
            except git.GitUnavailable:
                continue  # being replaced (sandbox reset); look again next poll
            with self.store.change():
                state = self.store.repo(full_name)
                if not state.tags_baselined:
                    state.seen_tags, state.tags_baselined = dict(tags), True
                self._new_tags(full_name, bare, state, tags)
                self._new_heads(state, heads)

    def _new_tags(self, full_name: str, bare: Path, state: RepoState, tags: dict[str, str]) -> None:
        fresh = [name for name, sha in tags.items() if state.seen_tags.get(name) != sha]
        state.seen_tags = dict(tags)
        for name in sorted(fresh):
            if not name.startswith(TAG_PATTERN_PREFIX):
                continue
            sha = tags[name]
            try:
                title = git.commit_subject(bare, sha)
            except git.GitUnavailable:
                title = name
            # A push straight into the bare repository carries no credential; the storage belongs to the
            # world's admin, whose token pushes releases, so the run is honestly attributed to that account.
            item = Run(id=self.store.new_id(), run_number=len(state.runs) + 1, job_id=self.store.new_id(),
                       event="push", head_sha=sha, ref=f"refs/tags/{name}", title=title,
                       fail_without_build=self.store.config.fail_next_run, actor=ADMIN_LOGIN)
            self.store.config.fail_next_run = False
            state.runs.append(item)
            self._queue.put((full_name, item.id))
            log.info("run %s queued for %s tag %s at %s", item.id, full_name, name, sha[:12])

    def _new_heads(self, state: RepoState, heads: dict[str, str]) -> None:
        changed = {branch: sha for branch, sha in heads.items() if state.seen_heads.get(branch) != sha}
        state.seen_heads = dict(heads)
        if not self.store.config.branch_ci:
            return
        for sha in sorted(set(changed.values())):
            state.statuses.append(CommitStatus(id=self.store.new_id(), sha=sha, state="success", context=BRANCH_CONTEXT,
                                               description="stand-in CI passed"))

    # -- running -----------------------------------------------------------------------

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                full_name, run_id = self._queue.get(timeout=POLL_INTERVAL_S)
            except queue.Empty:
                continue
            if (full_name, run_id) == _WAKE:
                continue
            try:
                self._execute(full_name, run_id)
            except Exception:
                log.exception("CI run %s failed unexpectedly", run_id)
                self._finish(full_name, run_id, RunConclusion.FAILURE, traceback.format_exc())

    def _find(self, full_name: str, run_id: int) -> Run | None:
        return next((r for r in self.store.repo(full_name).runs if r.id == run_id), None)

    def _execute(self, full_name: str, run_id: int) -> None:
        if self._stop.wait(self.store.config.ci_delay_s):
            return  # stopping: the run stays queued and starts over next time
        with self.store.change():
            item = self._find(full_name, run_id)
            if item is None:
                return  # forgotten by a reset
            item.status, item.started_at = RunStatus.IN_PROGRESS.value, now_iso()
            tag, sha, forced = item.ref.removeprefix("refs/tags/"), item.head_sha, item.fail_without_build
        if forced:
            self._finish(full_name, run_id, RunConclusion.FAILURE, "failing on purpose: fail_next_run was set\n")
            return
        bare = discover_repos(self.git_root).get(full_name)
        if bare is None:
            self._finish(full_name, run_id, RunConclusion.FAILURE, f"repository {full_name} disappeared\n")
            return
        image = f"{self.registry}/{full_name}"
        with tempfile.TemporaryDirectory(prefix="standin-ci-") as scratch:
            try:
                git.export_tree(bare, sha, Path(scratch))
                digest = self.builder(Path(scratch), image, tag)
            except Exception as exc:  # ImageBuildError carries the build log
                build_log = getattr(exc, "log", "") or traceback.format_exc()
                self._finish(full_name, run_id, RunConclusion.FAILURE, f"{exc}\n{build_log}")
                return
        manifest = {"image": image, "tag": tag, "digest": digest, "commit": sha}
        self._finish(full_name, run_id, RunConclusion.SUCCESS, f"built and pushed {image}:{tag} {digest}\n",
                     manifest)

    def _finish(self, full_name: str, run_id: int, conclusion: RunConclusion, run_log: str,
                manifest: dict[str, str] | None = None) -> None:
        with self.store.change():
            item = self._find(full_name, run_id)
            if item is None:
                return
            if manifest is not None:
                self.store.repo(full_name).artifacts.append(Artifact(
                    id=self.store.new_id(), run_id=run_id, name=ARTIFACT_NAME,
                    files={MANIFEST_FILE: json.dumps(manifest, indent=2) + "\n"}))
            item.status, item.conclusion = RunStatus.COMPLETED.value, conclusion.value
            item.completed_at, item.log = now_iso(), run_log
        log.info("run %s %s", run_id, conclusion.value)
