"""release_host's pure decisions: input checks, the container it wants, and when an existing one is kept."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROLE = Path(__file__).resolve().parents[2] / "roles" / "docker_release"
DIGEST = "sha256:" + "a" * 64


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_release_host() -> ModuleType:
    """The module as Ansible would run it: its module_utils importable as ansible.module_utils.*."""
    for util in ("docker_engine", "host_lock", "release_state", "release_probe"):
        _load(f"ansible.module_utils.{util}", ROLE / "module_utils" / f"{util}.py")
    return _load("release_host", ROLE / "library" / "release_host.py")


rh = load_release_host()


def params(**overrides: Any) -> dict[str, Any]:
    return {
        "image": "registry.example.com/acme/sample", "digest": DIGEST, "version": "1.2.0", "container_name": "sample",
        "published_port": 8080, "container_port": 8080, "bind_address": "127.0.0.1", "restart_policy": "unless-stopped",
        "stop_timeout": 10, "init": True, "labels": {"team": "ops"}, "env_content": "# comment\nAPI_KEY=s3cr=et\n",
        **overrides,
    }


def container_from(wanted: dict[str, Any], image_env: list[str]) -> dict[str, Any]:
    """What the engine reports for a container created from `wanted` on an image with `image_env`."""
    env = dict(line.split("=", 1) for line in image_env)
    env.update(dict(line.split("=", 1) for line in wanted["Env"]))
    return {"Config": {"Labels": dict(wanted["Labels"]), "Env": [f"{k}={v}" for k, v in env.items()]}}


def test_the_wanted_container_pins_the_digest_and_binds_the_port_to_the_given_address() -> None:
    wanted = rh.wanted_config(params())

    assert wanted["Image"] == f"registry.example.com/acme/sample@{DIGEST}"
    assert wanted["Env"] == ["API_KEY=s3cr=et"]
    assert wanted["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert wanted["Labels"]["coordinator.version"] == "1.2.0" and wanted["Labels"]["coordinator.digest"] == DIGEST
    assert wanted["Labels"]["team"] == "ops"


def test_the_settings_label_never_depends_on_the_environment() -> None:
    """The label is readable by anyone who can inspect the container: no hash of secrets in it."""
    one = rh.wanted_config(params(env_content="API_KEY=one\n"))
    other = rh.wanted_config(params(env_content="API_KEY=other\n"))

    assert one["Labels"]["coordinator.settings"] == other["Labels"]["coordinator.settings"]


def test_a_container_created_from_the_same_settings_and_env_is_kept() -> None:
    wanted = rh.wanted_config(params())
    image = {"Config": {"Env": ["PATH=/bin"]}}

    assert rh.is_current(container_from(wanted, ["PATH=/bin"]), wanted, image)


@pytest.mark.parametrize("change", [
    {"env_content": "API_KEY=rotated\n"},
    {"published_port": 9090},
    {"digest": "sha256:" + "b" * 64},
    {"restart_policy": "always"},
])
def test_a_container_that_differs_in_settings_or_env_is_replaced(change: dict[str, Any]) -> None:
    existing = container_from(rh.wanted_config(params()), ["PATH=/bin"])
    wanted = rh.wanted_config(params(**change))

    assert not rh.is_current(existing, wanted, {"Config": {"Env": ["PATH=/bin"]}})


def test_a_missing_container_is_not_current() -> None:
    assert not rh.is_current(None, rh.wanted_config(params()), None)


@pytest.mark.parametrize("change", [
    {"image": "registry.example.com/acme/sample:1.2.0"},
    {"image": "registry.example.com/acme/sample@" + DIGEST},
    {"digest": "latest"},
    {"version": ""},
    {"container_name": "-bad"},
    {"published_port": 70000},
])
def test_bad_inputs_are_refused_naming_the_variables(change: dict[str, Any]) -> None:
    with pytest.raises(rh.StepFailed) as refused:
        rh.check_inputs(params(**change))

    assert refused.value.stage == "inputs"
    assert "docker_release_image must be a repository without tag or digest" in str(refused.value)


def test_an_env_line_that_is_not_a_shell_name_is_refused_without_showing_values() -> None:
    with pytest.raises(rh.StepFailed) as refused:
        rh.check_inputs(params(env_content="BAD-KEY=hunter2\n"))

    assert "docker_release_env" in str(refused.value) and "hunter2" not in str(refused.value)
