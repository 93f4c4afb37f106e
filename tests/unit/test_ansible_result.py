"""How playbook events become a typed result (no Ansible run needed)."""

from coordinator.ansible import PlaybookResult, _read_stats


def stats_event(**data):
    return {"ok": {}, "changed": {}, "failures": {}, "dark": {}, "artifact_data": {}, **data}


def test_unreachable_hosts_count_as_failed_even_when_ansible_says_successful():
    result = PlaybookResult(playbook="deploy.yml", status="successful", rc=0)
    _read_stats(result, stats_event(ok={"web1": 3}, dark={"web2": 1}))
    assert result.failed_hosts == ["web2"]
    assert not result.ok


def test_reported_host_states_are_read_from_the_stats_artifact():
    result = PlaybookResult(playbook="verify.yml", status="successful", rc=0)
    digest = "sha256:" + "1" * 64
    _read_stats(result, stats_event(ok={"web1": 2}, artifact_data={
        "coordinator_hosts": {"web1": {"running_digest": digest, "version": "1.0.0", "healthy": True}}}))
    state = result.host_states()["web1"]
    assert state.digest == digest and state.version == "1.0.0" and state.healthy
    assert result.ok


def test_summary_names_the_failing_host_and_task():
    result = PlaybookResult(playbook="deploy.yml", status="failed", rc=2)
    _read_stats(result, stats_event(failures={"web1": 1}))
    result.hosts["web1"].failed_task = "Wait for /health"
    result.hosts["web1"].message = "timed out"
    assert result.summary() == "web1 task 'Wait for /health' failed: timed out"


def test_health_waits_show_when_they_start_and_how_they_ended():
    from coordinator.ansible import _progress_line

    start = _progress_line("runner_on_start", {"host": "prod1", "task": "Wait for /health and /version until the deadline"})
    assert start == "  prod1: Wait for /health and /version until the deadline ..."
    done = _progress_line("runner_on_ok", {"host": "prod1", "task": "Wait for /health and /version until the deadline",
                                           "res": {"healthy": True, "polls": 4, "elapsed": 1.52, "version": "1.1.0"}})
    assert done == "  prod1: healthy, /version 1.1.0 after 4 poll(s) in 1.52 s"


def test_unchanged_ok_tasks_print_nothing():
    from coordinator.ansible import _progress_line

    assert _progress_line("runner_on_ok", {"host": "web1", "task": "Read the record", "res": {"changed": False}}) is None


def test_playbook_runs_check_ssh_host_keys_whatever_ansible_runner_defaults_to(tmp_path):
    from coordinator.ansible import runner_envvars

    env = runner_envvars(tmp_path, {"EXTRA": "1"})

    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_CONFIG"] == str(tmp_path / "ansible.cfg") and env["EXTRA"] == "1"


def test_a_changed_host_key_is_named_not_shown_as_ssh_banner():
    from coordinator.ansible import _message_of

    banner = ("Failed to connect to the host via ssh: @@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
              "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@@\n...\nHost key verification failed.")

    assert "Host key verification failed" in (_message_of({"msg": banner}) or "")


def test_the_whole_ansible_message_is_kept_on_one_line():
    from coordinator.ansible import _message_of

    message = _message_of({"msg": "Validation of arguments failed:\nmissing required arguments: docker_release_container_name"})
    assert message == "Validation of arguments failed: missing required arguments: docker_release_container_name"


def test_a_failed_run_names_its_log_and_cuts_only_a_huge_message_pointing_at_it(tmp_path):
    from coordinator.causes import MESSAGE_LIMIT

    result = PlaybookResult(playbook="deploy.yml", status="failed", rc=2, log_dir=tmp_path / "run")
    _read_stats(result, stats_event(failures={"web1": 1, "web2": 1}))
    result.hosts["web1"].failed_task = result.hosts["web2"].failed_task = "Pull"
    result.hosts["web1"].message = "short cause"
    result.hosts["web2"].message = "x" * (MESSAGE_LIMIT + 500) + "END"
    summary = result.summary()
    log = str(tmp_path / "run" / "stdout.txt")
    assert "web1 task 'Pull' failed: short cause;" in summary
    assert "END" not in summary and f"… (see {log})" in summary
    assert summary.endswith(f"(full log: {log})")
    assert "\n" not in summary


def test_git_s_whole_stderr_is_the_cause(tmp_path):
    import pytest

    from coordinator.git import Git, GitError

    (tmp_path / "repo").mkdir()
    git = Git(tmp_path / "repo")
    git.run("init", "-q")
    with pytest.raises(GitError) as raised:
        git.remote_branch_sha("origin", "main")
    message = raised.value.message
    assert "'origin' does not appear to be a git repository" in message
    assert "and the repository exists." in message
    assert "\n" not in message


def test_a_run_that_matched_no_host_is_an_error_naming_inventory_and_group(tmp_path):
    import pytest

    from coordinator.errors import ExitCode, NoHosts
    from coordinator.inventory import require_hosts, require_inventory, target_group

    with pytest.raises(NoHosts) as missing:
        require_inventory(tmp_path / "nope", "app")
    assert missing.value.exit_code == ExitCode.USAGE
    assert str(tmp_path / "nope") in missing.value.message and "'app'" in missing.value.message
    with pytest.raises(NoHosts) as empty:
        require_hosts(tmp_path, "web", set())
    assert str(tmp_path) in empty.value.message and "'web'" in empty.value.message
    require_hosts(tmp_path, "web", {"web1"})
    assert target_group("rollback.yml", {"rollback_hosts": "canary"}) == "canary"
    assert target_group("playbooks/deploy.yml", {}) == "app"
