"""Stage 1, validate: is this commit fit to become VERSION?

Every check runs, and every failure is reported at once, so an operator fixes them in one
pass instead of discovering them one release attempt at a time. Nothing here has a side
effect on the outside world; `plan` runs the same checks.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from coordinator.context import Context
from coordinator.errors import CheckFailed, CoordinatorError, ForgeError
from coordinator.forge import LabelMissing
from coordinator.fsutil import atomic_write_text
from coordinator.git import Git
from coordinator.release import Release
from coordinator.versioning import changelog_section, read_app_version, tag_for


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    forge_unreachable: bool = False


def _run_command(argv: list[str], cwd: Path, timeout_s: float, log: Path) -> tuple[bool, str]:
    """Run an app command (argv, no shell); keep its output in `log`, return (ok, tail)."""
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        completed = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return False, f"command not found: {argv[0]} (set app.test_command / app.uat_command)"
    except subprocess.TimeoutExpired:
        return False, f"did not finish within {timeout_s:.0f}s"
    output = (completed.stdout or "") + (completed.stderr or "")
    atomic_write_text(log, output)  # 0600, like the playbook run logs beside it
    tail = " | ".join(output.strip().splitlines()[-3:])
    if completed.returncode != 0:
        return False, f"exit {completed.returncode}: {tail} (full log: {log})"
    return True, "passed"


def _uat_absent(argv: list[str] | None, app_dir: Path) -> str | None:
    """Why the UAT suite counts as absent, or None when it is present and must run."""
    if not argv:
        return "no app.uat_command configured"
    if argv[:2] == ["npm", "run"] and len(argv) >= 3:
        package = app_dir / "package.json"
        try:
            scripts = json.loads(package.read_text(encoding="utf-8")).get("scripts", {})
        except (OSError, json.JSONDecodeError):
            scripts = {}
        if argv[2] not in scripts:
            return f"package.json has no {argv[2]!r} script"
    elif "/" in argv[0] and not (app_dir / argv[0]).exists():
        return f"{argv[0]} does not exist in the app"
    return None


def local_checks(ctx: Context, version: str, release: Release | None = None) -> tuple[list[Check], str | None]:
    """Checks on the checkout itself; returns them and the release commit SHA (if known)."""
    app = ctx.config.app
    checks: list[Check] = []
    git = Git(app.path)
    if not git.is_repo():
        return [Check("checkout", False, f"{app.path} is not a git work tree: set app.path")], None
    sha = git.head_sha()
    branch = git.current_branch()
    checks.append(Check("branch", branch == app.branch,
                        f"on {branch}" if branch == app.branch else f"HEAD is on {branch!r}, releases come from {app.branch!r}: git switch {app.branch}"))
    checks.append(Check("clean work tree", git.is_clean(),
                        "clean" if git.is_clean() else "uncommitted changes to tracked files: commit or stash them"))
    try:
        declared = read_app_version(app.path, app.version_file)
        checks.append(Check("version file", declared == version,
                            f"{app.version_file} says {declared}" if declared == version
                            else f"{app.version_file} says {declared!r}, releasing {version!r}: bump it and commit"))
    except CheckFailed as exc:
        checks.append(Check("version file", False, "; ".join(exc.problems)))
    changelog_path = app.path / app.changelog
    if not changelog_path.is_file():
        checks.append(Check("changelog", False, f"{app.changelog} not found in {app.path}: create it with a ## [{version}] section"))
    else:
        section = changelog_section(changelog_path.read_text(encoding="utf-8"), version)
        if section is None:
            checks.append(Check("changelog", False, f"{app.changelog} has no ## [{version}] section: add one describing the release"))
        elif not section:
            checks.append(Check("changelog", False, f"{app.changelog} section for {version} is empty: describe the release"))
        else:
            checks.append(Check("changelog", True, f"section for {version} found"))
            if release is not None:
                release.changelog = section
    try:
        remote_sha = git.remote_branch_sha(app.remote, app.branch)
        pushed = remote_sha == sha
        checks.append(Check("pushed", pushed, f"{app.remote}/{app.branch} is at {sha[:12]}" if pushed
                            else f"{app.remote}/{app.branch} is at {(remote_sha or 'nothing')[:12]}, HEAD at {sha[:12]}: git push {app.remote} {app.branch}"))
        remote_tag = git.remote_tag(app.remote, tag_for(version))
        if remote_tag is not None and remote_tag.commit_sha != sha:
            checks.append(Check("tag", False, f"tag {tag_for(version)} already exists on {app.remote} at {remote_tag.commit_sha[:12]}, not HEAD {sha[:12]}: release a new version"))
    except CoordinatorError as exc:
        checks.append(Check("pushed", False, exc.message))
    return checks, sha


def forge_checks(ctx: Context, sha: str) -> list[Check]:
    """CI status of the commit and release blockers, from the forge (read-only)."""
    checks: list[Check] = []
    label = ctx.config.forge.blocker_label
    try:
        status = ctx.forge.combined_status(sha)
        if status.total_count == 0:
            checks.append(Check("ci status", False, f"no CI has reported on {sha[:12]}: wait for CI or check its configuration"))
        elif status.is_success:
            checks.append(Check("ci status", True, f"{status.total_count} check(s) green"))
        else:
            failing = [s.context for s in (status.statuses or []) if s.status != "success"]
            checks.append(Check("ci status", False, f"combined status is {status.state or 'unknown'} ({', '.join(failing) or 'no detail'}): fix CI first"))
    except ForgeError as exc:
        checks.append(Check("ci status", False, exc.message, forge_unreachable=True))
    try:
        blockers = ctx.forge.open_issues_with_label(label)
        if blockers:
            listed = ", ".join(f"#{issue.number} {issue.title}" for issue in blockers[:5])
            checks.append(Check("release blockers", False, f"{len(blockers)} open issue(s) labelled {label}: {listed}"))
        else:
            checks.append(Check("release blockers", True, f"no open {label} issues"))
    except LabelMissing as exc:
        checks.append(Check("release blockers", False, exc.message))  # config: fix it, resuming cannot help
    except ForgeError as exc:
        checks.append(Check("release blockers", False, exc.message, forge_unreachable=exc.status is None))
    return checks


def command_checks(ctx: Context, release_id: str) -> list[Check]:
    """The app's test and UAT suites (these may take a while)."""
    app = ctx.config.app
    logs = ctx.config.state_dir / "logs" / release_id
    checks: list[Check] = []
    ok, detail = _run_command(app.test_command, app.path, app.command_timeout_s, logs / "test.log")
    checks.append(Check("tests", ok, detail))
    absent = _uat_absent(app.uat_command, app.path)
    if absent:
        checks.append(Check("uat", True, f"skipped: {absent}"))
    else:
        assert app.uat_command is not None
        ok, detail = _run_command(app.uat_command, app.path, app.command_timeout_s, logs / "uat.log")
        checks.append(Check("uat", ok, detail))
    return checks


def run_validate(ctx: Context, release: Release) -> None:
    """Run every check; raise CheckFailed (or ForgeError when only the forge failed)."""
    checks, sha = local_checks(ctx, release.version, release)
    if sha is not None:
        checks += forge_checks(ctx, sha)
        checks += command_checks(ctx, release.id)
    for check in checks:
        (ctx.out.info if check.ok else ctx.out.warn)(f"{'pass' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    failed = [check for check in checks if not check.ok]
    if failed and all(check.forge_unreachable for check in failed):
        raise ForgeError("forge unreachable during validation: " + "; ".join(c.detail for c in failed))
    if failed:
        raise CheckFailed([f"{check.name}: {check.detail}" for check in failed])
    assert sha is not None
    release.commit_sha = sha
    release.commit_time = Git(ctx.config.app.path).commit_time(sha)
