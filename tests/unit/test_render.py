"""Message templates: sandboxed, strict, with operator text passed as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.errors import ConfigError, CoordinatorError
from coordinator.render import render, template_names

GATE = {
    "project": "sample", "version": "1.2.0", "tag": "v1.2.0", "commit": "0123abcd",
    "digest": "sha256:feed", "image": "127.0.0.1:45000/acme/sample", "smoke": "passed",
    "run_url": "http://127.0.0.1:45300/acme/sample/actions/runs/7", "run_id": "7",
    "staging_hosts": ["staging1"], "environment": "production",
}
NOTES = {
    "project": "sample", "version": "1.2.0", "tag": "v1.2.0", "changelog": "### Fixed\n- a bug\n",
    "digest": "sha256:feed", "image": "127.0.0.1:45000/acme/sample", "run_url": "", "commit": "0123abcd",
    "audit_head": "ab" * 32,
}
ANNOUNCE = {
    "project": "sample", "version": "1.2.0", "tag": "v1.2.0", "environment": "production",
    "hosts": ["prod1", "prod2"], "digest": "sha256:feed", "release_url": "http://forge/releases/v1.2.0",
    "changelog": "",
}
ESCALATE = {
    "project": "sample", "version": "1.2.0", "tag": "v1.2.0", "environment": "production",
    "reason": "/health answered 503 on prod1", "summary": "production: v1.2.0 failed", "rolled_back": True,
    "digest": "sha256:feed", "hosts": ["prod1"], "operator": "ann",
}


def test_the_package_ships_the_four_templates() -> None:
    assert template_names() == ["announcement.md.j2", "escalation.md.j2", "gate_summary.txt.j2", "release_notes.md.j2"]


def test_gate_summary_shows_everything_the_approval_binds_to() -> None:
    text = render("gate_summary.txt.j2", {**GATE, "previous_version": "1.1.0"})
    for value in ("v1.2.0", "0123abcd", "sha256:feed", "passed", GATE["run_url"], "staging1", "1.1.0"):
        assert value in text


def test_gate_summary_without_a_previous_version_says_so() -> None:
    assert "first release" in render("gate_summary.txt.j2", GATE)


def test_release_notes_end_with_the_audit_chain_head() -> None:
    text = render("release_notes.md.j2", NOTES)
    assert "- a bug" in text
    assert text.rstrip().endswith(f"Audit chain head: {'ab' * 32}")


def test_changelog_text_is_data_and_never_rendered_as_a_template() -> None:
    hostile = "- fixed {{ 7 * 7 }} and {% raw %}{{ config }}{% endraw %} {{ ''.__class__ }}\n"
    text = render("release_notes.md.j2", {**NOTES, "changelog": hostile})
    assert hostile.strip() in text
    assert "49" not in text


def test_announcement_names_version_environment_hosts_digest_and_release_url() -> None:
    text = render("announcement.md.j2", ANNOUNCE)
    for value in ("v1.2.0", "production", "prod1, prod2", "sha256:feed", ANNOUNCE["release_url"]):
        assert value in text


def test_no_html_escaping_in_text_output() -> None:
    text = render("escalation.md.j2", {**ESCALATE, "reason": "expected <1.2.0> & got \"1.1.0\""})
    assert "expected <1.2.0> & got \"1.1.0\"" in text


def test_escalation_after_rollback_says_what_was_restored_and_what_to_do() -> None:
    text = render("escalation.md.j2", {**ESCALATE, "restored_versions": ["1.1.0"]})
    assert "rolled back" in text
    assert "Rolled back to: 1.1.0" in text
    assert "What to do next" in text


def test_escalation_when_rollback_failed_tells_the_operator_to_act_now() -> None:
    text = render("escalation.md.j2", {**ESCALATE, "rolled_back": False})
    assert "ROLLBACK FAILED" in text
    assert "Act now" in text
    assert "coordinator rollback production" in text


def test_a_missing_variable_in_a_builtin_template_is_an_error_not_a_blank() -> None:
    context = dict(ANNOUNCE)
    del context["digest"]
    with pytest.raises(CoordinatorError, match="digest"):
        render("announcement.md.j2", context)


def test_an_override_dir_replaces_a_template_by_name(tmp_path: Path) -> None:
    (tmp_path / "announcement.md.j2").write_text("{{ project }} {{ tag }} shipped\n", encoding="utf-8")
    assert render("announcement.md.j2", ANNOUNCE, override_dir=tmp_path) == "sample v1.2.0 shipped\n"


def test_templates_not_overridden_come_from_the_package(tmp_path: Path) -> None:
    assert render("gate_summary.txt.j2", GATE, override_dir=tmp_path) == render("gate_summary.txt.j2", GATE)


def test_an_override_cannot_reach_python_internals(tmp_path: Path) -> None:
    (tmp_path / "announcement.md.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    with pytest.raises(ConfigError, match="announcement.md.j2"):
        render("announcement.md.j2", ANNOUNCE, override_dir=tmp_path)


def test_an_override_using_an_unknown_variable_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "announcement.md.j2").write_text("{{ no_such_thing }}", encoding="utf-8")
    with pytest.raises(ConfigError, match="no_such_thing"):
        render("announcement.md.j2", ANNOUNCE, override_dir=tmp_path)


def test_an_override_with_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "announcement.md.j2").write_text("ok\n{% if %}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        render("announcement.md.j2", ANNOUNCE, override_dir=tmp_path)


def test_an_unknown_template_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nope.j2"):
        render("nope.j2", {})
