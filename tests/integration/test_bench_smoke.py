"""The benchmark entry point keeps working (one quick scenario, no timing asserted)."""

import subprocess
import sys

from sandbox.coordinator_config import REPO_ROOT


def test_bench_runs_one_iteration_and_prints_a_table():
    result = subprocess.run([sys.executable, "-m", "bench", "--runs", "1", "--only", "help", "--no-save"],
                            capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "help_seconds" in result.stdout
    assert "environment:" in result.stdout
