"""`coordinator init`: the files a new team starts from, written without asking anything.

A team's first hour should not be spent copying YAML out of a README: `init` writes a
commented `coordinator.yml`, one inventory per environment (the `app` group, the host
variables the roles need, `group_vars`, an empty `known_hosts` with the pinning steps) and a
Gitea/Forgejo Actions job that releases up to the gate. Every value has a placeholder
default and a flag; the result passes `coordinator config check` as written. It never
overwrites: when any target exists, nothing is written.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import ValidationError

from coordinator import __version__
from coordinator.errors import UsageError
from coordinator.output import Output

TEMPLATES = Path(__file__).resolve().parent / "templates" / "init"
WORKFLOW = Path(".gitea") / "workflows" / "release.yml"
DEFAULT_ENVIRONMENTS = ("staging", "production")
# Where a team keeps its copy of this repository: the CI job installs the tag it tested, with its pins.
DEFAULT_INSTALL = f"release-coordinator @ git+https://git.example.com/acme/coordinator.git@v{__version__}"
DEFAULT_CONSTRAINTS = f"https://git.example.com/acme/coordinator/raw/tag/v{__version__}/scripts/constraints.txt"
_HOST = re.compile(r"^(?:(?P<user>[a-z_][a-z0-9_-]{0,31})@)?(?P<name>[A-Za-z0-9][A-Za-z0-9.-]{0,252})(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class Host:
    """One inventory host, from `[user@]name[:port]`."""

    name: str
    user: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class InitOptions:
    """What the flags of `coordinator init` say (all optional: placeholders otherwise)."""

    project: str = "myapp"
    app_path: str = "."
    forge_kind: str = "gitea"
    forge_url: str = "https://git.example.com"
    repo: str = "acme/myapp"
    image: str = "registry.example.com/acme/myapp"
    environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    hosts: dict[str, tuple[Host, ...]] = field(default_factory=dict)
    install_spec: str = DEFAULT_INSTALL
    constraints: str = DEFAULT_CONSTRAINTS


def parse_host(spec: str) -> tuple[str, Host]:
    """`ENV=[user@]host[:port]` as given to `--host`, or a UsageError naming the fix."""
    env, sep, address = spec.partition("=")
    match = _HOST.match(address)
    if not sep or not env or match is None:
        raise UsageError(f"--host {spec!r}: expected ENV=[USER@]HOST[:PORT], e.g. production=deploy@app1.example.com:22")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--host {spec!r}: port {port} is not between 1 and 65535")
    return env, Host(name=match["name"], user=match["user"], port=port)


def _placeholder_hosts(project: str, env: str) -> tuple[Host, ...]:
    return (Host(name=f"{project}1.{env}.example.com"),)


def _env_url(project: str, env: str, last: bool) -> str:
    return f"https://{project}.example.com" if last else f"https://{project}.{env}.example.com"


def _render(template: str, values: dict[str, Any]) -> str:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True, autoescape=False)
    environment.filters["shell"] = shlex.quote  # values in the CI job's `run:` script are words, never code
    return environment.get_template(template).render(**values)


def planned_files(options: InitOptions) -> dict[Path, str]:
    """Every file `init` writes (relative path → text), rendered and validated, nothing written."""
    if len(options.environments) < 2 or len(set(options.environments)) != len(options.environments):
        raise UsageError(f"--env: give at least two distinct environments, the smoke-tested one first and the gated "
                         f"one last (got {', '.join(options.environments) or 'none'})")
    unknown = sorted(set(options.hosts) - set(options.environments))
    if unknown:
        raise UsageError(f"--host {unknown[0]}=…: no environment {unknown[0]!r}; known: {', '.join(options.environments)}")
    last = options.environments[-1]
    values: dict[str, Any] = {
        "project": options.project, "app_path": options.app_path, "forge_kind": options.forge_kind,
        "forge_url": options.forge_url, "repo": options.repo, "image": options.image,
        "ci_provider": f"{options.forge_kind}-actions", "environments": list(options.environments),
        "env_urls": {env: _env_url(options.project, env, env == last) for env in options.environments},
        "install_spec": options.install_spec, "constraints": options.constraints,
    }
    files = {Path("coordinator.yml"): _render("coordinator.yml.j2", values)}
    _validate_config(files[Path("coordinator.yml")])
    for env in options.environments:
        hosts = options.hosts.get(env) or _placeholder_hosts(options.project, env)
        env_values = {**values, "env": env, "hosts": hosts}
        files[Path("inventory", env, "hosts.yml")] = _render("hosts.yml.j2", env_values)
        files[Path("inventory", env, "group_vars", "all.yml")] = _render("group_vars_all.yml.j2", env_values)
        files[Path("inventory", env, "known_hosts")] = ""
    files[WORKFLOW] = _render("release-workflow.yml.j2", values)
    for path, text in files.items():
        if path.suffix == ".yml":
            yaml.safe_load(text)  # a template bug shows here, not in the operator's first run
    return files


def _validate_config(text: str) -> None:
    """The flags' values are checked by the same model `config check` uses, naming the flag's key."""
    from coordinator.config import Config

    try:
        Config.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise UsageError(f"init: {where}: {error['msg']} (fix the flag that sets it; see `coordinator init --help`)") from None


def write_files(directory: Path, files: dict[Path, str]) -> list[Path]:
    """Create every file, refusing (before writing any) if one exists already."""
    existing = [path for path in files if (directory / path).exists() or (directory / path).is_symlink()]
    if existing:
        raise UsageError(f"init: {directory / existing[0]} exists; nothing was written (move it away, or "
                         "run init in another directory with --dir)")
    written = []
    for path, text in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: a file that appeared since the check above is not overwritten either.
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise UsageError(f"init: {target} appeared while init was writing; check what else writes here") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(target)
    return written


def init_from_flags(out: Output, directory: Path, host_specs: tuple[str, ...], environments: tuple[str, ...],
                    values: dict[str, str | None]) -> None:
    """`coordinator init`: turn the flags into files, then say what comes next."""
    hosts: dict[str, list[Host]] = {}
    for spec in host_specs:
        env, host = parse_host(spec)
        hosts.setdefault(env, []).append(host)
    project = values.get("project") or InitOptions.project
    given = {key: value for key, value in values.items() if value is not None}
    given.setdefault("repo", f"acme/{project}")
    given.setdefault("image", f"registry.example.com/acme/{project}")
    options = InitOptions(environments=environments or DEFAULT_ENVIRONMENTS,
                          hosts={env: tuple(found) for env, found in hosts.items()}, **given)
    for path in write_files(directory, planned_files(options)):
        out.line(f"wrote {path}")
    out.success("written; the first hour from here (README: \"Your first release\"):")
    for step in next_steps(options):
        out.line(f"  {step}")


def next_steps(options: InitOptions) -> list[str]:
    """The first hour after `init`, as the README tells it."""
    first, last = options.environments[0], options.environments[-1]
    return [
        "export COORDINATOR_FORGE_TOKEN=…   # a token of the release bot on the forge",
        "coordinator config check",
        f"edit inventory/*/hosts.yml, then pin host keys: ssh-keyscan HOST >> inventory/{first}/known_hosts "
        "(compare fingerprints first, see the comment in hosts.yml)",
        f"coordinator hosts check {first}   and   coordinator hosts check {last}",
        "coordinator plan VERSION",
    ]
