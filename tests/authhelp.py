"""Helpers for tests of a server with accounts: users, tokens and the headers that carry them, in an app
or in a real `sdedge serve` whose account is made by the CLI."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from serverproc import ServerProcess, sdedge_command


@dataclass
class Account:
    """A user made for a test, with one API token."""

    name: str
    password: str
    token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def basic(self) -> dict[str, str]:
        return basic(self.name, self.password)


def basic(name: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()}


def add_account(app: Flask, name: str, *, admin: bool = False, password: str | None = None) -> Account:
    """Create a user (and a token) through the app's own account store."""
    accounts = app.extensions["sdedge"].accounts
    password = password or f"{name}-secret-password"
    user = accounts.add_user(name, password, admin=admin)
    _, token = accounts.create_token(user, "test")
    return Account(name, password, token)


def cli(proc: ServerProcess, *args: str, stdin: str = "") -> str:
    """Run an sdedge command as the user would, in the server's folder and environment."""
    done = subprocess.run([*sdedge_command(), *args], input=stdin, capture_output=True, text=True,
                          cwd=proc.cwd, env=proc.env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class AccountServer:
    """A running server, its address parts, and the token of its user alice."""

    proc: ServerProcess
    token: str

    @property
    def base(self) -> str:
        return self.proc.base

    @property
    def port(self) -> int:
        return self.proc.port


@contextmanager
def server_with_account(tmp_path: Path, password: str, *, label: str = "tests", **env: str) -> Iterator[AccountServer]:
    """`sdedge serve` on the tiny model (CPU) whose user alice and her token were made with the CLI first."""
    proc = ServerProcess(tmp_path, OPENVINO_DEVICE="CPU", **env)
    cli(proc, "users", "add", "alice", "--password-stdin", stdin=password + "\n")
    token = cli(proc, "tokens", "create", "alice", "--label", label).strip()
    proc.start()
    try:
        proc.wait_ready()
        yield AccountServer(proc, token)
    finally:
        proc.stop()
