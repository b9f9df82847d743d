"""The HR inbox: take complete files, reconcile each, file it with a report beside it.

Layout, next to ``paths.inbox``: ``processing/`` (being applied; a file left there by a crash
or an unreachable directory is retried first), ``processed/YYYY/MM/`` and ``rejected/``. Every
file gets ``<name>.report.txt`` (Vietnamese and English) beside it. The same content dropped
twice is recognised by its sha256 and not applied twice. A file that cannot be read or moved
is reported and skipped: it never stops the watcher.

Only a regular file with one name is read, through a descriptor opened with ``O_NOFOLLOW``
once the entry sits in the private ``processing/`` (0700): a symbolic link (HR's SFTP makes
them: ``leak.csv -> /run/credentials/.../bind-password``), hard link, FIFO, socket
or device is moved as it is (the link, never its target) to ``rejected/`` with a report saying
why, and never opened for reading. A folder is not moved: a report in ``rejected/`` says why,
and the folder stays in the inbox as HR put it, HR's to empty or delete (``inbox-left.json``
in the state folder remembers it, so it is reported once). Moved under ``rejected/``, it stayed
HR's to write into, and syncd, which may not delete what HR keeps in it, could not delete it
when its time came; a folder HR made without group write could not even be moved (a rename
to another folder needs write on the folder itself), and was tried at every look for ever.
A name that is not a roster's (another file type, a control character) is rejected the same
way, unread, under an escaped one-line name. Temporary and hidden names wait silently (a debug
line). The report of a file that is not a roster says what
was wrong and where (byte offsets), never the file's content.

When a file is complete is ``syncd.inbox``'s rule; this watcher feeds it inotify's events
(``daemon.inbox_readiness``: inotify unless the inbox is on a filesystem where inotify misses
writes, or it cannot start; then the settle time). A file that changes after it was taken (an
upload still running: its size, times or inode differ between the take and the end of the
parse) is refused before anything is applied and filed in ``rejected/`` with a report asking
HR to send it again complete: the bytes read are not what HR sent, and taking it again later
could catch another half-written state.

Filing. Once a file's run has ended, what is left to do for it (its place in ``processed/`` or
``rejected/``, its text report, HR's result already rendered, the organisations it is now the
latest accepted roster of) is first kept in ``processing/.<name>.filing/`` (synced, named
whole by a rename), and only then done: the registry of accepted rosters and the content
hashes, syncd's copy of the file in its place, the report and HR's result beside it, the
entry in ``processing/`` removed, then the kept folder. Each step may be done twice, never
half: a crash anywhere in it leaves the entry in ``processing/`` with the kept folder, and the
next look finishes the filing without running the file again (a second run of an applied file
plans nothing, and its result would tell HR nothing happened). Before, a kill between filing
the file and writing HR's result left HR without a result for good, and the content hash
unrecorded (the same file dropped again was run again).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from inotify_simple import INotify
from inotify_simple import flags as in_flags

from connectors import runner
from connectors.audit import fsync_dir
from connectors.config import Config
from connectors.crashpoints import crash_point
from connectors.hr_files import (
    RESULT_SUFFIX,
    operator_copy_path,
    render_hr_result,
    write_rendered,
)
from connectors.loading import ROSTER_SUFFIXES, NotRead, read_checked, too_big
from connectors.outcome import RunOutcome, report_text
from connectors.runlock import LockBusy
from connectors.snapshots import SnapshotRegistry
from connectors.store import make_dirs, private_dir, write_private
from connectors.waiting import readable
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
from syncd.model import Plan
from syncd.ports import DirectoryError

log = structlog.get_logger("syncd.inbox")

# what syncd writes beside each file it files: its text report, then HR's result
REPORT_SUFFIX = ".report.txt"
BESIDE_FILED = (REPORT_SUFFIX, RESULT_SUFFIX + ".xlsx", RESULT_SUFFIX + ".html")


@dataclass
class InboxResult:
    processed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)  # the directory failed: its back-off
    waiting: list[str] = field(default_factory=list)  # stopped, or failed: tried again
    last: RunOutcome | None = None


MAX_TRIES = 3  # a file that failed this many times (not the directory's fault) is rejected


# what the inbox watch listens to: files completed, written, created, gone; the folder itself
_WATCH = (
    in_flags.CLOSE_WRITE
    | in_flags.MOVED_TO
    | in_flags.CREATE
    | in_flags.MODIFY
    | in_flags.DELETE
    | in_flags.MOVED_FROM
    | in_flags.DELETE_SELF
    | in_flags.MOVE_SELF
    | in_flags.ONLYDIR
)
_FOLDER_GONE = in_flags.IGNORED | in_flags.DELETE_SELF | in_flags.MOVE_SELF | in_flags.UNMOUNT


class FileChanged(Exception):
    """The file changed between its take and the end of its parse: still being written."""


FILING = ".filing"  # processing/.<name>.filing/: what is left to do for a file whose run ended


@dataclass(frozen=True)
class Filing:
    """What is left to do for one inbox file once its run ended (module docstring, "Filing")."""

    digest: str  # the sha256 of the bytes run: a kept filing is only for those bytes
    where: str  # "processed" or "rejected"
    target: str  # where syncd's copy of the file goes (its report and result beside it)
    report: str
    orgs: list[str]  # processed: the organisations it is now the latest accepted roster of
    run_id: str
    when: str


class InboxWatcher:
    def __init__(self, config: Config, settle: float = 30.0, readiness: str | None = None) -> None:
        self.config = config
        self.settle = settle
        self.readiness = readiness or config.daemon.inbox_readiness
        self.mode = "not started"  # "inotify", or "settle: <why>" (status.json says it)
        self._notify: INotify | None = None
        self._events: Events | None = None  # None: the settle rule alone
        self._decided = False
        self._closed = False
        self._lock = threading.Lock()  # the daemon's main loop waits; its job thread looks
        self.inbox = config.paths.inbox
        base = self.inbox.parent
        self.processing = base / "processing"
        self.processed = base / "processed"
        self.rejected = base / "rejected"
        self.hashes_path = config.paths.state / "inbox-hashes.json"
        self.left_path = config.paths.state / "inbox-left.json"
        # the folders reported and left (name → device, inode): read from left_path once,
        # kept here so that a state disk that cannot be written never makes a second report
        self._left: dict[str, list[int]] | None = None
        self._left_unsaved = False
        self._left_gone: set[str] = set()  # names inotify saw removed or renamed away
        self._left_lock = threading.Lock()  # the status thread asks too (backlog)
        self.registry = SnapshotRegistry(config.paths.state)
        self._previous: dict[str, Seen] = {}
        # name → (the entry as first seen so, when): the settle rule's clock for an entry
        # whose own times are ahead of this host's (``syncd.inbox.ready``)
        self._first: dict[str, tuple[Seen, float]] = {}

    # -- looking ------------------------------------------------------------------------------

    def listing(self) -> dict[str, Seen]:
        """Every entry of the inbox as ``lstat`` sees it (a link is never followed)."""
        out: dict[str, Seen] = {}
        try:
            entries = list(os.scandir(self.inbox))
        except OSError:
            return out
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            out[entry.name] = Seen(st.st_size, st.st_mtime, st.st_mode, st.st_nlink, st.st_ctime)
        return out

    # -- inotify --------------------------------------------------------------------------------

    def start(self) -> None:
        """Decide how completeness is known (once; again if the inbox folder is replaced)."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._decided or self._closed:
            return
        if self.readiness == "settle":
            self._settle("daemon.inbox_readiness is settle")
            return
        fstype = _filesystem(self.inbox)
        if self.readiness == "auto" and fstype and not inotify_sees_all_writes(fstype):
            self._settle(f"the inbox is on {fstype}, where inotify misses other machines' writes")
            return
        try:
            notify = INotify(nonblocking=True)
        except OSError as exc:
            self._settle(f"inotify cannot start: {exc.strerror}")
            return
        try:
            notify.add_watch(self.inbox, _WATCH)
        except OSError as exc:
            notify.close()
            if exc.errno != errno.ENOENT:  # a missing inbox is watched once it exists
                self._settle(f"inotify cannot watch the inbox: {exc.strerror}")
            return
        self._notify, self._events = notify, Events()
        self.mode, self._decided = "inotify", True
        log.info("inbox readiness: inotify", inbox=str(self.inbox), filesystem=fstype)

    def _settle(self, why: str) -> None:
        """The settle time alone: said as a warning unless the configuration asked for it."""
        self.mode, self._decided = f"settle: {why}", True
        say = log.info if self.readiness == "settle" else log.warning
        say(
            "inbox readiness: a file is complete once unchanged for the settle time",
            reason=why,
            settle_seconds=self.settle,
        )

    def _unwatch(self) -> None:
        if self._notify is not None:
            with contextlib.suppress(OSError):
                self._notify.close()
        self._notify, self._events, self._decided = None, None, False

    def close(self) -> None:
        """Stop watching (the daemon replaces its watcher on SIGHUP)."""
        with self._lock:
            self._unwatch()
            self._closed = True

    def watching(self) -> bool:
        with self._lock:
            self._start()
            return self._notify is not None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for inotify; True when an entry may have become
        ready (the daemon then looks at once instead of at its next poll)."""
        with self._lock:
            self._start()
            notify = self._notify
        if notify is None:
            return False
        try:
            if not readable(notify.fileno(), timeout):
                return False
        except (OSError, ValueError):  # closed meanwhile (folder replaced, reload)
            return False
        with self._lock:
            return self._pump()

    def _pump(self) -> bool:
        """Feed pending inotify events to ``Events``; True when one may make an entry ready."""
        if self._notify is None or self._events is None:
            return False
        try:
            events = self._notify.read(timeout=0)
        except BlockingIOError:
            return False
        except (OSError, ValueError) as exc:
            log.warning("inbox: inotify failed; watching again", error=str(exc))
            self._unwatch()
            return True
        woke = False
        for event in events:
            if event.mask & in_flags.Q_OVERFLOW:
                self._events.forget()  # events lost: the settle rule until names speak again
                woke = True
            elif event.mask & _FOLDER_GONE:
                log.warning("inbox: the folder was removed or moved; watching again")
                self._unwatch()
                return True
            elif event.name:
                woke |= self._event(event.name, event.mask)
        return woke

    def _event(self, name: str, mask: int) -> bool:
        assert self._events is not None
        if mask & (in_flags.DELETE | in_flags.MOVED_FROM):
            self._events.gone(name)
            self._left_gone.add(name)  # a folder of that name made again is another one
            return False
        try:
            st = os.lstat(self.inbox / name)
        except OSError:
            self._events.gone(name)
            return False
        if mask & (in_flags.CLOSE_WRITE | in_flags.MOVED_TO):
            self._events.completed(name, st.st_size)
            return True
        self._events.written(name)
        # a link, folder, FIFO or hard link is never closed after writing: take it now
        return kind_problem(st.st_mode, st.st_nlink) is not None

    def backlog(self) -> int:
        left = self._left_folders()
        pending = [n for n in self.listing() if is_candidate(n) and n not in left]
        stuck = self._stuck()
        return len(pending) + len(stuck)

    def left_folders(self) -> list[str]:
        """The folders HR dropped in the inbox, reported and left there (``syncd status``)."""
        return sorted(self._left_folders())

    def filing_waits(self) -> list[str]:
        """The files of ``processing/`` whose run ended and whose filing is kept, waiting
        (``processed/`` read-only or full): applied, not yet filed (``syncd status``)."""
        return [p.name for p in self._stuck() if (self.processing / f".{p.name}{FILING}").is_dir()]

    def _stuck(self) -> list[Path]:
        try:
            return sorted(p for p in self.processing.iterdir() if is_candidate(p.name))
        except OSError:
            return []

    def _tidy_filings(self) -> None:
        """Kept filings with nothing left to do: one whose entry is gone was finished (the
        entry goes last but one), one still being kept (``.tmp``) was cut by a crash before
        anything was filed (its entry is run again). Only from ``take``: never while the
        watcher is filing."""
        try:
            entries = list(self.processing.iterdir())
        except OSError:
            return
        names = {p.name for p in entries}
        for p in entries:
            if p.name.endswith(FILING + ".tmp") or (
                p.name.endswith(FILING) and p.name[1 : -len(FILING)] not in names
            ):
                shutil.rmtree(p, ignore_errors=True)

    def take(self, now: float) -> list[Path]:
        """Entries ready now: first any left in processing/, then complete inbox entries
        (whatever they are: ``process`` reads only what is safe to read)."""
        self._tidy_filings()
        with self._lock:
            self._start()
            self._pump()
            listing = self.listing()
            gone, self._left_gone = self._left_gone, set()
            for name in self._left_folders(gone):
                listing.pop(name, None)
            self._save_left()
            firsts: dict[str, tuple[Seen, float]] = {}
            for name, seen in listing.items():
                first = self._first.get(name)
                firsts[name] = first if first is not None and first[0] == seen else (seen, now)
            self._first = firsts
            first_seen = {name: when for name, (_, when) in firsts.items()}
            names = ready(listing, self._previous, now, self.settle, self._events, first_seen)
        for name in sorted(listing.keys() - self._previous.keys()):
            ahead = listing[name].stamp - now
            if ahead > 60 and is_candidate(name):
                log.warning(
                    "inbox: the file's time is ahead of this host's clock (the sending PC's "
                    "clock?); its settle time counts from now, and it is ordered by that time",
                    file=safe_name(name),
                    ahead_seconds=int(ahead),
                )
        for name in sorted(listing.keys() - self._previous.keys()):
            if not is_candidate(name):
                log.debug(
                    "inbox: temporary, hidden or marker name; waiting for it to be renamed",
                    file=safe_name(name),
                )
        self._previous = listing
        return self._stuck() + [self.inbox / n for n in names]

    # -- processing ---------------------------------------------------------------------------

    def _hashes(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.hashes_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def _file(
        self,
        path: Path,
        folder: Path,
        report: str,
        rename_only: bool = False,
        content: bytes | None = None,
    ) -> Path:
        """Move ``path`` into ``folder`` with its report beside it, both readable by the
        folder's group (HR reads its reports: docs/install.md), nobody else. The name is made
        one-line safe; an entry not read moves by ``rename`` only (the entry itself, never a
        copy of what it points to).

        With ``content`` (the bytes syncd read and decided on), the filed file is syncd's own
        copy of exactly those bytes, 0640 in the folder's group, and the uploader's entry is
        removed: a renamed file stays its uploader's to rewrite (found by an attack: a file
        rejected for the safety limit, whose report tells the operator to apply it with
        ``--allow-mass-change``, could be rewritten by HR after the operator read it)."""
        gid = self._hr_folder(folder)
        target = _target(folder, path.name)
        if rename_only:
            os.rename(path, target)
        elif content is not None:
            _write_own_copy(target, content, gid)
            path.unlink()
        else:
            shutil.move(str(path), target)
        report_path = target.with_name(target.name + REPORT_SUFFIX)
        write_private(report_path, report, mode=0o640)
        _give_group(report_path, gid)
        return target

    def _hr_folder(self, folder: Path) -> int:
        """Make ``folder`` (``processed/YYYY/MM``, ``rejected/``) 0750 in the group of the
        folder HR reads (``processed/``, ``rejected/``: ``hrdrop`` as install.md makes them);
        return that group. Never with the setgid bit: the unit's ``RestrictSUIDSGID=yes``
        refuses any chmod or mkdir asking for it (EPERM: the first roster of each month was
        retried for ever). A folder made under a setgid parent inherits the group anyway;
        ``chmod`` gives the group its read access back from the unit's umask (0077), and an
        explicit ``chown`` to the group syncd belongs to makes it right where setgid was not
        inherited. Reports get the same group (``_give_group``)."""
        top = self.processed if folder.is_relative_to(self.processed) else self.rejected
        missing = []
        at = folder
        while not at.exists():
            missing.append(at)
            at = at.parent
        for made in reversed(missing):
            made.mkdir(mode=0o750, exist_ok=True)
            os.chmod(made, 0o750)  # noqa: S103 - HR's group reads its reports
        gid = top.stat().st_gid
        for made in missing:
            _give_group(made, gid)
        return gid

    # -- folders HR dropped: reported once, left where HR put them -----------------------------

    def _left_read(self) -> dict[str, list[int]]:
        try:
            data = json.loads(self.left_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            k: v
            for k, v in data.items()
            if isinstance(v, list) and len(v) == 2 and all(isinstance(i, int) for i in v)
        }

    def _left_map(self) -> dict[str, list[int]]:
        """The folders left, read from ``inbox-left.json`` once (under ``_left_lock``)."""
        if self._left is None:
            self._left = self._left_read()
        return self._left

    def _left_folders(self, gone: set[str] | frozenset[str] = frozenset()) -> set[str]:
        """The inbox's folders already reported and left as they are: the same folder (device
        and inode) under the same name. One removed or replaced is forgotten: a new folder of
        that name is reported in its turn. ``gone``: names inotify saw removed or renamed
        away since the last look (a folder removed and made again between two looks may get
        the same inode number back: found by an attack)."""
        with self._left_lock:
            left = self._left_map()
            still: dict[str, list[int]] = {}
            for name, ident in left.items():
                if name in gone:
                    continue
                try:
                    st = os.lstat(self.inbox / name)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode) and [st.st_dev, st.st_ino] == ident:
                    still[name] = ident
            if still != left:
                self._left, self._left_unsaved = still, True
            return set(still)

    def _save_left(self) -> None:
        """Keep the folders left in ``inbox-left.json`` when they changed (once per look,
        never per folder: thousands of folders rewrote the file thousands of times, 32 s for
        3,000, found by an attack); a state disk that cannot be written is a warning: this
        process still remembers them."""
        with self._left_lock:
            if not self._left_unsaved or self._left is None:
                return
            try:
                write_private(self.left_path, json.dumps(self._left, indent=1))
            except OSError as exc:
                log.warning("inbox: cannot keep the folders left", error=exc.strerror)
                return
            self._left_unsaved = False

    def _leave(self, path: Path, st: os.stat_result, why: str) -> str:
        """A folder HR dropped in the inbox: a report in ``rejected/`` saying why, and the
        folder left where it is, never entered or moved (module docstring). Remembered once
        the report is written (a report that cannot be written is tried again at the next
        look, the folder still in place: ``_failed``)."""
        name = safe_name(path.name)
        report = (
            f"syncd — {name}/\n"
            f"Từ chối, không đọc / rejected, not read: {why}.\n"
            "Thư mục được để nguyên trong hộp thư đến; syncd không mở, không chuyển, không xoá "
            "nó. Hãy chuyển các tệp danh sách ra ngay trong hộp thư đến (không trong thư mục "
            "con), rồi xoá thư mục / The folder was left in the inbox as it is; syncd does not "
            "open, move or delete it. Move the roster files to the top of the inbox (not in a "
            "folder), then delete the folder.\n"
        )
        gid = self._hr_folder(self.rejected)
        report_path = _target(self.rejected, path.name)
        report_path = report_path.with_name(report_path.name + REPORT_SUFFIX)
        write_private(report_path, report, mode=0o640)
        _give_group(report_path, gid)
        with self._left_lock:
            self._left_map()[path.name] = [st.st_dev, st.st_ino]
            self._left_unsaved = True
        log.warning("inbox folder left in the inbox, not read", file=name, reason=why)
        return "rejected"

    def _refuse(self, path: Path, why: str) -> str:
        """File ``path`` in rejected/ unread: the entry itself, with a report saying why."""
        name = safe_name(path.name)
        report = (
            f"syncd — {name}\n"
            f"Từ chối, không đọc / rejected, not read: {why}.\n"
            "Hãy gửi chính tệp danh sách (tệp thường .csv, .tsv, .txt, .xlsx, .xlsm) / "
            "send the roster itself: a regular file named .csv, .tsv, .txt, .xlsx or .xlsm.\n"
        )
        self._file(path, self.rejected, report, rename_only=True)
        log.warning("inbox entry rejected unread", file=name, reason=why)
        return "rejected"

    def _open_checked(self, path: Path) -> tuple[bytes, os.stat_result] | str:
        """The bytes of ``path`` and their ``fstat`` (``loading.read_checked``: the one rule
        for reading what HR put in the inbox), or why it is not read. A file syncd cannot
        open or read (HR uploaded it mode 000, say) is HR's to send again, not the
        directory's fault: it is rejected with a report, never kept for retry — retrying
        held every job behind the directory's back-off, for ever (issue 11)."""
        try:
            return read_checked(path)
        except NotRead as exc:
            return str(exc)
        except OSError as exc:
            log.warning("inbox file unreadable", file=safe_name(path.name), error=exc.strerror)
            return (
                f"syncd cannot read it ({exc.strerror}); upload it readable by the inbox's "
                "group (not mode 000)"
            )

    LAST = "last"  # the digest of the roster filed last, in the hashes file

    def _duplicate(self, hashes: dict[str, Any], digest: str) -> bool:
        """Only the roster filed last, sent again, is a mere duplicate. Once any other file
        came in between (a transfer out of another organisation, say), the same bytes are HR's
        word again and are applied (requests are carried out once whatever happens)."""
        return digest in hashes and hashes.get(self.LAST) == digest

    def process(self, path: Path, **run_kwargs: Any) -> tuple[str, RunOutcome | None]:
        """Reconcile one file; returns where it went: processed, rejected, duplicate, retry,
        waiting (stopped mid-file), held (one of its name is still in ``processing/``)."""
        marker = path.with_name(path.name + ".done")
        now = datetime.now(UTC)
        month = self.processed / f"{now:%Y}" / f"{now:%m}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return "gone", None  # taken away between the look and now: nothing to do
        # what the entry is, then its name: neither needs reading it
        problems = [
            kind_problem(st.st_mode, st.st_nlink) or too_big(st.st_size),
            name_problem(path.name, ROSTER_SUFFIXES),
        ]
        why = "; ".join(p for p in problems if p)
        if why:
            _unlink_marker(marker)
            if stat.S_ISDIR(st.st_mode) and path.parent == self.inbox:
                return self._leave(path, st, why), None
            return self._refuse(path, why), None
        # into processing/ (0700: nobody but syncd changes an entry there) before opening it
        if path.parent != self.processing:
            make_dirs(self.processing, 0o700)  # as install.md has it, not the umask's mode
            moved = self.processing / path.name
            if os.path.lexists(moved):
                # one of the same name is still there (its directory down, its filing
                # waiting): a rename would replace the bytes it applied; this one waits
                log.info("inbox: a file of the same name is still being processed; waiting",
                         file=safe_name(path.name))  # fmt: skip
                return "held", None
            os.rename(path, moved)  # the entry itself; never a copy through a link
            path = moved
        _unlink_marker(marker)
        checked = self._open_checked(path)
        if isinstance(checked, str):
            return self._refuse(path, checked), None
        raw, at_take = checked
        read = raw  # as the parse's check sees it
        digest = hashlib.sha256(raw).hexdigest()
        kept = self._kept_filing(path, digest)
        if kept is not None:  # its run ended before a crash: only its filing is left
            log.info("inbox file's run had ended; finishing its filing", file=safe_name(path.name))
            return self._finish(path, raw, kept), None
        hashes = self._hashes()
        if self._duplicate(hashes, digest):
            first = hashes[digest]
            self._file(
                path,
                month,
                f"syncd — {path.name}\nĐã xử lý trước đó / already applied: "
                f"same content as {first['file']} ({first['when']}); nothing done.\n",
                content=raw,
            )
            return "duplicate", None
        caller_on_plan = run_kwargs.pop("on_plan", None)

        def unchanged(plan: Plan) -> None:
            """Parsed and planned, nothing applied yet: the file must still be what was
            taken (the bytes hashed, and those parsed)."""
            if caller_on_plan is not None:
                caller_on_plan(plan)
            if len(read) != at_take.st_size or (why := _changed(path, at_take)):
                raise FileChanged(why or f"{at_take.st_size} bytes when taken, {len(read)} read")

        try:
            outcome = runner.run(
                self.config,
                rosters=[path],
                what=f"inbox {path.name}",
                on_plan=unchanged,
                **run_kwargs,
            )
        except FileChanged as exc:
            log.warning(
                "inbox file changed while it was read; refused, nothing applied",
                file=safe_name(path.name),
                change=str(exc),
            )
            self._file(path, self.rejected, _changed_report(safe_name(path.name), str(exc)))
            return "rejected", None
        except DirectoryError as exc:
            log.warning(
                "directory unavailable; file kept for retry", file=path.name, error=str(exc)
            )
            return "retry", None
        except LockBusy as exc:
            # another run (an operator's, the nightly one) held the lock longer than
            # daemon.lock_timeout: the file waits its turn, never a failed try (found by an
            # attack: a 15-minute run got a valid roster rejected after three such waits)
            log.info("inbox: another run holds the lock; the file waits", file=path.name,
                     error=str(exc))  # fmt: skip
            return "waiting", None
        if outcome.result is not None and outcome.result.stopped:
            log.info("stopped mid-file; it stays in processing/ and is retried", file=path.name)
            return "waiting", outcome
        shown = self._content_free(outcome, raw, path.name)
        report = report_text(shown, [path])
        refused = outcome.plan is not None and outcome.plan.refused
        whole = bool((outcome.rejected and not outcome.applied) or refused)
        folder = self.rejected if whole else month
        target = _target(folder, path.name)
        if refused:
            report += (
                f"Để áp dụng / to apply anyway: syncd reconcile --roster {target} "
                "--allow-mass-change\n"
            )
        filing = Filing(
            digest=digest,
            where="rejected" if whole else "processed",
            target=str(target),
            report=report,
            # the nightly run re-applies syncd's own private copy of the bytes applied (the
            # registry's), never ``target``, which HR's group reads
            orgs=[]
            if whole
            else sorted(
                {o for s in outcome.snapshots if s.sha256 == digest for o in s.authoritative}
            ),
            run_id=outcome.run_id,
            when=now.isoformat(timespec="seconds"),
        )
        self._keep_filing(path, filing, self._render(shown, path.name))
        return self._finish(path, raw, filing), outcome

    def _render(self, outcome: RunOutcome, name: str) -> tuple[bytes, str, str] | None:
        """HR's result rendered; a failure is logged and never stops the filing (the text
        report is there)."""
        try:
            return render_hr_result(self.config, outcome, name)
        except Exception as exc:
            log.error("HR result not written", file=safe_name(name), error=f"{type(exc).__name__}")
            return None

    def _filing_dir(self, path: Path) -> Path:
        return self.processing / f".{path.name}{FILING}"

    def _keep_filing(
        self, path: Path, filing: Filing, rendered: tuple[bytes, str, str] | None
    ) -> None:
        """What is left to do for ``path`` kept whole in ``processing/`` (0700, like the
        entry): written under a temporary name, synced, then named."""
        kept = self._filing_dir(path)
        tmp = kept.with_name(kept.name + ".tmp")
        for old in (tmp, kept):
            shutil.rmtree(old, ignore_errors=True)
        private_dir(tmp)
        write_private(tmp / "filing.json", json.dumps(asdict(filing), ensure_ascii=False))
        if rendered is not None:
            xlsx, page, operator = rendered
            write_private(tmp / "result.xlsx", xlsx)
            write_private(tmp / "result.html", page)
            write_private(tmp / "operator.html", operator)
        fsync_dir(tmp)
        os.rename(tmp, kept)
        fsync_dir(self.processing)
        crash_point("inbox filing kept")

    def _kept_filing(self, path: Path, digest: str) -> Filing | None:
        """The filing kept for ``path`` when its run ended, if it is for these bytes."""
        kept = self._filing_dir(path)
        if not kept.is_dir():
            return None
        try:
            filing = Filing(**json.loads((kept / "filing.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("inbox: a kept filing is unreadable; the file is run again",
                        file=safe_name(path.name), error=type(exc).__name__)  # fmt: skip
            filing = None
        if filing is not None and filing.digest == digest:
            return filing
        shutil.rmtree(kept, ignore_errors=True)
        return None

    def _finish(self, path: Path, raw: bytes, filing: Filing) -> str:
        """Do what ``filing`` says, each step safe to do again: accepted roster and content
        hash, syncd's copy in place, the report and HR's result beside it, then the entry in
        ``processing/``, then the kept filing."""
        target = Path(filing.target)
        if filing.where == "processed":
            self.registry.accept(raw, path.name, filing.orgs)
            hashes = self._hashes()
            hashes[filing.digest] = {"file": str(target), "when": filing.when}
            hashes[self.LAST] = filing.digest
            write_private(self.hashes_path, json.dumps(hashes, indent=1))
        gid = self._hr_folder(target.parent)
        _write_own_copy(target, raw, gid)
        report_path = target.with_name(target.name + REPORT_SUFFIX)
        write_private(report_path, filing.report, mode=0o640)
        _give_group(report_path, gid)
        crash_point("inbox filed")
        kept = self._filing_dir(path)
        try:
            xlsx = (kept / "result.xlsx").read_bytes()
            page = (kept / "result.html").read_text(encoding="utf-8")
            operator = (kept / "operator.html").read_text(encoding="utf-8")
        except FileNotFoundError:
            pass  # it could not be rendered (logged then): the text report is there
        else:
            # a failure (a full disk) keeps the filing for the next look: found by an attack,
            # HR's result was lost for good when only it did not fit
            for made in write_rendered(xlsx, page, target):
                _give_group(made, gid)  # the text report's group: HR reads both
            write_private(operator_copy_path(self.config, path.name, filing.run_id), operator)
        path.unlink(missing_ok=True)
        shutil.rmtree(kept, ignore_errors=True)
        return filing.where

    def _content_free(self, outcome: RunOutcome, raw: bytes, name: str) -> RunOutcome:
        """The outcome as the inbox reports it: an error about a file that is not a roster
        (undecodable, not a table, no roster header) says what was wrong and where, never the
        file's bytes. Row errors stay: they come only from a file with a roster's header."""
        if not outcome.rejected:
            return outcome
        rejected = [
            replace(r, errors=[_content_free(e, r.source, raw, self.config) for e in r.errors])
            if r.source == name
            else r
            for r in outcome.rejected
        ]
        return replace(outcome, rejected=rejected)

    def tick(self, now: float, **run_kwargs: Any) -> InboxResult:
        result = InboxResult()
        held = False
        for path in self.take(now):
            if held and path.parent != self.processing:
                # a newer file never overtakes one held back (found by an attack: HR's
                # latest file ran before the held one, whose older word then won)
                result.waiting.append(path.name)
                continue
            try:
                where, outcome = self.process(path, **run_kwargs)
            except Exception as exc:  # one bad file never stops the watcher
                log.error("inbox file failed", file=path.name, error=f"{type(exc).__name__}: {exc}")
                where, outcome = self._failed(path, exc), None
            else:
                if where != "held":  # the tries counted are the one in processing/'s
                    self._tries(path.name, None)
                held = held or where == "held"
            if where == "gone":
                continue
            getattr(
                result,
                {
                    "processed": "processed",
                    "rejected": "rejected",
                    "duplicate": "duplicates",
                    "retry": "retry",
                    "waiting": "waiting",
                    "held": "waiting",
                }[where],
            ).append(path.name)
            if outcome is not None:
                result.last = outcome
        self._save_left()
        return result

    # -- files that keep failing ----------------------------------------------------------------

    @property
    def _tries_path(self) -> Path:
        return self.config.paths.state / "inbox-tries.json"

    def _tries(self, name: str, count: int | None) -> int:
        """How many times the file ``name`` failed (kept in the state directory: a daemon
        restarted by a crash on the file counts on); ``count`` sets it (None forgets it)."""
        try:
            tries = dict(json.loads(self._tries_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            tries = {}
        if count is None:
            if name in tries:
                del tries[name]
                write_private(self._tries_path, json.dumps(tries, indent=1))
            return 0
        tries[name] = count
        write_private(self._tries_path, json.dumps(tries, indent=1))
        return count

    def _failed(self, path: Path, exc: Exception) -> str:
        """A failure that is not the directory's (a bug, a file that cannot be moved): the
        file is tried again, and after ``MAX_TRIES`` rejected with a report naming what went
        wrong (the error's type, never its text: it may quote the file) — never retried for
        ever (issue 11)."""
        at = path if os.path.lexists(path) else self.processing / path.name
        if not os.path.lexists(at):
            self._tries(path.name, None)
            return "gone"
        if at.parent == self.inbox and at.is_dir() and not at.is_symlink():
            # a folder whose report could not be written: it stays where HR put it, and its
            # report is tried again at the next look; never moved under rejected/ (found by
            # an attack: after three tries it was, HR's to write and syncd's not to delete)
            log.error("inbox: a folder left in the inbox could not be reported; tried again",
                      file=safe_name(path.name), error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            return "waiting"
        if at.parent == self.processing and (
            self._filing_dir(at).is_dir() or self._applied_content(at)
        ):
            # its run applied it: only the filing failed (a full or read-only disk). It is
            # never rejected (HR would be told a file applied was not); tried at each look
            # until the disk is back (syncd status counts it in the inbox's backlog)
            log.error("inbox: an applied file cannot be filed; tried again at the next look",
                      file=safe_name(path.name), error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            return "waiting"
        try:
            count = self._tries(path.name, self._tries_read(path.name) + 1)
        except OSError as err:
            log.error(
                "inbox: cannot count the file's tries; it waits",
                file=safe_name(path.name),
                error=err.strerror,
            )
            return "waiting"  # never rejected on its first failure (a full disk: an attack)
        if count < MAX_TRIES:
            return "waiting"
        name = safe_name(path.name)
        report = (
            f"syncd — {name}\n"
            f"Từ chối sau {count} lần lỗi / rejected after {count} failed tries "
            f"({type(exc).__name__}); không thử lại / not tried again. Có thể một phần đã được "
            "áp dụng / some of it may have been applied: xem báo cáo lần chạy / see the run "
            "reports, or ask the operator.\n"
        )
        try:
            self._file(at, self.rejected, report, rename_only=True)
            log.warning("inbox file rejected after repeated failures", file=name, tries=count)
        except OSError as err:
            log.error(
                "inbox: a failing file cannot be rejected",
                file=safe_name(path.name),
                error=err.strerror,
            )
            return "waiting"
        self._tries(path.name, None)
        return "rejected"

    def _applied_content(self, path: Path) -> bool:
        """Whether ``path`` holds content an earlier file applied (a duplicate whose filing
        failed): never to be reported rejected (found by an attack)."""
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return False
        return digest in self._hashes()

    def _tries_read(self, name: str) -> int:
        try:
            tries = dict(json.loads(self._tries_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return 0
        value = tries.get(name, 0)
        return value if isinstance(value, int) else 0


def _filesystem(path: Path) -> str | None:
    """The filesystem type the inbox is on (``/proc/self/mountinfo``: the unit's
    ``ProcSubset=pid`` keeps it); None when it cannot be told."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
        return filesystem_of(os.path.realpath(path), mountinfo)
    except OSError:
        return None


def _changed(path: Path, taken: os.stat_result) -> str | None:
    """How ``path`` differs from the ``fstat`` taken when it was read, or None."""
    try:
        now = os.lstat(path)
    except OSError as exc:
        return f"it can no longer be read ({exc.strerror})"
    if (now.st_dev, now.st_ino) != (taken.st_dev, taken.st_ino):
        return "another file took its place"
    if now.st_size != taken.st_size:
        return f"{taken.st_size} bytes when taken, {now.st_size} bytes now"
    if (now.st_mtime_ns, now.st_ctime_ns) != (taken.st_mtime_ns, taken.st_ctime_ns):
        return "it was written to after it was taken"
    return None


def _changed_report(name: str, change: str) -> str:
    return (
        f"syncd — {name}\n"
        "Từ chối / refused: tệp thay đổi trong khi syncd đang đọc (có lẽ vẫn đang tải lên); "
        "chưa áp dụng gì / the file changed while syncd was reading it (still being uploaded?); "
        f"nothing from it was applied: {change}.\n"
        "Hãy gửi lại tệp hoàn chỉnh / send it again, complete: upload it under a temporary name "
        "(.part) and rename it when done, or write <name>.done after it.\n"
    )


def _target(folder: Path, name: str) -> Path:
    """A name in ``folder`` for the file ``name`` that nothing holds yet, nor any of the
    files syncd writes beside it (its report, HR's result): its own, made one-line safe, or
    with the time and a number added. Found by an attack: a roster HR named
    ``a.csv.ketqua.xlsx``, filed, was overwritten by the result of a later ``a.csv``."""
    name = safe_name(name)

    def taken(target: Path) -> bool:
        return any(os.path.lexists(target.with_name(target.name + s)) for s in ("", *BESIDE_FILED))

    target = folder / name
    if taken(target):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        stem, suffix = Path(name).stem, Path(name).suffix
        n = 0
        while taken(target):
            n += 1
            target = folder / f"{stem}.{stamp}{f'-{n}' if n > 1 else ''}{suffix}"
    return target


def _write_own_copy(target: Path, content: bytes, gid: int) -> None:
    """``content`` as a new file ``target`` owned by syncd, 0640 in group ``gid``, made whole
    before its name appears (a temporary name, fsync, rename)."""
    tmp = target.with_name(f".{target.name}.syncd-tmp")
    tmp.unlink(missing_ok=True)  # left by a crash in an earlier filing to this name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchown(fd, -1, gid)
        except OSError as exc:
            log.warning(
                "HR's group cannot be given this file; is the service user in it?",
                file=str(target),
                group=gid,
                error=exc.strerror,
            )
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, "wb") as out:
            fd = -1
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


def _give_group(path: Path, gid: int) -> None:
    """``path`` in group ``gid``, where HR reads it; a warning if syncd may not (the service
    user is not in that group: install.md's ``usermod -aG hrdrop syncd``)."""
    try:
        if os.lstat(path).st_gid != gid:
            os.chown(path, -1, gid, follow_symlinks=False)
    except OSError as exc:
        log.warning(
            "HR's group cannot be given this file; is the service user in it?",
            file=str(path),
            group=gid,
            error=exc.strerror,
        )


def _unlink_marker(marker: Path) -> None:
    with contextlib.suppress(OSError):  # a directory named so: rejected in its own turn
        marker.unlink(missing_ok=True)


# Whole-file errors (connectors/roster/files.py, syncd/roster.py map_columns, syncd/intake.py)
# that quote nothing of the file, and those that do, rewritten to say only what and where.
_ROW_ERROR = re.compile(r"row \d+, column ['\"]")
_QUOTE_FREE = re.compile(
    r"byte \d+ \(line \d+\): (not valid|NUL)"
    r"|UTF-32 text is not supported"
    r"|row 1: no header row$"
    r"|\d+ bytes, more than the \d+ a roster may be$"
    r"|cannot read: "
    r"|old Excel \.xls is not supported"
    r"|line \d+: not a readable CSV file: "
    r"|row \d+: NUL character in a cell; not a roster$"
    r"|the roster has no people"
    r"|rejected whole; nothing from it was applied$"
    # the bounds of a roster (row, column, cell and unpacked-size limits)
    r"|line \d+: \d+ columns, more than the \d+ a roster may have$"
    r"|row \d+: data after \d+ empty rows \(from row \d+\)"
    r"|row \d+: more than the \d+ (rows|cells) a roster may have$"
    r"|more than \d+ parts in the workbook; not a roster$"
    r"|unpacks to \d+ bytes, more than the \d+ a roster may"
    r"|row \d+: beyond the last row a worksheet can have \(\d+\); a forged workbook$"
    r"|row \d+: a cell in column \d+ \([A-Z]+\), more than the \d+ "
)
_PART = re.compile(r"part .* (unpacks to \d+ bytes, more than the \d+ a workbook part may.*)$")
_MISSING = re.compile(r"row 1: missing required column\(s\) (.*?); found \[", re.DOTALL)
_MIXED = re.compile(r"line (\d+): the file mixes encodings \(([\w, +-]*)\)")
_XLSX = re.compile(r"(row \d+: )?not a readable XLSX workbook \((\w+)")
_SHEET = re.compile(r"no sheet named ")


def _line_start(raw: bytes, line: int) -> int:
    at = 0
    for _ in range(line - 1):
        nl = raw.find(b"\n", at)
        if nl < 0:
            break
        at = nl + 1
    return at


def _content_free(error: str, source: str, raw: bytes, config: Config) -> str:
    prefix = f"{source}: "
    if not error.startswith(prefix):
        return f"{prefix}not readable as a roster (details not quoted: they may quote the file)"
    rest = error[len(prefix) :]
    if _ROW_ERROR.match(rest) or _QUOTE_FREE.match(rest):
        return error
    if m := _MISSING.match(rest):
        where = ""
        if not raw.startswith(b"PK\x03\x04"):
            end = raw.find(b"\n")
            where = f" (bytes 0–{len(raw) if end < 0 else end})"
        return (
            f"{prefix}row 1{where}: missing required column(s) {m.group(1)}; this is not a "
            "roster's header row (its cells are not quoted)"
        )
    if m := _MIXED.match(rest):
        line = int(m.group(1))
        return (
            f"{prefix}line {line} (from byte {_line_start(raw, line)}): the file mixes "
            f"encodings ({m.group(2)}) and this line reads as Vietnamese in more than one; "
            "save the file again as UTF-8"
        )
    if m := _XLSX.match(rest):
        return f"{prefix}{m.group(1) or ''}not a readable XLSX workbook ({m.group(2)})"
    if m := _PART.match(rest):  # the part's name is the workbook's content
        return f"{prefix}a part of the workbook {m.group(1)}"
    if _SHEET.match(rest):
        return f"{prefix}no sheet named {config.roster.sheet!r} in the workbook"
    return f"{prefix}not readable as a roster (details not quoted: they may quote the file)"
