"""Pipelined creates against the real slapd: several adds in flight on one connection, each
standing or failing alone exactly as one create would, and a whole run's creates counting
their syncs per batch (group commit), not per account."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from ldap3 import Connection

from connectors import runner
from connectors.directory.openldap import PIPELINE
from connectors.durable import BATCH
from connectors.runner import open_directory
from devtools.slapd_sandbox import Sandbox
from syncd.ports import DirectoryError, NotSent
from tests.conftest import MakeConfig
from tests.helpers import create_action, entries, write_roster
from tests.integration.test_lost_create_answers import DroppingProxy, through


def test_pipelined_creates_each_stand_or_fail_alone_as_one_create_would(
    make_config: MakeConfig, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    directory = open_directory(cfg, [])
    try:
        directory.create(create_action("b.skhcn"), "Tr0ng-Ma-B!")  # already there
        items = [
            (create_action("a.skhcn"), "Mk-a.1234!"),
            (create_action("b.skhcn"), "Mk-b.1234!"),  # exists: refused, the others stand
            (create_action("c.skhcn"), "Mk-c.1234!"),
            (create_action("d.skhcn", mail=("đ@test.gov.vn",)), "Mk-d.1234!"),  # not IA5: refused
            (create_action("e.skhcn"), "Mk-e.1234!"),
        ]
        out = directory.create_many(items)
        # the pipeline's answers are read on its own socket: no ldap3 receiver thread (one
        # per run spun at full CPU once its socket was gone)
        receivers = [t for t in threading.enumerate() if "Receiver" in type(t).__name__]
        for thread in receivers:
            thread.join(timeout=10)  # it ends with its socket
        assert [t for t in receivers if t.is_alive()] == []
    finally:
        directory.close()
    assert out[0] == f"uid=a.skhcn,{base_dn}"
    assert isinstance(out[1], DirectoryError) and "(68)" in str(out[1])
    assert "an access rule hides it from the service DN" in str(out[1])
    assert not out[1].transient  # as one create: a permanent failure, not retried
    assert out[2] == f"uid=c.skhcn,{base_dn}"
    assert isinstance(out[3], DirectoryError) and "(21)" in str(out[3])
    assert out[4] == f"uid=e.skhcn,{base_dn}"
    made = entries(admin, base_dn)
    assert sorted(made) == ["a.skhcn", "b.skhcn", "c.skhcn", "e.skhcn"]
    for uid, password in (("a.skhcn", "Mk-a.1234!"), ("e.skhcn", "Mk-e.1234!")):
        assert made[uid]["syncdState"] == ["active"] and made[uid]["pwdReset"] == ["TRUE"]
        assert Connection(slapd.url, f"uid={uid},{base_dn}", password).bind()
    # the entry that was there is untouched: its own password still opens it
    assert Connection(slapd.url, f"uid=b.skhcn,{base_dn}", "Tr0ng-Ma-B!").bind()


def test_meanwhile_runs_once_while_the_first_adds_are_with_slapd_and_a_short_call_still_runs_it(
    make_config: MakeConfig, admin: Connection, base_dn: str
) -> None:
    """The applier commits its previous batch in ``meanwhile``: it must run while slapd has
    adds to work on (at most ``PIPELINE`` sent, none of the rest), exactly once, and also in
    a call too short to fill the pipeline."""
    cfg = make_config()
    directory = open_directory(cfg, [])
    seen: list[int] = []
    try:
        many = [(create_action(f"p{n:03d}.skhcn"), f"Mk-{n}.1234!x") for n in range(3 * PIPELINE)]

        def count() -> bool:
            seen.append(len(entries(admin, base_dn)))
            return False

        def short() -> bool:
            seen.append(-1)
            return False

        out = directory.create_many(many, meanwhile=count)
        few = [(create_action(f"q{n}.skhcn"), f"Mk-{n}.1234!y") for n in range(3)]
        out += directory.create_many(few, meanwhile=short)
    finally:
        directory.close()
    assert all(isinstance(o, str) for o in out), out
    assert len(seen) == 2 and seen[1] == -1
    assert seen[0] <= PIPELINE  # run with the first adds out, not after the call's last
    assert len(entries(admin, base_dn)) == 3 * PIPELINE + 3


def test_a_meanwhile_that_failed_stops_the_adds_not_sent_and_those_out_are_answered(
    make_config: MakeConfig, admin: Connection, base_dn: str
) -> None:
    """The applier's commit of the previous batch failed (the disk full under the slips):
    the adds already out are answered as usual, the rest are not sent (``NotSent``)."""
    cfg = make_config()
    directory = open_directory(cfg, [])
    try:
        many = [(create_action(f"p{n:03d}.skhcn"), f"Mk-{n}.1234!x") for n in range(3 * PIPELINE)]
        out = directory.create_many(many, meanwhile=lambda: True)
    finally:
        directory.close()
    made = [o for o in out if isinstance(o, str)]
    assert len(made) == PIPELINE and all(isinstance(o, NotSent) for o in out[PIPELINE:])
    assert sorted(entries(admin, base_dn)) == sorted(f"p{n:03d}.skhcn" for n in range(PIPELINE))


def test_a_run_syncs_per_batch_of_creates_not_per_account(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Group commit, counted: every fsync and fdatasync the run makes (the real calls, only
    counted). Before it, each created account cost six (journal start and end, slip, audit
    record, the audit head's file and folder)."""
    people = 2 * BATCH
    cfg = make_config()
    roster = write_roster(
        tmp_path / "r.csv", [f"E{i:04d},Trần Văn Người{i:04d},skhcn,,,,," for i in range(people)]
    )
    calls = {"n": 0}

    def counted(real: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            calls["n"] += 1
            real(fd)

        return sync

    monkeypatch.setattr(os, "fsync", counted(os.fsync))
    monkeypatch.setattr(os, "fdatasync", counted(os.fdatasync))
    outcome = runner.run(cfg, rosters=[roster])
    monkeypatch.undo()
    assert outcome.exit_code == 0
    created = sum(1 for e in entries(admin, base_dn).values() if e.get("employeeNumber"))
    assert created == people
    # three batches (two org mailboxes and 128 people); state, snapshot, report and slip
    # pages add a fixed number
    print(f"{calls['n']} syncs for {people} people")
    assert calls["n"] < people / 2, calls


def test_a_connection_dropped_with_adds_in_flight_tells_the_unanswered_from_the_unsent(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """The proxy passes slapd's first 2 answers, holds the next 4 and cuts: the client had
    sent 16 then one more per answer (18), so 16 adds are in flight without an answer (slapd
    may have applied them: ``unanswered``, read back by the applier) and 6 never left (a
    plain transient failure, retried). slapd's threads may answer out of order: each answer
    that came is its own add's outcome, whichever adds they were. The call returns at once
    instead of waiting out the timeout."""
    make_config()
    proxy = DroppingProxy(slapd.port, 2, 4)
    try:
        directory = open_directory(through(tmp_path / "syncd.yaml", proxy), [])
        try:
            out = directory.create_many(
                [(create_action(f"p{n:02d}"), f"Mk-{n}.1234!") for n in range(24)]
            )
        finally:
            directory.close()
    finally:
        proxy.close()
    assert proxy.cut.is_set()
    answered = [n for n, o in enumerate(out) if isinstance(o, str)]
    assert len(answered) == 2 and all(out[n] == f"uid=p{n:02d},{base_dn}" for n in answered)
    sent = len(answered) + PIPELINE  # 16 in flight whenever the client waits
    assert max(answered) < sent
    lost = [o for o in out if not isinstance(o, str)]
    assert all(isinstance(o, DirectoryError) and o.transient for o in lost)
    unanswered = [n for n, o in enumerate(out) if isinstance(o, DirectoryError) and o.unanswered]
    assert unanswered == [n for n in range(sent) if n not in answered]
    assert all(isinstance(o, DirectoryError) and not o.unanswered for o in out[sent:])
    made = sorted(entries(admin, base_dn))
    assert len(made) >= 6  # the 2 answers passed and the 4 held were for applied adds
    assert max(made) < f"p{sent:02d}"  # nothing unsent was made
    receivers = [t for t in threading.enumerate() if "Receiver" in type(t).__name__]
    for thread in receivers:
        thread.join(timeout=10)
    assert [t for t in receivers if t.is_alive()] == []
