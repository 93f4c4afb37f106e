"""`python -m bench.crash_timing [--runs N]`: how fast the sample's broken variant crash-loops.

Why: the health gate passes a release after its first healthy answer plus a stability
window (release_health_stable_seconds); the window must be longer than the time between a
container's start and the engine showing its crash, or a release that answers once and then
dies would pass. This starts the `exits` variant (the process exits at once; restart policy
unless-stopped, as the role sets) and the good image through the local Docker engine and
records, every 10 ms, when the engine first shows the crash (exited, restarting or a restart
counted) and when the good one first answers /health. Written to
bench/results/crash_timing.json.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.sandbox.coordinator_config import IMAGE, REPO_ROOT

RESULTS = Path(__file__).resolve().parent / "results" / "crash_timing.json"
ENGINE_FILE = REPO_ROOT / "roles" / "docker_release" / "module_utils" / "docker_engine.py"
CONTAINER, PORT = "bench-crash-timing", 45470
LIMIT_S = 5.0


def _engine() -> Any:
    spec = importlib.util.spec_from_file_location("bench_docker_engine", ENGINE_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Engine("/var/run/docker.sock", 5.0)


def _healthy() -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=0.5)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def once(engine: Any, digest: str, crashes: bool) -> float | None:
    """Seconds from the start call to the crash seen (or, for a good image, to /health 200)."""
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    subprocess.run(["docker", "create", "--init", "--restart", "unless-stopped", "--name", CONTAINER,
                    "-p", f"127.0.0.1:{PORT}:8080", f"{IMAGE}@{digest}"], capture_output=True, check=True)
    try:
        started = time.monotonic()
        engine.start(CONTAINER)
        while time.monotonic() - started < LIMIT_S:
            if crashes:
                data = engine.inspect_container(CONTAINER) or {}
                state = data.get("State") or {}
                if state.get("Status") in ("exited", "dead") or state.get("Restarting") or int(data.get("RestartCount") or 0):
                    return time.monotonic() - started
            elif _healthy():
                return time.monotonic() - started
            time.sleep(0.01)
        return None
    finally:
        subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)


def summary(values: list[float | None]) -> dict[str, Any]:
    seen = [v for v in values if v is not None]
    return {"median_s": statistics.median(seen) if seen else None, "max_s": max(seen) if seen else None,
            "not_seen_within_s": LIMIT_S if len(seen) < len(values) else None, "raw_s": values}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_timing", description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    from bench.images import build_bench_images
    from tests.sandbox.world import up

    up(REPO_ROOT / ".sandbox")
    images = build_bench_images()
    engine = _engine()
    crash = [once(engine, images.exits, True) for _ in range(args.runs)]
    healthy = [once(engine, images.v1, False) for _ in range(args.runs)]
    figures = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": args.runs,
               "exits_variant_start_to_crash_seen": summary(crash), "good_start_to_first_health_200": summary(healthy)}
    print(json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
