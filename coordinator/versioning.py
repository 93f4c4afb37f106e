"""Version grammar and the app's own statement of its version.

A release version is strict SemVer (`MAJOR.MINOR.PATCH` with optional pre-release and
build parts), checked before anything touches git or a host: it ends up in a git ref, a
container label and a shell-free argv, so nothing else may get through.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from coordinator.errors import CheckFailed, UsageError

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def parse_version(text: str) -> str:
    """Return the SemVer version in `text` (a leading `v` is accepted), or raise UsageError."""
    candidate = text[1:] if text.startswith("v") else text
    if not SEMVER.match(candidate):
        raise UsageError(
            f"version {text!r} is not SemVer: give MAJOR.MINOR.PATCH such as 1.2.3 "
            "(optionally -rc.1), without spaces or other characters"
        )
    return candidate


def tag_for(version: str) -> str:
    """The git tag a version is released under."""
    return f"v{version}"


def read_app_version(app_dir: Path, version_file: str) -> str:
    """Read the version the app declares in package.json, pyproject.toml or a VERSION file."""
    path = app_dir / version_file
    if not path.is_file():
        raise CheckFailed([f"version file {version_file} not found in {app_dir}: set app.version_file"])
    name = path.name
    text = path.read_text(encoding="utf-8")
    if name == "package.json":
        try:
            version = json.loads(text).get("version")
        except json.JSONDecodeError as exc:
            raise CheckFailed([f"{version_file} is not valid JSON ({exc.msg} at line {exc.lineno})"]) from exc
    elif name == "pyproject.toml":
        try:
            version = tomllib.loads(text).get("project", {}).get("version")
        except tomllib.TOMLDecodeError as exc:
            raise CheckFailed([f"{version_file} is not valid TOML ({exc})"]) from exc
    else:
        version = text.strip()
    if not isinstance(version, str) or not version:
        raise CheckFailed([f"{version_file} declares no version"])
    return version


_SECTION = re.compile(r"^##\s+\[?v?(?P<version>[^\]\s]+)\]?.*$")


def changelog_section(changelog: str, version: str) -> str | None:
    """The body of the `## [version]` section of a Keep-a-Changelog style file, or None.

    The text is returned verbatim: it is operator text and is only ever passed to
    templates as data.
    """
    lines = changelog.splitlines()
    body: list[str] = []
    inside = False
    for line in lines:
        match = _SECTION.match(line)
        if match:
            if inside:
                break
            inside = match.group("version") == version
            continue
        if inside:
            body.append(line)
    if not inside and not body:
        return None
    return "\n".join(body).strip()
