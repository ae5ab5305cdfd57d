"""Who is calling: the small typed value every service call that reads or changes jobs receives.

The service layer decides visibility with it, in one place; route modules only pass it on. A job's
`owner` is the id of the user who submitted it, or None when the server had no accounts then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Method = Literal["open", "anonymous", "session", "token", "basic"]


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a user, anyone (no accounts exist), or an anonymous visitor."""

    method: Method
    user_id: str | None = None
    name: str | None = None
    admin: bool = False
    address: str | None = None  # the client address (waitress corrects it behind a trusted proxy)
    token_id: str | None = None

    @property
    def authenticated(self) -> bool:
        """True for a user who proved who they are."""
        return self.user_id is not None

    @property
    def sees_all(self) -> bool:
        """Admins, and everyone while the server has no accounts, see and control every job."""
        return self.admin or self.method == "open"

    @property
    def owner(self) -> str | None:
        """What a job this caller submits records as its owner."""
        return self.user_id

    @property
    def allowed(self) -> bool:
        """May use the API at all: a user, or anyone on an open server."""
        return self.authenticated or self.method == "open"

    def can_see(self, owner: str | None) -> bool:
        """True when a job (or file) owned by owner is this caller's to see, cancel and delete."""
        return self.sees_all or (self.user_id is not None and owner == self.user_id)

    @property
    def rate_key(self) -> str:
        """What rate limits count by: the user, else the client address."""
        return f"user:{self.user_id}" if self.user_id else f"addr:{self.address or 'unknown'}"


def open_access(address: str | None = None) -> Principal:
    """Anyone, on a server without accounts (today's behaviour: every job is everyone's)."""
    return Principal("open", address=address)


def anonymous(address: str | None = None) -> Principal:
    """A visitor without a credential on a server with accounts: sees nothing but public routes."""
    return Principal("anonymous", address=address)


SYSTEM = Principal("open")  # the server itself (CLI, maintenance): sees every job
