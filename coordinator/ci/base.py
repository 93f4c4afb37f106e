"""The CI provider interface: find the tag's run, follow it, read what it built.

Every provider maps its own vocabulary onto `RunStatus` and `RunConclusion`; anything a
provider does not recognise as success is never treated as success. `wait_for_run` is
the one polling loop, shared by all providers.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from coordinator.errors import BuildFailed, ForgeError

MANIFEST_FILE = "artifact-manifest.json"
DEFAULT_ARTIFACT_NAME = "artifact-manifest"
_MAX_MANIFEST_BYTES = 1024 * 1024
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class RunStatus(StrEnum):
    QUEUED = "queued"  # waiting for a runner, or for approval
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class RunConclusion(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    TIMED_OUT = "timed_out"


class CIRun(BaseModel):
    """One CI run (pipeline, workflow run) as every provider reports it."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: RunStatus
    conclusion: RunConclusion | None = None
    html_url: str = ""
    head_sha: str = ""
    tag: str | None = None  # set by providers that know which tag the run built
    number: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # Who triggered the run and which repository it belongs to, as the CI system records
    # them (`coordinator.releaser` decides with these); empty when the provider does not say.
    actor: str = ""
    repository: str = ""

    @property
    def is_completed(self) -> bool:
        return self.status is RunStatus.COMPLETED

    @property
    def succeeded(self) -> bool:
        return self.is_completed and self.conclusion is RunConclusion.SUCCESS


class ArtifactManifest(BaseModel):
    """What the tag's build says it produced: `image@digest`, built from `commit`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    image: str
    tag: str
    digest: str
    commit: str

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not _DIGEST.fullmatch(value):
            raise ValueError("must be sha256: followed by 64 lower-case hex digits")
        return value

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str) -> str:
        if not _COMMIT.fullmatch(value):
            raise ValueError("must be a full commit sha (40 or 64 lower-case hex digits)")
        return value

    @field_validator("image", "tag")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


@runtime_checkable
class CIProvider(Protocol):
    """What the build stage needs from any CI system."""

    kind: str
    run_id_env: str | None
    """The variable the CI system sets to the running job's run id (only a pointer: the run is read back)."""

    def find_tag_run(self, tag: str, commit_sha: str) -> CIRun | None:
        """The newest run built for pushing `tag` at `commit_sha`, or None if none started yet."""
        ...

    def get_run(self, run_id: str) -> CIRun:
        """The current state of one run."""
        ...

    def fetch_artifact_manifest(self, run: CIRun) -> ArtifactManifest:
        """The run's artifact manifest, checked (digest format, built from the run's commit)."""
        ...

    def triggered_run(self, run_id: str) -> CIRun:
        """Run `run_id` of the configured repository with the login of the person who triggered it
        (`actor`) and its repository (`repository`), as the CI system records them: the releaser of a
        release started from CI. IdentityRefused when this CI system does not record a person."""
        ...

    def close(self) -> None:
        ...


# -- manifests --------------------------------------------------------------------------


def parse_manifest(data: bytes, *, source: str, run: CIRun) -> ArtifactManifest:
    """Parse and check a manifest; any problem is a BuildFailed naming `source`."""
    try:
        raw: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BuildFailed(f"artifact manifest from {source} is not JSON: fix the CI step that writes {MANIFEST_FILE}") from None
    if not isinstance(raw, dict):
        raise BuildFailed(f"artifact manifest from {source} is not a JSON object with image, tag, digest and commit")
    try:
        manifest = ArtifactManifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "manifest"
        value = raw.get(field) if isinstance(raw, dict) else None
        shown = f" {value!r}" if isinstance(value, str) and len(value) <= 80 else ""
        message = "is missing" if first["type"] == "missing" else first["msg"].removeprefix("Value error, ")
        raise BuildFailed(
            f"artifact manifest from {source}: {field}{shown} {message}: fix the CI step that writes {MANIFEST_FILE}"
        ) from None
    if run.head_sha and manifest.commit != run.head_sha:
        raise BuildFailed(
            f"artifact manifest from {source} says commit {manifest.commit[:12]}, but run {run.id} built "
            f"{run.head_sha[:12]}: the artifact belongs to another build"
        )
    return manifest


def manifest_from_zip(data: bytes, *, source: str, run: CIRun) -> ArtifactManifest:
    """Find `artifact-manifest.json` in an artifact zip (at any depth) and parse it."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BuildFailed(f"artifact from {source} is not a zip archive: check the artifact name") from None
    with archive:
        members = [info for info in archive.infolist() if info.filename.rsplit("/", 1)[-1] == MANIFEST_FILE]
        if not members:
            raise BuildFailed(f"artifact from {source} holds no {MANIFEST_FILE}: the CI job must write it")
        member = min(members, key=lambda info: info.filename.count("/"))
        if member.file_size > _MAX_MANIFEST_BYTES:
            raise BuildFailed(f"{MANIFEST_FILE} in {source} is {member.file_size} bytes: that is not a manifest")
        return parse_manifest(archive.read(member), source=source, run=run)


def manifest_from_bytes(data: bytes, *, source: str, run: CIRun) -> ArtifactManifest:
    """A manifest served either as JSON or as a zip holding it."""
    if data.startswith(b"PK\x03\x04"):
        return manifest_from_zip(data, source=source, run=run)
    return parse_manifest(data, source=source, run=run)


# -- waiting ----------------------------------------------------------------------------

Progress = Callable[[CIRun | None, float], None]


def _transient(exc: ForgeError) -> bool:
    """Transport failures and server errors say nothing about the build: keep trying."""
    return exc.status is None or exc.status >= 500


def wait_for_run(
    provider: CIProvider,
    tag: str,
    commit_sha: str,
    *,
    timeout_s: float,
    poll_interval_s: float,
    on_progress: Progress | None = None,
    max_interval_s: float | None = None,
    backoff: float = 1.5,
    max_unknown_polls: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CIRun:
    """Poll until the tag's run completes (whatever its conclusion) and return it.

    The interval grows by `backoff` up to `max_interval_s` (default 10 × the first), and
    the whole wait is bounded by `timeout_s`: then BuildFailed with the run's URL. A run of
    `max_unknown_polls` failed polls (each already retried by the transport) is ForgeError
    "CI status unknown": the build may be fine, so the release is resumable.
    """
    started = clock()
    deadline = started + timeout_s
    interval = poll_interval_s
    ceiling = max_interval_s if max_interval_s is not None else max(poll_interval_s * 10, poll_interval_s)
    run: CIRun | None = None
    unknown = 0
    last_error: ForgeError | None = None
    while True:
        try:
            run = provider.find_tag_run(tag, commit_sha) if run is None else provider.get_run(run.id)
            if run is not None and run.tag is None:
                run = run.model_copy(update={"tag": tag})
            unknown, last_error = 0, None
        except ForgeError as exc:
            if not _transient(exc):
                raise
            unknown += 1
            last_error = exc
            if unknown >= max_unknown_polls:
                raise _status_unknown(tag, run, unknown, exc) from None
        now = clock()
        if on_progress is not None:
            on_progress(run, now - started)
        if last_error is None and run is not None and run.is_completed:
            return run
        if now >= deadline:
            if last_error is not None:
                raise _status_unknown(tag, run, unknown, last_error)
            raise _timed_out(tag, commit_sha, run, timeout_s)
        sleep(max(0.0, min(interval, deadline - now)))
        interval = min(interval * backoff, ceiling)


def _status_unknown(tag: str, run: CIRun | None, failures: int, exc: ForgeError) -> ForgeError:
    where = f" (run {run.html_url or run.id})" if run is not None else ""
    return ForgeError(
        f"CI status unknown for {tag}{where}: {failures} polls in a row failed, last: {exc.message}; "
        "the build may still be running: `coordinator resume` picks it up",
        endpoint=exc.endpoint, status=exc.status,
    )


def _timed_out(tag: str, commit_sha: str, run: CIRun | None, timeout_s: float) -> BuildFailed:
    if run is None:
        return BuildFailed(
            f"no CI run started for {tag} ({commit_sha[:12]}) within {timeout_s:.0f}s: "
            "check that the CI builds tag pushes (and ci.provider)"
        )
    return BuildFailed(
        f"CI run {run.id} for {tag} still {run.status.value} after {timeout_s:.0f}s: see {run.html_url or run.id} "
        "(raise ci.timeout_s for slow builds)"
    )
