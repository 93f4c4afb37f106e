"""Render the coordinator's own messages from fixed templates, safely.

Operator text (CHANGELOG sections, commit messages, reasons) is passed to templates as
DATA: it is inserted verbatim and never itself rendered, so `{{ ... }}` in a changelog
stays literal text. Templates run in jinja's sandbox (an operator override cannot reach
Python internals) with StrictUndefined (a missing value is an error, not a blank line in
a release announcement). Output is plain text or Markdown, so there is no HTML escaping.

An operator may override any template by putting a file of the same name in
`notify.templates_dir`; anything not overridden comes from the package.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordinator.errors import ConfigError, CoordinatorError

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

__all__ = ["BUILTIN_TEMPLATES", "render", "template_names"]

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"


def template_names() -> list[str]:
    """The templates the coordinator ships (each may be overridden by name)."""
    return sorted(path.name for path in BUILTIN_TEMPLATES.glob("*.j2"))


def render(name: str, context: dict[str, Any], *, override_dir: Path | None = None) -> str:
    """Render template `name` with `context`; the override dir wins over the built-ins.

    Raises ConfigError when an operator's override is broken (names the file and the fix),
    CoordinatorError when a built-in template and its caller disagree (a bug).
    """
    import jinja2

    environment = _environment(str(override_dir) if override_dir is not None else None)
    try:
        template = environment.get_template(name)
    except jinja2.TemplateNotFound:
        where = f"{override_dir} or the built-in templates" if override_dir else "the built-in templates"
        raise ConfigError(f"template {name!r} not found in {where}: check the name or add the file") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"template {exc.filename or name} line {exc.lineno}: {exc.message}: fix the template syntax") from None
    source = Path(template.filename) if template.filename else None
    overridden = override_dir is not None and source is not None and source.parent == Path(override_dir).resolve()
    try:
        return template.render(**context)
    except jinja2.TemplateError as exc:  # undefined variables and sandbox refusals included
        if overridden:
            raise ConfigError(
                f"template override {source} failed: {exc}: use only the documented variables (see the built-in {name})"
            ) from None
        raise CoordinatorError(f"built-in template {name} failed: {exc} (a coordinator bug: please report it)") from None


@lru_cache(maxsize=8)
def _environment(override_dir: str | None) -> SandboxedEnvironment:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(Path(override_dir).resolve())))
    loaders.append(jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES)))
    return SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
