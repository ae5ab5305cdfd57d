"""A real PostgreSQL server for the tests: initdb + pg_ctl in a temporary folder, on a free port.

PostgreSQL refuses to run as root, so as root (CI) the server runs as the `postgres` system user that
Debian's package creates. Tests that need it skip with a message saying how to install it when the
binaries are missing. `stop()` and `start()` let a test take the database away and bring it back.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

BIN_DIRS = [Path(p) for p in ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin",
                              "/usr/lib/postgresql/15/bin")]
INSTALL_HINT = "install PostgreSQL (`apt-get install -y postgresql`; `.ci/run` does) to run the database tests"


def pg_bin(name: str) -> Path | None:
    """A PostgreSQL program from PATH or Debian's versioned folders."""
    found = shutil.which(name)
    if found:
        return Path(found)
    return next((d / name for d in BIN_DIRS if (d / name).exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throw-away PostgreSQL cluster."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            pytest.skip(f"PostgreSQL is not installed: {INSTALL_HINT}")
        # Not under pytest's tmp_path: its 0700 folders are closed to the postgres user.
        self.base = Path(tempfile.mkdtemp(prefix="sdedge-pg-"))
        self.data = self.base / "pgdata"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.url = f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"
        self.log = self.base / "postgres.log"

    def _run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def init(self) -> PostgresServer:
        """Create the cluster (trust authentication on loopback only)."""
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        done = self._run(self.initdb, "-D", self.data, "-U", self.user, "--auth=trust", "-E", "UTF8",
                         "--no-instructions")
        if done.returncode:
            pytest.skip(f"initdb failed ({done.stderr.strip()[-300:]}): {INSTALL_HINT}")
        return self

    def start(self) -> PostgresServer:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        done = self._run(self.pg_ctl, "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60", "start")
        if done.returncode:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr}\n{self.log_text()}")
        self.wait_accepting()
        return self

    def wait_accepting(self, timeout: float = 30) -> None:
        """Block until a TCP connection to the server succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not accept connections: {self.log_text()}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: disconnect every client, as a restart does)."""
        self._run(self.pg_ctl, "-D", self.data, "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        psql = pg_bin("psql")
        assert psql, INSTALL_HINT
        done = self._run(psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres",
                         "-c", f'CREATE DATABASE "{name}"')
        assert done.returncode == 0, done.stderr
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def remove(self) -> None:
        """Stop the server and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""
