"""A create whose answer was lost (the connection dropped with it sent): the applier reads it
back instead of reporting a retry's "already exists" as a plain failure, and owes a password
when it cannot tell; the journal and the debts carry what is owed; stored hashes are checked
against slappasswd's. The real slapd behind a dropping proxy is in
tests/integration/test_lost_create_answers.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.directory.hashes import matches
from connectors.journal import interrupted, pay_password_debts
from connectors.store import StateStore
from syncd.applier import RunResult
from syncd.model import Action
from syncd.ports import DirectoryError, Found
from tests.unit.test_applier_batches import Recorder, _apply, _create

LOST = DirectoryError(
    "creating: the connection was lost, the add sent", transient=True, unanswered=True
)
EXISTS = DirectoryError("creating uid=u1: Entry Already Exists (68)")


class LostAnswers(Recorder):
    """u1's pipelined add is unanswered, its retry is refused as already there; the read-back
    answers ``found`` (or raises it)."""

    def __init__(self, found: Found | DirectoryError, retry: DirectoryError = EXISTS) -> None:
        super().__init__({"u1": LOST})
        self.retry, self.found = retry, found
        self.read_back: list[tuple[str, str]] = []

    def create(self, action: Action, password: str, *, since: datetime | None = None) -> str:
        self.events.append(("create", action.uid))
        raise self.retry

    def find_created(
        self, action: Action, password: str, *, since: datetime | None = None
    ) -> tuple[Found, str]:
        self.read_back.append((action.uid, password))
        if isinstance(self.found, DirectoryError):
            raise self.found
        return self.found, f"uid={action.uid}"


def _run(rec: LostAnswers) -> Any:
    return _apply(rec, [_create(f"u{n}") for n in range(3)], batch=64)


def _audit(rec: Recorder, uid: str) -> str:
    """The result of ``uid``'s audit record."""
    return next(str(p[1]) for e, p in rec.events if e == "audit" and p[0] == uid)


def test_a_lost_answer_whose_entry_holds_this_actions_password_is_created_with_its_slip() -> None:
    rec = LostAnswers(Found.OURS)
    result = _run(rec)
    assert [(o.action.uid, o.status.value) for o in result.outcomes][1] == ("u1", "ok")
    [(uid, password)] = rec.read_back
    slip = next(s for s in result.slips if s.uid == "u1")
    assert uid == "u1" and slip.password == password  # the password the add carried
    assert result.owed_passwords == set() and _audit(rec, "u1") == "ok"
    assert ("finished", [(0, "done"), (1, "done"), (2, "done")]) in rec.events


def test_this_actions_entry_with_a_password_that_cannot_be_checked_is_created_and_owed() -> None:
    rec = LostAnswers(Found.OURS_PASSWORD_UNKNOWN)
    result = _run(rec)
    assert result.outcomes[1].ok and "u1" not in {s.uid for s in result.slips}
    assert result.owed_passwords == {"u1"}
    assert ("finished", [(0, "done"), (1, "owed"), (2, "done")]) in rec.events


def test_another_entry_behind_a_lost_answer_stays_a_permanent_failure_and_owes_nothing() -> None:
    rec = LostAnswers(Found.OTHER)
    result = _run(rec)
    assert result.outcomes[1].status.value == "permanent" and "(68)" in result.outcomes[1].error
    assert result.owed_passwords == set() and _audit(rec, "u1") == "failed"
    assert ("finished", [(0, "done"), (1, "failed"), (2, "done")]) in rec.events


def test_a_lost_answer_that_cannot_be_read_back_is_a_temporary_failure_that_owes_a_password() -> (
    None
):
    gone = DirectoryError("cannot reach ldap://127.0.0.1:1", transient=True)
    rec = LostAnswers(gone, retry=gone)
    result = _run(rec)
    assert result.outcomes[1].status.value == "temporary"
    assert result.owed_passwords == {"u1"} and "u1" not in {s.uid for s in result.slips}
    assert ("finished", [(0, "done"), (1, "owed"), (2, "done")]) in rec.events


def test_already_exists_without_a_lost_answer_is_not_read_back() -> None:
    rec = LostAnswers(Found.OURS)
    rec.errors = {"u1": EXISTS}  # slapd answered: someone else's entry, as before
    result = _run(rec)
    assert rec.read_back == [] and result.outcomes[1].status.value == "permanent"


def test_an_owed_end_record_and_an_owing_run_become_password_debts(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    lines = [
        {"run_id": "r1", "planned": []},
        {"i": 0, "s": "start", "kind": "create", "uid": "a.skhcn", "action": {}},
        {"i": 1, "s": "start", "kind": "create", "uid": "b.skhcn", "action": {}},
        {"i": 0, "s": "done", "request": None},
        {"i": 1, "s": "owed", "request": None},
    ]
    (journal / "r1.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), "utf-8")
    dead = interrupted(tmp_path)
    assert dead.owed == [("r1", "b.skhcn")] and dead.actions == []  # ended, but owed

    store = StateStore(tmp_path)
    result = RunResult("r2", owed_passwords={"c.skhcn"})
    pay_password_debts(store, result)
    assert store.load_debts().passwords == {"c.skhcn": "r2"}


SLAPPASSWD = shutil.which("slappasswd") or "/usr/sbin/slappasswd"


@pytest.mark.parametrize("scheme", ["{SSHA}", "{SHA}", "{SMD5}", "{MD5}"])
def test_a_hash_slappasswd_made_matches_its_password_only(scheme: str) -> None:
    if not Path(SLAPPASSWD).exists():
        pytest.skip("slappasswd (Debian slapd) is not installed")
    made = subprocess.run(
        [SLAPPASSWD, "-h", scheme, "-s", "Mật-khẩu-1!"], capture_output=True, check=True
    ).stdout.strip()
    assert matches(made, "Mật-khẩu-1!") is True
    assert matches(made, "Mật-khẩu-2!") is False


def test_a_scheme_that_cannot_be_checked_is_not_guessed() -> None:
    assert matches(b"{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA", "x") is None
    assert matches(b"{CRYPT}$6$salt$hash", "x") is None
    assert matches(b"plain-text", "plain-text") is True
