"""Helpers for tests of a server with accounts: users, tokens and the headers that carry them."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from flask import Flask


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
