"""The local world as one object: bring it up, describe it, reset it between tests, tear it down.

`up` is idempotent: a part recorded in world.json whose PID still runs our program and
whose probe answers is reused; anything else is (re)started. Only what we started is ever
stopped. The facts other code needs (ports, paths, image name, URLs) are in `World`,
saved as DIR/world.json.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tests.sandbox import docker_engine, gitrepo, ports, registry, sshd, standin
from tests.sandbox.errors import SandboxError
from tests.sandbox.procs import Started, is_running, stop

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / ".sandbox"
EXAMPLE_APP = REPO_ROOT / "tests" / "sample-service"
HOST = "127.0.0.1"
REGISTRY_PORT = 45000
SSH_PORT = 45022
FORGE_PORT = 45300
STAGING_PORT = 45080
PRODUCTION_PORT = 45081
RELEASE_RECORDS = Path("/var/lib/coordinator")
CLAIM_FILE = Path("/tmp/coordinator-sandbox-claim.json")
"""Which world holds the machine-wide parts (fixed ports, sample-* containers, host records):
only one world can be up per machine, and a second one is refused at once naming the first."""


class Part(str, Enum):
    """The processes a world may start, in start order."""

    DOCKERD = "dockerd"
    REGISTRY = "registry"
    SSHD = "sshd"
    FORGE = "forge"


class World(BaseModel):
    """Everything a test, the demo or a config generator needs to know about one world."""

    model_config = ConfigDict(extra="forbid")

    dir: Path
    host: str = HOST
    registry: str = f"{HOST}:{REGISTRY_PORT}"
    registry_url: str = f"http://{HOST}:{REGISTRY_PORT}"
    image: str = f"{HOST}:{REGISTRY_PORT}/acme/sample"
    forge_url: str = f"http://{HOST}:{FORGE_PORT}"
    forge_owner: str = "acme"
    forge_repo: str = "sample"
    ssh_port: int = SSH_PORT
    ssh_user: str = "root"
    staging_url: str = f"http://{HOST}:{STAGING_PORT}"
    production_url: str = f"http://{HOST}:{PRODUCTION_PORT}"
    staging_container: str = "sample-staging"
    production_container: str = "sample-prod1"
    started: dict[Part, Started] = {}

    # Paths follow from `dir`; they are properties so world.json cannot disagree with them.
    @property
    def ssh(self) -> sshd.SshFiles:
        return sshd.SshFiles(self.dir / "ssh")

    @property
    def git_root(self) -> Path:
        return self.dir / "git"

    @property
    def bare_remote(self) -> Path:
        return self.git_root / self.forge_owner / f"{self.forge_repo}.git"

    @property
    def checkout(self) -> Path:
        return self.dir / "work" / self.forge_repo

    @property
    def token_file(self) -> Path:
        return self.dir / "forge-token"

    @property
    def forge_state_file(self) -> Path:
        return self.dir / "forge-state.json"

    @property
    def registry_config(self) -> Path:
        return self.dir / "registry.yml"

    @property
    def registry_storage(self) -> Path:
        return self.dir / "registry"

    @property
    def json_file(self) -> Path:
        return self.dir / "world.json"

    def token(self) -> str:
        """The stand-in's API token (a secret: never print it)."""
        return self.token_file.read_text(encoding="utf-8").strip()

    def ssh_argv(self) -> list[str]:
        """`ssh … root@127.0.0.1` with the pinned host key; append the remote command."""
        return sshd.client_argv(self.ssh, self.host, self.ssh_port, self.ssh_user)

    @classmethod
    def load(cls, directory: Path = DEFAULT_DIR) -> World:
        path = Path(directory).resolve() / "world.json"
        try:
            facts = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SandboxError(f"no world at {path}; run `python -m tests.sandbox up --dir {directory}`") from exc
        except json.JSONDecodeError as exc:
            raise SandboxError(f"{path} is not valid JSON ({exc}); remove it and run `python -m tests.sandbox up`") from exc
        facts.pop("paths", None)  # derived from `dir`; written for people and other tools
        return cls.model_validate(facts)

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        facts = json.loads(self.model_dump_json())
        facts["paths"] = {
            "bare_remote": str(self.bare_remote), "checkout": str(self.checkout),
            "token_file": str(self.token_file), "ssh_client_key": str(self.ssh.client_key),
            "ssh_known_hosts": str(self.ssh.known_hosts), "ssh_config": str(self.ssh.config),
            "registry_config": str(self.registry_config), "forge_state_file": str(self.forge_state_file),
        }
        scratch = self.json_file.with_suffix(".json.tmp")
        scratch.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
        scratch.replace(self.json_file)


def _load_or_new(directory: Path) -> World:
    directory = Path(directory).resolve()
    if (directory / "world.json").is_file():
        world = World.load(directory)
        if world.dir != directory:  # the directory was moved: paths follow the new place
            world = world.model_copy(update={"dir": directory})
        return world
    return World(dir=directory)


def _ensure(world: World, part: Part, healthy: Callable[[], bool], start: Callable[[], Started],
            address: str, report: Callable[[str], None]) -> None:
    """Reuse `part` if ours and healthy; refuse if a stranger holds its port; else start it."""
    recorded = world.started.get(part)
    if recorded is not None and is_running(recorded) and healthy():
        report(f"{part.value}: already up at {address} (pid {recorded.pid})")
        return
    if recorded is not None:
        stop(recorded)
        del world.started[part]
    if healthy():
        raise SandboxError(f"{part.value}: something not started by this world already answers at {address}; "
                           f"stop it (or `python -m tests.sandbox down` for the world that owns it) and retry")
    world.started[part] = start()
    world.save()
    report(f"{part.value}: started at {address} (pid {world.started[part].pid})")


def _other_live_world(directory: Path) -> Path | None:
    """The directory of another world that is still up on this machine, if any."""
    try:
        claimed = Path(json.loads(CLAIM_FILE.read_text(encoding="utf-8"))["dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if claimed == directory or not (claimed / "world.json").is_file():
        return None
    try:
        other = World.load(claimed)
    except SandboxError:
        return None
    live = [part for part in (Part.REGISTRY, Part.SSHD, Part.FORGE) if is_running(other.started.get(part))]
    return claimed if live else None


def _claim(world: World) -> None:
    """Refuse at once when another checkout's world is up; else mark the machine as ours."""
    other = _other_live_world(world.dir)
    if other is not None:
        raise SandboxError(f"another world is up on this machine: {other} (ports 45000-45999, sample-* containers). "
                           f"Wait for its run to finish, or stop it with `python -m tests.sandbox down --dir {other}`")
    scratch = CLAIM_FILE.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps({"dir": str(world.dir), "pid": os.getpid()}) + "\n", encoding="utf-8")
    scratch.replace(CLAIM_FILE)


def _unclaim(world: World) -> None:
    try:
        if json.loads(CLAIM_FILE.read_text(encoding="utf-8")).get("dir") == str(world.dir):
            CLAIM_FILE.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def up(directory: Path = DEFAULT_DIR, report: Callable[[str], None] = lambda line: None) -> World:
    """Bring every part up (reusing what is healthy) and return the world's facts."""
    world = _load_or_new(directory)
    _claim(world)
    world.dir.mkdir(parents=True, exist_ok=True)
    world.save()
    ports.reserve(world.dir, report)
    _up_engine(world, report)
    _up_registry(world, report)
    _up_sshd(world, report)
    _up_repositories(world, report)
    _up_forge(world, report)
    world.save()
    return world


def _up_engine(world: World, report: Callable[[str], None]) -> None:
    recorded = world.started.get(Part.DOCKERD)
    if recorded is not None and is_running(recorded):
        report(f"dockerd: already up (pid {recorded.pid}, ours)")
        return
    world.started.pop(Part.DOCKERD, None)
    started = docker_engine.ensure_engine(world.dir / "dockerd.log")
    if started is None:
        report("dockerd: already answering (not ours; left alone)")
        return
    world.started[Part.DOCKERD] = started
    world.save()
    report(f"dockerd: started (pid {started.pid})")


def _up_registry(world: World, report: Callable[[str], None]) -> None:
    registry.write_config(world.registry_config, world.registry_storage, world.registry)
    _ensure(world, Part.REGISTRY, lambda: registry.answers(world.registry),
            lambda: registry.start(world.registry_config, world.registry, world.dir / "registry.log"),
            world.registry_url, report)


def _up_sshd(world: World, report: Callable[[str], None]) -> None:
    sshd.prepare(world.ssh, world.host, world.ssh_port)
    _ensure(world, Part.SSHD, lambda: sshd.login_works(world.ssh, world.host, world.ssh_port),
            lambda: sshd.start(world.ssh, world.host, world.ssh_port, world.dir / "sshd.log"),
            f"{world.host}:{world.ssh_port}", report)


def _up_repositories(world: World, report: Callable[[str], None]) -> None:
    if gitrepo.is_seeded(world.checkout, world.bare_remote):
        report(f"git: checkout {world.checkout} kept")
        return
    _recreate_repositories(world)
    report(f"git: seeded {world.bare_remote} and {world.checkout} from {EXAMPLE_APP}")


def _up_forge(world: World, report: Callable[[str], None]) -> None:
    standin.ensure_token(world.token_file)
    recorded = world.started.get(Part.FORGE)
    if recorded is not None and is_running(recorded) and standin.code_changed_since(recorded.started_at):
        stop(recorded)
        del world.started[Part.FORGE]
        world.save()
        report(f"forge: stopped pid {recorded.pid}, its code changed since it started")
    if not standin.available():
        report(f"forge: skipped, {standin.MODULE_FILE} does not exist yet")
        return
    _ensure(world, Part.FORGE, lambda: standin.answers(world.forge_url),
            lambda: standin.start(host=world.host, port=FORGE_PORT, git_root=world.git_root,
                                  registry=world.registry, token_file=world.token_file,
                                  state_file=world.forge_state_file, log=world.dir / "gitea.log"),
            world.forge_url, report)


def _recreate_repositories(world: World) -> str:
    gitrepo.create_bare_remote(world.bare_remote)
    return gitrepo.seed_checkout(world.checkout, world.bare_remote, EXAMPLE_APP)


def reset(world: World, report: Callable[[str], None] = lambda line: None) -> World:
    """Give the next test a fresh app: new history, no app containers, no release records,
    and a stand-in that has forgotten its issues, runs and statuses."""
    removed = docker_engine.remove_sandbox_containers(world.dir)
    report(f"containers: removed {', '.join(removed) if removed else 'none'}")
    host_state = [*RELEASE_RECORDS.glob("sample-*"), *(RELEASE_RECORDS / "locks").glob("sample-*")]
    for record_dir in sorted(host_state):
        if record_dir.is_dir():
            shutil.rmtree(record_dir)
        else:
            record_dir.unlink()
        report(f"host state: removed {record_dir}")
    head = _recreate_repositories(world)
    report(f"git: fresh history, main at {head[:12]}")
    # After the repositories, so the stand-in starts over from the new refs, not the old.
    if standin.reset(world.forge_url, world.token_file):
        report("forge: state reset")
    return world


def down(directory: Path = DEFAULT_DIR, report: Callable[[str], None] = lambda line: None) -> None:
    """Stop what this world started, newest first, and remove the sandbox's containers."""
    directory = Path(directory).resolve()
    if not (directory / "world.json").is_file():
        report(f"no world at {directory}; nothing to stop")
        return
    world = World.load(directory)
    for part in (Part.FORGE, Part.SSHD, Part.REGISTRY):
        proc = world.started.pop(part, None)
        if proc is not None:
            report(f"{part.value}: {'stopped' if stop(proc) else 'was not running'} (pid {proc.pid})")
            world.save()
    if docker_engine.engine_answers():
        removed = docker_engine.remove_sandbox_containers(world.dir)
        report(f"containers: removed {', '.join(removed) if removed else 'none'}")
    proc = world.started.pop(Part.DOCKERD, None)
    if proc is not None:
        report(f"dockerd: {'stopped' if stop(proc, timeout_s=30.0) else 'was not running'} (pid {proc.pid})")
    world.save()
    ports.release(world.dir, report)
    _unclaim(world)


class PartStatus(BaseModel):
    """One line of `status`: is the part answering, and is it ours."""

    name: str
    address: str
    up: bool
    pid: int | None
    ours: bool


def status(directory: Path = DEFAULT_DIR) -> list[PartStatus]:
    directory = Path(directory).resolve()
    world = World.load(directory) if (directory / "world.json").is_file() else World(dir=directory)
    probes: list[tuple[Part, str, Callable[[], bool]]] = [
        (Part.DOCKERD, "docker engine", docker_engine.engine_answers),
        (Part.REGISTRY, world.registry_url, lambda: registry.answers(world.registry)),
        (Part.SSHD, f"{world.host}:{world.ssh_port}",
         lambda: world.ssh.client_key.is_file() and sshd.login_works(world.ssh, world.host, world.ssh_port)),
        (Part.FORGE, world.forge_url, lambda: standin.answers(world.forge_url)),
    ]
    lines = []
    for part, address, probe in probes:
        proc = world.started.get(part)
        ours = proc is not None and is_running(proc)
        lines.append(PartStatus(name=part.value, address=address, up=probe(), pid=proc.pid if ours and proc else None,
                                ours=ours))
    lines.append(PartStatus(name="checkout", address=str(world.checkout), pid=None, ours=True,
                            up=gitrepo.is_seeded(world.checkout, world.bare_remote)))
    return lines
