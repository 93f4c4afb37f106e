"""Which Docker Engine API version the hosts' client speaks: the highest both sides know.

Pure logic (the engine's GET /version report in, a version or a refusal out); the same
choice against the real engine and the Engine 29 and too-old stand-ins is in
tests/ansible/test_engine_negotiation.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ENGINE_PY = Path(__file__).resolve().parents[2] / "roles" / "docker_release" / "module_utils" / "docker_engine.py"


def _docker_engine() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_engine_under_test", ENGINE_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


engine = _docker_engine()


def test_a_current_engine_gets_the_newest_version_we_know() -> None:
    assert engine.choose_api_version({"ApiVersion": "1.52", "MinAPIVersion": "1.44"}) == engine.MAX_API == (1, 52)


def test_an_engine_newer_than_us_is_spoken_to_in_our_newest_version() -> None:
    assert engine.choose_api_version({"ApiVersion": "1.60", "MinAPIVersion": "1.44"}) == engine.MAX_API


def test_an_older_engine_is_spoken_to_in_its_own_version() -> None:
    assert engine.choose_api_version({"ApiVersion": "1.41", "MinAPIVersion": "1.12"}) == (1, 41)
    assert engine.choose_api_version({"ApiVersion": "1.50", "MinAPIVersion": "1.24"}) == (1, 50)


def test_versions_compare_as_numbers_not_text() -> None:
    with pytest.raises(engine.EngineError):
        engine.choose_api_version({"ApiVersion": "1.9"})  # 1.9 < 1.41, though "1.9" > "1.41" as text
    assert engine.parse_api_version("1.100") == (1, 100)


def test_an_engine_too_old_for_us_is_refused_naming_both_versions() -> None:
    with pytest.raises(engine.EngineError) as refused:
        engine.choose_api_version({"ApiVersion": "1.40", "MinAPIVersion": "1.12", "Version": "19.03.15"}, "/run/docker.sock")
    message = str(refused.value)
    assert "1.40" in message and "1.41" in message and "19.03.15" in message and "/run/docker.sock" in message
    assert "upgrade the engine" in message


def test_an_engine_that_dropped_every_version_we_speak_is_refused_naming_both() -> None:
    with pytest.raises(engine.EngineError) as refused:
        engine.choose_api_version({"ApiVersion": "1.70", "MinAPIVersion": "1.60", "Version": "40.0.0"})
    message = str(refused.value)
    assert "1.60" in message and "1.52" in message and "upgrade coordinator" in message


def test_a_report_without_an_api_version_is_an_engine_error() -> None:
    with pytest.raises(engine.EngineError, match="no usable ApiVersion"):
        engine.choose_api_version({"Version": "29.0.0"})


def test_a_missing_minimum_means_the_engine_speaks_only_its_own_version() -> None:
    assert engine.choose_api_version({"ApiVersion": "1.45"}) == (1, 45)
    with pytest.raises(engine.EngineError, match="no longer speaks API 1.52"):
        engine.choose_api_version({"ApiVersion": "1.53"})
