"""Debts a dead run leaves (a password with no slip, audit records) are kept until paid,
whatever the scope of the runs in between, and paid once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from ldap3 import Connection

from connectors import runner
from connectors.config import Config
from connectors.outcome import report_text
from connectors.store import StateStore
from devtools.slapd_sandbox import Sandbox
from tests.conftest import MakeConfig
from tests.helpers import entries, write_roster
from tests.integration.test_crash_recovery import SYNCD, audit_of, slips_of


def _reconcile_dying(cfg_path: Path, roster: Path, crash_at: str) -> None:
    env = {**os.environ, "SYNCD_CRASH_AT": crash_at}
    proc = subprocess.run(
        [*SYNCD, "-c", str(cfg_path), "reconcile", "--roster", str(roster)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def test_a_password_debt_survives_a_run_scoped_to_another_org(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    org_a = write_roster(
        tmp_path / "a.csv",
        ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,", "E3,Hà Thị Lan,skhcn,,,,,"],
    )
    org_b = write_roster(tmp_path / "b.csv", ["E9,Nông Văn Dền,syt,,,,,"])
    # plan for A: sokhcn, vanphong.skhcn (org mailboxes), then the three people, all in one
    # batch: the 4th change returned, the batch's slips are never written, so every person
    # created has a password set that nobody knows
    _reconcile_dying(tmp_path / "syncd.yaml", org_a, "directory call:4")
    made = entries(admin, base_dn)
    victims = {u for u, e in made.items() if e.get("employeeNumber") and u not in _slipped(cfg)}
    assert victims and _slipped(cfg) == set()
    assert all(made[v]["syncdState"] == ["active"] for v in victims)  # passwords set

    other = runner.run(cfg, rosters=[org_b])  # scoped to syt: does not read skhcn's accounts
    assert other.exit_code == 0, report_text(other, [org_b])
    assert victims <= set(StateStore(cfg.paths.state).load_debts().passwords)  # still owed
    assert all(any(v in w for w in other.warnings) for v in victims)  # fewer than ten
    assert victims <= other.owed  # as data, for whoever counts them (the simulation)

    paid = runner.run(cfg, rosters=[org_a])
    assert paid.exit_code == 0, report_text(paid, [org_a])
    assert StateStore(cfg.paths.state).load_debts().passwords == {}
    for victim in victims:
        slips = [(uid, pw) for _, uid, pw in slips_of(cfg.paths.outbox) if uid == victim]
        assert len(slips) == 1  # exactly once
        assert Connection(slapd.url, f"uid={victim},{base_dn}", slips[0][1]).bind()
    again = runner.run(cfg, rosters=[org_a])
    assert again.plan is not None and again.plan.actions == ()
    slipped = [uid for _, uid, _ in slips_of(cfg.paths.outbox)]
    assert all(slipped.count(v) == 1 for v in victims)


def _slipped(cfg: Config) -> set[str]:
    return {uid for _, uid, _ in slips_of(cfg.paths.outbox)}


def test_an_interrupted_change_gets_one_audit_record_saying_what_the_directory_shows(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    org_a = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    org_b = write_roster(tmp_path / "b.csv", ["E9,Nông Văn Dền,syt,,,,,"])
    _reconcile_dying(tmp_path / "syncd.yaml", org_a, "directory call:3")  # hungdv.skhcn
    assert entries(admin, base_dn)["hungdv.skhcn"]["syncdState"] == ["active"]
    # the change reached the directory; its batch's records did not reach the log
    log = cfg.paths.audit_log
    assert not log.exists() or [r for r in audit_of(log) if r.get("uid") == "hungdv.skhcn"] == []

    # the next run is scoped elsewhere: it still writes the record, from a whole read
    runner.run(cfg, rosters=[org_b])
    runner.run(cfg, rosters=[org_b])
    records = [r for r in audit_of(cfg.paths.audit_log) if r.get("uid") == "hungdv.skhcn"]
    assert len(records) == 1
    [rec] = records
    assert (rec["action"], rec["result"], rec["found"]) == ("create", "interrupted", "active")
    assert rec["dn"] == f"uid=hungdv.skhcn,{base_dn}" and rec["recovered_by"] != rec["run_id"]
    assert rec["one_time_password_issued"] is False
    assert StateStore(cfg.paths.state).load_debts().audit == {}
    journals = sorted(p.name for p in (cfg.paths.state / "journal").iterdir())
    assert len(journals) == 1 and journals[0].endswith(".recovered")


def test_a_plan_after_a_crash_shows_the_recovery_and_changes_nothing(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config()
    org_a = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    _reconcile_dying(tmp_path / "syncd.yaml", org_a, "directory call:3")
    state_dir = cfg.paths.state
    before = {p: p.read_bytes() for p in state_dir.rglob("*") if p.is_file()}
    plan = runner.run(cfg, rosters=[org_a], dry_run=True)
    assert plan.plan is not None
    # the three creates of the batch returned, none of their slips was written
    assert sorted((a.kind.value, a.uid) for a in plan.plan.actions) == [
        ("reset-password", "hungdv.skhcn"),
        ("reset-password", "sokhcn"),
        ("reset-password", "vanphong.skhcn"),
    ]
    after = {
        p: p.read_bytes()
        for p in state_dir.rglob("*")
        if p.is_file() and p.parent.name != "reports"
    }
    assert after == before  # journal not settled, no debts saved, no audit record written
    assert [p.suffix for p in (state_dir / "journal").iterdir()] == [".jsonl"]
