"""How a province lives with syncd, against a real slapd: each failure of the first release.

Every test crosses the seam for real: rosters go through the runner, people bind and change
passwords as themselves, and the directory is read back as the admin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ldap3 import Connection, Server

from connectors import runner
from connectors.config import Config
from connectors.inbox import InboxWatcher
from connectors.outcome import RunOutcome, report_text
from connectors.snapshots import SnapshotRegistry
from syncd.model import ActionKind, Field, State
from tests.conftest import MakeConfig
from tests.helpers import entries, write_roster

REAL_NOW = datetime.now(UTC)
ROW_E9 = "E9,Trần Văn Bình,skhcn,,,,,"


def _others(org: str, first: int) -> list[str]:
    """Three roster rows of people with names of their own, numbered from ``first``: made
    after what a test deletes, so the snapshot's newest entries stay (docs/architecture.md:
    those gone mean a whole read)."""
    names = ["Lê Thị Lan", "Phạm Văn Nam", "Trần Thị Mai"]
    return [f"E{n},{name},{org},,,,," for n, name in enumerate(names, first)]


def _hand_made(admin: Connection, base_dn: str, uid: str, cn: str) -> str:
    """A mailbox made by hand before syncd: no employee number. Its DN."""
    dn = f"uid={uid},{base_dn}"
    attrs = {"uid": uid, "cn": cn, "sn": cn.split()[0], "ou": uid.rpartition(".")[2]}
    assert admin.add(dn, ["inetOrgPerson"], {**attrs, "mail": f"{uid}@test.gov.vn"})
    return dn


def _password(outcome: RunOutcome, uid: str) -> str:
    assert outcome.result is not None
    [slip] = [s for s in outcome.result.slips if s.uid == uid]
    return slip.password


def _bind(url: str, dn: str, password: str) -> bool:
    conn = Connection(Server(url), dn, password)
    ok = bool(conn.bind())
    conn.unbind()
    return ok


def test_a_person_who_logs_in_is_never_locked_for_inactivity(
    make_config: MakeConfig, tmp_path: Path, base_dn: str
) -> None:
    """Item 1: the login attributes reach the clocks. Created 200 days ago (by syncd's clock),
    logged in today (a real bind): no 90-day lock (caobang-2025 Đ8.2a)."""
    cfg = make_config(extra="safety: {max_lock_share: 1}\n")
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    first = runner.run(cfg, rosters=[roster], now=REAL_NOW - timedelta(days=200))
    dn = f"uid=hungdv.skhcn,{base_dn}"
    assert _bind(cfg.directory.url, dn, _password(first, "hungdv.skhcn"))
    today = runner.run(cfg, rosters=[roster], now=REAL_NOW + timedelta(minutes=5), dry_run=True)
    assert today.plan is not None
    assert [a for a in today.plan.actions if a.uid == "hungdv.skhcn"] == []
    # and the login's clock runs: 91 days after it, the lock is due
    later = runner.run(cfg, rosters=[roster], now=REAL_NOW + timedelta(days=91), dry_run=True)
    assert later.plan is not None
    [lock] = [a for a in later.plan.actions if a.uid == "hungdv.skhcn"]
    assert lock.kind is ActionKind.LOCK and "last login" in lock.reason


def test_a_security_lock_survives_every_re_apply_of_a_roster_with_a_restore_row(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Item 2: a khôi phục row is carried out once; the nightly re-apply of the same roster,
    or an edited copy of it, never lifts a later compromised lock."""
    cfg = make_config()
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])])
    runner.operator_action(cfg, "hungdv.skhcn", ActionKind.LOCK, "compromised", "caobang Đ8.2b")
    restore = write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,khôi phục"])
    restored = runner.run(cfg, rosters=[restore])
    assert [a.kind for a in restored.plan.actions] == [ActionKind.RESTORE]  # type: ignore[union-attr]
    runner.operator_action(cfg, "hungdv.skhcn", ActionKind.LOCK, "compromised", "caobang Đ8.2b")
    again = runner.run(cfg, rosters=[restore])
    edited = write_roster(tmp_path / "c.csv", ["E1,Đàm Văn Hùng,skhcn,,Chuyên viên,,,khôi phục"])
    copy = runner.run(cfg, rosters=[edited])
    nightly = runner.run(cfg, full=True, rosters=[edited])
    for outcome in (again, copy, nightly):
        assert outcome.plan is not None
        assert not any(a.kind is ActionKind.RESTORE for a in outcome.plan.actions)
    assert entries(admin, base_dn)["hungdv.skhcn"]["syncdState"] == [State.LOCKED.value]


def test_a_scoped_run_never_gives_a_uid_held_in_another_organisation(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Item 4: caobang-2011 uids carry no organisation; with accounts under ou=<org>, a file
    for syt must see datnv held under skhcn."""
    cfg = make_config(profile="caobang-2011", layout="per-org")
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", ["E1,Nông Văn Đạt,skhcn,,,,,"])])
    second = runner.run(
        cfg, rosters=[write_roster(tmp_path / "b.csv", ["E2,Nông Văn Đạt,syt,,,,,"])]
    )
    assert second.exit_code == 0, report_text(second, [])
    admin.search(base_dn, "(employeeNumber=*)", attributes=["uid", "mail", "employeeNumber"])
    got = {str(e["attributes"]["employeeNumber"][0]): e["attributes"] for e in admin.response}
    assert got["E1"]["uid"] == ["datnv"] and got["E2"]["uid"] == ["datnv2"]
    mails = [m for e in got.values() for m in e["mail"]]
    assert len(mails) == len(set(mails))


def test_a_transfer_whose_source_file_arrives_first_ends_with_one_active_mailbox(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Item 5: skhcn says 'chuyển công tác' (scoped revoke), then syt lists the person: the
    move and the restore address the same entry, the restore follows the rename."""
    cfg = make_config()
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])])
    out = write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,skhcn,,,,Chuyển công tác,"])
    left = runner.run(cfg, rosters=[out])
    assert [a.kind for a in left.plan.actions] == [ActionKind.REVOKE]  # type: ignore[union-attr]
    arrived = runner.run(
        cfg, rosters=[write_roster(tmp_path / "c.csv", ["E1,Đàm Văn Hùng,syt,,,,,"])]
    )
    assert arrived.exit_code == 0, report_text(arrived, [])
    got = entries(admin, base_dn)
    assert "hungdv.skhcn" not in got and got["hungdv.syt"]["syncdState"] == ["active"]
    assert "hungdv.skhcn@test.gov.vn" in got["hungdv.syt"]["mail"]
    dn = f"uid=hungdv.syt,{base_dn}"
    assert _bind(cfg.directory.url, dn, _password(arrived, "hungdv.syt"))
    # the source organisation's roster, re-applied at night, does not revoke it again
    nightly = runner.run(cfg, full=True, rosters=[out])
    assert not any(a.kind is ActionKind.REVOKE for a in nightly.plan.actions)  # type: ignore[union-attr]


def test_a_restore_row_seen_while_the_mailbox_was_active_never_lifts_a_later_lock(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A request already true when first seen is spent, even by a run with nothing to do."""
    cfg = make_config()
    row = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,khôi phục"])
    runner.run(cfg, rosters=[row])  # creates the mailbox
    quiet = runner.run(cfg, rosters=[row])  # nothing to do; the restore is already true
    assert quiet.plan is not None and quiet.plan.actions == ()
    runner.operator_action(cfg, "hungdv.skhcn", ActionKind.LOCK, "spam", "caobang Đ8.2b")
    again = runner.run(cfg, rosters=[row])
    assert again.plan is not None and again.plan.actions == ()
    assert entries(admin, base_dn)["hungdv.skhcn"]["syncdState"] == [State.LOCKED.value]


def _nightly(cfg: Config) -> RunOutcome:
    """The daemon's full run: the latest accepted roster of every organisation."""
    latest = SnapshotRegistry(cfg.paths.state).latest()
    return runner.run(cfg, rosters=sorted(latest), restrict=latest, full=True)


def test_an_operators_roster_is_the_latest_word_for_the_nightly_run(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: an operator's reconcile --roster was invisible to the nightly run,
    which re-applied the older inbox file: its restore row came back (lifting a compromised
    lock), people the operator added were revoked."""
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    dropped = write_roster(
        cfg.paths.inbox / "d2.csv",
        ["E1,Đàm Văn Hùng,skhcn,,,,,", "E3,Lê Văn Cường,skhcn,,,,,khôi phục"],
    )
    where, _ = InboxWatcher(cfg).process(dropped)
    assert where == "processed"
    runner.operator_action(cfg, "cuonglv.skhcn", ActionKind.LOCK, "compromised", "Đ8.2b")
    newer = write_roster(
        tmp_path / "a2.csv",
        ["E1,Đàm Văn Hùng,skhcn,,,,,", "E3,Lê Văn Cường,skhcn,,,,,", "E6,Đinh Văn Phúc,skhcn,,,,,"],
    )
    assert runner.run(cfg, rosters=[newer]).exit_code == 0
    newer.unlink()  # the operator's file may go: syncd kept its own copy
    night = _nightly(cfg)
    assert night.plan is not None
    people = [a for a in night.plan.actions if a.kind is not ActionKind.CREATE_ORG_MAILBOX]
    assert people == []
    got = entries(admin, base_dn)
    assert got["cuonglv.skhcn"]["syncdState"] == [State.LOCKED.value]
    assert got["phucdv.skhcn"]["syncdState"] == [State.ACTIVE.value]


def test_the_same_roster_sent_again_after_another_one_is_applied_again(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by the simulation: a person transferred out of stc and back; stc's roster of the
    return had the same bytes as one filed months before and was dropped as a duplicate."""
    cfg = make_config(profile="caobang-2011")
    inbox = cfg.paths.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    watcher = InboxWatcher(cfg)
    rows = ["E1,Đặng Hoàng Nam,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
    assert watcher.process(write_roster(inbox / "a.csv", rows))[0] == "processed"
    assert watcher.process(write_roster(inbox / "a-again.csv", rows))[0] == "duplicate"
    # transferred to syt, then out of syt
    assert watcher.process(write_roster(inbox / "b.csv", ["E1,Đặng Hoàng Nam,syt,,,,,"]))[0] == (
        "processed"
    )
    gone = ["E1,Đặng Hoàng Nam,syt,,,,Chuyển công tác,"]
    assert watcher.process(write_roster(inbox / "c.csv", gone))[0] == "processed"
    assert entries(admin, base_dn)["namdh"]["syncdState"] == [State.REVOKED.value]
    # back at skhcn: HR sends the very same file as the first one
    assert watcher.process(write_roster(inbox / "d.csv", rows))[0] == "processed"
    got = entries(admin, base_dn)["namdh"]
    assert got["syncdState"] == [State.ACTIVE.value] and got["ou"] == ["skhcn"]


def test_a_security_lock_over_an_inactivity_lock_keeps_the_lock_date(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: a compromised mailbox already locked for inactivity could not be
    marked so, and a later restore request would lift what is really a security lock."""
    cfg = make_config(extra="safety: {max_lock_share: 1}\n")
    roster = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    runner.run(cfg, rosters=[roster], now=REAL_NOW - timedelta(days=200))
    runner.run(cfg, sweep=True, now=REAL_NOW - timedelta(days=100))
    locked = entries(admin, base_dn)["hungdv.skhcn"]
    assert locked["syncdState"] == [State.LOCKED.value]
    marked = runner.operator_action(
        cfg, "hungdv.skhcn", ActionKind.LOCK, "compromised", "caobang-2025 Đ8.2b"
    )
    assert marked.exit_code == 0
    after = entries(admin, base_dn)["hungdv.skhcn"]
    assert after["syncdStateSince"] == locked["syncdStateSince"]
    assert after["syncdStateReason"][0].startswith("manual lock: compromised")


def _people(outcome: RunOutcome) -> list[ActionKind]:
    """The kinds of a run's actions on people (organisation mailboxes aside)."""
    assert outcome.plan is not None
    return [a.kind for a in outcome.plan.actions if a.kind is not ActionKind.CREATE_ORG_MAILBOX]


def test_an_old_roster_of_the_former_organisation_never_moves_a_transferred_person_back(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found in review: HR of the former organisation re-sent its old file (still listing the
    person as working there) after the destination's; each such file moved the mailbox back,
    the next destination file moved it again. The newer listing wins in any arrival order;
    a real move back (the former organisation drops the person, then lists them again) still
    happens."""
    cfg = make_config()
    old = write_roster(
        tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
    )
    runner.run(cfg, rosters=[old], now=REAL_NOW - timedelta(days=30))
    moved = runner.run(
        cfg,
        rosters=[write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,syt,,,,,"])],
        now=REAL_NOW - timedelta(days=20),
    )
    assert _people(moved) == [ActionKind.MOVE]
    again = runner.run(cfg, rosters=[old], now=REAL_NOW - timedelta(days=10))
    assert _people(again) == []
    assert again.plan is not None and any("stays in syt" in n for n in again.plan.notices)
    night = _nightly(cfg)  # both files are each organisation's latest: syt's listing is newer
    assert _people(night) == []
    got = entries(admin, base_dn)
    assert "hungdv.skhcn" not in got and got["hungdv.syt"]["syncdState"] == ["active"]
    # skhcn updates its file (E1 gone: not revoked, the mailbox is syt's), later lists E1 again
    runner.run(cfg, rosters=[write_roster(tmp_path / "c.csv", ["E2,Lê Văn Tám,skhcn,,,,,"])])
    assert entries(admin, base_dn)["hungdv.syt"]["syncdState"] == ["active"]
    back = runner.run(cfg, rosters=[old])
    assert _people(back) == [ActionKind.MOVE]
    assert "hungdv.skhcn" in entries(admin, base_dn)


def test_a_person_the_destination_listed_first_is_moved_not_revoked_by_the_source_dropping_them(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by the five-year simulation: a compromised mailbox was revoked by its transfer
    out; syt listed the person, which (by design) does not lift a security lock; the operator
    restored it — in skhcn — and skhcn's next roster, which no longer lists them, revoked it
    again. syt's listing is newer than skhcn's: the drop is no departure, and the nightly run
    moves the mailbox."""
    cfg = make_config()
    e2 = "E2,Lê Văn Tám,skhcn,,,,,"
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", e2])])
    runner.operator_action(cfg, "hungdv.skhcn", ActionKind.LOCK, "compromised", "Đ8.2b")
    out = ["E1,Đàm Văn Hùng,skhcn,,,,Chuyển công tác,", e2]
    assert _people(runner.run(cfg, rosters=[write_roster(tmp_path / "b.csv", out)])) == [
        ActionKind.REVOKE
    ]
    arrived = runner.run(
        cfg, rosters=[write_roster(tmp_path / "c.csv", ["E1,Đàm Văn Hùng,syt,,,,,"])]
    )
    assert _people(arrived) == []  # a transfer does not lift a security lock (by design)
    runner.operator_action(cfg, "hungdv.skhcn", ActionKind.RESTORE, "ticket closed", "Đ8.2b")
    dropped = runner.run(cfg, rosters=[write_roster(tmp_path / "d.csv", [e2])])
    assert ActionKind.REVOKE not in _people(dropped)
    assert dropped.plan is not None and any("not revoked" in n for n in dropped.plan.notices)
    night = _nightly(cfg)
    assert ActionKind.MOVE in _people(night)
    assert entries(admin, base_dn)["hungdv.syt"]["syncdState"] == ["active"]


def test_a_mailbox_deleted_by_hand_is_made_again_under_its_own_name_by_a_scoped_run(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A person still on the roster whose mailbox an operator deleted by hand: one
    organisation's file (a scoped run, its namespace from the snapshot of the last whole read)
    makes it again as a whole run would, under the person's own uid. It gave ``hienhd1.skhcn``
    ("hienhd.skhcn is taken"): the snapshot still held the deleted entry's name."""
    cfg = make_config()
    people = ["E2,Hoàng Đức Hiền,skhcn,,,,,", "E1,Đàm Văn Hùng,skhcn,,,,,"]
    roster = write_roster(tmp_path / "a.csv", people)
    runner.run(cfg, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])  # the nightly's whole read: the snapshot
    # others are made after (the snapshot's newest entries are not the deleted one's: those
    # gone would mean a whole read, docs/architecture.md)
    later = _others("skhcn", 3)
    roster = write_roster(tmp_path / "b.csv", people + later)
    runner.run(cfg, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])
    assert admin.delete(f"uid=hienhd.skhcn,{base_dn}"), admin.result
    whole = runner.run(cfg, full=True, rosters=[roster], dry_run=True)
    scoped = runner.run(cfg, rosters=[roster])
    assert scoped.exit_code == 0, report_text(scoped, [])
    for outcome in (whole, scoped):
        assert outcome.plan is not None
        assert [(a.kind, a.uid) for a in outcome.plan.actions] == [
            (ActionKind.CREATE, "hienhd.skhcn")
        ]
    got = entries(admin, base_dn)
    assert got["hienhd.skhcn"]["employeeNumber"] == ["E2"] and "hienhd1.skhcn" not in got


def test_the_name_of_a_mailbox_from_before_syncd_deleted_by_hand_goes_to_nobody_else(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A mailbox made by hand before syncd (no employee number: whose it was is unknown),
    deleted by hand since the last whole read: its name goes to nobody, as a tombstone's,
    and a scoped run says so as a whole one does. Before: a scoped run gave ``sonlv1.tgg``
    because the snapshot still held ``sonlv.tgg`` ("taken"), a whole run ``sonlv.tgg``
    itself, to whoever came next by that name."""
    cfg = make_config()
    dn = _hand_made(admin, base_dn, "sonlv.tgg", "Lê Văn Sơn")
    people = _others("tgg", 1)
    roster = write_roster(tmp_path / "a.csv", people)
    runner.run(cfg, rosters=[roster])  # made after the hand-made mailbox: newer entries
    runner.run(cfg, full=True, rosters=[roster])  # the nightly's whole read: the snapshot
    assert admin.delete(dn), admin.result
    roster = write_roster(tmp_path / "b.csv", [*people, "E9,Lê Văn Sơn,tgg,,,,,"])
    whole = runner.run(cfg, full=True, rosters=[roster], dry_run=True)
    scoped = runner.run(cfg, rosters=[roster])
    assert scoped.exit_code == 0, report_text(scoped, [])
    for outcome in (whole, scoped):
        assert outcome.plan is not None
        [create] = outcome.plan.actions
        assert (create.kind, create.uid) == (ActionKind.CREATE, "sonlv1.tgg"), create
        assert "sonlv.tgg is held before by another person" in create.reason
    assert entries(admin, base_dn)["sonlv1.tgg"]["employeeNumber"] == ["E9"]
    assert any("kept for the people who held them: sonlv.tgg" in w for w in scoped.warnings)
    state = json.loads((cfg.paths.state / "state.json").read_text(encoding="utf-8"))
    assert state["former"]["sonlv.tgg"] == ""
    audit = [json.loads(x) for x in cfg.paths.audit_log.read_text("utf-8").splitlines()]
    [kept] = [r for r in audit if r["action"] == "names-kept"]  # once, not at every run
    assert kept["dn"].lower() == dn.lower() and "nobody (holder unknown)" in kept["reason"]
    # kept in state.json: the nightly's whole read no longer sees the entry, and still
    nightly = runner.run(cfg, full=True, rosters=[roster])
    assert nightly.plan is not None and nightly.plan.actions == ()


def test_two_mailboxes_deleted_by_hand_go_back_each_to_its_own_person_whatever_the_order(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Two people of one name whose mailboxes were deleted by hand, listed the other way
    round: each gets their own address back. Before, the first listed took the first free
    name, and the two swapped addresses (found by an attack): mail for one went to the
    other."""
    cfg = make_config()
    same = ["E2,Hoàng Đức Hiền,skhcn,,,,,", "E5,Hoàng Đức Hiền,skhcn,,,,,"]
    later = _others("skhcn", 6)
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", same)])
    roster = write_roster(tmp_path / "b.csv", same + later)
    runner.run(cfg, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])  # the nightly's whole read: the snapshot
    made = {
        u: e["employeeNumber"][0]
        for u, e in entries(admin, base_dn).items()
        if e.get("employeeNumber")
    }
    assert (made["hienhd.skhcn"], made["hienhd1.skhcn"]) == ("E2", "E5")
    for uid in ("hienhd.skhcn", "hienhd1.skhcn"):
        assert admin.delete(f"uid={uid},{base_dn}"), admin.result
    swapped = write_roster(tmp_path / "c.csv", [same[1], same[0], *later])
    whole = runner.run(cfg, full=True, rosters=[swapped], dry_run=True)
    scoped = runner.run(cfg, rosters=[swapped])
    assert scoped.exit_code == 0, report_text(scoped, [])
    for outcome in (whole, scoped):
        assert outcome.plan is not None
        got = {a.attrs[Field.EMPLOYEE_NUMBER][0]: a.uid for a in outcome.plan.actions}
        assert got == {"E2": "hienhd.skhcn", "E5": "hienhd1.skhcn"}
    made = {
        u: e["employeeNumber"][0]
        for u, e in entries(admin, base_dn).items()
        if e.get("employeeNumber")
    }
    assert (made["hienhd.skhcn"], made["hienhd1.skhcn"]) == ("E2", "E5")


def test_a_departed_persons_address_deleted_by_hand_never_goes_to_a_new_namesake(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A person who left (revoked), whose mailbox an operator then deleted by hand: a new
    person of the same name gets a name of their own, in a scoped run as in a whole one, not
    the departed person's address (mail still sent to it would reach a stranger)."""
    cfg = make_config()
    left = "E3,Nguyễn Thị Phượng,skhcn,,,,,"
    others = _others("skhcn", 6)
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", [left])])
    roster = write_roster(tmp_path / "b.csv", others)  # E3 is gone from the roster
    runner.run(cfg, full=True, rosters=[roster])
    assert entries(admin, base_dn)["phuongnt.skhcn"]["syncdState"] != [State.ACTIVE.value]
    runner.run(cfg, full=True, rosters=[roster])
    assert admin.delete(f"uid=phuongnt.skhcn,{base_dn}"), admin.result
    hired = write_roster(tmp_path / "c.csv", [*others, "E9,Nguyễn Thị Phượng,skhcn,,,,,"])
    whole = runner.run(cfg, full=True, rosters=[hired], dry_run=True)
    scoped = runner.run(cfg, rosters=[hired])
    for outcome in (whole, scoped):
        assert outcome.plan is not None
        [create] = [a for a in outcome.plan.actions if a.kind is ActionKind.CREATE]
        assert create.uid == "phuongnt1.skhcn", create
    # the person who left comes back: their own address again
    back = write_roster(tmp_path / "d.csv", [*others, left])
    again = runner.run(cfg, full=True, rosters=[back], dry_run=True)
    assert again.plan is not None
    assert [(a.kind, a.uid) for a in again.plan.actions if a.kind is ActionKind.CREATE] == [
        (ActionKind.CREATE, "phuongnt.skhcn")
    ]


def test_a_mailbox_made_by_a_daytime_run_and_deleted_by_hand_goes_to_nobody_else(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A mailbox an inbox (scoped) run made, deleted by hand the same day, before any whole
    read held it: a namesake hired next gets a name of their own, in the next scoped run as
    in the nightly one. Found by an attack: the entry was in no snapshot, and its name went
    to the namesake; the person it belonged to was then made again under a number."""
    cfg = make_config()
    others = _others("skhcn", 1)
    roster = write_roster(tmp_path / "a.csv", others)
    runner.run(cfg, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])  # the nightly's whole read: the snapshot
    day = runner.run(cfg, rosters=[write_roster(tmp_path / "b.csv", [*others, ROW_E9])])
    assert [a.uid for a in day.plan.actions] == ["binhtv.skhcn"]  # type: ignore[union-attr]
    assert admin.delete(f"uid=binhtv.skhcn,{base_dn}"), admin.result
    hired = write_roster(tmp_path / "c.csv", [*others, "E10,Trần Văn Bình,skhcn,,,,,"])
    scoped = runner.run(cfg, rosters=[hired], dry_run=True)
    whole = runner.run(cfg, full=True, rosters=[hired], dry_run=True)
    for outcome in (scoped, whole):
        assert outcome.plan is not None
        made = [a.uid for a in outcome.plan.actions if a.kind is ActionKind.CREATE]
        assert made == ["binhtv1.skhcn"], outcome.plan.actions
    # the person it belonged to, back on the roster: their own name
    back = runner.run(cfg, rosters=[write_roster(tmp_path / "d.csv", [*others, ROW_E9])])
    assert [a.uid for a in back.plan.actions] == ["binhtv.skhcn"]  # type: ignore[union-attr]


def test_a_mailbox_from_before_syncd_linked_then_deleted_by_hand_goes_back_to_its_person(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A pre-syncd mailbox (no employee number) linked to its person by a daytime run, then
    deleted by hand: the person gets it back. It was recorded as nobody's (the snapshot held
    it without an employee number), and the person was made again as ``hungdv1.skhcn``."""
    cfg = make_config()
    dn = _hand_made(admin, base_dn, "hungdv.skhcn", "Đàm Văn Hùng")
    others = _others("skhcn", 2)
    roster = write_roster(tmp_path / "a.csv", others)
    runner.run(cfg, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])  # the snapshot: the mailbox, unkeyed
    linked = runner.run(
        cfg, rosters=[write_roster(tmp_path / "b.csv", [*others, "E1,Đàm Văn Hùng,skhcn,,,,,"])]
    )
    assert [a.kind for a in linked.plan.actions] == [ActionKind.LINK]  # type: ignore[union-attr]
    assert admin.delete(dn), admin.result
    nightly = runner.run(cfg, full=True, rosters=[write_roster(tmp_path / "c.csv", others)])
    assert nightly.exit_code == 0, report_text(nightly, [])
    again = runner.run(
        cfg, rosters=[write_roster(tmp_path / "d.csv", [*others, "E1,Đàm Văn Hùng,skhcn,,,,,"])]
    )
    assert [(a.kind, a.uid) for a in again.plan.actions] == [  # type: ignore[union-attr]
        (ActionKind.CREATE, "hungdv.skhcn")
    ]


def test_a_transfer_is_not_reported_as_a_mailbox_gone_by_hand(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """The old DN of a mailbox syncd moved vanishes from the snapshot: its names are its
    person's, and the nightly report does not call it deleted or hidden by hand."""
    cfg = make_config()
    roster = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    runner.run(cfg, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])
    moved = write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,syt,,,,,"])
    runner.run(cfg, rosters=[moved])
    nightly = runner.run(cfg, full=True, rosters=[moved])
    assert not any("gone from the directory" in w for w in nightly.warnings), nightly.warnings
    state = json.loads((cfg.paths.state / "state.json").read_text(encoding="utf-8"))
    assert state["former"].get("hungdv.skhcn") in (None, "E1")
    # nor does the audit log: a record of the names kept says where the person is now
    lines = cfg.paths.audit_log.read_text(encoding="utf-8").splitlines()
    kept = [r for r in map(json.loads, lines) if r["action"] == "names-kept"]
    assert kept and all("by hand?" not in r["reason"] for r in kept), kept
    assert all("hungdv.syt" in r["reason"] for r in kept), kept


def test_a_transfer_is_not_reported_as_gone_by_hand_by_another_organisations_file(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """The next run after the move is another organisation's file: the mover is outside its
    scope, but in the namespace it reads (found by an attack on the demo: "deleted or hidden
    by hand?" in the run report and the audit log, and a record with no organisation that
    made the yearly report say "1 account(s) carry no organisation")."""
    cfg = make_config()
    roster = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    runner.run(cfg, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])
    runner.run(cfg, rosters=[write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,syt,,,,,"])])
    other = runner.run(cfg, rosters=[write_roster(tmp_path / "c.csv", ["T1,Lò Văn Tú,tgg,,,,,"])])
    assert other.exit_code == 0, report_text(other, [])
    assert not any("gone from the directory" in w for w in other.warnings), other.warnings
    lines = cfg.paths.audit_log.read_text(encoding="utf-8").splitlines()
    kept = [r for r in map(json.loads, lines) if r["action"] == "names-kept"]
    assert all("by hand?" not in r["reason"] for r in kept), kept


def test_a_mailbox_made_by_a_run_killed_mid_apply_then_deleted_goes_to_nobody_else(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A run killed (SIGKILL) right after its first add: the mailbox it made, deleted by
    hand, is still known to have been its person's. Found by an attack: the made entries were
    recorded only after the apply ended, so a killed run recorded none, and a namesake got the
    name (the dead run's password debt then paid with the namesake's slip)."""
    cfg = make_config()
    others = _others("skhcn", 1)
    roster = write_roster(tmp_path / "a.csv", others)
    runner.run(cfg, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])  # the nightly's whole read: the snapshot
    day = write_roster(tmp_path / "b.csv", [*others, ROW_E9])
    env = {**os.environ, "SYNCD_CRASH_AT": "directory call:1"}
    killed = subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(tmp_path / "syncd.yaml"),
         "reconcile", "--roster", str(day)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert "binhtv.skhcn" in entries(admin, base_dn)  # the add went through
    assert admin.delete(f"uid=binhtv.skhcn,{base_dn}"), admin.result
    hired = write_roster(tmp_path / "c.csv", [*others, "E10,Trần Văn Bình,skhcn,,,,,"])
    for full in (False, True):
        outcome = runner.run(cfg, full=full, rosters=[hired], dry_run=True)
        assert outcome.plan is not None
        made = [a.uid for a in outcome.plan.actions if a.kind is ActionKind.CREATE]
        assert made == ["binhtv1.skhcn"], (full, outcome.plan.actions)
