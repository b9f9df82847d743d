"""A daemon runs for years in one process: each run must close what it opened. Found by the
province simulation: every run left its directory snapshot's SQLite connection to the garbage
collector, so the process kept one more open file per run (a replaced snapshot's disk space
with it, shown "(deleted)") and would reach the service's 1,024 descriptors (systemd's soft
``LimitNOFILE``) within a few years of nightly runs and inbox files."""

from __future__ import annotations

import gc
import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import runner
from connectors.config import Config
from connectors.daemon import Daemon
from connectors.directory_snapshot import SNAPSHOT_FILE
from connectors.loading import load_config
from connectors.runner import open_directory
from syncd.ports import DirectoryError
from tests.conftest import MakeConfig
from tests.helpers import write_roster

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _open(prefix: str) -> list[str]:
    """This process's descriptors whose target starts with ``prefix`` (a folder: its files,
    deleted ones too; ``socket:``: its sockets)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(prefix):
            found.append(target)
    return found


def test_no_run_of_any_kind_leaves_the_directory_snapshot_open(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg: Config = make_config()
    state = cfg.paths.state
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    more = write_roster(
        tmp_path / "r2.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
    )
    runs = [
        ("a scoped run that creates", dict(rosters=[roster])),
        ("the first whole run (a full read, a new snapshot)", dict(rosters=[roster], full=True)),
        ("a whole run read as a delta", dict(rosters=[roster], full=True)),
        ("a scoped run from the snapshot's names", dict(rosters=[more])),
        ("a plan only", dict(rosters=[more], dry_run=True)),
        ("a whole plan only", dict(rosters=[more], full=True, dry_run=True)),
    ]
    for n, (what, kw) in enumerate(runs):
        outcome = runner.run(cfg, now=NOW + timedelta(minutes=10 * n), **kw)  # type: ignore[arg-type]
        assert outcome.plan is not None, what
        assert (state / SNAPSHOT_FILE).exists() or n == 0, what
        assert _open(str(state)) == [], what


def test_a_directory_that_refuses_the_connection_leaves_no_socket_open(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """slapd down: each attempt's socket is closed with it, not when the garbage collector
    gets to ldap3's connection (the daemon retried every few minutes: one socket more each)."""
    make_config()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"ldap://127.0.0.1:{s.getsockname()[1]}"
    path = tmp_path / "syncd.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"ldap://127\.0\.0\.1:\d+", closed, text), encoding="utf-8")
    cfg = load_config(path)
    gc.disable()  # what the collector would free is not what the test is about
    try:
        before = len(_open("socket:"))
        for _ in range(5):
            directory = open_directory(cfg, [])
            with pytest.raises(DirectoryError, match="cannot reach"):
                directory.names()
            directory.close()
        assert len(_open("socket:")) == before
    finally:
        gc.enable()


def test_the_daemons_jobs_leave_nothing_behind_for_the_collector(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Each inbox job, as the daemon runs it, ends with what its run left in cycles freed:
    a run reads and plans with the cyclic collector paused and applies with what it read
    frozen, and Python's own thresholds almost never collect the oldest generation that
    this goes back to. Found by an attack: the daemon's resident memory grew ~220 KiB per
    small inbox run, ~7 MiB per 2,000-person one, for as long as it ran."""
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(tmp_path / "syncd.yaml")
    daemon.watcher.start()
    tracked: list[int] = []
    names = ["Đàm Văn Hùng", "Lê Văn Tám", "Ngô Thị Cúc"]
    for n in range(12):  # each file changes one person's title: a run that plans and applies
        titles = [f"Chuyên viên {n}" if i == n % 3 else "" for i in range(3)]
        rows = [f"E{i + 1},{name},skhcn,,{titles[i]},,," for i, name in enumerate(names)]
        write_roster(cfg.paths.inbox / f"skhcn-{n:02d}.csv", rows)
        daemon.inbox_job()
        assert daemon.status.get("last_error") is None, daemon.status
        tracked.append(len(gc.get_objects()))
    assert len(list(cfg.paths.inbox.parent.joinpath("processed").rglob("skhcn-*.csv"))) == 12
    assert max(tracked[3:]) - tracked[3] < 2_000, tracked
