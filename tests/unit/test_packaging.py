"""What the distribution declares matches what the code imports and what the tests install."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import yaml

from coordinator import DISTRIBUTION
from coordinator.config import REPO_ROOT
from coordinator.failpoints import armed

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
TEAM_EXTRA = {"psycopg"}  # imported only by the postgres backend, declared in the `team` extra


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in (REPO_ROOT / "coordinator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "coordinator"}


def test_the_distribution_name_is_ours_and_the_command_stays_coordinator():
    assert PYPROJECT["project"]["name"] == DISTRIBUTION == "release-coordinator"
    assert PYPROJECT["project"]["scripts"] == {"coordinator": "coordinator.cli:main"}


def test_runtime_dependencies_are_exactly_what_the_package_imports():
    declared = {_name(req) for req in PYPROJECT["project"]["dependencies"]}
    distributions = metadata.packages_distributions()
    imported = {distributions[name][0].lower() for name in _third_party_imports() - TEAM_EXTRA}
    assert declared == imported | {"ansible-core"}  # ansible-core: the ansible-playbook that ansible-runner runs
    assert "ansible" not in declared and "requests" not in declared


def test_ansible_core_is_pinned_to_a_range():
    (core,) = [req for req in PYPROJECT["project"]["dependencies"] if _name(req) == "ansible-core"]
    assert ">=" in core and "<" in core.replace("<=", "")


def test_requirements_yml_names_the_collections_the_dev_install_carries():
    wanted = yaml.safe_load((REPO_ROOT / "requirements.yml").read_text())["collections"]
    site = Path(metadata.distribution("ansible").locate_file("ansible_collections"))
    for collection in wanted:
        namespace, name = collection["name"].split(".")
        manifest = json.loads((site / namespace / name / "MANIFEST.json").read_text())
        assert manifest["collection_info"]["version"] == collection["version"], collection["name"]


def test_failpoints_are_armed_in_this_editable_install():
    """The kill/resume tests rely on it; a wheel install is checked in tests/integration/test_install.py."""
    assert armed()
