"""A daemon runs for years in one process: each run must close what it opened. Found by the
province simulation: every run left its directory snapshot's SQLite connection to the garbage
collector, so the process kept one more open file per run (a replaced snapshot's disk space
with it, shown "(deleted)") and would reach the service's 1,024 descriptors (systemd's soft
``LimitNOFILE``) within a few years of nightly runs and inbox files."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors import runner
from connectors.config import Config
from connectors.directory_snapshot import SNAPSHOT_FILE
from tests.conftest import MakeConfig
from tests.helpers import write_roster

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _open_below(folder: Path) -> list[str]:
    """This process's descriptors on files in ``folder``, deleted ones too."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
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
        assert _open_below(state) == [], what
