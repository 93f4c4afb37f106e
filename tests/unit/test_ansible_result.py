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
