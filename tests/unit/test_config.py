import os
from pathlib import Path

import pytest
import yaml

from coordinator.config import load_config
from coordinator.errors import ConfigError

MINIMAL = {
    "project": "shop",
    "app": {"path": "app"},
    "forge": {"url": "https://git.example.com", "repo": "acme/shop"},
    "image": {"name": "registry.example.com/acme/shop"},
    "environments": {
        "staging": {"inventory": "inventory/staging", "url": "https://staging.example.com"},
        "production": {"inventory": "inventory/production", "url": "https://shop.example.com"},
    },
}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "coordinator.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_minimal_config_loads_with_defaults_and_absolute_paths(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.app.test_command == ["npm", "test"]
    assert config.app.path == tmp_path / "app"
    assert config.environments["production"].health_timeout_s == 300
    assert config.forge.owner == "acme" and config.forge.name == "shop"


def test_unknown_key_is_named(tmp_path):
    data = {**MINIMAL, "app": {"path": "app", "tset_command": ["make"]}}
    with pytest.raises(ConfigError, match=r"app\.tset_command: unknown key"):
        load_config(write(tmp_path, data))


def test_bad_url_names_the_field_and_value(tmp_path):
    data = {**MINIMAL, "forge": {"url": "git.example.com", "repo": "acme/shop"}}
    with pytest.raises(ConfigError, match=r"forge\.url: must be an http\(s\) URL.*git.example.com"):
        load_config(write(tmp_path, data))


def test_image_with_tag_is_refused(tmp_path):
    data = {**MINIMAL, "image": {"name": "registry.example.com/acme/shop:latest"}}
    with pytest.raises(ConfigError, match=r"image\.name"):
        load_config(write(tmp_path, data))


def test_gate_environment_must_exist(tmp_path):
    data = {**MINIMAL, "promote_to": "prod"}
    with pytest.raises(ConfigError, match="promote_to"):
        load_config(write(tmp_path, data))


def test_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "nope.yml")


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("project: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_token_comes_from_the_environment(tmp_path, monkeypatch):
    config = load_config(write(tmp_path, MINIMAL))
    monkeypatch.setenv("COORDINATOR_FORGE_TOKEN", "abc123secret")
    assert config.forge_token() == "abc123secret"


def test_missing_token_says_which_variable_to_export(tmp_path, monkeypatch):
    monkeypatch.delenv("COORDINATOR_FORGE_TOKEN", raising=False)
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError, match="export COORDINATOR_FORGE_TOKEN"):
        config.forge_token()


def test_token_file_readable_by_others_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("COORDINATOR_FORGE_TOKEN", raising=False)
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    os.chmod(token, 0o644)
    config = load_config(write(tmp_path, {**MINIMAL, "forge": {**MINIMAL["forge"], "token_file": "token"}}))
    with pytest.raises(ConfigError, match="chmod 600"):
        config.forge_token()
    os.chmod(token, 0o600)
    assert config.forge_token() == "s3cr3t-token"


def test_an_unknown_environment_is_named_with_the_ones_defined():
    import pytest

    from coordinator.config import Config
    from coordinator.errors import UsageError

    config = Config.model_validate({
        "project": "shop", "app": {"path": "."}, "forge": {"url": "https://git.example.com", "repo": "acme/shop"},
        "image": {"name": "registry.example.com/acme/shop"},
        "environments": {"staging": {"inventory": "inv/s", "url": "https://s.example.com"},
                         "production": {"inventory": "inv/p", "url": "https://p.example.com"}},
    })

    assert config.environment("staging").url == "https://s.example.com"
    with pytest.raises(UsageError, match=r"unknown environment 'prod': choose one of staging, production"):
        config.environment("prod")


def test_bots_are_case_insensitive_and_listed_once(tmp_path):
    data = {**MINIMAL, "approvals": {"bots": ["CI-Bot", "ci-bot", "Release.Bot"]}}
    assert load_config(write(tmp_path, data)).approvals.bots == ["ci-bot", "release.bot"]


def _with_serial(value) -> dict:
    environments = {**MINIMAL["environments"],
                    "production": {**MINIMAL["environments"]["production"], "serial": value}}
    return {**MINIMAL, "environments": environments}


@pytest.mark.parametrize("value", [2, "2", "25%", "100%", [1, "25%"], [1, 2, "50%"]])
def test_batch_sizes_take_ansible_s_serial_forms(tmp_path, value):
    assert load_config(write(tmp_path, _with_serial(value))).environments["production"].serial == value


@pytest.mark.parametrize(("value", "named"), [
    (0, "0"), ("0%", "'0%'"), ("101%", "'101%'"), ("half", "'half'"), ("1.5", "'1.5'"), ([1, "0"], "'0'"),
])
def test_a_bad_batch_size_is_named_with_the_forms_it_may_take(tmp_path, value, named):
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, _with_serial(value)))
    message = str(refused.value)
    assert "environments.production.serial" in message and f"batch size {named}" in message
    assert "host count" in message and "percentage" in message and "\n" not in message


def test_an_empty_list_of_batch_sizes_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"environments\.production\.serial: .*at least one batch size"):
        load_config(write(tmp_path, _with_serial([])))


def test_yes_is_not_a_batch_size(tmp_path):
    with pytest.raises(ConfigError, match=r"environments\.production\.serial"):
        load_config(write(tmp_path, _with_serial(True)))
