"""A plan or ``syncd check`` takes no run lock: a run that applies may land while it reads.

Found by an attack (2026-11-27): a whole run that found a departed person's mailbox deleted by
hand kept its name for them in ``state.json`` and wrote the snapshot without the entry; a plan
that had loaded the state before that run and read the directory after it saw the name free
and offered it to a newcomer of the same name (``syncd check`` told HR so). A plan whose state
changed while it ran now says nothing and asks to be run again (exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ldap3 import Connection

from connectors import runner
from connectors.cli import exit_code_for
from connectors.runlock import ChangedMeanwhile, RunLock
from syncd.model import ActionKind, State
from tests.conftest import MakeConfig
from tests.helpers import entries, write_roster

ROOT = Path(__file__).resolve().parents[2]


def _whole_run_in_another_process(config: Path, roster: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from connectors import runner; "
        "from connectors.loading import load_config; "
        "o = runner.run(load_config(Path(sys.argv[1])), full=True, rosters=[Path(sys.argv[2])]); "
        "sys.exit(o.exit_code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(config), str(roster)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _departed_and_deleted(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> tuple[Any, Path, Path]:
    """E3 left (revoked), then their mailbox was deleted by hand; newer entries since; a
    roster hiring E9 of the same name, whose uid must not be E3's."""
    cfg = make_config()
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", ["E3,Nguyễn Thị Phượng,skhcn,,,,,"])])
    names = ["Lê Thị Lan", "Phạm Văn Nam", "Trần Thị Mai"]
    others = [f"E{n},{name},skhcn,,,,," for n, name in enumerate(names, 6)]
    roster = write_roster(tmp_path / "b.csv", others)  # E3 gone from the roster
    runner.run(cfg, full=True, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])
    assert entries(admin, base_dn)["phuongnt.skhcn"]["syncdState"] != [State.ACTIVE.value]
    later = ["Võ Văn Kiệt", "Đỗ Thị Hoa", "Bùi Văn Tâm"]
    others += [f"E{n},{name},skhcn,,,,," for n, name in enumerate(later, 20)]
    roster = write_roster(tmp_path / "b.csv", others)
    runner.run(cfg, full=True, rosters=[roster])
    runner.run(cfg, full=True, rosters=[roster])
    assert admin.delete(f"uid=phuongnt.skhcn,{base_dn}"), admin.result
    hired = write_roster(tmp_path / "c.csv", [*others, "E9,Nguyễn Thị Phượng,skhcn,,,,,"])
    return cfg, roster, hired


def _one_person(make_config: MakeConfig, tmp_path: Path) -> tuple[Any, Path]:
    """A directory with one person syncd made, and the roster that has them."""
    cfg = make_config()
    roster = write_roster(tmp_path / "b.csv", ["E6,Lê Thị Lan,skhcn,,,,,"])
    runner.run(cfg, rosters=[roster])
    return cfg, roster


def _created(outcome: runner.RunOutcome) -> list[str]:
    assert outcome.plan is not None
    return [a.uid for a in outcome.plan.actions if a.kind is ActionKind.CREATE]


def test_a_plan_after_the_run_keeps_the_departed_persons_name(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg, roster, hired = _departed_and_deleted(make_config, tmp_path, admin, base_dn)
    _whole_run_in_another_process(tmp_path / "syncd.yaml", roster)
    assert _created(runner.run(cfg, rosters=[hired], dry_run=True)) == ["phuongnt1.skhcn"]


@pytest.mark.parametrize("scoped", [True, False], ids=["one file", "whole"])
def test_a_plan_a_run_lands_in_says_nothing_and_asks_to_be_run_again(
    make_config: MakeConfig,
    tmp_path: Path,
    admin: Connection,
    base_dn: str,
    monkeypatch: pytest.MonkeyPatch,
    scoped: bool,
) -> None:
    cfg, roster, hired = _departed_and_deleted(make_config, tmp_path, admin, base_dn)
    parse = runner._parse_rosters

    def meanwhile(*args: Any, **kwargs: Any) -> Any:  # state loaded; a whole run lands now
        _whole_run_in_another_process(tmp_path / "syncd.yaml", roster)
        monkeypatch.setattr(runner, "_parse_rosters", parse)
        return parse(*args, **kwargs)

    monkeypatch.setattr(runner, "_parse_rosters", meanwhile)
    state = (cfg.paths.state / "state.json").read_bytes()
    with pytest.raises(ChangedMeanwhile, match="run it again") as stopped:
        runner.run(cfg, rosters=[hired], dry_run=True, full=not scoped)
    assert exit_code_for(stopped.value) == 1
    assert (cfg.paths.state / "state.json").read_bytes() != state  # the run's, not the plan's
    assert _created(runner.run(cfg, rosters=[hired], dry_run=True)) == ["phuongnt1.skhcn"]


def test_a_plan_or_check_while_a_run_applies_stops_before_taking_its_journal_for_a_dead_one(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: while a run applied (its journal open, ``state.json`` not yet
    saved), a plan took the journal for a dead run's and planned new passwords for the people
    being created, and HR's check said so, exit 0. A command that takes no lock now asks
    whether a run holds it, and stops (exit 1; its ``--json`` an error document)."""
    from tests.e2e.test_cli_reconcile import syncd

    cfg, roster = _one_person(make_config, tmp_path)
    config = tmp_path / "syncd.yaml"
    state = cfg.paths.state
    before = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}
    with RunLock(state, "syncd reconcile (a test's)"):
        held = (state / "run.lock").read_bytes()
        plan = syncd(config, "plan", "--roster", str(roster))
        as_json = syncd(config, "plan", "--roster", str(roster), "--json")
        check = syncd(config, "check", str(roster), "--json")
        assert (state / "run.lock").read_bytes() == held
    for done in (plan, as_json, check):
        assert done.returncode == 1, done.stdout + done.stderr
    assert "another syncd run is applying now (pid" in plan.stderr, plan.stderr
    assert "syncd reconcile (a test's)" in plan.stderr
    for done, key in ((as_json, "plan"), (check, "check")):
        document = json.loads(done.stdout)
        assert document[key] is None
        assert document["error"]["kind"] == "ChangedMeanwhile" and document["error"]["exit"] == 1
    assert {
        p: p.read_bytes() for p in state.rglob("*") if p.is_file() and p.name != "run.lock"
    } == {p: b for p, b in before.items() if p.name != "run.lock"}


def test_a_plan_a_run_starts_in_and_is_still_applying_at_its_end_stops(
    make_config: MakeConfig,
    tmp_path: Path,
    admin: Connection,
    base_dn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by an attack: a purge run that had archived and deleted an entry and not yet
    saved its tombstone left ``state.json`` as the plan loaded it, and the plan gave the
    purged uid back. A plan that ends while a run holds the lock says nothing."""
    cfg, roster = _one_person(make_config, tmp_path)
    parse = runner._parse_rosters
    lock = RunLock(cfg.paths.state, "syncd reconcile (a test's)")

    def meanwhile(*args: Any, **kwargs: Any) -> Any:  # a run starts, and is still applying
        lock.acquire()
        return parse(*args, **kwargs)

    monkeypatch.setattr(runner, "_parse_rosters", meanwhile)
    try:
        with pytest.raises(ChangedMeanwhile, match="applying now") as stopped:
            runner.run(cfg, rosters=[roster], dry_run=True)
    finally:
        lock.release()
    assert "when that run has ended" in str(stopped.value)
    monkeypatch.setattr(runner, "_parse_rosters", parse)
    assert runner.run(cfg, rosters=[roster], dry_run=True).exit_code == 0


def test_no_run_starts_while_a_plan_reads_the_journals_of_runs(
    make_config: MakeConfig,
    tmp_path: Path,
    admin: Connection,
    base_dn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by an attack: a ``restore`` that took the lock after a plan's first look and
    ended before its last had its open journal taken for a dead run's; the plan planned its
    password again, exit 0 (a restore saves no ``state.json``). The journals are read while
    the plan looks: a run starting then (another process) waits."""
    cfg, roster = _one_person(make_config, tmp_path)
    take_over = runner.take_over
    tried: list[str] = []

    def a_run_starts_now(*args: Any, **kwargs: Any) -> Any:
        code = (
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('taken')\n"
            "except BlockingIOError: print('waits')"
        )
        lock = str(cfg.paths.state / "run.lock")
        done = subprocess.run(
            [sys.executable, "-c", code, lock], capture_output=True, text=True, check=True
        )
        tried.append(done.stdout.strip())
        return take_over(*args, **kwargs)

    monkeypatch.setattr(runner, "take_over", a_run_starts_now)
    assert runner.run(cfg, rosters=[roster], dry_run=True).exit_code == 0
    assert tried == ["waits"]
