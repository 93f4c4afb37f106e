"""When the gate may prompt: a terminal and no sign of automation (pure logic; pty tests in integration)."""

from __future__ import annotations

import pytest

from coordinator.interaction import may_prompt, no_input_reason


def test_no_signal_means_a_person_may_be_asked():
    assert no_input_reason(False, {}) is None


def test_the_flag_wins():
    assert no_input_reason(True, {}) == "--no-input"


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE", "anything"])
def test_ci_set_to_a_true_value_means_no_person(value):
    assert no_input_reason(False, {"CI": value}) == f"CI={value}"


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "False"])
def test_ci_set_to_a_false_value_does_not_count(value):
    assert no_input_reason(False, {"CI": value}) is None


def test_coordinator_no_input_is_named():
    assert no_input_reason(False, {"COORDINATOR_NO_INPUT": "1"}) == "COORDINATOR_NO_INPUT=1"


def test_without_a_terminal_there_is_no_prompt_even_without_signals():
    # pytest's stdin is not a terminal
    assert may_prompt(False, {}) is False
