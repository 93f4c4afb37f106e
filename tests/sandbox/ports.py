"""Keep the world's ports out of the kernel's ephemeral range while the world is up.

The world and the tests publish containers on fixed loopback ports (45000-46999), and those
lie inside Linux's ephemeral range (32768-60999). An outgoing connection can be given one of
them as its source port: dockerd's keep-alive connection to the test registry once held
exactly the port a test container was about to publish, and the start failed with "address
already in use". Reserved ports are never handed out as source ports but can still be bound
explicitly, so `up` reserves the range (root only) and `down` puts the previous setting back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

WORLD_PORTS = "45000-46999"
RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")
SAVED_NAME = "reserved-ports.previous"


def merged(current: str) -> str | None:
    """The setting with the world's range added, or None when it is there already."""
    entries = [entry for entry in current.strip().split(",") if entry]
    if WORLD_PORTS in entries:
        return None
    return ",".join([*entries, WORLD_PORTS])


def reserve(world_dir: Path, report: Callable[[str], None] = lambda line: None,
            setting: Path = RESERVED_PORTS) -> None:
    """Add the world's range to the reserved ports, remembering the previous setting in world_dir."""
    try:
        current = setting.read_text(encoding="utf-8")
        wanted = merged(current)
        if wanted is None:
            return
        (world_dir / SAVED_NAME).write_text(current, encoding="utf-8")
        setting.write_text(wanted, encoding="utf-8")
    except OSError as error:  # not root, or no such setting: the tests may then meet a port clash
        report(f"ports: could not reserve {WORLD_PORTS} from ephemeral use ({error}); a rare port clash may follow")
        return
    report(f"ports: {WORLD_PORTS} reserved from ephemeral use while the world is up")


def release(world_dir: Path, report: Callable[[str], None] = lambda line: None,
            setting: Path = RESERVED_PORTS) -> None:
    """Put back the setting `reserve` found, if it changed it."""
    saved = world_dir / SAVED_NAME
    if not saved.is_file():
        return
    try:
        setting.write_text(saved.read_text(encoding="utf-8").strip() or "\n", encoding="utf-8")
        saved.unlink()
    except OSError as error:
        report(f"ports: could not restore the reserved ports from {saved} ({error})")
        return
    report("ports: reserved ports restored")
