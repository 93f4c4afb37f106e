"""The coordinator's configuration: one YAML file, validated before anything runs.

Every key is declared here with its default and a description; unknown keys are refused
so a typo never silently falls back to a default. Paths are resolved relative to the
config file, so a config can be committed next to the app it releases.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator,
                      model_validator)

from coordinator.errors import ConfigError, UsageError
from coordinator.strategy import AnsibleStrategy, require_strategy

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The coordinator checkout, when running from one (an editable install or the source tree)."""

INSTALLED_ANSIBLE_DIR = Path(__file__).resolve().parent / "_ansible"
"""Where a wheel install keeps its copy of playbooks/, roles/ and ansible.cfg (see setup.py)."""


def default_ansible_dir() -> Path:
    """The checkout's Ansible content when running from one, else the copy installed with the package."""
    if (REPO_ROOT / "playbooks" / "deploy.yml").is_file() and (REPO_ROOT / "ansible.cfg").is_file():
        return REPO_ROOT
    return INSTALLED_ANSIBLE_DIR

_IMAGE_NAME = re.compile(r"^[a-z0-9.-]+(?::\d+)?/[a-z0-9._/-]+$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_ACCOUNT = re.compile(r"[A-Za-z0-9_.@-]{1,63}")


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://git.example.com")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_check_url)]

_BATCH = re.compile(r"^(?:[1-9][0-9]*|(?:100|[1-9][0-9]?)%)$")


def _check_batches(value: int | str | list[int | str]) -> int | str | list[int | str]:
    """Batch sizes as Ansible's `serial` takes them: a host count, a percentage of the hosts, or
    a non-empty list of those whose last size repeats."""
    sizes = value if isinstance(value, list) else [value]
    if not sizes:
        raise ValueError("give at least one batch size, e.g. [1, '25%']")
    for size in sizes:
        if isinstance(size, bool) or not _BATCH.match(str(size)):
            raise ValueError(f"batch size {size!r} must be a host count (1, 2, ...) or a percentage (1%..100%)")
    return value


BatchSizes = Annotated[StrictInt | str | list[StrictInt | str], AfterValidator(_check_batches)]


class AppConfig(Strict):
    path: Path = Field(description="The app checkout to release (a git work tree).")
    remote: str = Field("origin", description="The git remote the tag is pushed to.")
    branch: str = Field("main", description="The branch releases are cut from.")
    version_file: str = Field(
        "package.json", description="package.json, pyproject.toml or a plain VERSION file."
    )
    changelog: str = Field("CHANGELOG.md", description="Keep-a-Changelog file with ## [x.y.z] sections.")
    test_command: list[str] = Field(["npm", "test"], description="argv of the app's test suite.")
    uat_command: list[str] | None = Field(
        ["npm", "run", "uat"], description="argv of the UAT suite; skipped when null or absent."
    )
    command_timeout_s: float = Field(1800, gt=0, description="Bound on each test/UAT command.")

    @field_validator("test_command")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must be a non-empty argv list such as [npm, test]")
        return value


class ForgeKind(StrEnum):
    GITEA = "gitea"
    FORGEJO = "forgejo"


class ForgeConfig(Strict):
    kind: ForgeKind = ForgeKind.GITEA
    url: HttpUrl = Field(description="Base URL of the forge, without /api/v1.")
    repo: str = Field(description="owner/name of the app repository on the forge.")
    token_env: str = Field("COORDINATOR_FORGE_TOKEN", description="Environment variable holding the API token.")
    token_file: Path | None = Field(None, description="Alternatively a file (mode 0600) holding the token.")
    ca_file: Path | None = Field(None, description="Custom CA bundle, added to the system trust store; TLS is always verified.")
    blocker_label: str = "release-blocker"
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not _REPO.match(value):
            raise ValueError("must be owner/name, e.g. acme/shop")
        return value

    @field_validator("token_env")
    @classmethod
    def _env_var(cls, value: str) -> str:
        if not _ENV_VAR.match(value):
            raise ValueError("must be an environment variable name such as GITEA_TOKEN")
        return value

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repo.split("/", 1)[1]


class CIProviderKind(StrEnum):
    GITEA_ACTIONS = "gitea-actions"
    FORGEJO_ACTIONS = "forgejo-actions"
    COMMIT_STATUS = "commit-status"
    WOODPECKER = "woodpecker"
    GITHUB_ACTIONS = "github-actions"


class CIConfig(Strict):
    provider: CIProviderKind = CIProviderKind.GITEA_ACTIONS
    url: HttpUrl | None = Field(None, description="CI API base URL when it is not the forge (woodpecker, github).")
    repo: str | None = Field(None, description="owner/name on the CI system when it differs from forge.repo.")
    token_env: str | None = Field(None, description="Environment variable with the CI token (default: the forge's).")
    artifact_name: str = "artifact-manifest"
    manifest_url: str | None = Field(None, description="Where the artifact manifest lives for providers without artifacts; {tag} and {sha} are substituted.")
    status_context: str | None = Field(None, description="commit-status provider: the status context of the tag build.")
    ca_file: Path | None = Field(None, description="Custom CA for the CI API (default: the forge's).")
    timeout_s: float = Field(1800, gt=0, description="How long to wait for the tag's CI run.")
    poll_interval_s: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _separate_url(self) -> "CIConfig":
        if self.provider in (CIProviderKind.GITHUB_ACTIONS, CIProviderKind.WOODPECKER) and not self.url:
            raise ValueError(f"ci.url is required for provider {self.provider.value} (its API is not the forge's)")
        return self


class RegistryCredentialsConfig(Strict):
    """A registry user and where its password or token lives (never the config text itself)."""

    username: str = Field(min_length=1, description="Registry user (for a token-only registry, any name it accepts).")
    password_env: str = Field("COORDINATOR_REGISTRY_PASSWORD", description="Environment variable with the password or token.")
    password_file: Path | None = Field(None, description="Alternatively a file (mode 0600) holding it.")

    @field_validator("password_env")
    @classmethod
    def _env_var(cls, value: str) -> str:
        if not _ENV_VAR.match(value):
            raise ValueError("must be an environment variable name such as REGISTRY_TOKEN")
        return value


class ImageConfig(Strict):
    name: str = Field(description="Image repository without tag, e.g. registry.example.com/acme/shop.")
    registry_ca_file: Path | None = Field(
        None, description="Custom CA bundle for the registry digest check, added to the system trust store.")
    credentials: RegistryCredentialsConfig | None = Field(
        None, description="Registry credentials for the controller's digest check and the hosts' pull.")
    docker_config: bool = Field(
        True, description="Without credentials: use the operator's Docker config.json auths entry for the registry.")

    @field_validator("name")
    @classmethod
    def _image(cls, value: str) -> str:
        if not _IMAGE_NAME.match(value):
            raise ValueError("must be registry-host[:port]/path in lower case, without a tag or digest")
        return value

    @property
    def registry(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def repository(self) -> str:
        return self.name.split("/", 1)[1]


class EnvironmentConfig(Strict):
    inventory: Path = Field(description="Ansible inventory directory for this environment.")
    url: HttpUrl = Field(description="Base URL the smoke test and health checks use.")
    smoke_command: list[str] | None = Field(
        None, description="argv run in the app checkout after deploy; {url} and {version} are substituted. Default: built-in /health + /version check."
    )
    health_timeout_s: float = Field(300, gt=0, description="Deadline for /health and /version to answer 200.")
    health_interval_s: float = Field(0.5, gt=0, description=(
        "Seconds between health polls; a host passes when it stays healthy for the stability window "
        "(release_health_stable_seconds, 0.5 s) after its first healthy answer."))
    serial: BatchSizes | None = Field(None, description=(
        "Batch sizes for deploy.yml (Ansible's serial): a count, a percentage, or a list whose last "
        "size repeats, e.g. [1, '25%']. Default: one canary host, then a quarter of the hosts per "
        "batch, rounded up (5 hosts: 1, 2, 2)."))
    playbook_timeout_s: float = Field(1800, gt=0)
    allow_no_hosts: bool = Field(
        False, description="Accept an inventory without hosts (a staging that is only a formality); "
                           "otherwise zero hosts is an error, exit 2.")


class NotifyConfig(Strict):
    announce: list[str] = Field(default_factory=list, description="Apprise URLs for release announcements.")
    escalate: list[str] = Field(default_factory=list, description="Apprise URLs for rollbacks and failures.")
    templates_dir: Path | None = Field(None, description="Directory with template overrides.")


class IdentityMode(StrEnum):
    """How an approver's identity is established (README "Team mode")."""

    LOCAL = "local"  # whatever --operator / the login name says: unauthenticated
    FORGE = "forge"  # the owner of the forge token the approver runs with (GET /user)
    DATABASE = "database"  # the database role of the session, enforced by the database


class ApprovalConfig(Strict):
    required: Annotated[int, Field(ge=1, le=5)] = 1
    forbid_self_approval: bool = False
    expires_after_s: float | None = Field(None, gt=0)
    identity: IdentityMode = Field(IdentityMode.LOCAL, description="local (unauthenticated), forge or database.")
    approvers: list[str] = Field(
        default_factory=list,
        description="Who may approve: forge logins and/or org/team names (forge), or database roles (database). "
                    "Empty: any verified identity.")
    bots: list[str] = Field(
        default_factory=list,
        description="Accounts that never approve and may release only from a verified CI run (`release --ci-run`): "
                    "CI jobs, the CI token's owner. Case-insensitive.")

    @field_validator("bots")
    @classmethod
    def _bot_names(cls, value: list[str]) -> list[str]:
        names = []
        for name in value:
            if not isinstance(name, str) or not _ACCOUNT.fullmatch(name.strip()):
                raise ValueError(f"{name!r} is not an account name (letters, digits, _ . @ -); list forge logins "
                                 "or database roles, e.g. [ci-bot]")
            if name.strip().casefold() not in names:
                names.append(name.strip().casefold())
        return names

    @model_validator(mode="after")
    def _authenticated_when_it_matters(self) -> "ApprovalConfig":
        if self.identity is IdentityMode.LOCAL and (self.required > 1 or self.forbid_self_approval):
            wanted = "required > 1" if self.required > 1 else "forbid_self_approval"
            raise ValueError(
                f"{wanted} needs verified approvers, but identity is 'local' (anyone can claim any name): "
                "set approvals.identity to forge or database (README 'Team mode')")
        return self


class StateBackend(StrEnum):
    LOCAL = "local"
    POSTGRES = "postgres"


class StateConfig(Strict):
    """Where release records, approvals, the run lock and the audit chain live."""

    backend: StateBackend = Field(StateBackend.LOCAL, description="local (files in state_dir) or postgres (shared).")
    dsn_env: str = Field("COORDINATOR_DATABASE_URL", description="Environment variable holding the PostgreSQL DSN.")
    dsn_file: Path | None = Field(None, description="Alternatively a file (mode 0600) holding the DSN.")
    connect_timeout_s: float = Field(10.0, gt=0, le=300)
    app_role: str = Field("coordinator_app", description="Group role granted SELECT/INSERT by `state init`.")

    @field_validator("dsn_env")
    @classmethod
    def _env_var(cls, value: str) -> str:
        if not _ENV_VAR.match(value):
            raise ValueError("must be an environment variable name such as COORDINATOR_DATABASE_URL")
        return value

    @field_validator("app_role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", value):
            raise ValueError("must be a lower-case PostgreSQL role name such as coordinator_app")
        return value


class AnsibleConfig(Strict):
    """How the playbooks run (the playbooks themselves are `ansible_dir`'s)."""

    strategy: AnsibleStrategy = Field(AnsibleStrategy.LINEAR, description=(
        "linear (Ansible's own) or mitogen (opt-in: needs the mitogen extra; faster on fleets of 5 or more hosts, "
        "slower on one; docs/performance.md)."))


class Config(Strict):
    project: str = Field(description="Short project name, used in release ids and container names.")
    app: AppConfig
    forge: ForgeConfig
    ci: CIConfig = Field(default_factory=CIConfig)
    image: ImageConfig
    environments: dict[str, EnvironmentConfig]
    promote_from: str = Field("staging", description="The environment that must pass before the gate.")
    promote_to: str = Field("production", description="The environment behind the approval gate.")
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    approvals: ApprovalConfig = Field(default_factory=ApprovalConfig)
    state_dir: Path = Field(Path(".coordinator"), description="Release records, audit log and lock.")
    ansible_dir: Path = Field(default_factory=default_ansible_dir,
                              description="Where playbooks/, roles/ and ansible.cfg live (default: the installed copy).")
    ansible: AnsibleConfig = Field(default_factory=AnsibleConfig)
    state: StateConfig = Field(default_factory=StateConfig)

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,62}$", value):
            raise ValueError("must be lower-case letters, digits, '.', '_' or '-'")
        return value

    @field_validator("environments")
    @classmethod
    def _env_names(cls, value: dict[str, EnvironmentConfig]) -> dict[str, EnvironmentConfig]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(f"environment name {name!r} must be lower-case letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _stages_exist(self) -> "Config":
        for key in ("promote_from", "promote_to"):
            name = getattr(self, key)
            if name not in self.environments:
                raise ValueError(f"{key}: environment {name!r} is not defined under environments")
        return self

    @model_validator(mode="after")
    def _database_identity_needs_database(self) -> "Config":
        if self.approvals.identity is IdentityMode.DATABASE and self.state.backend is not StateBackend.POSTGRES:
            raise ValueError("approvals.identity 'database' needs state.backend 'postgres' (the database vouches for the role)")
        return self

    def resolve_paths(self, base: Path) -> "Config":
        """Make every relative path absolute against the config file's folder."""

        def absolute(path: Path | None) -> Path | None:
            if path is None:
                return None
            return path if path.is_absolute() else (base / path).resolve()

        self.app.path = absolute(self.app.path)  # type: ignore[assignment]
        self.state_dir = absolute(self.state_dir)  # type: ignore[assignment]
        self.ansible_dir = absolute(self.ansible_dir)  # type: ignore[assignment]
        self.forge.token_file = absolute(self.forge.token_file)
        self.state.dsn_file = absolute(self.state.dsn_file)
        self.forge.ca_file = absolute(self.forge.ca_file)
        self.ci.ca_file = absolute(self.ci.ca_file)
        self.image.registry_ca_file = absolute(self.image.registry_ca_file)
        if self.image.credentials is not None:
            self.image.credentials.password_file = absolute(self.image.credentials.password_file)
        self.notify.templates_dir = absolute(self.notify.templates_dir)
        for env in self.environments.values():
            env.inventory = absolute(env.inventory)  # type: ignore[assignment]
        return self

    def environment(self, name: str) -> EnvironmentConfig:
        """The environment a command names, or a usage error listing the ones this config defines."""
        env = self.environments.get(name)
        if env is None:
            raise UsageError(f"unknown environment {name!r}: choose one of {', '.join(self.environments)}")
        return env

    def forge_token(self) -> str:
        """The forge API token, from the environment or a private file; never from argv."""
        token = secret_from(self.forge.token_env, self.forge.token_file, "forge.token_file")
        if token:
            return token
        raise ConfigError(
            f"no forge token: export {self.forge.token_env}=<token> (or set forge.token_file to a 0600 file)"
        )

    def database_dsn(self) -> str:
        """The state database's DSN, from the environment or a private file; never argv or config text."""
        dsn = secret_from(self.state.dsn_env, self.state.dsn_file, "state.dsn_file")
        if dsn:
            return dsn
        raise ConfigError(
            f"no database DSN for state.backend postgres: export {self.state.dsn_env}=postgresql://… "
            "(or set state.dsn_file to a 0600 file)"
        )

    def dsn_source(self) -> str:
        """Where the DSN came from, for messages (never the value)."""
        if os.environ.get(self.state.dsn_env, "").strip() or self.state.dsn_file is None:
            return f"environment variable {self.state.dsn_env}"
        return f"state.dsn_file {self.state.dsn_file}"


def secret_from(env: str, path: Path | None, key: str) -> str | None:
    """A secret from environment variable `env`, else from the 0600 file `path`; None if neither has one."""
    value = os.environ.get(env, "").strip()
    if value:
        return value
    if path is None:
        return None
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{key} {path} cannot be read ({exc.strerror}): create it with mode 0600") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{key} {path} is readable by others: chmod 600 {path}")
    return path.read_text(encoding="utf-8").strip() or None


def nearest_key(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """The declared key closest to a misspelled one at `loc` (difflib), if one is close enough."""
    import difflib

    model = _model_at(list(loc[:-1]))
    if model is None:
        return None
    matches = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _model_at(path: list[Any]) -> type[BaseModel] | None:
    """The config section model a key path leads to (through `environments.<name>`), or None."""
    import typing

    model: type[BaseModel] = Config
    parts = iter(path)
    for part in parts:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:  # environments: skip the name, then its keys
            annotation = typing.get_args(annotation)[1]
            next(parts, None)
        found = [arg for arg in (typing.get_args(annotation) or (annotation,))
                 if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if not found:
            return None
        model = found[0]
    return model


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        nearest = nearest_key(error["loc"])
        if nearest:
            return f"{location}: unknown key; did you mean {nearest!r}?"
        return f"{location}: unknown key; remove it or check its spelling against README's configuration reference"
    if kind == "missing":
        return f"{location}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
    return f"{location}: {message}{shown}"


def load_config(path: Path) -> Config:
    """Read, validate and resolve a config file; raise ConfigError naming the bad key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror}): pass --config PATH") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a YAML mapping of keys to values")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
    config = config.resolve_paths(path.resolve().parent)
    if not (config.ansible_dir / "playbooks" / "deploy.yml").is_file():
        raise ConfigError(f"{path}: ansible_dir: {config.ansible_dir} has no playbooks/deploy.yml; remove the key to use "
                          "the playbooks installed with coordinator, or point it at a coordinator checkout")
    try:
        require_strategy(config.ansible.strategy)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    return config


def redact_url(url: str) -> str:
    """Show where a notification URL points, never its credentials or token-bearing path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    suffix = "/***" if (parts.path.strip("/") or parts.query or parts.username or parts.password) else ""
    return f"{parts.scheme}://{host}{port}{suffix}"


def redacted_view(config: Config) -> dict[str, Any]:
    """The resolved configuration as data, safe to print: notification URLs reduced to host."""
    data = config.model_dump(mode="json")
    notify = data.get("notify", {})
    for key in ("announce", "escalate"):
        notify[key] = [redact_url(url) for url in notify.get(key, [])]
    return data
