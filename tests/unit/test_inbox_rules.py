"""Issue 11 ("A safe inbox"), items 1, 4 and 5: which inbox entries are read, when a file is
complete, and how names are shown."""

from __future__ import annotations

import stat

from syncd.inbox import (
    Events,
    Seen,
    filesystem_of,
    inotify_sees_all_writes,
    is_candidate,
    kind_problem,
    name_problem,
    ready,
    safe_name,
)

SUFFIXES = {".csv", ".tsv", ".txt", ".xlsx", ".xlsm"}


def test_only_a_regular_file_with_one_name_is_read() -> None:
    assert kind_problem(stat.S_IFREG | 0o644, 1) is None
    assert kind_problem(stat.S_IFLNK | 0o777, 1) == "symbolic link: not read"
    assert kind_problem(stat.S_IFDIR | 0o755, 2) == "directory: not read"
    assert kind_problem(stat.S_IFIFO | 0o644, 1) == "FIFO (named pipe): not read"
    assert kind_problem(stat.S_IFSOCK | 0o644, 1) == "socket: not read"
    assert kind_problem(stat.S_IFCHR | 0o644, 1) == "device: not read"
    assert kind_problem(stat.S_IFBLK | 0o644, 1) == "device: not read"
    assert kind_problem(stat.S_IFREG | 0o644, 2) == "hard link (2 names for one file): not read"


def test_a_name_is_one_line_in_a_report() -> None:
    assert safe_name("skhcn.csv") == "skhcn.csv"
    assert safe_name("Danh sách cán bộ.xlsx") == "Danh sách cán bộ.xlsx"
    assert safe_name("a\nSyncd — forged.csv") == "a\\x0aSyncd — forged.csv"
    assert safe_name("a\r\tb\x1b[31m.csv") == "a\\x0d\\x09b\\x1b[31m.csv"
    assert safe_name("a\u2028b\u202e.csv") == "a\\u2028b\\u202e.csv"  # line sep., bidi override
    assert safe_name("\udcff.csv") == "\\xff.csv"  # an undecodable byte, as listdir gives it
    long = safe_name("ệ" * 200 + ".csv")
    assert len(long.encode()) <= 200 and "\n" not in long


def test_names_that_are_not_a_rosters_are_said_so() -> None:
    assert name_problem("skhcn.csv", SUFFIXES) is None
    assert name_problem("SKHCN.XLSX", SUFFIXES) is None
    assert "control or invisible character" in (name_problem("a\nb.csv", SUFFIXES) or "")
    assert "not a roster's file type" in (name_problem("notes.docx", SUFFIXES) or "")
    assert "not a roster's file type" in (name_problem("README", SUFFIXES) or "")
    assert "old Excel .xls" in (name_problem("old.xls", SUFFIXES) or "")
    assert "longer than" in (name_problem("a" * 240 + ".csv", SUFFIXES) or "")


def test_partial_and_hidden_names_are_never_taken_even_with_a_marker() -> None:
    names = ["x.csv.part", "x.csv.filepart", "x.csv.tmp", ".hidden.csv", "~$book.xlsx"]
    assert not any(is_candidate(n) for n in names)
    listing = {n: Seen(10, 1000.0) for n in names}
    listing |= {f"{n}.done": Seen(0, 1000.0) for n in names}
    assert ready(listing, listing, now=5000.0, settle=30) == []


# -- issue 11 item 4: readiness by inotify, the settle time as the fallback ----------------------


def test_a_file_closed_after_writing_is_ready_at_once_whatever_the_settle_time() -> None:
    events = Events()
    events.written("a.csv")
    events.completed("a.csv", 120)
    fresh = {"a.csv": Seen(120, 1000.0)}
    assert ready(fresh, {}, now=1000.0, settle=3600, events=events) == ["a.csv"]


def test_a_file_renamed_in_with_its_old_time_is_ready_at_once() -> None:
    events = Events()
    events.completed("b.csv", 50)  # IN_MOVED_TO: no write seen here at all
    old = {"b.csv": Seen(50, 86400.0)}
    assert ready(old, {}, now=10 * 86400.0, settle=3600, events=events) == ["b.csv"]


def test_an_upload_stalled_mid_write_is_never_ready_however_long_it_stalls() -> None:
    """The settle rule took it after settle_seconds of silence, half-written (issue 11 item 4:
    two wrong revocations); with inotify it waits for the close."""
    events = Events()
    events.written("slow.csv")
    listing = {"slow.csv": Seen(70, 1000.0)}
    assert ready(listing, listing, now=1000.0 + 86400, settle=30, events=events) == []
    assert ready(listing, listing, now=1000.0 + 86400, settle=30) == ["slow.csv"]  # settle
    events.completed("slow.csv", 140)
    done = {"slow.csv": Seen(140, 90000.0)}
    assert ready(done, listing, now=90000.0, settle=30, events=events) == ["slow.csv"]


def test_the_settle_time_of_a_file_dated_ahead_counts_from_its_first_look() -> None:
    """A PC clock a day ahead, kept by the upload: counted from the file's own time, it
    waited a day (found by an attack)."""
    ahead = {"a.csv": Seen(10, 2000.0 + 86400, ctime=2000.0)}
    first = {"a.csv": 2000.0}
    assert ready(ahead, {}, now=2000.0, settle=30, first_seen=first) == []
    assert ready(ahead, ahead, now=2020.0, settle=30, first_seen=first) == []
    assert ready(ahead, ahead, now=2031.0, settle=30, first_seen=first) == ["a.csv"]
    assert ready(ahead, ahead, now=2031.0, settle=30) == []  # no first look known: now


def test_a_file_given_an_old_time_just_now_settles_from_its_change_time() -> None:
    landed = {"b.csv": Seen(10, 1000.0, ctime=5000.0)}  # set back to the PC's time at 5000
    assert ready(landed, landed, now=5010.0, settle=30) == []
    assert ready(landed, landed, now=5031.0, settle=30) == ["b.csv"]


def test_a_file_written_again_after_its_close_waits_for_the_next_close() -> None:
    events = Events()
    events.completed("c.csv", 10)
    events.written("c.csv")
    listing = {"c.csv": Seen(20, 1000.0)}
    assert ready(listing, listing, now=5000.0, settle=30, events=events) == []
    events.completed("c.csv", 20)
    assert ready(listing, listing, now=5000.0, settle=30, events=events) == ["c.csv"]
    # a size that is not the size at the close (an event missed) is not complete
    assert ready({"c.csv": Seen(25, 1000.0)}, {}, now=5000.0, settle=0, events=events) == []


def test_names_inotify_never_spoke_of_fall_back_to_the_settle_time() -> None:
    """There before the watch began, or after the event queue overflowed."""
    events = Events()
    listing = {"old.csv": Seen(10, 1000.0)}
    assert ready(listing, {}, now=5000.0, settle=30, events=events) == []  # one look
    assert ready(listing, listing, now=1010.0, settle=30, events=events) == []  # too recent
    assert ready(listing, listing, now=5000.0, settle=30, events=events) == ["old.csv"]
    events.written("old.csv")
    assert ready(listing, listing, now=5000.0, settle=30, events=events) == []
    events.forget()  # overflow
    assert ready(listing, listing, now=5000.0, settle=30, events=events) == ["old.csv"]


def test_with_inotify_an_entry_refused_unread_is_taken_at_the_first_look() -> None:
    """A symbolic link, FIFO, folder or hard link is never closed after writing."""
    events = Events()
    events.written("leak.csv")
    listing = {
        "leak.csv": Seen(20, 1000.0, stat.S_IFLNK | 0o777),
        "hard.csv": Seen(20, 1000.0, stat.S_IFREG | 0o644, nlink=2),
    }
    assert ready(listing, {}, now=1000.0, settle=30, events=events) == ["hard.csv", "leak.csv"]


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 27 0:40 / /var/lib/syncd rw,relatime - nfs4 srv:/export rw
41 40 0:41 / /var/lib/syncd/local\\040inbox rw - tmpfs tmpfs rw
42 27 0:42 / /mnt/hr rw - fuse.sshfs hr@host:/drop rw
"""


def test_the_inbox_filesystem_decides_whether_inotify_can_be_trusted() -> None:
    assert filesystem_of("/var/lib/syncd/inbox", MOUNTINFO) == "nfs4"
    assert filesystem_of("/var/lib/syncd/local inbox", MOUNTINFO) == "tmpfs"
    assert filesystem_of("/var/lib/syncdx/inbox", MOUNTINFO) == "ext4"
    assert filesystem_of("/mnt/hr/inbox", MOUNTINFO) == "fuse.sshfs"
    assert not inotify_sees_all_writes("nfs4")
    assert not inotify_sees_all_writes("cifs")
    assert not inotify_sees_all_writes("fuse.sshfs")
    assert inotify_sees_all_writes("ext4") and inotify_sees_all_writes("tmpfs")


def test_after_a_restart_a_newer_file_waits_for_the_older_ones_still_settling() -> None:
    """Found by an attack: files there before the watch began wait out the settle rule, and
    a file dropped a minute later, complete by inotify at once, was applied first (a
    departure file then planned three revocations instead of one)."""
    events = Events()
    events.completed("new.csv", 10)  # dropped after the restart
    listing = {"old.csv": Seen(10, 1000.0), "new.csv": Seen(10, 2000.0)}
    assert ready(listing, {}, now=2000.0, settle=30, events=events) == []  # old.csv settles
    assert ready(listing, listing, now=2100.0, settle=30, events=events) == ["old.csv", "new.csv"]
    # an older file inotify sees being written holds nothing back: its drop is its close
    events.written("old.csv")
    assert ready(listing, listing, now=2100.0, settle=30, events=events) == ["new.csv"]


def test_with_the_settle_rule_a_file_still_changing_holds_nothing_back() -> None:
    before = {"busy.csv": Seen(10, 1000.0), "b.csv": Seen(10, 1500.0)}
    now = {"busy.csv": Seen(20, 1000.0), "b.csv": Seen(10, 1500.0)}  # written again, old time
    assert ready(now, before, now=5000.0, settle=30) == ["b.csv"]
    assert ready(now, now, now=5000.0, settle=30) == ["busy.csv", "b.csv"]


def test_a_name_new_at_each_look_holds_nothing_back() -> None:
    """Found by an attack: a file renamed at every look, with an old time, held every newer
    file for as long as the renames went on (settle rule)."""
    before = {"h1.csv": Seen(10, 1000.0), "real.csv": Seen(10, 1500.0)}
    now = {"h2.csv": Seen(10, 1000.0), "real.csv": Seen(10, 1500.0)}
    assert ready(now, before, now=5000.0, settle=30) == ["real.csv"]
