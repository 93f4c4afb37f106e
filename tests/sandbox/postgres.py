"""A throwaway PostgreSQL cluster for the tests and the team-mode demo.

`initdb` + `pg_ctl` from Debian's `postgresql` package, listening on 127.0.0.1 and a
free port only, its data in a private temporary directory. PostgreSQL refuses to run as
root, so as root the server runs as the `postgres` OS user (runuser). The cluster is
always stopped and its directory removed by `stop()` (use it as a context manager).

Roles set up like README "Team mode" says a real installation should be:
  - `coordinator_owner`: owns the schema, runs `coordinator state init` / `state migrate`;
  - `coordinator_app`: a NOLOGIN group role holding the application's grants
    (SELECT/INSERT only: history cannot be changed);
  - one LOGIN role per person or job (`add_member`), member of `coordinator_app`.

    python -m tests.sandbox.postgres start DIR   # prints the owner DSN; DIR/cluster.json
    python -m tests.sandbox.postgres stop DIR
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
DATABASE = "coordinator"
OWNER = "coordinator_owner"
APP_ROLE = "coordinator_app"
START_TIMEOUT_S = 30


def _bin(name: str) -> str:
    """A PostgreSQL server binary: PATH first, then Debian's versioned directory."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package (scripts/bootstrap does)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def dsn(role: str, password: str, port: int, database: str = DATABASE) -> str:
    return f"postgresql://{role}:{password}@{HOST}:{port}/{database}?connect_timeout=10"


class PostgresCluster:
    """One cluster in its own temporary directory; `start()` then `stop()` (or `with`)."""

    def __init__(self, root: Path | None = None, port: int | None = None, *, durable: bool = False) -> None:
        """`durable=False` (tests) turns fsync off; the bench measures with it on, as in production."""
        # Not under pytest's tmp_path: that is 0700 root, and the server runs as `postgres`.
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="coordinator-pg-"))
        self.port = port or free_port()
        self.superuser_password = secrets.token_hex(12)
        self.passwords: dict[str, str] = {}
        self._started = False
        self.durable = durable

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _run(self, argv: list[str], timeout: float = 60) -> None:
        result = subprocess.run(self._as_server_user(argv), capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[-500:]}")

    def start(self) -> "PostgresCluster":
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.superuser_password + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        os.chmod(pwfile, 0o600)
        self._run([_bin("initdb"), "-D", str(self.data_dir), "-U", "postgres", f"--pwfile={pwfile}",
                   "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-instructions"])
        pwfile.unlink()
        options = f"-c listen_addresses={HOST} -c port={self.port} -c unix_socket_directories={self.root}"
        if not self.durable:
            options += " -c fsync=off"
        self._started = True  # from here on stop() must run, even if start fails half way
        self._run([_bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-o", options,
                   "-w", "-t", str(START_TIMEOUT_S), "start"], timeout=START_TIMEOUT_S + 10)
        self._setup_roles()
        return self

    def stop(self) -> None:
        try:
            if self._started:
                self._run([_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"], timeout=40)
        finally:
            self._started = False
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PostgresCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- roles and SQL -----------------------------------------------------------------

    def superuser_dsn(self, database: str = "postgres") -> str:
        return dsn("postgres", self.superuser_password, self.port, database)

    def dsn_for(self, role: str, database: str = DATABASE) -> str:
        return dsn(role, self.passwords[role], self.port, database)

    def execute(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as the superuser (setup only: the coordinator never is one)."""
        import psycopg

        with psycopg.connect(self.superuser_dsn(database), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def _new_password(self, role: str) -> str:
        self.passwords[role] = secrets.token_hex(12)
        return self.passwords[role]

    def _setup_roles(self) -> None:
        self.execute(f"CREATE ROLE {OWNER} LOGIN PASSWORD '{self._new_password(OWNER)}'", f"CREATE ROLE {APP_ROLE} NOLOGIN")
        self.create_database(DATABASE)

    def create_database(self, name: str) -> None:
        """An empty database owned by the schema owner; the application roles may only connect."""
        self.execute(f"CREATE DATABASE {name} OWNER {OWNER}", f"REVOKE ALL ON DATABASE {name} FROM PUBLIC",
                     f"GRANT CONNECT ON DATABASE {name} TO {APP_ROLE}")
        self.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC", database=name)

    def add_member(self, role: str) -> str:
        """A LOGIN role for one person or job, in the application group; returns its DSN."""
        self.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{self._new_password(role)}' IN ROLE {APP_ROLE}")
        return self.dsn_for(role)

    def describe(self) -> dict[str, Any]:
        return {"root": str(self.root), "port": self.port, "superuser_password": self.superuser_password,
                "passwords": self.passwords}


def write_dsn_file(path: Path, value: str) -> Path:
    """A DSN file as the coordinator accepts it: mode 0600 from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox.postgres", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("dir", type=Path, help="where cluster.json (ports, passwords; 0600) is kept")
    args = parser.parse_args(argv)
    state = args.dir / "cluster.json"
    if args.action == "start":
        cluster = PostgresCluster().start()
        args.dir.mkdir(parents=True, exist_ok=True)
        write_dsn_file(state, json.dumps(cluster.describe()))
        print(f"postgres on {HOST}:{cluster.port} ({cluster.root})")
        return 0
    if not state.exists():
        print(f"no cluster recorded in {state}", file=sys.stderr)
        return 1
    info = json.loads(state.read_text(encoding="utf-8"))
    cluster = PostgresCluster(Path(info["root"]), int(info["port"]))
    cluster._started = (cluster.data_dir / "postmaster.pid").exists()
    cluster.stop()
    state.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
