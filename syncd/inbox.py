"""Which files in the HR inbox are complete and may be taken (pure; the watcher asks).

A file is taken when it is complete, by any of three documented conventions:
- a ``<name>.done`` marker beside it (the sender writes it last);
- it was renamed into place: uploads under a temporary name (``.part``, ``.tmp``, a leading dot,
  Office's ``~$`` lock files) are never taken, so rename-on-completion just works;
- it stopped changing: the same size and mtime at two looks, the last change at least
  ``settle`` seconds ago.

What is taken must also be safe to read (``kind_problem``: a regular file with one name, never a
symbolic link, hard link, directory or FIFO) and have a roster's name (``name_problem``); the
rest is filed as rejected, unread. Names in reports go through ``safe_name`` (one line).
"""

from __future__ import annotations

import stat
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload", ".filepart", ".swp")
OWN_SUFFIXES = (".done", ".report.txt")


@dataclass(frozen=True)
class Seen:
    size: int
    mtime: float


def is_candidate(name: str) -> bool:
    lower = name.lower()
    return not (lower.startswith((".", "~$")) or lower.endswith(TEMPORARY_SUFFIXES + OWN_SUFFIXES))


def ready(
    listing: Mapping[str, Seen], previous: Mapping[str, Seen], now: float, settle: float
) -> list[str]:
    """The names that are complete now, oldest first (the order HR sent them: a newer file
    is HR's later word and must be applied last), names breaking ties."""
    out = []
    for name, seen in sorted(listing.items(), key=lambda kv: (kv[1].mtime, kv[0])):
        if not is_candidate(name):
            continue
        if f"{name}.done" in listing or (previous.get(name) == seen and now - seen.mtime >= settle):
            out.append(name)
    return out


# -- what is never read ---------------------------------------------------------------------

MAX_NAME_BYTES = 200  # room for ".report.txt" and a timestamp within the 255 of a file name
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, format, line separators


def safe_name(name: str) -> str:
    """``name`` on one line, for reports and logs: a control, format or line-separator
    character (a newline would forge a report line) and an undecodable byte are escaped as
    ``\\xNN`` / ``\\uNNNN``; bounded to ``MAX_NAME_BYTES`` of UTF-8."""
    out = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.listdir hands it over
            out.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(ch) in _INVISIBLE:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    while len(text.encode("utf-8")) > MAX_NAME_BYTES:
        text = text[:-1]
    return text


def name_problem(name: str, suffixes: Collection[str]) -> str | None:
    """Why ``name`` (a candidate: not temporary, not hidden) is not a roster's name, or None."""
    problems = []
    if safe_name(name) != name:
        if any(unicodedata.category(c) in _INVISIBLE for c in name):
            problems.append("the name has a control or invisible character (shown escaped)")
        else:
            problems.append(f"the name is longer than {MAX_NAME_BYTES} bytes")
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".xls":
        problems.append("old Excel .xls is not supported; save it as .xlsx or CSV")
    elif suffix not in suffixes:
        kinds = ", ".join(sorted(suffixes))
        problems.append(f"not a roster's file type ({kinds})")
    return "; ".join(problems) or None


def kind_problem(mode: int, nlink: int) -> str | None:
    """Why a directory entry (``lstat``, or ``fstat`` of what was opened) is not read, or None:
    only a regular file with one name is. A symbolic link would read its target (a secret the
    uploader cannot read), a hard link another name's file, a FIFO would block the reader."""
    for test, what in (
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "device"),
        (stat.S_ISBLK, "device"),
    ):
        if test(mode):
            return f"{what}: not read"
    if not stat.S_ISREG(mode):
        return "not a regular file: not read"
    if nlink != 1:
        return f"hard link ({nlink} names for one file): not read"
    return None
