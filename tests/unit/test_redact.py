"""One redactor for every secret: a DSN's password is masked however it is spelled, and a DSN
that does not parse is never quoted."""

from __future__ import annotations

import pytest

from coordinator.errors import ExitCode, StateBackendError
from coordinator.output import Output
from coordinator.redact import MASK, Redactor, dsn_passwords
from coordinator.state.postgres import Database


def test_a_url_password_is_masked_raw_and_percent_decoded() -> None:
    redactor = Redactor()
    redactor.add_dsn("postgresql://alice:p%40ss%20w0rd@db.example:5432/releases")
    text = "login p%40ss%20w0rd or p@ss w0rd failed"
    assert redactor.redact(text) == f"login {MASK} or {MASK} failed"


def test_a_keyword_password_with_quotes_and_spaces_is_masked_whole_and_by_its_tail() -> None:
    dsn = "host=db port=5432 dbname=rel user=alice password=Sup3r s3cretTail"
    assert {"Sup3r", "s3cretTail"} <= set(dsn_passwords(dsn))
    quoted = "host=db user=alice password='two words here'"
    assert "two words here" in dsn_passwords(quoted)


def test_short_values_are_not_secrets_so_ordinary_words_survive() -> None:
    redactor = Redactor()
    redactor.add("abc")
    assert redactor.redact("abc def") == "abc def"


def test_output_redacts_through_the_shared_redactor() -> None:
    import io

    stream = io.StringIO()
    out = Output(stream, stream, redactor=Redactor())
    out.add_dsn("postgresql://alice:hunter22@127.0.0.1:5432/db")
    out.line("connect hunter22 failed")
    assert stream.getvalue() == f"connect {MASK} failed\n"


@pytest.mark.parametrize("dsn, parts", [
    ("postgresql://alice:S3cr3t%zz@127.0.0.1:1/db", ["S3cr3t", "%zz", "alice", "127.0.0.1"]),
    ("host=127.0.0.1 port=1 user=alice password=Sup3r s3cretTail", ["Sup3r", "s3cretTail", "alice"]),
])
def test_a_dsn_that_does_not_parse_is_refused_without_any_part_of_it(dsn: str, parts: list[str]) -> None:
    db = Database(dsn, source="environment variable COORDINATOR_DATABASE_URL")
    with pytest.raises(StateBackendError) as refused:
        _ = db.conn
    assert refused.value.exit_code == ExitCode.STATE_BACKEND
    message = refused.value.message + db.where()
    assert "environment variable COORDINATOR_DATABASE_URL cannot be parsed" in message
    for part in parts:
        assert part not in message
