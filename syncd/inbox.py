"""Which files in the HR inbox are complete and may be taken (pure; the watcher asks).

A file is taken when it is complete:
- a ``<name>.done`` marker beside it (the sender writes it last);
- with inotify (``Events``): it was closed after writing or renamed into the folder, and has not
  been written since. A copy that stalls mid-write is not closed, so it is never taken however
  long it stalls; a file renamed in is taken at once whatever its mtime. Uploads under a
  temporary name (``.part``, ``.tmp``, a leading dot, Office's ``~$`` lock files) are never
  taken, so rename-on-completion just works;
- without inotify (an inbox on NFS, CIFS or FUSE, where another machine's writes make no event;
  or inotify could not start), and for a name inotify said nothing about (there before the
  watch began, or after the event queue overflowed): it stopped changing, the same size and
  mtime at two looks, the last change at least ``settle`` seconds ago.

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
    """An inbox entry as ``lstat`` sees it (a link is never followed)."""

    size: int
    mtime: float
    mode: int = stat.S_IFREG | 0o600
    nlink: int = 1
    ctime: float = 0.0  # the inode's change time: this host's (or the file server's) clock

    @property
    def stamp(self) -> float:
        """When the entry last changed by its own times: the later of the modification time
        (which an SFTP client sets to the PC's, WinSCP by default) and the change time (set
        by the kernel at that write or that setting of the times, never by a user)."""
        return max(self.mtime, self.ctime)


class Events:
    """What inotify said about each name of the inbox since the watch began: a name is
    *complete* after a close-after-write or a move into the folder, with the size it had then,
    until it is written again. The watcher feeds it; ``ready`` asks it."""

    def __init__(self) -> None:
        self._complete: dict[str, int] = {}
        self._writing: set[str] = set()

    def written(self, name: str) -> None:
        """Created or written to (IN_CREATE, IN_MODIFY): not complete, whatever came before."""
        self._complete.pop(name, None)
        self._writing.add(name)

    def completed(self, name: str, size: int) -> None:
        """Closed after writing (IN_CLOSE_WRITE) or moved in (IN_MOVED_TO), ``size`` bytes."""
        self._writing.discard(name)
        self._complete[name] = size

    def gone(self, name: str) -> None:
        """Deleted or moved away: a new file under the name starts afresh."""
        self._complete.pop(name, None)
        self._writing.discard(name)

    def forget(self) -> None:
        """Events were lost (the queue overflowed, the folder was replaced): every name is
        judged by the settle rule until inotify speaks of it again."""
        self._complete.clear()
        self._writing.clear()

    def known(self, name: str) -> bool:
        return name in self._complete or name in self._writing

    def complete(self, name: str, size: int) -> bool:
        """Closed or moved in, not written since, and of the size it had then (a change that
        made no event, had one been missed, is never taken for complete)."""
        return self._complete.get(name) == size


def is_candidate(name: str) -> bool:
    lower = name.lower()
    return not (lower.startswith((".", "~$")) or lower.endswith(TEMPORARY_SUFFIXES + OWN_SUFFIXES))


def ready(
    listing: Mapping[str, Seen],
    previous: Mapping[str, Seen],
    now: float,
    settle: float,
    events: Events | None = None,
    first_seen: Mapping[str, float] | None = None,
) -> list[str]:
    """The names that are complete now, oldest first (the order HR sent them: a newer file
    is HR's later word and must be applied last), names breaking ties.

    ``events`` None: the settle rule alone. With events, a name inotify spoke of is complete
    when ``events`` says so, at once (no settle wait: the close or the rename is the signal);
    an entry that is not a regular file with one name is taken at once (it is refused unread,
    and a symbolic link or a FIFO is never closed after writing).

    A newer entry waits while an older one is *settling*: judged by the settle rule (no
    event: there before the watch began, or after events were lost) and unchanged since the
    last look, so complete at a later look. Else, after a restart, a file dropped a minute
    later through inotify was applied before the older files waiting out their settle time
    (found by an attack: a departure file planned three revocations instead of one, the
    earlier file adding two people not applied yet). An entry still being written holds
    nothing back: its drop is when its writing ends.

    The settle rule counts from the entry's ``stamp``, or, when that is ahead of ``now`` (a
    PC or a file server whose clock is ahead, its times kept by the upload), from
    ``first_seen``: the watcher's first look at the entry as it is now. Counted from a stamp
    a day ahead, a file waited a day, and every newer one behind it (found by an attack)."""
    out = []
    for name, seen in sorted(listing.items(), key=lambda kv: (kv[1].mtime, kv[0])):
        if not is_candidate(name):
            continue
        refused_unread = kind_problem(seen.mode, seen.nlink) is not None
        by_events = events is not None and events.known(name)
        if f"{name}.done" in listing or (events is not None and refused_unread):
            complete = True
        elif events is not None and by_events:
            complete = events.complete(name, seen.size)
        else:
            since = seen.stamp
            if since > now:
                since = (first_seen or {}).get(name, now)
            complete = previous.get(name) == seen and now - since >= settle
        if complete:
            out.append(name)
        elif not by_events and (previous.get(name) == seen or not previous):
            # settling: what is newer waits for it. Unchanged since the last look, or there
            # at the watcher's first look (a restart); not a name new since the last look,
            # or one renamed at each look would hold the inbox for ever (found by an attack)
            break
    return out


# Filesystems where inotify does not see every write: another machine's writes to a network
# or cluster filesystem, a FUSE daemon's own, make no event here.
UNWATCHABLE_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs", "lustre",
     "gpfs", "ocfs2", "gfs2", "virtiofs", "vboxsf", "fuse", "fuseblk"}
)  # fmt: skip


def inotify_sees_all_writes(fstype: str) -> bool:
    """Whether inotify sees every write to a folder on ``fstype`` (``fuse.sshfs`` and the
    like are FUSE)."""
    return fstype not in UNWATCHABLE_FILESYSTEMS and not fstype.startswith("fuse.")


def filesystem_of(path: str, mountinfo: str) -> str | None:
    """The type of the filesystem ``path`` (absolute, links resolved) is on, from the text
    of ``/proc/self/mountinfo``: the longest mount point above it; None if none is."""
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:
            point = _unescape(fields[4])
            fstype = fields[fields.index("-") + 1]
        except (IndexError, ValueError):
            continue
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fstype)
    return best[1] if best else None


def _unescape(field_text: str) -> str:
    """mountinfo writes a space, tab, newline and backslash in a path as octal ``\\040``."""
    out, i = [], 0
    while i < len(field_text):
        chunk = field_text[i : i + 4]
        if len(chunk) == 4 and chunk[0] == "\\" and chunk[1:].isdigit():
            out.append(chr(int(chunk[1:], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


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
