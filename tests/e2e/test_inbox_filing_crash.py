"""An inbox file whose run ended and whose filing was cut by a kill -9: the next look finishes
the filing from what was kept (connectors/inbox.py, "Filing") instead of running the file
again, so HR still gets the result of the run that applied it (before, a kill between filing
the file and writing the result left HR without one for good), the same bytes dropped again
are known, and the organisation's latest accepted roster is the file applied."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ldap3 import Connection

from connectors import crashpoints
from connectors.inbox import FILING, InboxWatcher
from connectors.loading import load_config
from tests.conftest import MakeConfig
from tests.helpers import entries, write_roster

REPO = Path(__file__).resolve().parents[2]
TAKE = """
import sys
from pathlib import Path
from connectors.inbox import InboxWatcher
from connectors.loading import load_config
InboxWatcher(load_config(Path(sys.argv[1]))).process(Path(sys.argv[2]))
"""


def _rows(n: int) -> list[str]:
    return [f"E{i:03d},Trần Văn Người{i:03d},skhcn,,,,," for i in range(n)]


def _taken_and_killed_at(cfg_path: Path, file: Path, point: str) -> None:
    """The daemon's inbox takes ``file``, in a process of its own that kill -9s itself at
    ``point``."""
    env = {**os.environ, crashpoints.ENV: f"{point}:1"}
    proc = subprocess.run(
        [sys.executable, "-c", TAKE, str(cfg_path), str(file)],
        cwd=REPO, env=env, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


@pytest.mark.parametrize("point", ["inbox filing kept", "inbox filed"])
def test_a_filing_cut_by_a_kill_is_finished_with_the_result_of_the_run_that_applied_it(
    point: str, make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    make_config()
    cfg_path = tmp_path / "syncd.yaml"
    cfg = load_config(cfg_path)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    # HR's first roster of the organisation, filed whole
    write_roster(cfg.paths.inbox / "first.csv", _rows(5))
    assert InboxWatcher(cfg).process(cfg.paths.inbox / "first.csv")[0] == "processed"
    # the second adds three people; the daemon dies while filing it
    second = write_roster(cfg.paths.inbox / "second.csv", _rows(8))
    raw = second.read_bytes()
    _taken_and_killed_at(cfg_path, second, point)
    processing = cfg.paths.inbox.parent / "processing"
    assert (processing / "second.csv").exists()
    assert (processing / f".second.csv{FILING}").is_dir()
    made = entries(admin, base_dn)
    new = [f"nguoi{i:03d}tv.skhcn" for i in (5, 6, 7)]
    assert all(made[uid]["syncdState"] == ["active"] for uid in new)  # the run had ended

    # the restarted daemon's first look takes what processing/ holds first: the filing is
    # finished, the file not run again
    audit_before = cfg.paths.audit_log.read_text(encoding="utf-8").count("\n")
    result = InboxWatcher(cfg, settle=0).tick(time.time() + 3600)
    assert result.processed == ["second.csv"]
    assert cfg.paths.audit_log.read_text(encoding="utf-8").count("\n") == audit_before
    assert sorted(p.name for p in processing.iterdir()) == []
    filed = sorted((cfg.paths.inbox.parent / "processed").rglob("second*"))
    assert [p.name for p in filed] == [
        "second.csv",
        "second.csv.ketqua.html",
        "second.csv.ketqua.xlsx",
        "second.csv.report.txt",
    ]
    copy, page, _, report = filed
    assert copy.read_bytes() == raw
    # HR's result is the applying run's: the three new mailboxes were made by it
    html = page.read_text(encoding="utf-8")
    assert html.count("Cấp mới hộp thư") == 3, html
    assert all(f"{uid}@test.gov.vn" in html for uid in new)
    assert "3" in report.read_text(encoding="utf-8")
    # the file applied is the organisation's latest accepted roster: the nightly full run
    # plans nothing for its people (with the first file it would revoke the three; the
    # other organisations' own mailboxes are the only work it finds)
    plan = subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(cfg_path), "plan", "--latest",
         "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stdout + plan.stderr
    actions = json.loads(plan.stdout)["plan"]["actions"]
    assert [a for a in actions if a["action"] != "create-org-mailbox"] == [], actions
    # the same bytes dropped again are known as applied
    again = write_roster(cfg.paths.inbox / "again.csv", _rows(8))
    assert InboxWatcher(cfg).process(again)[0] == "duplicate"


def test_a_kept_filing_for_other_bytes_is_dropped_and_the_file_run_and_leftovers_tidied(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A filing kept for other bytes than the entry now holds is never used (the file is
    run); a kept filing whose entry is gone (finished but for its removal) and one cut while
    being kept are removed by the next look."""
    make_config()
    cfg = load_config(tmp_path / "syncd.yaml")
    watcher = InboxWatcher(cfg)
    processing = cfg.paths.inbox.parent / "processing"
    processing.mkdir(parents=True, mode=0o700)
    entry = write_roster(processing / "r.csv", _rows(2))
    stale = processing / f".r.csv{FILING}"
    stale.mkdir()
    (stale / "filing.json").write_text(
        json.dumps({"digest": "0" * 64, "where": "rejected", "target": str(tmp_path / "x"),
                    "report": "", "orgs": [], "run_id": "x", "when": "x"}),
        encoding="utf-8",
    )  # fmt: skip
    for name in (f".gone.csv{FILING}", f".cut.csv{FILING}.tmp"):
        (processing / name).mkdir()
    assert watcher.take(time.time()) == [entry]
    assert sorted(p.name for p in processing.iterdir()) == [f".r.csv{FILING}", "r.csv"]
    assert watcher.process(entry)[0] == "processed"
    assert sorted(processing.iterdir()) == []
    made = entries(admin, base_dn)
    assert {"nguoi000tv.skhcn", "nguoi001tv.skhcn"} <= made.keys()  # run, not filed as kept
    assert not (tmp_path / "x").exists()


def test_an_applied_file_whose_filing_keeps_failing_is_never_rejected_nor_replaced(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: the filing of an applied file failing (processed/ read-only or
    full) counted as a failed try, and after three the file went to rejected/ telling HR it
    was not applied; a file of the same name dropped meanwhile was renamed over it in
    processing/ (the applied bytes gone). Now the filing is tried at every look until it
    works, and the newer file waits its turn. ``processed`` made a plain file stands for the
    disk that refuses (a real error: no folder can be made under it)."""
    make_config()
    cfg_path = tmp_path / "syncd.yaml"
    cfg = load_config(cfg_path)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    applied = write_roster(cfg.paths.inbox / "r.csv", _rows(3))
    raw = applied.read_bytes()
    _taken_and_killed_at(cfg_path, applied, "inbox filing kept")
    processed = cfg.paths.inbox.parent / "processed"
    processed.write_text("in the way\n", encoding="utf-8")
    newer = write_roster(cfg.paths.inbox / "r.csv", _rows(4))  # HR's next word, same name
    time.sleep(0.01)
    latest = write_roster(cfg.paths.inbox / "latest.csv", _rows(5))  # and the one after it
    watcher = InboxWatcher(cfg, settle=0, readiness="settle")
    for _ in range(5):  # more than MAX_TRIES looks
        result = watcher.tick(time.time())
        assert result.processed == result.rejected == [], result
    assert latest.exists()  # never overtakes the held one
    processing = cfg.paths.inbox.parent / "processing"
    assert (processing / "r.csv").read_bytes() == raw  # never replaced
    assert not (cfg.paths.inbox.parent / "rejected").exists()
    assert newer.exists()
    assert "nguoi003tv.skhcn" not in entries(admin, base_dn)  # the newer file waits
    # the disk is back: the applied file is filed with its result, then the newer one runs
    processed.unlink()
    assert watcher.tick(time.time()).processed == ["r.csv", "r.csv", "latest.csv"]
    assert sorted(p.name for p in processing.iterdir()) == []
    filed = sorted(p.name for p in processed.rglob("r*.csv"))  # latest.csv is not r*
    assert len(filed) == 2 and "r.csv" in filed
    assert (next(processed.rglob("r.csv")).read_bytes()) == raw
    assert next(processed.rglob("r.csv.ketqua.html")).exists()
    assert "nguoi003tv.skhcn" in entries(admin, base_dn)


def test_hr_results_that_do_not_fit_keep_the_filing_for_the_next_look(
    make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an attack: with the disk full after the copy and the report, HR's result
    failed, was logged, and the kept filing was removed: the result lost for good. The
    failing write is a stand-in here (a real full disk: the attack's tmpfs)."""
    import errno

    from connectors import inbox

    make_config()
    cfg = load_config(tmp_path / "syncd.yaml")
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    dropped = write_roster(cfg.paths.inbox / "r.csv", _rows(2))
    real = inbox.write_rendered

    def full(*args: object, **kwargs: object) -> list[Path]:
        raise OSError(errno.ENOSPC, "No space left on device")

    watcher = InboxWatcher(cfg, settle=0, readiness="settle")
    with monkeypatch.context() as m:
        m.setattr(inbox, "write_rendered", full)
        for _ in range(4):
            assert watcher.tick(time.time()).rejected == []
    processing = cfg.paths.inbox.parent / "processing"
    assert (processing / f".r.csv{FILING}").is_dir() and not dropped.exists()
    assert inbox.write_rendered is real
    assert watcher.tick(time.time()).processed == ["r.csv"]
    assert next((cfg.paths.inbox.parent / "processed").rglob("r.csv.ketqua.html")).exists()
    assert sorted(processing.iterdir()) == []


def test_a_duplicate_whose_filing_fails_is_never_reported_rejected(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: the same bytes dropped again while processed/ refused writes were
    rejected after three tries, telling HR content that was applied was not."""
    make_config()
    cfg = load_config(tmp_path / "syncd.yaml")
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    assert InboxWatcher(cfg).process(write_roster(cfg.paths.inbox / "a.csv", _rows(2)))[0] == (
        "processed"
    )
    processed = cfg.paths.inbox.parent / "processed"
    aside = processed.with_name("processed.aside")
    processed.rename(aside)
    processed.write_text("in the way\n", encoding="utf-8")
    write_roster(cfg.paths.inbox / "again.csv", _rows(2))
    watcher = InboxWatcher(cfg, settle=0, readiness="settle")
    for _ in range(5):
        assert watcher.tick(time.time()).rejected == []
    assert not (cfg.paths.inbox.parent / "rejected").exists()
    processed.unlink()
    aside.rename(processed)
    assert watcher.tick(time.time()).duplicates == ["again.csv"]


def test_a_file_waiting_for_another_runs_lock_is_never_rejected(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: three waits for the run lock (an operator's long run, the nightly
    one) counted as failed tries, and a valid roster was rejected."""
    from connectors.runlock import RunLock

    make_config()
    cfg = load_config(tmp_path / "syncd.yaml")
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    write_roster(cfg.paths.inbox / "r.csv", _rows(2))
    watcher = InboxWatcher(cfg, settle=0, readiness="settle")
    with RunLock(cfg.paths.state, "an operator's run"):
        for _ in range(5):
            result = watcher.tick(time.time(), lock_timeout=0.1)
            assert result.rejected == [] and result.processed == [], result
    assert watcher.tick(time.time()).processed == ["r.csv"]
