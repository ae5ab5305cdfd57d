"""Accounts and API tokens, in the job database (the same SQLAlchemy engine as the jobs).

    users       id, name (unique), password_hash (Werkzeug scrypt), admin, created_at
    api_tokens  id, user_id -> users.id, label, token_hash (sha256 hex, unique), created_at, last_used_at

Passwords are stored as salted scrypt hashes; tokens are 256-bit random strings stored as their
sha256 (a long random secret needs no salt or slow hash). Neither is ever stored or logged in plain.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import (
    Boolean, Column, Float, ForeignKey, Index, MetaData, String, Table, delete, func, select, update,
)
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from sdedge.errors import Conflict, InvalidRequest, NotFound, detail

TOKEN_PREFIX = "sdedge_"
MIN_PASSWORD_LENGTH = 8
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")  # no ':' (HTTP Basic's separator)
LAST_USED_RESOLUTION = 60.0  # seconds: a busy token does not write its last use on every request

# The tables as queries see them; the migrations (sdedge/migrations, 0003) make them in the database.
metadata = MetaData()
users_table = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("admin", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)
tokens_table = Table(
    "api_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(100), nullable=False, default=""),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
)
Index("api_tokens_user", tokens_table.c.user_id)

# Checked when a name is unknown, so a wrong user name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password of anyone", method="scrypt")


@dataclass(frozen=True)
class User:
    """One account (its password hash never leaves the store's callers' reach in a repr)."""

    id: str
    name: str
    admin: bool
    created_at: float
    password_hash: str = field(repr=False)

    @classmethod
    def from_row(cls, row: RowMapping) -> User:
        """Decode a users row."""
        return cls(row["id"], row["name"], bool(row["admin"]), row["created_at"], row["password_hash"])

    @property
    def session_stamp(self) -> str:
        """Changes when the password does: a browser session carries it, so a new password logs others out."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TokenInfo:
    """An API token as it may be shown: never the token itself."""

    id: str
    user_id: str
    label: str
    created_at: float
    last_used_at: float | None

    @classmethod
    def from_row(cls, row: RowMapping) -> TokenInfo:
        """Decode an api_tokens row."""
        return cls(row["id"], row["user_id"], row["label"], row["created_at"], row["last_used_at"])


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    """A valid user name, or a 400 that says what a name may contain."""
    if not NAME_PATTERN.match(name):
        message = "a user name is 1-64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        raise InvalidRequest(message, detail("name", message, "value_error"))
    return name


def check_password(password: str) -> str:
    """A password long enough to keep, or a 400."""
    if len(password) < MIN_PASSWORD_LENGTH:
        message = f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
        raise InvalidRequest(message, detail("password", message, "too_short"))
    return password


class AccountStore:
    """Users and their API tokens in SQL."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self.changes = 0  # bumped by every account change made through this store (caches compare it)

    # -- users ---------------------------------------------------------------------------------
    def add_user(self, name: str, password: str, *, admin: bool = False) -> User:
        """Create an account; 409 when the name is taken."""
        user = User(f"user-{uuid.uuid4().hex[:16]}", check_name(name), admin, time.time(),
                    generate_password_hash(check_password(password), method="scrypt"))
        try:
            with self.db.begin() as conn:
                conn.execute(users_table.insert().values(id=user.id, name=user.name, admin=user.admin,
                                                         created_at=user.created_at, password_hash=user.password_hash))
        except IntegrityError:
            raise Conflict(f"a user named {name!r} exists already", detail("name", "taken", "conflict")) from None
        self.changes += 1
        return user

    def remove_user(self, name: str) -> User:
        """Delete an account and its tokens (its jobs stay, visible to admins)."""
        user = self.require_user(name)
        with self.db.begin() as conn:
            conn.execute(delete(tokens_table).where(tokens_table.c.user_id == user.id))
            conn.execute(delete(users_table).where(users_table.c.id == user.id))
        self.changes += 1
        return user

    def set_password(self, name: str, password: str) -> User:
        """Replace a user's password (their browser sessions end)."""
        user = self.require_user(name)
        hashed = generate_password_hash(check_password(password), method="scrypt")
        with self.db.begin() as conn:
            conn.execute(update(users_table).where(users_table.c.id == user.id).values(password_hash=hashed))
        self.changes += 1
        return self.require_user(name)

    def users(self) -> list[User]:
        """Every account, by name."""
        with self.db.connect() as conn:
            rows = conn.execute(select(users_table).order_by(users_table.c.name)).mappings().all()
        return [User.from_row(row) for row in rows]

    def count_users(self) -> int:
        """How many accounts exist (0: the server is open)."""
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users_table)).scalar() or 0)

    def user(self, name: str) -> User | None:
        """The account of that name, if any."""
        return self._user_by("name", name)

    def user_by_id(self, user_id: str) -> User | None:
        """The account with that id, if any."""
        return self._user_by("id", user_id)

    def require_user(self, name: str) -> User:
        """The account of that name, or a 404."""
        user = self.user(name)
        if user is None:
            raise NotFound(f"no user named {name!r}", detail("name", "no such user", "not_found"))
        return user

    def verify_password(self, name: str, password: str) -> User | None:
        """The user when name and password match, else None (in the same time either way)."""
        user = self.user(name)
        ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
        return user if user is not None and ok else None

    def _user_by(self, column: str, value: str) -> User | None:
        with self.db.connect() as conn:
            row = conn.execute(select(users_table).where(users_table.c[column] == value)).mappings().first()
        return User.from_row(row) if row else None

    # -- tokens --------------------------------------------------------------------------------
    def create_token(self, user: User, label: str = "") -> tuple[TokenInfo, str]:
        """A new token for user: its stored description, and the token itself (shown once, never stored)."""
        label = label.strip()[:100]
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(f"tok-{uuid.uuid4().hex[:12]}", user.id, label, time.time(), None)
        with self.db.begin() as conn:
            conn.execute(tokens_table.insert().values(id=info.id, user_id=user.id, label=label, created_at=info.created_at,
                                                      token_hash=hash_token(token), last_used_at=None))
        return info, token

    def tokens(self, user: User) -> list[TokenInfo]:
        """A user's tokens, oldest first."""
        query = select(tokens_table).where(tokens_table.c.user_id == user.id).order_by(tokens_table.c.created_at)
        with self.db.connect() as conn:
            return [TokenInfo.from_row(row) for row in conn.execute(query).mappings().all()]

    def revoke_token(self, token_id: str, user: User | None = None) -> TokenInfo:
        """Delete a token (only user's own when user is given); another user's token is a 404 too."""
        c = tokens_table.c
        query = select(tokens_table).where(c.id == token_id)
        if user is not None:
            query = query.where(c.user_id == user.id)
        with self.db.begin() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                raise NotFound(f"no token {token_id!r}", detail("token_id", "no such token", "not_found"))
            conn.execute(delete(tokens_table).where(c.id == token_id))
        return TokenInfo.from_row(row)

    def verify_token(self, token: str) -> tuple[User, TokenInfo] | None:
        """The user and token a presented token belongs to, else None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        c = tokens_table.c
        with self.db.connect() as conn:
            row = conn.execute(select(tokens_table).where(c.token_hash == hash_token(token))).mappings().first()
        if row is None:
            return None
        user = self.user_by_id(row["user_id"])
        if user is None:
            return None
        info = TokenInfo.from_row(row)
        now = time.time()
        if info.last_used_at is None or now - info.last_used_at > LAST_USED_RESOLUTION:
            with self.db.begin() as conn:
                conn.execute(update(tokens_table).where(c.id == info.id).values(last_used_at=now))
        return user, info
