"""Issue "A safe inbox", items 1 and 5: which inbox entries are read, and how names are shown."""

from __future__ import annotations

import stat

from syncd.inbox import Seen, is_candidate, kind_problem, name_problem, ready, safe_name

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
