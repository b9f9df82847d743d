"""Issue "A safe inbox", items 1 and 5, found by an attacker: an HR uploader made
``leak.csv -> /run/credentials/syncd.service/bind-password`` over SFTP and read the LDAP
service password in ``rejected/leak.csv.report.txt``. Only a regular file with one name is
read; anything else is filed in rejected/ unread, with a report saying why."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors import inbox
from connectors.config import Config
from connectors.inbox import InboxResult, InboxWatcher, _content_free
from tests.conftest import MakeConfig
from tests.e2e.test_daemon import DAEMON, wait_for
from tests.helpers import write_roster

SECRET = "s3cr3t-bind-password-Zq7"


def _tick_twice(watcher: InboxWatcher, timeout: float = 30.0) -> InboxResult:
    """Two looks, what both took (settle 0: a file there before the watch began is ready at
    the second; an entry refused unread at the first), in a thread: reading a FIFO would hang."""
    out: list[InboxResult] = []

    def go() -> None:
        out.extend([watcher.tick(time.time()), watcher.tick(time.time() + 1)])

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the inbox watcher blocked"
    first, second = out
    merged = InboxResult(last=second.last or first.last)
    for kind in ("processed", "rejected", "duplicates", "retry"):
        setattr(merged, kind, getattr(first, kind) + getattr(second, kind))
    return merged


def _nowhere(root: Path, secret: str, skip: Path | None = None) -> list[Path]:
    """Regular files under ``root`` (links not followed) holding ``secret``."""
    found = []
    for folder, dirs, files in os.walk(root):
        for name in files + dirs:
            p = Path(folder) / name
            if skip is not None and (p == skip or skip in p.parents):
                continue
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) and secret.encode() in p.read_bytes():
                found.append(p)
    return found


@pytest.fixture
def setup(make_config: MakeConfig, tmp_path: Path) -> tuple[Config, InboxWatcher, Path]:
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "elsewhere" / "bind-password"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    return cfg, InboxWatcher(cfg, settle=0), secret


def test_a_symlink_to_a_secret_is_rejected_unread(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    cfg, watcher, secret = setup
    (cfg.paths.inbox / "leak.csv").symlink_to(secret)
    (cfg.paths.inbox / "env.csv").symlink_to("/proc/self/environ")
    result = _tick_twice(watcher)
    assert sorted(result.rejected) == ["env.csv", "leak.csv"]
    rejected = tmp_path / "rejected"
    assert os.readlink(rejected / "leak.csv") == str(secret)  # the link itself moved
    report = (rejected / "leak.csv.report.txt").read_text()
    assert "symbolic link: not read" in report
    assert stat.S_IMODE((rejected / "leak.csv.report.txt").stat().st_mode) == 0o640
    assert secret.read_text() == SECRET + "\n"  # the target untouched
    assert _nowhere(tmp_path, SECRET, skip=secret.parent) == []
    assert not list(cfg.paths.inbox.iterdir())


def test_a_fifo_never_blocks_the_watcher_and_is_rejected(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    cfg, watcher, _ = setup
    os.mkfifo(cfg.paths.inbox / "pipe.csv")
    result = _tick_twice(watcher)
    assert result.rejected == ["pipe.csv"]
    assert stat.S_ISFIFO(os.lstat(tmp_path / "rejected" / "pipe.csv").st_mode)
    assert (
        "FIFO (named pipe): not read" in (tmp_path / "rejected" / "pipe.csv.report.txt").read_text()
    )


def test_a_hard_link_to_a_file_elsewhere_is_rejected_unread(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    cfg, watcher, secret = setup
    os.link(secret, cfg.paths.inbox / "hard.csv")
    result = _tick_twice(watcher)
    assert result.rejected == ["hard.csv"]
    report = (tmp_path / "rejected" / "hard.csv.report.txt").read_text()
    assert "hard link (2 names for one file): not read" in report
    assert _nowhere(tmp_path, SECRET, skip=secret.parent) == [tmp_path / "rejected" / "hard.csv"]
    assert os.path.samefile(tmp_path / "rejected" / "hard.csv", secret)  # moved, not copied


def test_a_directory_is_reported_and_left_in_the_inbox_and_a_non_roster_name_rejected_unread(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    cfg, watcher, _ = setup
    folder = cfg.paths.inbox / "folder.csv"
    folder.mkdir()
    (folder / "inside.csv").write_text(SECRET)
    (cfg.paths.inbox / "notes.docx").write_text(SECRET)
    result = _tick_twice(watcher)
    assert sorted(result.rejected) == ["folder.csv", "notes.docx"]
    rejected = tmp_path / "rejected"
    # the folder stays HR's, where HR put it: never moved under rejected/ (where syncd could
    # not delete what HR keeps in it), never entered
    assert sorted(p.name for p in rejected.iterdir()) == [
        "folder.csv.report.txt",
        "notes.docx",
        "notes.docx.report.txt",
    ]
    report = (rejected / "folder.csv.report.txt").read_text()
    assert "directory: not read" in report and "left in the inbox" in report
    assert (folder / "inside.csv").read_text() == SECRET
    assert "not a roster's file type" in (rejected / "notes.docx.report.txt").read_text()
    assert _nowhere(rejected, SECRET) == [rejected / "notes.docx"]


def test_a_folder_left_in_the_inbox_is_reported_once_until_it_is_replaced(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    cfg, watcher, _ = setup
    folder = cfg.paths.inbox / "thang11"
    folder.mkdir()
    assert _tick_twice(watcher).rejected == ["thang11"]
    assert watcher.backlog() == 0  # syncd status: nothing waits on syncd
    # looks go on (a restarted daemon too: remembered in the state folder): no new report
    for _ in range(3):
        assert _tick_twice(watcher) == InboxResult()
    again = InboxWatcher(cfg, settle=0)
    assert _tick_twice(again) == InboxResult()
    rejected = tmp_path / "rejected"
    assert [p.name for p in rejected.iterdir()] == ["thang11.report.txt"]
    # HR puts another folder in its place: that one is reported in its turn
    folder.rename(cfg.paths.inbox / "old")
    folder.mkdir()
    result = _tick_twice(again)
    assert sorted(result.rejected) == ["old", "thang11"]
    assert len(list(rejected.glob("thang11*.report.txt"))) == 2
    # and a folder removed is forgotten
    folder.rmdir()
    (cfg.paths.inbox / "old").rmdir()
    assert _tick_twice(again) == InboxResult()
    assert json.loads((cfg.paths.state / "inbox-left.json").read_text()) == {}


def _disk_full_for(monkeypatch: pytest.MonkeyPatch, suffix: str) -> Any:
    """The inbox's private writes of files named ``…suffix`` fail as on a full disk; the real
    writer, to put back."""
    real = inbox.write_private

    def full(path: Path, *a: object, **k: object) -> None:
        if str(path).endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, *a, **k)

    monkeypatch.setattr(inbox, "write_private", full)
    return real


def test_a_folder_whose_report_cannot_be_written_stays_in_the_inbox_and_is_reported_later(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an attack: a report that could not be written (a full disk) sent the folder
    through the failing-file path, which after three tries moved it under rejected/."""
    cfg, watcher, _ = setup
    folder = cfg.paths.inbox / "thang11"
    folder.mkdir()
    (folder / "a.csv").write_text(SECRET)
    real = _disk_full_for(monkeypatch, ".report.txt")
    for _ in range(5):
        assert watcher.tick(time.time()).waiting == ["thang11"]
    assert (folder / "a.csv").read_text() == SECRET
    assert not (tmp_path / "rejected").exists() or not list((tmp_path / "rejected").iterdir())
    monkeypatch.setattr(inbox, "write_private", real)  # the disk is back
    assert _tick_twice(watcher).rejected == ["thang11"]
    assert [p.name for p in (tmp_path / "rejected").iterdir()] == ["thang11.report.txt"]
    assert _tick_twice(watcher) == InboxResult() and folder.is_dir()


def test_a_folder_is_reported_once_even_when_the_state_disk_cannot_keep_it(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an attack: with inbox-left.json not writable, the folder was reported at every
    look (12 reports in 6 looks). The watcher remembers it; the file is a restart's memory."""
    cfg, watcher, _ = setup
    (cfg.paths.inbox / "thang12").mkdir()
    _disk_full_for(monkeypatch, "inbox-left.json")
    assert _tick_twice(watcher).rejected == ["thang12"]
    for _ in range(4):
        assert _tick_twice(watcher) == InboxResult()
    assert [p.name for p in (tmp_path / "rejected").iterdir()] == ["thang12.report.txt"]
    assert (cfg.paths.inbox / "thang12").is_dir()


def test_a_folder_removed_and_made_again_is_reported_again_whatever_its_inode(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    """Found by an attack: ext4 gave the new folder the old one's inode number, and a folder
    known by device and inode alone was taken for the one already reported. The watch's
    removal event forgets the name."""
    cfg, watcher, _ = setup
    folder = cfg.paths.inbox / "thang11"
    folder.mkdir()
    assert _tick_twice(watcher).rejected == ["thang11"]
    assert watcher.mode == "inotify"
    folder.rmdir()
    folder.mkdir()
    assert _tick_twice(watcher).rejected == ["thang11"]
    assert len(list((tmp_path / "rejected").glob("thang11*.report.txt"))) == 2


def test_thousands_of_folders_keep_the_folders_left_once_per_look(
    setup: tuple[Config, InboxWatcher, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an attack: 3,000 folders took 32 s in one look, the whole list rewritten for
    each folder; every roster waited behind them. Once per look now."""
    cfg, watcher, _ = setup
    for i in range(300):
        (cfg.paths.inbox / f"d{i:04d}").mkdir()
    writes: list[Path] = []
    real = inbox.write_private

    def counted(path: Path, *a: object, **k: object) -> None:
        if str(path).endswith("inbox-left.json"):
            writes.append(path)
        real(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(inbox, "write_private", counted)
    assert len(_tick_twice(watcher).rejected) == 300
    assert len(writes) <= 2, len(writes)
    assert len(json.loads((cfg.paths.state / "inbox-left.json").read_text())) == 300
    assert watcher.backlog() == 0


def test_partial_and_hidden_names_are_not_taken(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    cfg, watcher, secret = setup
    inbox = cfg.paths.inbox
    names = ["x.csv.part", "x.csv.filepart", "x.csv.tmp", ".hidden.csv", ".link.csv"]
    for name in names[:-1]:
        write_roster(inbox / name, ["E1,Đàm Văn Hùng,skhcn,,,,,"])
        (inbox / f"{name}.done").touch()
    (inbox / ".link.csv").symlink_to(secret)
    result = _tick_twice(watcher)
    assert result == InboxResult()
    assert sorted(p.name for p in inbox.iterdir()) == sorted(
        names + [f"{n}.done" for n in names[:-1]]
    )
    assert not (tmp_path / "rejected").exists() and not (tmp_path / "processing").exists()


def test_a_name_with_a_newline_cannot_forge_report_lines(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    cfg, watcher, _ = setup
    name = "a.csv\nĐã xử lý - applied: 1 create\x1b[2K.csv"
    write_roster(cfg.paths.inbox / name, ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    result = _tick_twice(watcher)
    assert result.rejected == [name]
    safe = "a.csv\\x0aĐã xử lý - applied: 1 create\\x1b[2K.csv"
    rejected = tmp_path / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == [safe, f"{safe}.report.txt"]
    lines = (rejected / f"{safe}.report.txt").read_text().splitlines()
    assert lines[0] == f"syncd — {safe}"
    assert "control or invisible character" in lines[1]
    assert not any(line.startswith("Đã xử lý") for line in lines)


def test_processing_is_made_0700_whatever_the_umask(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    cfg, watcher, _ = setup
    write_roster(cfg.paths.inbox / "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    old = os.umask(0)
    try:
        assert _tick_twice(watcher).processed == ["skhcn.csv"]
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "processing").stat().st_mode) == 0o700


def test_a_file_that_is_not_a_roster_is_reported_without_its_content(
    setup: tuple[Config, InboxWatcher, Path], tmp_path: Path
) -> None:
    """The report of an unparseable file quoted its header row: the secret's first line."""
    cfg, watcher, _ = setup
    (cfg.paths.inbox / "copy.csv").write_text(SECRET + "\nmore\n")
    result = _tick_twice(watcher)
    assert result.rejected == ["copy.csv"]
    report = (tmp_path / "rejected" / "copy.csv.report.txt").read_text()
    assert "copy.csv: row 1 (bytes 0–24): missing required column(s)" in report
    assert SECRET not in report
    # a roster's own row errors still say the row, column and value
    write_roster(cfg.paths.inbox / "bad.csv", ["E1,,skhcn,,,,,"])
    assert _tick_twice(watcher).rejected == ["bad.csv"]
    bad = (tmp_path / "rejected" / "bad.csv.report.txt").read_text()
    assert "row 2, column 'Họ và tên'" in bad and "empty name" in bad


def test_whole_file_errors_are_rewritten_without_content(
    setup: tuple[Config, InboxWatcher, Path],
) -> None:
    cfg = setup[0]
    raw = b"a,b\nx\ny\nL\xea V\xe3n\n"
    mixed = (
        "f.csv: line 4: the file mixes encodings (tcvn3, vni) and this line reads as "
        "Vietnamese in more than one (tcvn3 'Lê Văn' or vni 'Lờ Vón'); save the file again as UTF-8"
    )
    assert _content_free(mixed, "f.csv", raw, cfg) == (
        "f.csv: line 4 (from byte 8): the file mixes encodings (tcvn3, vni) and this line reads "
        "as Vietnamese in more than one; save the file again as UTF-8"
    )
    xlsx = "f.xlsx: row 3: not a readable XLSX workbook (ValueError: invalid literal 'secret')"
    assert _content_free(xlsx, "f.xlsx", b"PK\x03\x04", cfg) == (
        "f.xlsx: row 3: not a readable XLSX workbook (ValueError)"
    )
    sheet = "f.xlsx: no sheet named None (sheets: 'secret')"
    assert "secret" not in _content_free(sheet, "f.xlsx", b"PK\x03\x04", cfg)
    undecodable = "f.csv: byte 7 (line 2): not valid UTF-8 (invalid start byte); save it again"
    assert _content_free(undecodable, "f.csv", raw, cfg) == undecodable
    assert "secret" not in _content_free("f.csv: something new 'secret'", "f.csv", raw, cfg)
    part = "f.xlsx: part 'xl/secret.xml' unpacks to 9 bytes, more than the 8 a workbook part may"
    assert _content_free(part, "f.xlsx", b"PK", cfg) == (
        "f.xlsx: a part of the workbook unpacks to 9 bytes, more than the 8 a workbook part may"
    )
    bound = "f.csv: row 9: more than the 8 rows a roster may have"
    assert _content_free(bound, "f.csv", raw, cfg) == bound


# -- the daemon, as tests/e2e/test_daemon.py runs it -------------------------------------------


@pytest.fixture
def daemon_proc(make_config: MakeConfig, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    make_config(extra=DAEMON)
    (tmp_path / "inbox").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.cli", "-c", str(tmp_path / "syncd.yaml"), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_for(lambda: (tmp_path / "state" / "status.json").exists())
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_daemon_rejects_a_symlink_and_a_fifo_unread(
    daemon_proc: subprocess.Popen[str], tmp_path: Path
) -> None:
    secret = tmp_path / "elsewhere" / "bind-password"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    inbox = tmp_path / "inbox"
    (inbox / "leak.csv").symlink_to(secret)
    os.mkfifo(inbox / "pipe.csv")
    rejected = tmp_path / "rejected"
    assert wait_for(lambda: (rejected / "pipe.csv.report.txt").exists())
    assert wait_for(lambda: (rejected / "leak.csv.report.txt").exists())
    assert "symbolic link: not read" in (rejected / "leak.csv.report.txt").read_text()
    assert os.path.islink(rejected / "leak.csv")
    # the watcher still works: a roster dropped after them is taken
    write_roster(inbox / ".skhcn.csv.part", ["E1,Đàm Văn Hùng,skhcn,,,,,"]).rename(
        inbox / "skhcn.csv"
    )
    assert wait_for(lambda: bool(list((tmp_path / "processed").rglob("skhcn.csv.report.txt"))))
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["directory"] == "reachable"
    daemon_proc.send_signal(signal.SIGTERM)
    assert daemon_proc.wait(timeout=20) == 0
    assert daemon_proc.stdout is not None
    out = daemon_proc.stdout.read()
    assert SECRET not in out
    assert _nowhere(tmp_path, SECRET, skip=secret.parent) == []
