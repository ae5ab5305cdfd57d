"""Logging in and out of the page, and the caller's own API tokens.

    GET    /auth/session              public: is a login needed, who is logged in, the open-server notice
    POST   /auth/login                public: name and password -> the session cookie
    POST   /auth/logout               public: ends the session
    GET    /account/tokens            the caller's tokens (never the tokens themselves)
    POST   /account/tokens            a new token, shown once in the answer
    DELETE /account/tokens/<id>       revoke one of the caller's tokens (another user's is a 404)
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, session
from pydantic import BaseModel, Field

from sdedge.accounts import TokenInfo
from sdedge.auth import caller, session_info
from sdedge.openapi_spec import documented
from sdedge.routes.http_input import json_body
from sdedge.service import iso
from sdedge.services import services

bp = Blueprint("account", __name__)


class LoginRequest(BaseModel):
    """The page's login form."""

    username: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=1024)


class SessionUser(BaseModel):
    """The logged-in user."""

    name: str
    admin: bool


class SessionInfo(BaseModel):
    """Whether the server needs a login, and who is logged in."""

    auth_required: bool
    user: SessionUser | None = None
    notice: str | None = Field(None, description="Set on a server without accounts: anyone can use it.")


class TokenRequest(BaseModel):
    """POST /account/tokens."""

    label: str = Field("", max_length=100, description="What the token is for (e.g. 'phone', 'krita').")


class TokenView(BaseModel):
    """A token as listed: never the token itself."""

    id: str
    label: str
    created_at: str | None
    last_used_at: str | None


class NewToken(TokenView):
    """A token just made: `token` is shown this once; use it as `Authorization: Bearer <token>`."""

    token: str


class TokenList(BaseModel):
    """GET /account/tokens."""

    tokens: list[TokenView]


def _view(info: TokenInfo) -> TokenView:
    return TokenView(id=info.id, label=info.label, created_at=iso(info.created_at), last_used_at=iso(info.last_used_at))


def _form_or_json() -> dict[str, str]:
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    return {key: str(value) for key, value in json_body().items()}


@bp.get("/auth/session")
@documented(responses={200: SessionInfo})
def session_state() -> Response:
    """Whether a login is needed and who is logged in (public)."""
    return jsonify(session_info(caller()))


@bp.post("/auth/login")
@documented(request=LoginRequest, responses={200: SessionInfo})
def login() -> Response:
    """Log in with name and password: sets the session cookie (failures are throttled per address)."""
    form = LoginRequest.model_validate(_form_or_json())
    user = services().auth.login(form.username, form.password, request.remote_addr)
    session.clear()
    session.permanent = True
    session.update(uid=user.id, stamp=user.session_stamp)
    return jsonify(SessionInfo(auth_required=True, user=SessionUser(name=user.name, admin=user.admin),
                               notice=None).model_dump())


@bp.post("/auth/logout")
@documented(responses={200: SessionInfo})
def logout() -> Response:
    """End the browser session."""
    session.clear()
    return jsonify(session_info(caller()) | {"user": None})


@bp.get("/account/tokens")
@documented(responses={200: TokenList})
def list_tokens() -> Response:
    """The caller's API tokens."""
    tokens = services().auth.own_tokens(caller())
    return jsonify(TokenList(tokens=[_view(t) for t in tokens]).model_dump())


@bp.post("/account/tokens")
@documented(request=TokenRequest, responses={201: NewToken})
def create_token() -> tuple[Response, int]:
    """Make an API token for the caller; the answer holds it, this once."""
    body = TokenRequest.model_validate(json_body() if request.content_length else {})
    info, token = services().auth.create_token(caller(), body.label)
    return jsonify(NewToken(**_view(info).model_dump(), token=token).model_dump()), 201


@bp.delete("/account/tokens/<token_id>")
@documented(responses={200: TokenView})
def revoke_token(token_id: str) -> Response:
    """Revoke one of the caller's tokens."""
    return jsonify(_view(services().auth.revoke_token(caller(), token_id)).model_dump())
