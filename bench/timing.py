"""Small measuring helpers: medians of repeated runs, and waiting for a URL to come back."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import httpx


def median_of(runs: int, measure: Callable[[int], float]) -> tuple[float, list[float]]:
    """Call `measure(i)` `runs` times; return the median and the raw figures (seconds)."""
    figures = [measure(i) for i in range(runs)]
    return statistics.median(figures), figures


def machine_busy_seconds() -> float:
    """CPU seconds this machine has spent busy (all cores, all processes) since boot.

    The loopback "hosts" of a fleet share this machine's cores with the controller, so
    how busy it was tells whether a figure measures our work or the box running out of CPU.
    """
    import os

    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def serving(client: httpx.Client, url: str, version: str) -> bool:
    """Whether `url` answers /health and /version with 200 and /version says `version`."""
    try:
        health = client.get(f"{url}/health")
        served = client.get(f"{url}/version")
    except httpx.HTTPError:
        return False
    return health.status_code == 200 and served.status_code == 200 and served.text.strip() == version


def wait_until_serving(url: str, version: str, deadline_s: float = 120.0, interval_s: float = 0.05) -> float:
    """Poll `url`/version until it answers 200 with `version`; return when (perf_counter)."""
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if serving(client, url, version):
                return time.perf_counter()
            time.sleep(interval_s)
    raise TimeoutError(f"{url} did not serve {version} within {deadline_s:.0f}s")
