"""Who is calling: credentials (Bearer token, HTTP Basic, the page's session cookie) to a Principal.

While no account exists every request is `open` (today's behaviour). Once one exists every route
needs a credential except PUBLIC_ENDPOINTS; a missing or wrong one is a 401 with WWW-Authenticate in
the surface's own error shape (the hook raises; each surface's error handlers render it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Request, g, request, session
from flask.sessions import SecureCookieSessionInterface

from sdedge.accounts import TOKEN_PREFIX, AccountStore, TokenInfo, User
from sdedge.config import Settings
from sdedge.errors import Conflict, Unauthorized, detail
from sdedge.fair_use import LoginThrottle
from sdedge.principal import Principal, anonymous, open_access

log = logging.getLogger(__name__)

# Reachable without a credential: monitors' probes, the page (it shows the login form) and logging in.
PUBLIC_ENDPOINTS = {"api.health", "api.health_live", "api.health_ready", "page.index", "page.asset",
                    "account.session_state", "account.login", "account.logout"}
OPEN_NOTICE = ("This server has no accounts: anyone on the network can use it. "
               "Add one with: sdedge users add NAME --admin")
LOGIN_HINT = ("this server needs a credential: `Authorization: Bearer <token>`, HTTP Basic user:password "
              "(or user:token), or log in on the page")
# Answered to a scrape token (METRICS_TOKEN) as well as to users: Prometheus cannot log in.
SCRAPE_ENDPOINTS = {"metrics.metrics"}
USERS_CACHE_SECONDS = 2.0  # a user added by the CLI in another process is noticed within this time
BASIC_CACHE_SECONDS = 300.0  # scrypt is slow on purpose: a client sending the same Basic pair is checked once


@dataclass
class _Verified:
    user_id: str
    stamp: str
    until: float


class Authenticator:
    """Turns a request's credential into a Principal; the account operations the routes call."""

    def __init__(self, accounts: AccountStore, settings: Settings) -> None:
        self.accounts, self.settings = accounts, settings
        self.throttle: LoginThrottle | None = None  # set when the rate limiter is attached to the app
        self._users_known_at = -1e9
        self._has_users = False
        self._changes_seen = accounts.changes
        self._basic_ok: dict[str, _Verified] = {}
        self._pepper = secrets.token_bytes(16)
        self._lock = threading.Lock()

    # -- is the server open? -------------------------------------------------------------------
    def accounts_exist(self) -> bool:
        """True once at least one user exists (cached briefly: asked on every request)."""
        now = time.monotonic()
        if now - self._users_known_at > USERS_CACHE_SECONDS or self.accounts.changes != self._changes_seen:
            self._changes_seen = self.accounts.changes
            self._has_users = self.accounts.count_users() > 0
            self._users_known_at = now
        return self._has_users

    def is_scrape_token(self, req: Request) -> bool:
        """True when the request carries METRICS_TOKEN as its Bearer token."""
        expected = self.settings.metrics_token
        scheme, _, value = req.headers.get("Authorization", "").strip().partition(" ")
        return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), str(expected).encode())

    # -- identifying a request -----------------------------------------------------------------
    def identify(self, req: Request) -> Principal | None:
        """The caller proven by the request's credential; None without one; 401 for a wrong one."""
        address = req.remote_addr
        header = req.headers.get("Authorization", "").strip()
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                return self._checked(address, lambda: self._bearer(value.strip(), address))
            if scheme.lower() == "basic":
                return self._checked(address, lambda: self._basic(value.strip(), address))
            raise self.challenge(f"unsupported Authorization scheme {scheme!r}; use Bearer or Basic")
        return self._session(address)

    def _checked(self, address: str | None, verify: Any) -> Principal:
        if self.throttle:
            self.throttle.check(address or "unknown")
        found: Principal | None = verify()
        if found is None:
            if self.throttle:
                self.throttle.failed(address or "unknown")
            raise self.challenge("wrong credential")
        return found

    def _bearer(self, token: str, address: str | None) -> Principal | None:
        found = self.accounts.verify_token(token)
        return principal_for(found[0], "token", address, found[1]) if found else None

    def _basic(self, value: str, address: str | None) -> Principal | None:
        try:
            name, _, secret = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if secret.startswith(TOKEN_PREFIX):
            found = self.accounts.verify_token(secret)
            return principal_for(found[0], "basic", address, found[1]) if found and found[0].name == name else None
        user = self._cached_basic(name, secret) or self._verify_basic(name, secret)
        return principal_for(user, "basic", address) if user else None

    def _cached_basic(self, name: str, secret: str) -> User | None:
        key = self._basic_key(name, secret)
        with self._lock:
            known = self._basic_ok.get(key)
        if known is None or known.until < time.monotonic():
            return None
        user = self.accounts.user(name)  # still there, and the password unchanged?
        return user if user and user.id == known.user_id and user.session_stamp == known.stamp else None

    def _verify_basic(self, name: str, secret: str) -> User | None:
        user = self.accounts.verify_password(name, secret)
        if user is not None:
            with self._lock:
                if len(self._basic_ok) > 1000:
                    self._basic_ok.clear()
                self._basic_ok[self._basic_key(name, secret)] = _Verified(
                    user.id, user.session_stamp, time.monotonic() + BASIC_CACHE_SECONDS)
        return user

    def _basic_key(self, name: str, secret: str) -> str:
        return hashlib.sha256(self._pepper + f"{name}\0{secret}".encode()).hexdigest()

    def _session(self, address: str | None) -> Principal | None:
        user_id = session.get("uid")
        if not user_id:
            return None
        user = self.accounts.user_by_id(str(user_id))
        if user is None or session.get("stamp") != user.session_stamp:  # removed, or password changed
            session.clear()
            return None
        return principal_for(user, "session", address)

    def challenge(self, reason: str) -> Unauthorized:
        """The 401 for a missing or wrong credential, with the challenges a client can answer."""
        # Browsers pop up their own password dialog on a Basic challenge: the page logs in with its form.
        browser = "Sec-Fetch-Mode" in request.headers
        schemes = 'Bearer realm="sdedge"' + ("" if browser else ', Basic realm="sdedge", charset="UTF-8"')
        message = f"{reason}: {LOGIN_HINT}" if reason else LOGIN_HINT
        return Unauthorized(message, detail("Authorization", reason or "missing", "unauthorized"),
                            {"WWW-Authenticate": schemes})

    # -- the page's login and the account API --------------------------------------------------
    def login(self, name: str, password: str, address: str | None) -> User:
        """Check a name and password from the login form (throttled per address); 401 when wrong."""
        if self.throttle:
            self.throttle.check(address or "unknown")
        user = self.accounts.verify_password(name, password)
        if user is None:
            if self.throttle:
                self.throttle.failed(address or "unknown")
            raise Unauthorized("wrong user name or password", detail("password", "wrong user name or password",
                                                                     "unauthorized"),
                               {"WWW-Authenticate": 'Bearer realm="sdedge"'})
        return user

    def account_of(self, caller: Principal) -> User:
        """The caller's own account; 409 on a server without accounts."""
        user = self.accounts.user_by_id(caller.user_id) if caller.user_id else None
        if user is None:
            raise Conflict("this server has no accounts: tokens are made for users (`sdedge users add`)")
        return user

    def own_tokens(self, caller: Principal) -> list[TokenInfo]:
        """The caller's tokens (never the tokens themselves)."""
        return self.accounts.tokens(self.account_of(caller))

    def create_token(self, caller: Principal, label: str) -> tuple[TokenInfo, str]:
        """A new token for the caller: shown once."""
        return self.accounts.create_token(self.account_of(caller), label)

    def revoke_token(self, caller: Principal, token_id: str) -> TokenInfo:
        """Revoke one of the caller's own tokens; another user's is a 404."""
        return self.accounts.revoke_token(token_id, self.account_of(caller))


def principal_for(user: User, method: Any, address: str | None, token: TokenInfo | None = None) -> Principal:
    """The Principal of an authenticated user."""
    return Principal(method, user.id, user.name, user.admin, address, token.id if token else None)


def authenticate() -> None:
    """before_request: set the caller on flask.g, or raise 401 where a credential is needed."""
    authenticator: Authenticator = _authenticator()
    address = request.remote_addr
    if request.endpoint in SCRAPE_ENDPOINTS and authenticator.is_scrape_token(request):
        g.principal, g.sdedge_scraper = anonymous(address), True
        return
    if not authenticator.accounts_exist():
        g.principal = open_access(address)
        return
    if request.method == "OPTIONS":  # a CORS preflight carries no credential and runs no view
        g.principal = anonymous(address)
        return
    found = authenticator.identify(request)
    if found is None and request.endpoint not in PUBLIC_ENDPOINTS:
        raise authenticator.challenge("")
    g.principal = found or anonymous(address)


def caller() -> Principal:
    """The caller of the current request (set by `authenticate`)."""
    found: Principal | None = g.get("principal")
    return found if found is not None else anonymous(request.remote_addr)


def health_view(body: dict[str, Any], who: Principal) -> dict[str, Any]:
    """/health as this caller may see it: status and reason only for anonymous visitors."""
    if who.method == "open":
        return {**body, "access": {"auth_required": False, "notice": OPEN_NOTICE}}
    if who.authenticated:
        return {**body, "access": {"auth_required": True, "user": who.name, "admin": who.admin}}
    return {"status": body["status"], "reason": body["reason"]}


def session_info(who: Principal) -> dict[str, Any]:
    """What the page needs to choose between its login form and the app."""
    user = {"name": who.name, "admin": who.admin} if who.authenticated else None
    return {"auth_required": who.method != "open", "user": user,
            "notice": OPEN_NOTICE if who.method == "open" else None}


def _authenticator() -> Authenticator:
    from flask import current_app

    found: Authenticator = current_app.extensions["sdedge"].auth
    return found


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, `Secure` whenever the request came over https (a trusted proxy's
    X-Forwarded-Proto counts: waitress sets the scheme from it only for TRUSTED_PROXY)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure over https."""
        return bool(request.is_secure or app.config.get("SESSION_COOKIE_SECURE"))


def init_sessions(app: Flask, settings: Settings) -> None:
    """Signed session cookies: HttpOnly, SameSite=Lax, Secure over https, signed with SECRET_KEY."""
    from datetime import timedelta

    app.secret_key = secret_key(settings)
    app.session_interface = _SessionInterface()
    app.config.update(SESSION_COOKIE_NAME="sdedge_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=timedelta(days=settings.session_days))


def secret_key(settings: Settings) -> str:
    """SECRET_KEY, else the key in DATA_DIR/secret_key, made once (mode 0600) so sessions survive restarts."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return _read_key(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return _read_key(path)


def _read_key(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users; chmod 600 it (it signs login sessions)", path)
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key; delete it to make a new one")
    return key
