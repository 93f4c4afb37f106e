"""`coordinator config check`: what a valid-looking config still gets wrong on this machine.

The schema accepts any path; only the file system can say that the app checkout, an
environment's inventory or a token file is missing, or that a token file is readable by
others. Each problem is one clause naming the key, the value and the fix.
"""

from __future__ import annotations

import stat
from pathlib import Path

from coordinator.config import CIProviderKind, Config


def config_problems(config: Config) -> list[str]:
    """Everything `config check` refuses beyond the schema, in the order the file lists it."""
    problems = _app_problems(config.app.path)
    for name, env in config.environments.items():
        if not env.inventory.exists():
            problems.append(f"environments.{name}.inventory: {env.inventory} does not exist; point it at the "
                            "environment's Ansible inventory (a hosts.yml or its folder)")
    for key, path in (("forge.token_file", config.forge.token_file), ("state.dsn_file", config.state.dsn_file)):
        if path is not None:
            problems += _secret_file_problems(key, path)
    return problems + _bot_problems(config)


def _bot_problems(config: Config) -> list[str]:
    """Bots never approve and release only from a CI run that names a person: say so when the config contradicts it."""
    approvals = config.approvals
    problems = [f"approvals.bots: {bot} is also listed in approvals.approvers, but a bot never approves; "
                "remove it from one of the lists" for bot in approvals.bots
                if bot in {name.casefold() for name in approvals.approvers}]
    if approvals.bots and config.ci.provider is CIProviderKind.COMMIT_STATUS:
        problems.append("approvals.bots: with ci.provider commit-status there are no CI run records to name the person "
                        "who started a release, so a bot can never release; use a provider with runs, or run releases "
                        "as a person")
    return problems


def _app_problems(path: Path) -> list[str]:
    if not path.is_dir():
        return [f"app.path: {path} does not exist or is not a folder; point it at the app's git checkout"]
    if not (path / ".git").exists():
        return [f"app.path: {path} is not a git work tree (no .git); point it at the app's git checkout"]
    return []


def _secret_file_problems(key: str, path: Path) -> list[str]:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        return [f"{key}: {path} cannot be read ({exc.strerror}); create it with mode 0600"]
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [f"{key}: {path} has mode {mode:04o}, readable by others; chmod 600 {path}"]
    return []
