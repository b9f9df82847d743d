"""Issue 11 item 4: when an inbox file is complete (inotify, the settle time as the fallback),
and a file that changes after it was taken is refused with nothing applied. Real files, real
inotify, the session's real slapd."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ldap3 import Connection

from connectors.inbox import InboxWatcher
from syncd.model import Plan
from tests.conftest import MakeConfig
from tests.helpers import HEADER, descriptors_past_select_limit, entries, write_roster

ROW = "E1,Đàm Văn Hùng,skhcn,,,,,"


def _people(admin: Connection, base_dn: str) -> list[str]:
    return [u for u, e in entries(admin, base_dn).items() if e.get("employeeNumber")]


def test_a_file_closed_after_writing_is_taken_at_the_first_look_without_the_settle_wait(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True)
    watcher = InboxWatcher(cfg, settle=3600)
    watcher.start()
    assert watcher.mode == "inotify"
    write_roster(cfg.paths.inbox / "skhcn.csv", [ROW])
    assert watcher.tick(time.time()).processed == ["skhcn.csv"]


def test_a_file_renamed_in_keeping_its_old_time_is_taken_at_the_first_look(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True)
    watcher = InboxWatcher(cfg, settle=3600)
    watcher.start()
    part = write_roster(cfg.paths.inbox / ".skhcn.csv.part", [ROW])
    os.utime(part, (1_600_000_000, 1_600_000_000))  # the sender's file time, kept by SFTP
    part.rename(cfg.paths.inbox / "skhcn.csv")
    assert watcher.tick(time.time()).processed == ["skhcn.csv"]


def test_an_upload_still_open_is_never_taken_however_long_it_stalls(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True)
    watcher = InboxWatcher(cfg, settle=1)
    watcher.start()
    path = cfg.paths.inbox / "skhcn.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("\ufeff" + HEADER + ROW + "\n")
        fh.flush()
        now = time.time()
        for later in (0, 10, 3600, 86400):  # looks far past the settle time
            assert watcher.tick(now + later).processed == []
        fh.write("E2,Lê Văn Tám,skhcn,,,,,\n")
    assert watcher.tick(now + 86401).processed == ["skhcn.csv"]
    assert sorted(_people(admin, base_dn)) == ["hungdv.skhcn", "tamlv.skhcn"]


def test_without_inotify_a_file_is_complete_once_unchanged_for_the_settle_time(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config(extra="daemon:\n  inbox_readiness: settle\n")
    cfg.paths.inbox.mkdir(parents=True)
    watcher = InboxWatcher(cfg, settle=3600)
    watcher.start()
    assert watcher.mode == "settle: daemon.inbox_readiness is settle"
    write_roster(cfg.paths.inbox / "skhcn.csv", [ROW])
    now = time.time()
    assert watcher.tick(now).processed == []
    assert watcher.tick(now + 60).processed == []
    assert watcher.tick(now + 3601).processed == ["skhcn.csv"]


def test_without_inotify_a_file_dated_a_day_ahead_waits_the_settle_time_not_the_day(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A PC whose clock is a day ahead, its time kept by the upload (WinSCP's default): the
    settle time counted from that time made the file wait a day, and every file behind it
    (found by an attack). It counts from the watcher's first look at the file as it is."""
    cfg = make_config(extra="daemon:\n  inbox_readiness: settle\n")
    cfg.paths.inbox.mkdir(parents=True)
    watcher = InboxWatcher(cfg, settle=30)
    watcher.start()
    path = write_roster(cfg.paths.inbox / "skhcn.csv", [ROW])
    tomorrow = time.time() + 86400
    os.utime(path, (tomorrow, tomorrow))
    now = time.time()
    assert watcher.tick(now).processed == []
    assert watcher.tick(now + 10).processed == []
    assert watcher.tick(now + 31).processed == ["skhcn.csv"]
    assert _people(admin, base_dn) == ["hungdv.skhcn"]


def test_without_inotify_a_file_given_an_old_time_as_it_lands_waits_the_settle_time(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """The upload sets the file's time back to the PC's (last week) when it ends: the file
    changed then, by its change time, and waits out the settle time from then, not from
    last week."""
    cfg = make_config(extra="daemon:\n  inbox_readiness: settle\n")
    cfg.paths.inbox.mkdir(parents=True)
    watcher = InboxWatcher(cfg, settle=3600)
    watcher.start()
    path = write_roster(cfg.paths.inbox / "skhcn.csv", [ROW])
    last_week = time.time() - 7 * 86400
    os.utime(path, (last_week, last_week))
    now = time.time()
    assert watcher.tick(now).processed == []
    assert watcher.tick(now + 60).processed == []
    assert watcher.tick(now + 3601).processed == ["skhcn.csv"]


def test_a_file_written_to_after_it_was_taken_is_refused_and_nothing_applied(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Without inotify, a copy stalled past the settle time is taken half-written; the
    uploader writing on is caught between the parse and the first change."""
    cfg = make_config(extra="daemon:\n  inbox_readiness: settle\n")
    cfg.paths.inbox.mkdir(parents=True)
    watcher = InboxWatcher(cfg, settle=0)
    path = cfg.paths.inbox / "skhcn.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("\ufeff" + HEADER + ROW + "\n")
        fh.flush()

        def upload_resumes(plan: Plan) -> None:  # the parse is done, nothing applied yet
            fh.write("E2,Lê Văn Tám,skhcn,,,,,\n")
            fh.flush()

        now = time.time()
        assert watcher.tick(now).processed == []
        result = watcher.tick(now + 1, on_plan=upload_resumes)
    assert result.rejected == ["skhcn.csv"] and result.processed == []
    report = (tmp_path / "rejected" / "skhcn.csv.report.txt").read_text(encoding="utf-8")
    assert "the file changed while syncd was reading it" in report
    assert "bytes when taken" in report and "nothing from it was applied" in report
    assert _people(admin, base_dn) == []
    audit = tmp_path / "state" / "audit.jsonl"
    assert not audit.exists() or not [
        json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()
    ]
    assert not (tmp_path / "state" / "snapshots.json").exists()  # not a latest accepted roster


def test_inotify_still_wakes_the_daemon_when_its_descriptor_is_numbered_past_1024(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """select(2) took no descriptor past 1024: the wait answered "nothing" at once, so a
    long-lived daemon with many files open found rosters at its next poll only."""
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True)
    with descriptors_past_select_limit():
        watcher = InboxWatcher(cfg, settle=3600)
        watcher.start()
    assert watcher.mode == "inotify"
    assert watcher.wait(0.05) is False  # nothing yet
    write_roster(cfg.paths.inbox / "skhcn.csv", [ROW])
    assert watcher.wait(5) is True
    assert watcher.tick(time.time()).processed == ["skhcn.csv"]
    watcher.close()
