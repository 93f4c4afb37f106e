"""Edit a checkout of the sample service into the shapes the tests and demo need.

`make_variant` changes files only (commit them with `bump` or git); `bump` prepares a new
release commit the way a developer would and pushes it to origin main.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from tests.sandbox.errors import SandboxError
from tests.sandbox.gitrepo import BRANCH, git

EXAMPLE = Path(__file__).resolve().parents[1] / "sample-service"
VARIANTS = ("good", "broken-health", "exits", "wrong-version")
WRONG_VERSION = "0.0.0-wrong"

_ENTRYPOINT = re.compile(r"^ENTRYPOINT .*$", re.MULTILINE)
_COPY_VERSION = "COPY VERSION /www/version"
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def _restore_good(checkout: Path) -> None:
    shutil.copy2(EXAMPLE / "Dockerfile", checkout / "Dockerfile")
    (checkout / "www").mkdir(exist_ok=True)
    shutil.copy2(EXAMPLE / "www" / "health", checkout / "www" / "health")
    (checkout / "www" / "version").unlink(missing_ok=True)


def make_variant(checkout: Path, name: str) -> None:
    """Turn the app in `checkout` into variant `name`; every variant starts from `good`.

    good: serves /health and /version = VERSION. broken-health: /health is 404.
    exits: the container exits at once (status 1). wrong-version: /version is not VERSION.
    """
    if name not in VARIANTS:
        raise SandboxError(f"unknown sample variant {name!r}; use one of {', '.join(VARIANTS)}")
    checkout = Path(checkout)
    _restore_good(checkout)
    dockerfile = checkout / "Dockerfile"
    if name == "broken-health":
        (checkout / "www" / "health").unlink()
    elif name == "exits":
        text = dockerfile.read_text(encoding="utf-8")
        dockerfile.write_text(_ENTRYPOINT.sub('ENTRYPOINT ["/bin/busybox", "false"]', text), encoding="utf-8")
    elif name == "wrong-version":
        # The image then serves www/version as is instead of a copy of VERSION.
        text = dockerfile.read_text(encoding="utf-8")
        dockerfile.write_text(text.replace(_COPY_VERSION + "\n", ""), encoding="utf-8")
        (checkout / "www" / "version").write_text(WRONG_VERSION + "\n", encoding="utf-8")


def _with_section(changelog: str, version: str, day: dt.date, text: str) -> str:
    """Insert the new section above the newest `## [` one (after the title and preamble)."""
    section = f"## [{version}] - {day.isoformat()}\n\n{text.strip()}\n\n"
    index = changelog.find("\n## [")
    if index == -1:
        return changelog.rstrip("\n") + "\n\n" + section
    return changelog[: index + 1] + section + changelog[index + 1:]


def bump(checkout: Path, version: str, changelog_text: str, *, day: dt.date | None = None) -> str:
    """Set VERSION, add a CHANGELOG section, commit everything changed and push main.

    Returns the new commit's SHA. Uncommitted edits (e.g. from `make_variant`) go into the
    same commit, as they would in a developer's release commit.
    """
    if not _SEMVER.match(version):
        raise SandboxError(f"version {version!r} is not SemVer (e.g. 1.2.3)")
    checkout = Path(checkout)
    day = day or dt.datetime.now(dt.timezone.utc).date()
    (checkout / "VERSION").write_text(version + "\n", encoding="utf-8")
    changelog = checkout / "CHANGELOG.md"
    changelog.write_text(_with_section(changelog.read_text(encoding="utf-8"), version, day, changelog_text),
                         encoding="utf-8")
    git(checkout, "add", "--all")
    git(checkout, "commit", "--quiet", "-m", f"Prepare release {version}")
    git(checkout, "push", "--quiet", "origin", f"HEAD:refs/heads/{BRANCH}")
    return git(checkout, "rev-parse", "HEAD").strip()
