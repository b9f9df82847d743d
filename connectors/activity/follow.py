"""Reading a log file incrementally across rotations, from a saved position.

The position is the live file's inode, the offset reached, and a digest of the file's first
bytes (its identity: an inode can be reused, and a compressed copy has a new one). On the next
read:

- the same file, grown: read from the offset;
- the same inode, shorter than the offset or with other first bytes: the file was truncated
  (``copytruncate``), read it from the start;
- another file: it was rotated. The file that was being read is found among the rotated ones
  (``<log>.1``, ``<log>.1.gz``, ``<log>.2.gz``, …) by its first bytes, finished from the
  offset, then every newer file is read whole, oldest first;
- a position that matches no file any more: every file is read again from the start, and the
  caller is told why. Nothing is ever skipped silently; reading a line twice is harmless (only
  the newest time per address counts).

Only complete lines of the live file are consumed: a line being written is read next time.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

HEAD = 4096  # bytes of a file's start that identify it


@dataclass(frozen=True)
class Line:
    """One line of a log, where it was (for error messages), and its file's mtime (the year
    rule of syslog time stamps)."""

    file: Path
    offset: int  # byte offset of the line in the (uncompressed) file
    text: str
    mtime: datetime


def _open(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return cast(BinaryIO, gzip.open(path, "rb"))
    return path.open("rb")


def _head(path: Path, length: int) -> str | None:
    """The digest of the first ``length`` bytes of ``path`` (decompressed), None if it has
    fewer or cannot be read."""
    try:
        with _open(path) as fh:
            data = fh.read(length)
    except (OSError, EOFError):
        return None
    if len(data) < length:
        return None
    return hashlib.sha256(data).hexdigest()


def rotated(path: Path) -> list[Path]:
    """The rotated copies of ``path`` (``.1``, ``.2.gz`` …), oldest first."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)(\.gz)?")
    found = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def _identity(path: Path) -> dict[str, Any]:
    st = path.stat()
    length = min(st.st_size, HEAD)
    return {"inode": st.st_ino, "head_len": length, "head": _head(path, length) or ""}


class Follower:
    """The new lines of one log and its rotations since ``where`` (a saved position)."""

    def __init__(self, path: Path, where: dict[str, Any]) -> None:
        self.path = path
        self.where = where
        self.note = ""  # why a re-read from the start happened, for the log
        self.position: dict[str, Any] = {}

    def _plan(self) -> list[tuple[Path, int]]:
        """Which files to read, oldest first, each from which offset."""
        live = self.path if self.path.exists() else None
        old = rotated(self.path)
        tail = [live] if live else []
        w = self.where
        if not w:
            return [(p, 0) for p in old + tail]
        offset, head_len, head = int(w["offset"]), int(w["head_len"]), str(w["head"])
        same_inode = live is not None and live.stat().st_ino == w["inode"]
        if (
            live is not None
            and same_inode
            and live.stat().st_size >= offset
            and _head(live, head_len) == head
        ):
            return [(live, offset)]
        # rotated (a new live file) or copied and truncated (copytruncate): the file being
        # read is among the rotated copies, with the lines written since the last read
        for i in range(len(old) - 1, -1, -1):
            if _head(old[i], head_len) == head:
                return [(old[i], offset)] + [(p, 0) for p in old[i + 1 :] + tail]
        if same_inode:
            self.note = f"{live} was truncated: read again from its start"
            return [(p, 0) for p in tail]
        self.note = (
            f"{self.path}: the saved position (inode {w['inode']}, offset {offset}) matches "
            "no file any more: every file is read again from the start"
        )
        return [(p, 0) for p in old + tail]

    def lines(self) -> Iterator[Line]:
        """Every new line; once exhausted, :attr:`position` is where the next read starts."""
        plan = self._plan()
        for path, start in plan:
            is_live = path == self.path
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            with _open(path) as fh:
                if start:
                    try:
                        fh.seek(start)
                    except (OSError, EOFError):  # a compressed copy shorter than the offset
                        fh.seek(0)
                        start = 0
                pos = start
                for raw in fh:
                    if is_live and not raw.endswith(b"\n"):
                        break  # being written: next time
                    yield Line(path, pos, raw.decode("utf-8", "replace").rstrip("\r\n"), mtime)
                    pos += len(raw)
            if is_live:
                self.position = {**_identity(path), "offset": pos}
        if not self.path.exists():
            self.position = dict(self.where)  # nothing live yet: keep what we knew
