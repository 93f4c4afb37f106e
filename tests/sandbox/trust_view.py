"""Run a command with its own /etc/hosts and system trust store, leaving the machine's alone.

A company's registry is `registry.corp:443` with a certificate from the company's CA, which
its machines trust because the CA is in the system store (/etc/ssl/certs, where
`update-ca-certificates` puts it). Tests cannot add a CA to this machine's store or a name to
its /etc/hosts. So the command runs in a private mount namespace (`unshare --mount`, whose
mounts are private: nothing reaches the machine's view) where this module bind-mounts a test's
hosts file over /etc/hosts and a test's certificate directory over /etc/ssl/certs, then
execs the command:

    unshare --mount -- python -m tests.sandbox.trust_view HOSTS CERTS -- ARGV...

`view_argv` builds that line; `certs_dir` makes a directory that holds only the given CAs, as
`ca-certificates.crt`: the bundle OpenSSL reads by default on Debian (Python's default context
loads it; `ssl.get_default_verify_paths().cafile`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_BUNDLE = "ca-certificates.crt"


def certs_dir(directory: Path, ca_files: list[Path]) -> Path:
    """A system-store directory trusting exactly `ca_files` (none: nothing is trusted)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _BUNDLE).write_text("".join(path.read_text(encoding="ascii") for path in ca_files), encoding="ascii")
    return directory


def hosts_file(path: Path, names: list[str]) -> Path:
    """A hosts file that resolves `names` (and localhost) to 127.0.0.1 only."""
    path.write_text("127.0.0.1\tlocalhost " + " ".join(names) + "\n", encoding="ascii")
    return path


def view_argv(hosts: Path, certs: Path, argv: list[str]) -> list[str]:
    """`argv` run with `hosts` as /etc/hosts and `certs` as /etc/ssl/certs."""
    return ["unshare", "--mount", "--", sys.executable, "-m", "tests.sandbox.trust_view", str(hosts), str(certs),
            "--", *argv]


def main(args: list[str]) -> None:
    hosts, certs, separator, *argv = args
    if separator != "--" or not argv:
        raise SystemExit("usage: python -m tests.sandbox.trust_view HOSTS CERTS -- ARGV...")
    for source, target in ((hosts, "/etc/hosts"), (certs, "/etc/ssl/certs")):
        subprocess.run(["mount", "--bind", source, target], check=True, timeout=30)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
