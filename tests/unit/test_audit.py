"""The audit trail: append-only, hash-chained, tamper-evident, crash-tolerant."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from coordinator.audit import AuditEvent, AuditLog, AuditLogCorrupted, describe_recovered_crashes

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def ticking_clock(start: datetime = T0):
    """A clock that advances one second per call, so records have distinct, known times."""
    state = {"now": start}

    def clock() -> datetime:
        now = state["now"]
        state["now"] = now + timedelta(seconds=1)
        return now

    return clock


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl", clock=ticking_clock())


def fill(log: AuditLog, count: int = 3) -> None:
    for index in range(count):
        log.append(AuditEvent.TAG_PUSHED, operator="ann", release_id=f"r{index}", data={"n": index})


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text(encoding="utf-8").splitlines()


def write_lines(log: AuditLog, new_lines: list[str]) -> None:
    log.path.write_text("".join(line + "\n" for line in new_lines), encoding="utf-8")


# -- appending ---------------------------------------------------------------------------


def test_first_record_has_seq_1_and_no_previous_hash(log: AuditLog) -> None:
    record = log.append(AuditEvent.RELEASE_STARTED, operator="ann", release_id="sample-1.0.0", version="1.0.0")
    assert (record.seq, record.prev_hash) == (1, None)


def test_each_record_links_to_the_hash_of_the_one_before(log: AuditLog) -> None:
    first = log.append(AuditEvent.RELEASE_STARTED, operator="ann")
    second = log.append(AuditEvent.VALIDATE_PASSED, operator="ann")
    assert (second.seq, second.prev_hash) == (2, first.hash)


def test_hash_is_sha256_of_canonical_json_without_the_hash(log: AuditLog) -> None:
    log.append(AuditEvent.DEPLOY_VERIFIED, operator="ann", environment="production", data={"hosts": ["b", "a"], "n": 1.5})
    fields = json.loads(lines(log)[0])
    claimed = fields.pop("hash")
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert claimed == hashlib.sha256(canonical.encode()).hexdigest()


def test_each_line_is_canonical_json(log: AuditLog) -> None:
    log.append(AuditEvent.RELEASE_STARTED, operator="Jürgen", data={"z": 1, "a": "ü"})
    line = lines(log)[0]
    assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_timestamp_is_utc_iso8601_with_z(log: AuditLog) -> None:
    log.append(AuditEvent.RELEASE_STARTED, operator="ann")
    assert json.loads(lines(log)[0])["ts"] == "2025-03-01T12:00:00.000000Z"


def test_timestamp_from_another_zone_is_converted_to_utc(tmp_path: Path) -> None:
    berlin = timezone(timedelta(hours=1))
    log = AuditLog(tmp_path / "audit.jsonl", clock=lambda: datetime(2025, 3, 1, 13, 0, tzinfo=berlin))
    assert log.append(AuditEvent.RELEASE_STARTED, operator="ann").ts == T0


def test_event_may_be_given_as_its_string_value(log: AuditLog) -> None:
    assert log.append("lock.acquired", operator="ann").event is AuditEvent.LOCK_ACQUIRED  # type: ignore[arg-type]


def test_records_round_trip_every_field(log: AuditLog) -> None:
    written = log.append(AuditEvent.APPROVAL_RECORDED, operator="bob", release_id="r1", version="1.2.0",
                         environment="production", outcome="approved", data={"digest": "sha256:ab", "nested": {"k": [1, None]}})
    assert log.records() == [written]


def test_log_file_is_private(log: AuditLog) -> None:
    fill(log, 1)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_head_hash_is_the_last_records_hash(log: AuditLog) -> None:
    assert log.head_hash() is None
    fill(log, 2)
    assert log.head_hash() == log.records()[-1].hash


def test_append_after_a_record_larger_than_the_tail_read_keeps_the_chain(log: AuditLog) -> None:
    big = log.append(AuditEvent.BUILD_COMPLETED, operator="ann", data={"log": "x" * 200_000})
    small = log.append(AuditEvent.STAGE_DEPLOYED, operator="ann")
    assert (small.seq, small.prev_hash) == (2, big.hash)


# -- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["token", "forge_token", "Password", "api_secret", "SAMPLE_API_SECRET"])
def test_data_keys_naming_a_secret_are_refused(log: AuditLog, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        log.append(AuditEvent.RELEASE_STARTED, operator="ann", data={key: "hunter2"})


def test_secret_keys_are_refused_at_any_depth(log: AuditLog) -> None:
    with pytest.raises(ValueError, match=r"data\.hosts\[0\]\.password"):
        log.append(AuditEvent.RELEASE_STARTED, operator="ann", data={"hosts": [{"password": "x"}]})


def test_a_refused_record_writes_nothing(log: AuditLog) -> None:
    with pytest.raises(ValueError):
        log.append(AuditEvent.RELEASE_STARTED, operator="ann", data={"token": "x"})
    assert log.records() == []


def test_a_token_fingerprint_may_be_recorded(log: AuditLog) -> None:
    record = log.append(AuditEvent.RELEASE_STARTED, operator="ann", data={"forge_token_fingerprint": "sha256:1f2e"})
    assert record.data == {"forge_token_fingerprint": "sha256:1f2e"}


def test_data_that_is_not_json_is_refused(log: AuditLog) -> None:
    with pytest.raises(ValueError):
        log.append(AuditEvent.RELEASE_STARTED, operator="ann", data={"when": object()})


# -- verification --------------------------------------------------------------------------


def test_missing_log_verifies_as_empty(log: AuditLog) -> None:
    assert (log.verify().ok, log.verify().count) == (True, 0)


def test_intact_chain_verifies(log: AuditLog) -> None:
    fill(log, 3)
    result = log.verify()
    assert (result.ok, result.count, result.torn_tail, result.head_hash) == (True, 3, False, log.head_hash())


def test_edited_record_is_named_by_seq_as_a_hash_mismatch(log: AuditLog) -> None:
    fill(log, 3)
    content = lines(log)
    content[1] = content[1].replace('"operator":"ann"', '"operator":"mallory"')
    write_lines(log, content)
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "hash mismatch" in (result.reason or "")


def test_edited_and_rehashed_record_breaks_the_next_records_prev_hash(log: AuditLog) -> None:
    fill(log, 3)
    content = lines(log)
    fields = json.loads(content[1])
    fields["operator"] = "mallory"
    fields.pop("hash")
    fields["hash"] = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    content[1] = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    write_lines(log, content)
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "prev_hash mismatch" in (result.reason or "")


def test_deleted_record_is_reported_as_a_seq_gap(log: AuditLog) -> None:
    fill(log, 3)
    content = lines(log)
    write_lines(log, [content[0], content[2]])
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "seq gap" in (result.reason or "")


def test_reordered_records_are_reported(log: AuditLog) -> None:
    fill(log, 3)
    content = lines(log)
    write_lines(log, [content[0], content[2], content[1]])
    assert (log.verify().ok, log.verify().first_bad_seq) == (False, 2)


def test_record_with_an_unknown_field_is_tampering(log: AuditLog) -> None:
    fill(log, 2)
    content = lines(log)
    content[0] = content[0][:-1] + ',"extra":1}'
    write_lines(log, content)
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 1)
    assert "invalid record" in (result.reason or "")


def test_garbage_line_in_the_middle_is_tampering(log: AuditLog) -> None:
    fill(log, 3)
    content = lines(log)
    write_lines(log, [content[0], '{"seq":2,"ts"', content[1], content[2]])
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "not JSON" in (result.reason or "")


# -- crashes -------------------------------------------------------------------------------


def tear(log: AuditLog) -> None:
    """What a crash mid-write leaves: the first bytes of a record and no newline."""
    with log.path.open("ab") as handle:
        handle.write(b'{"data":{},"environment":null,"event":"tag.pu')


def test_torn_last_line_is_a_crash_not_tampering(log: AuditLog) -> None:
    fill(log, 2)
    tear(log)
    result = log.verify()
    assert (result.ok, result.torn_tail, result.count) == (True, True, 2)


def test_records_skip_a_torn_last_line(log: AuditLog) -> None:
    fill(log, 2)
    tear(log)
    assert [r.seq for r in log.records()] == [1, 2]


def test_append_after_a_crash_starts_a_new_line_and_never_rewrites(log: AuditLog) -> None:
    fill(log, 2)
    tear(log)
    before = log.path.read_bytes()
    record = log.append(AuditEvent.TAG_PUSHED, operator="ann")
    after = log.path.read_bytes()
    assert after.startswith(before + b"\n")
    assert (record.seq, record.prev_hash) == (3, log.records()[1].hash)


def test_append_after_a_crash_acknowledges_the_torn_line_so_the_chain_verifies(log: AuditLog) -> None:
    fill(log, 2)
    tear(log)
    record = log.append(AuditEvent.TAG_PUSHED, operator="ann")
    result = log.verify()
    assert (result.ok, result.count, result.recovered_crashes) == (True, 3, (3,))
    assert record.recovered_torn_lines == [hashlib.sha256(b'{"data":{},"environment":null,"event":"tag.pu').hexdigest()]


def test_a_claimed_recovery_of_a_line_that_is_not_there_is_tampering(log: AuditLog) -> None:
    fill(log, 2)
    tear(log)
    log.append(AuditEvent.TAG_PUSHED, operator="ann")
    content = log.path.read_bytes().split(b"\n")
    del content[2]  # remove the torn line the third record vouches for
    log.path.write_bytes(b"\n".join(content))
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_append_refuses_to_chain_onto_an_edited_last_record(log: AuditLog) -> None:
    fill(log, 2)
    content = lines(log)
    content[-1] = content[-1].replace('"event":"tag.pushed"', '"event":"tag.forged"')
    write_lines(log, content)
    with pytest.raises(AuditLogCorrupted, match="audit verify"):
        log.append(AuditEvent.TAG_PUSHED, operator="ann")


def test_a_complete_last_line_that_is_not_json_is_an_edit_and_append_refuses(log: AuditLog) -> None:
    fill(log, 3)
    content = lines(log)
    content[-1] = "this record was edited by hand"
    write_lines(log, content)  # newline-terminated: a crash cannot leave this
    before = log.path.read_bytes()
    with pytest.raises(AuditLogCorrupted) as caught:
        log.append(AuditEvent.TAG_PUSHED, operator="ann")
    assert log.path.read_bytes() == before
    message = caught.value.message
    assert "line 3 (after seq 2)" in message and "not torn by a crash" in message
    assert "coordinator audit verify" in message and "restore" in message
    assert caught.value.exit_code == 14
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "line 3" in (result.reason or "")


def test_a_valid_last_record_whose_hash_does_not_match_is_refused(log: AuditLog) -> None:
    fill(log, 2)
    content = lines(log)
    content[-1] = content[-1].replace('"n":1', '"n":7')
    write_lines(log, content)
    with pytest.raises(AuditLogCorrupted, match="line 2 .*does not match its content"):
        log.append(AuditEvent.TAG_PUSHED, operator="ann")


def test_a_last_record_that_does_not_chain_is_refused(log: AuditLog) -> None:
    fill(log, 3)
    content = lines(log)
    write_lines(log, [content[0], content[2]])  # seq 2 deleted: seq 3 no longer chains
    with pytest.raises(AuditLogCorrupted, match="does not chain onto seq 1"):
        log.append(AuditEvent.TAG_PUSHED, operator="ann")


def test_a_crash_while_recovering_a_crash_is_still_a_crash(log: AuditLog) -> None:
    fill(log, 2)
    tear(log)
    with log.path.open("ab") as handle:  # the recovering append was cut too: "\n" + a prefix
        handle.write(b'\n{"data":{},"env')
    record = log.append(AuditEvent.TAG_PUSHED, operator="ann")
    assert record.seq == 3 and len(record.recovered_torn_lines or []) == 2
    assert log.verify().ok


def test_verify_describes_every_recovered_crash_tail(log: AuditLog) -> None:
    fill(log, 1)
    tear(log)
    log.append(AuditEvent.TAG_PUSHED, operator="ann")
    tear(log)
    log.append(AuditEvent.TAG_PUSHED, operator="ann")
    result = log.verify()
    assert (result.ok, result.recovered_crashes) == (True, (2, 3))
    described = describe_recovered_crashes(log, result)
    assert [line.split(" discarded")[0] for line in described] == [
        "recovered crash tail: 1 torn line(s) before seq 2", "recovered crash tail: 1 torn line(s) before seq 3"]
    assert str(log.path) in described[0]


# -- concurrency ---------------------------------------------------------------------------


def _append_many(path: str, worker: int, count: int) -> None:
    log = AuditLog(Path(path))
    for index in range(count):
        log.append(AuditEvent.LOCK_ACQUIRED, operator=f"worker-{worker}", data={"i": index})


def test_appends_from_several_processes_form_one_gapless_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(path), worker, 25)) for worker in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
    assert [process.exitcode for process in workers] == [0, 0, 0, 0]
    result = AuditLog(path).verify()
    assert (result.ok, result.count) == (True, 100)
