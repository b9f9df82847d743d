"""The daemon makes what the regulation promises the leadership and the public on its own: the
report on mailbox use before the profile's deadline (Cao Bằng 2025 Đ11.3: 30 November; the
daemon writes it ``publish.report_days_before`` days earlier), and the address lists where
the profile asks for them (Cao Bằng 2011 Đ6). Run exactly as the unit runs it (``syncd run``),
its clock moved with libfaketime to a minute before the scheduled time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connectors import runner
from tests.conftest import MakeConfig
from tests.e2e.test_daemon import DAEMON, wait_for
from tests.helpers import write_roster
from tests.simulation.conftest import FAKETIME_LIB

PUBLISH = "publish:\n  folder: published\n"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _run(cfg: Path, procs: list[subprocess.Popen[str]], faketime: str | None = None) -> None:
    env = {**os.environ}
    if faketime is not None:
        if not FAKETIME_LIB.exists():
            pytest.skip("libfaketime is not installed (make test installs it)")
        env |= {
            "LD_PRELOAD": str(FAKETIME_LIB),
            "FAKETIME": f"@{faketime}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timed waits (threads) keep working
            "TZ": "UTC",
        }
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "connectors.cli", "-c", str(cfg), "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    )
    assert wait_for(lambda: (cfg.parent / "state" / "status.json").exists())


def _next_runs(tmp_path: Path) -> dict[str, str | None]:
    status = json.loads((tmp_path / "state" / "status.json").read_text(encoding="utf-8"))
    return dict(status["next_runs"])


def test_the_yearly_report_is_scheduled_before_the_deadline_and_written_then(
    make_config: MakeConfig, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    cfg = make_config(extra=DAEMON + PUBLISH)
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])])
    _run(tmp_path / "syncd.yaml", started)
    runs = _next_runs(tmp_path)
    when = datetime.fromisoformat(str(runs["report"]))
    # 30 November (caobang-2025 Đ11.3) less the default 10 days, 04:00 in Việt Nam
    assert (when.month, when.day, when.hour, when.utcoffset()) == (11, 20, 4, timedelta(hours=7))
    assert "addressbook" not in runs  # caobang-2025 asks for no published address list
    started.pop().kill()

    # the daemon's clock a few seconds before 20 November 04:00 +07:00 (21:00 UTC the day before)
    year = when.year
    _run(tmp_path / "syncd.yaml", started, faketime=f"{year}-11-19 20:59:57")
    folder = tmp_path / "published" / "baocao"
    province = folder / f"baocao-{year}0101-{year}1120-toantinh.html"
    if not wait_for(lambda: province.exists(), timeout=40):
        started[-1].kill()
        status = (tmp_path / "state" / "status.json").read_text(encoding="utf-8")
        pytest.fail(started[-1].communicate()[0][-3000:] + status)
    # each organisation's files come after the province's: waited for, not raced
    assert wait_for(lambda: (folder / f"baocao-{year}0101-{year}1120-skhcn.xlsx").exists())
    assert oct(province.stat().st_mode & 0o777) == "0o640"


def test_the_address_lists_are_published_where_the_profile_asks_for_them(
    make_config: MakeConfig, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    make_config(profile="caobang-2011", extra=DAEMON + PUBLISH)
    _run(tmp_path / "syncd.yaml", started)
    runs = _next_runs(tmp_path)
    book = datetime.fromisoformat(str(runs["addressbook"]))
    assert (book.weekday(), book.hour, book.minute) == (0, 3, 30)  # Mondays 03:30 local
    report = datetime.fromisoformat(str(runs["report"]))
    assert (report.month, report.day) in ((1, 1), (7, 1))  # caobang-2011 Đ17: each half-year


def test_a_report_whose_day_passed_before_the_daemon_started_is_made_at_once(
    make_config: MakeConfig, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """Found by an attack: a daemon started on 26 November (caobang-2025, due 30 November,
    scheduled the 20th) showed its next report in a year: the report due in four days was
    never written. It is made at start while the deadline has not passed, once."""
    make_config(extra=DAEMON + PUBLISH)
    folder = tmp_path / "published" / "baocao"
    for day in ("2027-11-25", "2027-11-26"):  # started, then restarted the next day
        _run(tmp_path / "syncd.yaml", started, faketime=f"{day} 03:00:00")
        assert wait_for(lambda: len(list(folder.glob("*-toantinh.html"))) == 1, timeout=40)
        time.sleep(2)  # a second report would be written by now
        started.pop().kill()
    [made] = folder.glob("*-toantinh.html")
    assert made.name == "baocao-20270101-20271125-toantinh.html"  # made once, not again


def test_no_report_is_made_at_start_outside_its_window(
    make_config: MakeConfig, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    make_config(extra=DAEMON + PUBLISH)
    _run(tmp_path / "syncd.yaml", started, faketime="2027-12-02 03:00:00")  # after the deadline
    assert not wait_for(lambda: (tmp_path / "published").exists(), timeout=3)
