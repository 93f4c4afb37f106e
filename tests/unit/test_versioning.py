import pytest

from coordinator.errors import CheckFailed, UsageError
from coordinator.versioning import changelog_section, parse_version, read_app_version, tag_for

CHANGELOG = """# Changelog

## [1.1.0] - 2026-11-24
### Added
- faster health

## [1.0.0] - 2026-11-01
- first
"""


@pytest.mark.parametrize("text", ["1.2.3", "v1.2.3", "0.0.1-rc.1", "10.20.30+build.5"])
def test_semver_versions_are_accepted(text):
    assert parse_version(text) == text.removeprefix("v")


@pytest.mark.parametrize("text", ["1.2", "v1.2.3;rm -rf /", "01.2.3", "1.2.3 ", "", "latest", "1.2.3-"])
def test_malformed_versions_are_refused_with_a_hint(text):
    with pytest.raises(UsageError, match="not SemVer"):
        parse_version(text)


def test_tag_is_v_prefixed():
    assert tag_for("1.0.0") == "v1.0.0"


def test_changelog_section_is_returned_verbatim_up_to_the_next_heading():
    assert changelog_section(CHANGELOG, "1.1.0") == "### Added\n- faster health"
    assert changelog_section(CHANGELOG, "1.0.0") == "- first"


def test_missing_changelog_section_is_none():
    assert changelog_section(CHANGELOG, "2.0.0") is None


def test_version_is_read_from_package_json(tmp_path):
    (tmp_path / "package.json").write_text('{"name": "x", "version": "1.2.3"}')
    assert read_app_version(tmp_path, "package.json") == "1.2.3"


def test_version_is_read_from_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2.0.0"\n')
    assert read_app_version(tmp_path, "pyproject.toml") == "2.0.0"


def test_version_is_read_from_a_plain_file(tmp_path):
    (tmp_path / "VERSION").write_text("3.1.4\n")
    assert read_app_version(tmp_path, "VERSION") == "3.1.4"


def test_missing_version_file_names_the_setting(tmp_path):
    with pytest.raises(CheckFailed, match="app.version_file"):
        read_app_version(tmp_path, "package.json")
