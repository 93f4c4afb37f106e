"""A manifest published at a URL the operator configures (`ci.manifest_url`).

For CI systems without an artifact API (commit statuses, Woodpecker) the build job puts
`artifact-manifest.json` somewhere reachable; `{tag}` and `{sha}` in the template are
filled in. Our credential goes only to the API's own origin, never to another host.
"""

from __future__ import annotations

import string
from urllib.parse import quote, urlsplit

from coordinator.ci.base import ArtifactManifest, CIRun, manifest_from_bytes
from coordinator.errors import BuildFailed, ConfigError, ForgeError
from coordinator.forge._http import HttpSession, origin

_FIELDS = frozenset({"tag", "sha"})


class ManifestURL:
    """A checked `ci.manifest_url` template."""

    def __init__(self, template: str) -> None:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as exc:
            raise ConfigError(f"ci.manifest_url {template!r} is not a valid template ({exc}): use {{tag}} and {{sha}}") from None
        unknown = sorted(names - _FIELDS)
        if unknown:
            raise ConfigError(f"ci.manifest_url uses unknown placeholder(s) {', '.join(unknown)}: only {{tag}} and {{sha}} exist")
        if urlsplit(template).scheme not in ("http", "https"):
            raise ConfigError(f"ci.manifest_url {template!r} must be an http(s) URL")
        self.template = template

    def render(self, tag: str, sha: str) -> str:
        return self.template.format(tag=quote(tag, safe=""), sha=quote(sha, safe=""))

    def fetch(self, http: HttpSession, *, tag: str, run: CIRun) -> ArtifactManifest:
        url = self.render(tag, run.head_sha)
        same_origin = origin(url) == origin(http.base_url)
        shown = http.endpoint("GET", url).removeprefix("GET ")
        try:
            response = http.request("GET", url, follow_redirects=True, send_auth=same_origin)
        except ForgeError as exc:
            if exc.status == 404:
                raise BuildFailed(
                    f"no artifact manifest at {shown} for {tag} (HTTP 404): the CI job must publish it there "
                    "(see ci.manifest_url)"
                ) from None
            raise
        return manifest_from_bytes(response.content, source=shown, run=run)
