"""Whether a person is there to answer the gate prompt.

A terminal alone does not mean a person: CI runners allocate pseudo-terminals (Buildkite by
default, `docker run -t`, `ssh -t`), and a prompt there waits until the job times out. So
the prompt is shown only with a terminal on both stdin and stdout *and* no sign of
automation: `--no-input`, `COORDINATOR_NO_INPUT` or `CI` set to a true value (most CI
systems export `CI=true`). Without a prompt the gate stops with exit 4, awaiting approval.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

NO_INPUT_ENV = "COORDINATOR_NO_INPUT"
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _FALSE


def no_input_reason(no_input_flag: bool, environ: Mapping[str, str] | None = None) -> str | None:
    """Why the coordinator must not prompt (the flag or the variable that says so), or None."""
    env = os.environ if environ is None else environ
    if no_input_flag:
        return "--no-input"
    if _truthy(env.get(NO_INPUT_ENV)):
        return f"{NO_INPUT_ENV}={env[NO_INPUT_ENV]}"
    if _truthy(env.get("CI")):
        return f"CI={env['CI']}"
    return None


def may_prompt(no_input_flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """True only when a person can answer: a terminal on stdin and stdout, and no no-input signal."""
    if no_input_reason(no_input_flag, environ) is not None:
        return False
    return sys.stdin.isatty() and sys.stdout.isatty()
