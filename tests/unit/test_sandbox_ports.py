"""The world keeps its fixed ports out of the kernel's ephemeral range while it is up, and puts the setting back."""

from __future__ import annotations

from pathlib import Path

from tests.sandbox import ports


def test_the_world_range_is_added_to_what_was_reserved_and_the_old_setting_comes_back(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_reserved_ports"
    setting.write_text("8080\n")

    ports.reserve(tmp_path, setting=setting)
    assert setting.read_text() == "8080,45000-46999"

    ports.release(tmp_path, setting=setting)
    assert setting.read_text() == "8080"
    assert not (tmp_path / ports.SAVED_NAME).exists()


def test_a_range_reserved_already_is_left_as_it_is(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_reserved_ports"
    setting.write_text("45000-46999\n")

    ports.reserve(tmp_path, setting=setting)
    ports.release(tmp_path, setting=setting)

    assert setting.read_text() == "45000-46999\n"


def test_a_setting_that_cannot_be_written_is_reported_not_raised(tmp_path: Path) -> None:
    lines: list[str] = []

    ports.reserve(tmp_path, lines.append, setting=tmp_path / "missing" / "setting")

    assert lines and "could not reserve 45000-46999" in lines[0]
