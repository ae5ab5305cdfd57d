"""`sdedge users ...` and `sdedge tokens ...`: accounts and API tokens, in the job database.

    sdedge users add NAME [--admin] [--password-stdin]
    sdedge users list
    sdedge users remove NAME
    sdedge users passwd NAME [--password-stdin]
    sdedge tokens create NAME [--label L]      prints the token once
    sdedge tokens list NAME
    sdedge tokens revoke TOKEN_ID

They work while the server runs (it notices a first or a removed last user within seconds).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable

from sdedge.accounts import AccountStore
from sdedge.config import Settings, load_settings
from sdedge.errors import InvalidRequest


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the `users` and `tokens` sub-commands to the sdedge parser."""
    users = sub.add_parser("users", help="manage accounts (once one exists, the server needs a login)")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may see and control every user's jobs")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users_sub.add_parser("list", help="list accounts")
    remove = users_sub.add_parser("remove", help="delete an account and its tokens (its jobs stay, for admins)")
    remove.add_argument("name")
    passwd = users_sub.add_parser("passwd", help="set a new password (ends the user's browser sessions)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    tokens = sub.add_parser("tokens", help="manage API tokens (Authorization: Bearer <token>)")
    tokens_sub = tokens.add_subparsers(dest="action", required=True)
    create = tokens_sub.add_parser("create", help="make a token for a user and print it (shown once)")
    create.add_argument("name")
    create.add_argument("--label", default="", help="what the token is for")
    listing = tokens_sub.add_parser("list", help="list a user's tokens (never the tokens themselves)")
    listing.add_argument("name")
    revoke = tokens_sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")


def _store() -> AccountStore:
    from sdedge.job_store import JobStore

    settings: Settings = load_settings()
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The job store's engine: the same database, the same SQLite settings (WAL, busy timeout) as the server.
    return AccountStore(JobStore(settings.job_database_url).db)


def _password(args: argparse.Namespace) -> str:
    """The new password: one line of stdin with --password-stdin, else asked twice without echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise InvalidRequest("the passwords differ; nothing changed")
    return first


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else "never"


def cmd_users(args: argparse.Namespace) -> int:
    """users add | list | remove | passwd."""
    store = _store()
    if args.action == "add":
        user = store.add_user(args.name, _password(args), admin=args.admin)
        print(f"added {'admin ' if user.admin else ''}user {user.name}; the server now needs a login")
    elif args.action == "list":
        found = store.users()
        for user in found:
            print(f"{user.name}\t{'admin' if user.admin else 'user'}\t{len(store.tokens(user))} token(s)\t"
                  f"created {_when(user.created_at)}")
        if not found:
            print("no users: the server is open to anyone on the network", file=sys.stderr)
    elif args.action == "remove":
        store.remove_user(args.name)
        left = store.count_users()
        print(f"removed user {args.name}" + ("" if left else "; no users left: the server is open again"))
    else:
        store.set_password(args.name, _password(args))
        print(f"password of {args.name} changed; their browser sessions have ended")
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    """tokens create | list | revoke."""
    store = _store()
    if args.action == "create":
        info, token = store.create_token(store.require_user(args.name), args.label)
        print(token)  # alone on stdout, so TOKEN=$(sdedge tokens create NAME) works
        print(f"token {info.id} for {args.name}: shown once, store it now", file=sys.stderr)
    elif args.action == "list":
        for info in store.tokens(store.require_user(args.name)):
            print(f"{info.id}\t{info.label or '-'}\tcreated {_when(info.created_at)}\tlast used {_when(info.last_used_at)}")
    else:
        info = store.revoke_token(args.token_id)
        print(f"revoked token {info.id}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"users": cmd_users, "tokens": cmd_tokens}
