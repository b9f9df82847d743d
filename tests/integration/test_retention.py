"""What runs leave behind is not kept for ever (retention.months), and the nightly sweep never
deletes what is still needed. Found by an attack on the daemon's long life: 717 runs left
1,372 files in the state folder, one report per run (~730 a year) and HR results naming people,
never deleted."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors import runner
from connectors.config import Config
from connectors.daemon import Daemon
from connectors.retention import _prune_month_folders
from connectors.snapshots import SnapshotRegistry
from tests.conftest import MakeConfig
from tests.helpers import write_roster

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
