"""`sdedge users ...` and `sdedge tokens ...`, exactly as the README spells them, on the job database."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sdedge.accounts import AccountStore
from sdedge.cli import main
from sdedge.job_store import JobStore


@pytest.fixture(autouse=True)
def _work_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # DATA_DIR defaults to ./data, as for a user


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def store(tmp_path: Path) -> AccountStore:
    return AccountStore(JobStore(f"sqlite:///{tmp_path / 'data' / 'jobs.db'}").db)


def test_users_add_list_passwd_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(capsys, monkeypatch, "users", "add", "alice", "--admin", "--password-stdin",
               stdin="first password\n")[0] == 0
    assert store(tmp_path).verify_password("alice", "first password") is not None
    code, out, _ = run(capsys, monkeypatch, "users", "list")
    assert code == 0 and out.startswith("alice\tadmin\t0 token(s)")
    assert run(capsys, monkeypatch, "users", "passwd", "alice", "--password-stdin", stdin="second password\n")[0] == 0
    assert store(tmp_path).verify_password("alice", "second password") is not None
    code, out, _ = run(capsys, monkeypatch, "users", "remove", "alice")
    assert code == 0 and "open again" in out and store(tmp_path).count_users() == 0


def test_users_add_asks_twice_without_password_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["typed password", "typed password", "one password", "another one"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert run(capsys, monkeypatch, "users", "add", "bob")[0] == 0
    assert store(tmp_path).verify_password("bob", "typed password") is not None
    code, _, err = run(capsys, monkeypatch, "users", "passwd", "bob")
    assert code == 1 and "differ" in err
    assert store(tmp_path).verify_password("bob", "typed password") is not None


def test_errors_are_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(capsys, monkeypatch, "users", "add", "al:ice", "--password-stdin", stdin="long enough\n")[0] == 1
    assert run(capsys, monkeypatch, "users", "add", "bob", "--password-stdin", stdin="short\n")[0] == 1
    code, _, err = run(capsys, monkeypatch, "users", "remove", "nobody")
    assert code == 1 and err.strip() == "sdedge: no user named 'nobody'"
    assert run(capsys, monkeypatch, "tokens", "create", "nobody")[0] == 1


def test_tokens_create_prints_the_token_once_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    run(capsys, monkeypatch, "users", "add", "alice", "--password-stdin", stdin="first password\n")
    code, out, err = run(capsys, monkeypatch, "tokens", "create", "alice", "--label", "krita")
    token = out.strip()
    assert code == 0 and token.startswith("sdedge_") and "\n" not in token and "shown once" in err
    found = store(tmp_path).verify_token(token)
    assert found is not None and found[0].name == "alice"
    code, out, _ = run(capsys, monkeypatch, "tokens", "list", "alice")
    token_id, label = out.split("\t")[:2]
    assert code == 0 and label == "krita" and token not in out
    assert run(capsys, monkeypatch, "tokens", "revoke", token_id)[0] == 0
    assert store(tmp_path).verify_token(token) is None
    assert run(capsys, monkeypatch, "tokens", "revoke", token_id)[0] == 1
