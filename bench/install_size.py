"""`python -m bench.install_size [--cold] [--ref REF]`: the runtime install's time and size.

Builds the wheel (scripts/wheel: from a clean copy of the checkout, or of git REF), installs
it with the tested pins of the same tree into a fresh venv and prints the seconds, the
venv's size and the size of any Ansible collections in it (the README's Install table).
`--cold` installs with `--no-cache-dir`. Needs no world; writes only under a temp dir.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 1800


def _megabytes(path: Path) -> float:
    """Disk usage in MiB, as `du -sm` counts it."""
    if not path.exists():
        return 0.0
    return sum(f.lstat().st_blocks * 512 for f in [path, *path.rglob("*")]) / 2**20


def _source(scratch: Path, ref: str | None) -> Path:
    """The tree to measure: this checkout, or `ref` exported from its git history."""
    if ref is None:
        return REPO_ROOT
    tree = scratch / "src"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", ref], capture_output=True, check=True, timeout=120)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=120)
    subprocess.run(["git", "init", "-q", str(tree)], check=True, timeout=60)  # scripts/wheel lists files with git
    subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True, timeout=60)
    return tree


def measure(*, cold: bool, ref: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-install-") as name:
        scratch = Path(name)
        tree = _source(scratch, ref)
        wheel_script = tree / "scripts" / "wheel"
        if wheel_script.is_file():
            subprocess.run([str(wheel_script), str(scratch / "dist")], check=True, capture_output=True, timeout=TIMEOUT_S)
        else:  # trees from before scripts/wheel: build in the exported copy
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(scratch / "dist"), str(tree)],
                           check=True, capture_output=True, timeout=TIMEOUT_S)
        wheel = next((scratch / "dist").glob("*.whl"))
        venv = scratch / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(tree / "scripts" / "constraints.txt"),
                *(["--no-cache-dir"] if cold else []), str(wheel)]
        started = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True, timeout=TIMEOUT_S)
        seconds = time.monotonic() - started
        collections = next(venv.glob("lib/python*/site-packages/ansible_collections"), venv / "none")
        figures = {"seconds": round(seconds, 1), "venv_mb": round(_megabytes(venv)), "collections_mb": round(_megabytes(collections))}
        shutil.rmtree(venv, ignore_errors=True)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="install with --no-cache-dir")
    parser.add_argument("--ref", help="measure this git ref instead of the working tree (e.g. the commit before a change)")
    args = parser.parse_args()
    figures = measure(cold=args.cold, ref=args.ref)
    print(f"{args.ref or 'working tree'}{' (cold)' if args.cold else ''}: {figures['seconds']} s, "
          f"venv {figures['venv_mb']} MB, collections {figures['collections_mb']} MB")


if __name__ == "__main__":
    main()
