"""The release_host module on the real Docker engine: one call deploys, and a failed step says what runs now.

The module is called through ansible-playbook (one task, the role's library and
module_utils) exactly as the role calls it, with the system's Python as the host's
interpreter when it lacks `requests`, to show a host needs nothing but Python 3 and Docker.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ansible import ansible_world
from tests.ansible.conftest import (
    CANARY_SECRET,
    REPO,
    VENV_BIN,
    Images,
    ansible_env,
    container_exists,
    docker_inspect,
    running_digest,
)

ROLE = REPO / "roles" / "docker_release"
PORT, OTHER_PORT = 46901, 46902
NAME = "anstest-release-host"
PLAY = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: Call release_host
      release_host: "{{ module_args }}"
      register: outcome
      ignore_errors: true

    - name: Show the outcome
      ansible.builtin.debug:
        var: outcome
"""


def _host_python() -> str:
    """The system Python when it has no `requests` (the point of the module), else the venv's."""
    bare = subprocess.run(["/usr/bin/python3", "-c", "import requests"], capture_output=True, check=False, timeout=60)
    return "/usr/bin/python3" if bare.returncode != 0 else str(VENV_BIN / "python")


@pytest.fixture
def call(tmp_path: Path) -> Iterator[Any]:
    playbook = tmp_path / "call.yml"
    playbook.write_text(PLAY)
    state_dir = tmp_path / "state" / NAME

    def run(image: ansible_world.Image, **overrides: Any) -> tuple[dict[str, Any], str]:
        args = {
            "action": "deploy", "state_dir": str(state_dir), "container_name": NAME, "image": image.name,
            "digest": image.digest, "version": image.version, "release_id": "test", "deployed_by": "pytest",
            "env_file": str(state_dir / "app.env"), "env_content": f"SAMPLE_API_SECRET={CANARY_SECRET}\n",
            "published_port": PORT, "stop_timeout": 2, "labels": {"coordinator.test": "true"},
            "base_url": f"http://127.0.0.1:{PORT}", "timeout": 30, "interval": 0.25, **overrides,
        }
        extra = {"module_args": args, "ansible_python_interpreter": _host_python()}
        result = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook), "-e", json.dumps(extra)],
            cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
            env=ansible_env(ANSIBLE_LIBRARY=str(ROLE / "library"), ANSIBLE_MODULE_UTILS=str(ROLE / "module_utils"),
                            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"),
        )
        document = json.loads(result.stdout)
        outcome = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
        return outcome, result.stdout + result.stderr

    yield run
    subprocess.run(["docker", "rm", "--force", NAME, f"{NAME}-next", f"{NAME}-replaced"], capture_output=True,
                   check=False, timeout=120)


def test_one_call_deploys_verifies_and_a_second_changes_nothing(call: Any, images: Images) -> None:
    first, output = call(images.sample["1.0.0"])

    assert not first.get("failed"), first
    assert first["healthy"] and first["moved"] and first["container_changed"] and first["changed"]
    assert first["record"]["current"]["verified"] and first["record"]["current"]["version"] == "1.0.0"
    assert running_digest(NAME) == images.sample["1.0.0"].digest
    assert CANARY_SECRET not in output
    again, _ = call(images.sample["1.0.0"])
    assert not again.get("failed") and again["healthy"], again
    assert not again["changed"] and not again["container_changed"] and not again["moved"]


def test_a_changed_environment_replaces_the_container_without_moving_the_release(call: Any, images: Images) -> None:
    call(images.sample["1.0.0"])
    before = docker_inspect(NAME)["Id"]

    changed, output = call(images.sample["1.0.0"], env_content="SAMPLE_API_SECRET=rotated-secret-value\n")

    assert not changed.get("failed") and changed["healthy"], changed
    assert changed["container_changed"] and not changed["moved"]
    assert docker_inspect(NAME)["Id"] != before
    assert "rotated-secret-value" not in output


def test_a_new_container_that_cannot_start_gives_the_old_one_back(call: Any, images: Images) -> None:
    call(images.sample["1.0.0"])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", OTHER_PORT))
        squatter.listen()

        failed, _ = call(images.sample["2.0.0"], published_port=OTHER_PORT, base_url=f"http://127.0.0.1:{OTHER_PORT}")

    assert failed["failed"] and failed["stage"] == "container", failed
    assert failed["msg"].startswith(f"could not pull or start {NAME} from {images.sample['2.0.0'].name}@"), failed["msg"]
    assert "the old container was started again and keeps serving 1.0.0" in failed["msg"], failed["msg"]
    assert failed["moved"]  # recorded before the container changed: a rollback knows where to go back to
    assert running_digest(NAME) == images.sample["1.0.0"].digest
    assert docker_inspect(NAME)["State"]["Running"]
    assert not container_exists(f"{NAME}-next") and not container_exists(f"{NAME}-replaced")


def test_a_digest_the_registry_lacks_is_named_and_the_old_container_keeps_serving(call: Any, images: Images) -> None:
    call(images.sample["1.0.0"])
    missing = "sha256:" + "0" * 64
    image = images.sample["2.0.0"]

    failed, _ = call(ansible_world.Image(name=image.name, tag=image.tag, version="2.0.0", digest=missing,
                                         variant=image.variant))

    assert failed["failed"] and failed["stage"] == "pull", failed
    assert f"could not pull or start {NAME} from {image.name}@{missing}" in failed["msg"], failed["msg"]
    assert "the container was not changed: the old container keeps serving 1.0.0" in failed["msg"], failed["msg"]
    assert running_digest(NAME) == images.sample["1.0.0"].digest


def test_an_exiting_release_fails_within_the_first_slice_naming_the_exit(call: Any, images: Images) -> None:
    call(images.sample["1.0.0"])

    failed, _ = call(images.sample["3.0.0"])

    assert failed["failed"] and failed["stage"] == "health" and failed["fatal"], failed
    assert f"container {NAME} has exited" in failed["msg"] or f"container {NAME} is restart-looping" in failed["msg"]
    assert failed["moved"] and failed["record"]["previous"]["version"] == "1.0.0"


def test_someone_elses_live_lock_refuses_before_anything_changes(call: Any, images: Images, tmp_path: Path) -> None:
    lock = tmp_path / "locks" / f"{NAME}.lock"
    lock.mkdir(parents=True)
    (lock / "info.json").write_text(json.dumps({"owner": "ops-alice", "lock_id": "alice-1", "acquired_at": "now",
                                                "expires_at": "later", "expires_epoch": 4102444800}))

    refused, _ = call(images.sample["1.0.0"], lock_path=str(lock), lock_id="mine")

    assert refused["failed"] and refused["stage"] == "lock", refused
    assert "locked by ops-alice" in refused["msg"] and "alice-1" in refused["msg"], refused["msg"]
    assert not container_exists(NAME)
    assert not (tmp_path / "state" / NAME / "release.json").exists()


def test_a_call_that_takes_the_lock_gives_it_back_once_verified(call: Any, images: Images, tmp_path: Path) -> None:
    lock = tmp_path / "locks" / f"{NAME}.lock"

    outcome, _ = call(images.sample["1.0.0"], lock_path=str(lock), lock_id="run-1", lock_acquire=True, lock_release=True,
                      lock_owner="carol", lock_reason="release v1.0.0")

    assert outcome.get("failed") is not True and outcome["healthy"] is True, outcome
    assert outcome["locked"] is False and outcome["lock_released"] is True
    assert outcome["lock"]["owner"] == "carol" and outcome["lock"]["lock_id"] == "run-1" and outcome["lock"]["held"] is False
    assert not lock.exists()
    assert running_digest(NAME) == images.sample["1.0.0"].digest


def test_a_call_that_takes_the_lock_keeps_it_when_the_release_fails(call: Any, images: Images, tmp_path: Path) -> None:
    lock = tmp_path / "locks" / f"{NAME}.lock"
    assert call(images.sample["1.0.0"])[0]["healthy"] is True

    failed, _ = call(images.sample["3.0.0"], lock_path=str(lock), lock_id="run-2", lock_acquire=True, lock_release=True,
                     lock_owner="carol")

    assert failed["failed"] and failed["stage"] == "health", failed
    assert failed["locked"] is True and failed["lock"]["lock_id"] == "run-2"
    assert json.loads((lock / "info.json").read_text())["owner"] == "carol"  # the rollback runs under it


def test_taking_the_lock_refuses_someone_elses_and_changes_nothing(call: Any, images: Images, tmp_path: Path) -> None:
    lock = tmp_path / "locks" / f"{NAME}.lock"
    lock.mkdir(parents=True)
    (lock / "info.json").write_text(json.dumps({"owner": "ops-alice", "lock_id": "alice-1", "acquired_at": "now",
                                                "expires_at": "later", "expires_epoch": 4102444800}))

    refused, _ = call(images.sample["1.0.0"], lock_path=str(lock), lock_id="run-3", lock_acquire=True, lock_owner="carol")

    assert refused["failed"] and refused["stage"] == "lock" and refused["lock_held"] is True, refused
    assert "locked by ops-alice" in refused["msg"] and "alice-1" in refused["msg"], refused["msg"]
    assert refused["locked"] is False and refused["lock"]["owner"] == "ops-alice"
    assert json.loads((lock / "info.json").read_text())["lock_id"] == "alice-1"
    assert not container_exists(NAME)
    assert not (tmp_path / "state" / NAME / "release.json").exists()


def test_an_engine_that_does_not_answer_takes_no_lock(call: Any, images: Images, tmp_path: Path) -> None:
    lock = tmp_path / "locks" / f"{NAME}.lock"

    refused, _ = call(images.sample["1.0.0"], lock_path=str(lock), lock_id="run-4", lock_acquire=True, lock_owner="carol",
                      docker_socket=str(tmp_path / "no-docker.sock"))

    assert refused["failed"] and refused["stage"] == "engine" and refused["not_ready"] is True, refused
    assert "does not answer" in refused["msg"], refused["msg"]
    assert refused["locked"] is False and refused["lock"]["held"] is False
    assert not lock.exists()
    assert not (tmp_path / "state" / NAME / "release.json").exists()


# restore: a release that fails its health check puts the previous one back in the same call.


def test_a_failed_release_puts_the_previous_one_back_in_the_same_call_under_its_lock(
        call: Any, images: Images, tmp_path: Path) -> None:
    lock = tmp_path / "locks" / f"{NAME}.lock"
    good, exits = images.sample["1.0.0"], images.sample["3.0.0"]
    assert call(good)[0]["healthy"] is True

    failed, _ = call(exits, lock_path=str(lock), lock_id="run-5", lock_acquire=True, lock_release=True,
                     lock_owner="carol", restore=True, restore_reason="deploy failed on web: rolled back by deploy.yml")

    # The call still fails, naming the new release's failure, and says what it put back.
    assert failed["failed"] and failed["stage"] == "health", failed
    assert f"container {NAME} has exited" in failed["msg"] or f"container {NAME} is restart-looping" in failed["msg"]
    assert "restore_error" not in failed, failed
    restored = failed["restored"]
    assert restored["healthy"] is True and restored["moved"] is True, restored
    assert (restored["digest"], restored["version"], restored["running_digest"]) == (good.digest, "1.0.0", good.digest)
    assert (restored["previous_digest"], restored["previous_version"]) == (exits.digest, exits.version)
    assert running_digest(NAME) == good.digest
    record = json.loads((tmp_path / "state" / NAME / "release.json").read_text())
    assert record == failed["record"]
    assert record["current"]["digest"] == good.digest and record["current"]["verified"] is True, record
    assert record["previous"]["digest"] == exits.digest and record["previous"]["bad"] is True, record
    assert record["previous"]["bad_reason"] == "deploy failed on web: rolled back by deploy.yml"
    # The lock this call took stays held: the coordinator gives it back after its own checks.
    assert failed["locked"] is True and json.loads((lock / "info.json").read_text())["lock_id"] == "run-5"


def test_the_explicit_release_is_restored_rather_than_the_recorded_previous_one(call: Any, images: Images) -> None:
    assert call(images.sample["1.0.0"])[0]["healthy"] is True
    assert call(images.sample["2.0.0"])[0]["healthy"] is True  # "previous" is now 1.0.0

    failed, _ = call(images.sample["3.0.0"], restore=True, restore_digest=images.sample["1.0.0"].digest,
                     restore_version="1.0.0", restore_image=images.sample["1.0.0"].name)

    assert failed["failed"] and failed["restored"]["version"] == "1.0.0", failed
    assert running_digest(NAME) == images.sample["1.0.0"].digest


def test_a_restore_that_fails_says_why_and_leaves_the_rollback_failed(call: Any, images: Images) -> None:
    assert call(images.sample["1.0.0"])[0]["healthy"] is True
    missing = "sha256:" + "0" * 64

    failed, _ = call(images.sample["3.0.0"], restore=True, restore_digest=missing, restore_version="0.9.0")

    assert failed["failed"] and failed["stage"] == "health" and "restored" not in failed, failed
    assert failed["restore_stage"] == "pull", failed
    assert failed["restore_error"].startswith(f"could not pull or start {NAME} from {images.sample['3.0.0'].name}@{missing}")


def test_without_restore_a_failed_release_is_left_to_the_caller(call: Any, images: Images) -> None:
    assert call(images.sample["1.0.0"])[0]["healthy"] is True

    failed, _ = call(images.sample["3.0.0"])

    assert failed["failed"] and "restored" not in failed and "restore_error" not in failed, failed
    assert running_digest(NAME) == images.sample["3.0.0"].digest
