"""Accounts and API tokens in the job database: hashed, verified, revoked; nothing stored in plain."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sdedge.accounts import TOKEN_PREFIX, AccountStore
from sdedge.errors import Conflict, InvalidRequest, NotFound
from sdedge.job_store import JobStore


@pytest.fixture
def store(tmp_path: Path) -> AccountStore:
    return AccountStore(JobStore(f"sqlite:///{tmp_path / 'jobs.db'}").db)


def test_a_user_logs_in_with_the_right_password_only(store: AccountStore) -> None:
    store.add_user("alice", "correct horse", admin=True)
    user = store.verify_password("alice", "correct horse")
    assert user is not None and user.name == "alice" and user.admin
    assert store.verify_password("alice", "wrong horse") is None
    assert store.verify_password("nobody", "correct horse") is None
    assert store.count_users() == 1 and [u.name for u in store.users()] == ["alice"]


def test_names_are_unique_and_checked_and_passwords_long_enough(store: AccountStore) -> None:
    store.add_user("alice", "correct horse")
    with pytest.raises(Conflict):
        store.add_user("alice", "another password")
    with pytest.raises(InvalidRequest, match="user name"):
        store.add_user("al:ice", "correct horse")  # ':' would break HTTP Basic
    with pytest.raises(InvalidRequest, match="8 characters"):
        store.add_user("bob", "short")


def test_a_new_password_replaces_the_old_and_changes_the_session_stamp(store: AccountStore) -> None:
    before = store.add_user("alice", "correct horse")
    after = store.set_password("alice", "battery staple")
    assert store.verify_password("alice", "correct horse") is None
    assert store.verify_password("alice", "battery staple") is not None
    assert before.session_stamp != after.session_stamp


def test_tokens_verify_until_revoked_and_only_their_owner_may_revoke(store: AccountStore) -> None:
    alice, bob = store.add_user("alice", "correct horse"), store.add_user("bob", "battery staple")
    info, token = store.create_token(alice, "phone")
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40
    found = store.verify_token(token)
    assert found is not None and found[0].id == alice.id and found[1].id == info.id
    assert store.tokens(alice)[0].last_used_at is not None and store.tokens(bob) == []
    with pytest.raises(NotFound):
        store.revoke_token(info.id, bob)
    assert store.revoke_token(info.id, alice).label == "phone"
    assert store.verify_token(token) is None and store.tokens(alice) == []


def test_removing_a_user_removes_their_tokens(store: AccountStore) -> None:
    alice = store.add_user("alice", "correct horse")
    _, token = store.create_token(alice)
    store.remove_user("alice")
    assert store.verify_token(token) is None and store.count_users() == 0
    with pytest.raises(NotFound):
        store.remove_user("alice")


def test_the_database_holds_no_plain_password_or_token(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = AccountStore(JobStore(f"sqlite:///{path}").db)
    password = "plain-password-to-look-for"
    _, token = store.create_token(store.add_user("alice", password), "laptop")
    store.db.dispose()  # everything written and the WAL checkpointed into the file
    with sqlite3.connect(path) as db:
        cells = [str(cell) for table in ("users", "api_tokens") for row in db.execute(f"SELECT * FROM {table}")
                 for cell in row]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert cells and not any(password in cell or token in cell for cell in cells)
    assert any(cell.startswith("scrypt:") for cell in cells), "password stored as a scrypt hash"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("jobs.db"))
    assert password.encode() not in raw and token.encode() not in raw and token[len(TOKEN_PREFIX):].encode() not in raw
