"""What runs leave behind is not kept for ever (retention.months), and the nightly sweep never
deletes what is still needed. Found by an attack on the daemon's long life: 717 runs left
1,372 files in the state folder, one report per run (~730 a year) and HR results naming people,
never deleted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook

from connectors import runner
from connectors.config import Config
from connectors.daemon import Daemon
from connectors.retention import _prune_month_folders, find_expired
from connectors.snapshots import SnapshotRegistry
from tests.conftest import MakeConfig
from tests.helpers import HEADER, write_roster

SIX_MONTHS = "retention:\n  months: 6\n"


def _age(paths: list[Path], days: int) -> None:
    when = time.time() - days * 86_400
    for p in paths:
        os.utime(p, (when, when), follow_symlinks=False)


def _everything(cfg: Config) -> list[Path]:
    base = cfg.paths.inbox.parent
    folders = (cfg.paths.state / "reports", cfg.paths.state / "rosters")
    folders += (base / "processed", base / "rejected")
    return sorted(p for f in folders if f.is_dir() for p in f.rglob("*") if p.is_file())


def _drop(daemon: Daemon, cfg: Config, name: str, rows: list[str]) -> None:
    write_roster(cfg.paths.inbox / name, rows)
    daemon.inbox_job()
    assert daemon.status.get("last_error") is None, daemon.status


def _records(cfg: Config, action: str) -> list[dict[str, object]]:
    lines = cfg.paths.audit_log.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r.get("action") == action]


def test_the_nightly_sweep_deletes_what_runs_left_past_retention_and_keeps_what_is_needed(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config(extra=SIX_MONTHS)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    _drop(daemon, cfg, "skhcn-cu.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    _drop(daemon, cfg, "syt.csv", ["Y1,Ngô Thị Cúc,syt,,,,,"])
    _drop(daemon, cfg, "hong.csv", ["E9,,skhcn,,,,,"])  # no name: rejected
    processed = cfg.paths.inbox.parent / "processed"
    rejected = cfg.paths.inbox.parent / "rejected"
    assert (rejected / "hong.csv.report.txt").exists()
    registry = SnapshotRegistry(cfg.paths.state)
    syt_copy = next(f for f in registry.recorded() if f.name.endswith("-syt.csv"))
    old = _everything(cfg)
    _age(old, 7 * 31)  # all of it seven months old
    # a roster made long ago on HR's desktop and dropped today is today's
    made_long_ago = write_roster(tmp_path / "skhcn-moi.csv", ["E1,Đàm Văn Hùng,skhcn,,Kế toán,,,"])
    _age([made_long_ago], 3 * 365)
    os.rename(made_long_ago, cfg.paths.inbox / "skhcn-moi.csv")
    daemon.inbox_job()
    new = [p for p in _everything(cfg) if p not in old]
    assert any(p.name == "skhcn-moi.csv" for p in new)

    daemon.reconcile_job(sweep=True)
    assert daemon.status.get("last_error") is None, daemon.status

    left = _everything(cfg)
    # the latest accepted roster of syt is seven months old and stays: the nightly run needs it
    assert syt_copy in left
    assert not (set(old) - {syt_copy}) & set(left), sorted(set(old) & set(left))
    assert set(new) <= set(left)
    assert not list(rejected.iterdir())
    month = processed / datetime.now(UTC).strftime("%Y/%m")
    assert sorted(p.name for p in month.iterdir()) == sorted(
        f"skhcn-moi.csv{s}" for s in ("", ".report.txt", ".ketqua.xlsx", ".ketqua.html")
    )
    # one audit record per kind, written before the files went, naming them
    records = _records(cfg, "delete-kept")
    named = {Path(str(r["folder"]), f) for r in records for f in r["files"]}  # type: ignore[attr-defined]
    assert named == set(old) - {syt_copy}
    assert all("6 months" in str(r["reason"]) for r in records)
    assert {r["what"] for r in records} == {
        "run reports and operator copies of HR results",
        "copies of applied rosters no longer the latest",
        "filed rosters and their results",
        "rejected files and their reports",
    }

    # the nightly full run still re-applies syt's roster, and a second sweep has nothing to do
    daemon.reconcile_job()
    assert daemon.status.get("last_error") is None, daemon.status
    assert set(registry.latest()) == {syt_copy, next(iter(registry.latest().keys() - {syt_copy}))}
    assert {o for orgs in registry.latest().values() for o in orgs} == {"skhcn", "syt"}
    daemon.reconcile_job(sweep=True)
    assert len(_records(cfg, "delete-kept")) == len(records)


def test_a_roster_applied_again_is_kept_from_the_day_it_was_applied_again(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """The same bytes sent again are the same copy in state/rosters: its age starts again, so
    a copy applied last week is kept for its full retention after a newer file replaces it,
    however long ago it was first written."""
    cfg = make_config(extra=SIX_MONTHS)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,,"]
    _drop(daemon, cfg, "skhcn-1.csv", rows)
    copy = next(iter(SnapshotRegistry(cfg.paths.state).recorded()))
    _drop(daemon, cfg, "skhcn-2.csv", ["E1,Đàm Văn Hùng,skhcn,,Kế toán,,,"])
    assert not copy.samefile(next(iter(SnapshotRegistry(cfg.paths.state).recorded())))
    _age([copy], 7 * 31)
    again = write_roster(tmp_path / "skhcn-1.csv", rows)  # the first file again, by hand
    assert runner.run(cfg, rosters=[again]).exit_code == 0
    assert copy in SnapshotRegistry(cfg.paths.state).recorded()
    _drop(daemon, cfg, "skhcn-4.csv", ["E1,Đàm Văn Hùng,skhcn,,Thủ quỹ,,,"])
    assert copy not in SnapshotRegistry(cfg.paths.state).recorded()
    daemon.reconcile_job(sweep=True)
    assert copy.exists()


def test_kept_for_ever_when_retention_months_is_0(make_config: MakeConfig, tmp_path: Path) -> None:
    cfg = make_config(extra="retention:\n  months: 0\n")
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    _drop(daemon, cfg, "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    everything = _everything(cfg)
    _age(everything, 20 * 365)
    daemon.reconcile_job(sweep=True)
    assert set(everything) <= set(_everything(cfg))
    assert not _records(cfg, "delete-kept")


def test_empty_month_folders_go_but_never_this_or_last_months(tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    for month in ("2025/12", "2026/09", "2026/10", "2026/11", "2027/01"):
        (processed / month).mkdir(parents=True)
    (processed / "2026/09/kept.csv").write_text("x")
    _prune_month_folders(processed, datetime(2026, 11, 27, tzinfo=UTC) + timedelta(hours=1))
    assert sorted(str(p.relative_to(processed)) for p in processed.rglob("*")) == [
        "2026",
        "2026/09",
        "2026/09/kept.csv",
        "2026/10",
        "2026/11",
        "2027",
        "2027/01",
    ]


def test_a_folder_hr_dropped_is_never_entered_and_goes_whole_without_following_links(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: a folder dropped in inbox/ was filed under rejected/ as it is (by
    syncd before the inbox left folders where HR puts them), still HR's to write. The sweep
    walked into it, and HR swapped its subfolders for links to state/ while it deleted:
    snapshots.json, a latest roster copy and the audit log went. Now the folder is one entry,
    dated by its report, deleted whole by descriptors; what it holds (a link to state/, an
    undecodable name, which stopped every sweep) is never listed."""
    cfg = make_config(extra=SIX_MONTHS)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    _drop(daemon, cfg, "syt.csv", ["Y1,Ngô Thị Cúc,syt,,,,,"])
    hr = cfg.paths.inbox.parent / "rejected" / "hr"  # as an older syncd filed it
    hr.mkdir(parents=True)
    hr.with_name("hr.report.txt").write_text("syncd — hr\nrejected, not read: directory\n")
    os.symlink(cfg.paths.state, hr / "yyy")  # HR's own folder: it may write what it likes
    (hr / "snapshots.json").write_text("{}")
    os.mkdir(bytes(hr) + b"/ds-\xff")
    precious = [cfg.paths.state / "snapshots.json", cfg.paths.audit_log]
    precious += list(SnapshotRegistry(cfg.paths.state).recorded())
    old = [*_everything(cfg), hr, hr / "snapshots.json", hr / "yyy"]
    _age([p for p in old if p not in precious], 7 * 31)
    daemon.reconcile_job(sweep=True)
    assert daemon.status.get("last_error") is None, daemon.status
    assert not os.path.lexists(hr) and not hr.with_name("hr.report.txt").exists()
    assert all(p.exists() for p in precious)
    [rejected] = [r for r in _records(cfg, "delete-kept") if "rejected" in str(r["what"])]
    assert rejected["files"] == ["hr", "hr.report.txt"], rejected
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "connectors.cli",
            "-c",
            str(tmp_path / "syncd.yaml"),
            "audit",
            "verify",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_unreadable_registry_keeps_every_roster_copy_and_says_so(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: a torn snapshots.json read as "no registry": the sweep deleted
    the latest copies as old, and the nightly run skipped every organisation with exit 0."""
    cfg = make_config(extra=SIX_MONTHS)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    _drop(daemon, cfg, "syt.csv", ["Y1,Ngô Thị Cúc,syt,,,,,"])
    registry = SnapshotRegistry(cfg.paths.state)
    [copy] = registry.recorded()
    filed = [p for p in _everything(cfg) if "processed" in p.parts]
    _age([copy, *filed], 7 * 31)
    good = registry.path.read_bytes()
    registry.path.write_bytes(good[:-5])
    daemon.reconcile_job(sweep=True)
    assert copy.exists() and all(p.exists() for p in filed)
    assert "registry unread" in str(daemon.status.get("last_error")), daemon.status
    daemon.reconcile_job()  # the nightly run says why it applies nothing
    assert "not the registry syncd writes" in str(daemon.status.get("last_error"))
    registry.path.write_bytes(good)
    daemon.status.pop("last_error", None)
    daemon.reconcile_job()
    assert daemon.status.get("last_error") is None, daemon.status


def test_a_latest_roster_copy_gone_stops_the_nightly_run_with_the_reason(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: with its copy gone, an organisation dropped out of the nightly run
    without a word (exit 0, "nothing to do")."""
    cfg = make_config(extra=SIX_MONTHS)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    _drop(daemon, cfg, "syt.csv", ["Y1,Ngô Thị Cúc,syt,,,,,"])
    [copy] = SnapshotRegistry(cfg.paths.state).recorded()
    copy.unlink()
    daemon.reconcile_job()
    error = str(daemon.status.get("last_error"))
    assert "syt:" in error and "is gone" in error and "syncd reconcile --roster" in error


def test_a_rejected_entry_not_yet_reported_is_dated_by_its_arrival(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: the inbox renames a refused entry into rejected/ (keeping HR's
    modification time, years old) before it writes its report; a sweep in between deleted
    it the day it came. Without its report an entry is dated by its inode change."""
    cfg = make_config(extra=SIX_MONTHS)
    rejected = cfg.paths.inbox.parent / "rejected"
    rejected.mkdir(parents=True)
    entry = rejected / "ds.csv"
    entry.write_text("x")
    _age([entry], 3 * 365)  # HR's old time, kept by the rename
    found, problems = find_expired(cfg, datetime.now(UTC), 6)
    assert not problems and not [g for e in found for g in e.groups], found
    later = datetime.now(UTC) + timedelta(days=7 * 31)
    found, _ = find_expired(cfg, later, 6)
    assert [g for e in found for g in e.groups] == [(entry,)]


def test_a_filed_roster_is_never_overwritten_by_the_result_of_a_later_file(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: a roster HR named a.csv.ketqua.xlsx was filed under that name;
    a later a.csv's result, written beside a.csv, replaced it."""
    cfg = make_config(extra=SIX_MONTHS)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.lstrip("\ufeff").strip().split(","))
    sheet.append(["E1", "Đàm Văn Hùng", "skhcn"])
    book.save(cfg.paths.inbox / "a.csv.ketqua.xlsx")
    daemon.inbox_job()
    month = cfg.paths.inbox.parent / "processed" / datetime.now(UTC).strftime("%Y/%m")
    first = (month / "a.csv.ketqua.xlsx").read_bytes()
    _drop(daemon, cfg, "a.csv", ["Y1,Ngô Thị Cúc,syt,,,,,"])
    assert (month / "a.csv.ketqua.xlsx").read_bytes() == first
    later = [p.name for p in month.iterdir() if p.name.startswith("a.") and p.name.endswith(".csv")]
    assert len(later) == 1 and later[0] != "a.csv", sorted(p.name for p in month.iterdir())


def test_a_file_that_cannot_be_deleted_is_recorded_as_still_there_and_the_status_says_so(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """The record written before the files go names them; one that could not go (here an
    immutable file, as a file HR's folder keeps would be for the service user) gets a second
    record saying so, and the daemon's status shows it: never a deletion recorded that did not
    happen, without a word."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr (e2fsprogs) is not installed")
    cfg = make_config(extra=SIX_MONTHS)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    _drop(daemon, cfg, "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    reports = sorted((cfg.paths.state / "reports").iterdir())
    _age(reports, 7 * 31)
    stuck = reports[0]
    if subprocess.run(["chattr", "+i", str(stuck)], check=False).returncode != 0:
        pytest.skip("this file system has no immutable attribute")
    try:
        daemon.reconcile_job(sweep=True)
        assert stuck.exists() and not any(p.exists() for p in reports[1:])
        failed = [r for r in _records(cfg, "delete-kept") if r["result"] == "failed"]
        assert [r["files"] for r in failed] == [[stuck.name]], failed
        assert "could not be deleted" in str(daemon.status.get("last_error")), daemon.status
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=False)
