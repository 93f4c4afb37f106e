"""`ansible.strategy`: the config key, the runner's environment it makes, and a missing Mitogen.

The world drills (tests/drills/test_strategy_drills.py and the parametrized rollback and
secret drills) show a whole release under Mitogen; here the selection itself, a local
playbook that proves Mitogen really ran, and the refusal when it is not installed, through
the CLI, before anything is written.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from coordinator.ansible import run_playbook
from coordinator.config import REPO_ROOT, load_config
from coordinator.errors import ConfigError, ExitCode
from coordinator.strategy import MITOGEN_INSTALL, AnsibleStrategy, mitogen_strategy_dir, strategy_envvars
from tests.unit.test_config import MINIMAL, write
from tests.unit.test_config_check import checkout, write_config  # noqa: F401 (fixture)

# The module's parent process: under Mitogen the interpreter Mitogen started on the host,
# which renames itself `python(mitogen:...)`; under Ansible's own strategy an AnsiballZ run.
PROBE = """\
- name: Probe
  hosts: all
  gather_facts: false
  tasks:
    - name: Show the module's parent process
      ansible.builtin.shell: "tr '\\\\0' ' ' < /proc/$PPID/cmdline"
      register: parent
      changed_when: false
    - name: Publish it
      ansible.builtin.set_stats:
        data:
          coordinator_hosts: "{{ {inventory_hostname: {'parent': parent.stdout}} }}"
        per_host: false
"""

# The CLI with Mitogen hidden, as in an install without the extra (find_spec sees None).
WITHOUT_MITOGEN = ("import sys; sys.modules['ansible_mitogen'] = None; from coordinator.cli import main; "
                   "sys.argv[0] = 'coordinator'; main()")


def test_the_default_is_ansibles_own_linear_strategy(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).ansible.strategy is AnsibleStrategy.LINEAR


def test_mitogen_is_chosen_in_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {**MINIMAL, "ansible": {"strategy": "mitogen"}}))
    assert config.ansible.strategy is AnsibleStrategy.MITOGEN


def test_an_unknown_strategy_names_the_key_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, {**MINIMAL, "ansible": {"strategy": "free"}}))
    assert "ansible.strategy" in caught.value.message and "'linear' or 'mitogen'" in caught.value.message
    assert "(got 'free')" in caught.value.message


def test_linear_is_set_by_its_full_name_and_no_plugin_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_STRATEGY", "free")  # the operator's shell does not choose it
    assert strategy_envvars(AnsibleStrategy.LINEAR) == {"ANSIBLE_STRATEGY": "ansible.builtin.linear"}


def test_mitogen_points_ansible_at_the_installed_plugin() -> None:
    envvars = strategy_envvars(AnsibleStrategy.MITOGEN)
    import ansible_mitogen  # type: ignore[import-untyped]  # the dev install has the extra (scripts/bootstrap)

    assert envvars["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert Path(envvars["ANSIBLE_STRATEGY_PLUGINS"]) == Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    assert (Path(envvars["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_linear.py").is_file()


def test_not_installed_is_none_and_the_runner_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ansible_mitogen", None)
    assert mitogen_strategy_dir() is None
    with pytest.raises(ConfigError, match=r"ansible.strategy: mitogen is chosen but Mitogen is not installed"):
        strategy_envvars(AnsibleStrategy.MITOGEN)
    assert strategy_envvars(AnsibleStrategy.LINEAR)["ANSIBLE_STRATEGY"] == "ansible.builtin.linear"


def parent_of_the_module(tmp_path: Path, strategy: AnsibleStrategy) -> str:
    ansible_dir = tmp_path / "content"
    (ansible_dir / "playbooks").mkdir(parents=True, exist_ok=True)
    (ansible_dir / "roles").mkdir(exist_ok=True)
    (ansible_dir / "ansible.cfg").write_text((REPO_ROOT / "ansible.cfg").read_text())
    (ansible_dir / "playbooks" / "probe.yml").write_text(PROBE)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(f"app:\n  hosts:\n    probe1:\n      ansible_connection: local\n"
                         f"      ansible_python_interpreter: {sys.executable}\n")
    result = run_playbook(ansible_dir=ansible_dir, playbook="probe.yml", inventory=inventory, extravars={},
                          ident=f"probe-{strategy}", strategy=strategy, timeout_s=120)
    assert result.ok, result.summary()
    return str(result.reported["probe1"]["parent"])


def test_mitogen_really_runs_the_modules_and_linear_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_STRATEGY", "ansible.builtin.free")  # neither run may take the shell's choice
    assert "(mitogen:" in parent_of_the_module(tmp_path, AnsibleStrategy.MITOGEN)
    assert "(mitogen:" not in parent_of_the_module(tmp_path, AnsibleStrategy.LINEAR)


def run_without_mitogen(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_MITOGEN, "-c", str(config), *args], capture_output=True,
                          text=True, check=False, timeout=120, stdin=subprocess.DEVNULL, cwd=config.parent)


@pytest.mark.parametrize("command", [["config", "check"], ["release", "1.0.0"], ["rollback", "production", "--reason", "x"]])
def test_mitogen_chosen_but_not_installed_is_a_config_error_before_anything_is_written(
        checkout: Path, command: list[str]) -> None:  # noqa: F811 (fixture)
    config = write_config(checkout, ansible={"strategy": "mitogen"})

    completed = run_without_mitogen(config, *command)

    assert completed.returncode == ExitCode.USAGE == 2, completed.stderr
    [line] = completed.stderr.strip().splitlines()
    assert line == (f"error: {config}: ansible.strategy: mitogen is chosen but Mitogen is not installed for "
                    f"{sys.executable}; install it with {MITOGEN_INSTALL}, or set ansible.strategy to linear"), line
    assert not (checkout / "state").exists()  # no state dir, no lock, no audit record: nothing changed


def test_the_same_config_passes_config_check_with_mitogen_installed(checkout: Path) -> None:  # noqa: F811 (fixture)
    config = write_config(checkout, ansible={"strategy": "mitogen"})
    completed = subprocess.run([sys.executable, "-m", "coordinator", "-c", str(config), "config", "check"],
                               capture_output=True, text=True, check=False, timeout=60, stdin=subprocess.DEVNULL)
    assert completed.returncode == ExitCode.OK, completed.stderr
    assert "strategy: mitogen" in completed.stdout


def test_the_mitogen_extra_pins_the_tested_version_and_the_dev_install_has_it() -> None:
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [pin] = extras["mitogen"]
    constraints = (REPO_ROOT / "scripts" / "constraints.txt").read_text().splitlines()
    assert pin.startswith("mitogen==") and any(line.split()[0] == pin for line in constraints if line.strip())
    assert metadata.version("mitogen") == pin.split("==")[1]
    assert "[dev,mitogen]" in (REPO_ROOT / "scripts" / "bootstrap").read_text()
