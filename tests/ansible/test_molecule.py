"""Each role's molecule scenario passes: converge, idempotence (no changes) and verify."""

from __future__ import annotations

import subprocess

import pytest

from tests.ansible.conftest import REPO, VENV_BIN, ansible_env

ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if (path / "molecule" / "default").is_dir())


@pytest.mark.parametrize("role", ROLES)
def test_molecule_scenario_passes(role: str) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "molecule"), "test"],
        cwd=REPO / "roles" / role,
        capture_output=True,
        text=True,
        timeout=600,
        env=ansible_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "idempotence" in result.stdout + result.stderr
