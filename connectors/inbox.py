"""The HR inbox: take complete files, reconcile each, file it with a report beside it.

Layout, next to ``paths.inbox``: ``processing/`` (being applied; a file left there by a crash
or an unreachable directory is retried first), ``processed/YYYY/MM/`` and ``rejected/``. Every
file gets ``<name>.report.txt`` (Vietnamese and English) beside it. The same content dropped
twice is recognised by its sha256 and not applied twice. A file that cannot be read or moved
is reported and skipped: it never stops the watcher.

Only a regular file with one name is read, through a descriptor opened with ``O_NOFOLLOW``
once the entry sits in the private ``processing/`` (0700): a symbolic link (HR's SFTP makes
them: ``leak.csv -> /run/credentials/.../bind-password``), hard link, directory, FIFO, socket
or device is moved as it is (the link, never its target) to ``rejected/`` with a report saying
why, and never opened for reading. A name that is not a roster's (another file type, a control
character) is rejected the same way, unread, under an escaped one-line name. Temporary and
hidden names wait silently (a debug line). The report of a file that is not a roster says what
was wrong and where (byte offsets), never the file's content.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from connectors import runner
from connectors.config import Config
from connectors.hr_files import file_hr_result
from connectors.loading import ROSTER_SUFFIXES
from connectors.outcome import RunOutcome, report_text
from connectors.roster.files import MAX_BYTES
from connectors.snapshots import SnapshotRegistry
from connectors.store import make_dirs, write_private
from syncd.inbox import Seen, is_candidate, kind_problem, name_problem, ready, safe_name
from syncd.ports import DirectoryError

log = structlog.get_logger("syncd.inbox")


@dataclass
class InboxResult:
    processed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    last: RunOutcome | None = None


class InboxWatcher:
    def __init__(self, config: Config, settle: float = 30.0) -> None:
        self.config = config
        self.settle = settle
        self.inbox = config.paths.inbox
        base = self.inbox.parent
        self.processing = base / "processing"
        self.processed = base / "processed"
        self.rejected = base / "rejected"
        self.hashes_path = config.paths.state / "inbox-hashes.json"
        self.registry = SnapshotRegistry(config.paths.state)
        self._previous: dict[str, Seen] = {}

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
            out[entry.name] = Seen(st.st_size, st.st_mtime)
        return out

    def backlog(self) -> int:
        pending = [n for n in self.listing() if is_candidate(n)]
        stuck = self._stuck()
        return len(pending) + len(stuck)

    def _stuck(self) -> list[Path]:
        try:
            return sorted(p for p in self.processing.iterdir() if is_candidate(p.name))
        except OSError:
            return []

    def take(self, now: float) -> list[Path]:
        """Entries ready now: first any left in processing/, then complete inbox entries
        (whatever they are: ``process`` reads only what is safe to read)."""
        listing = self.listing()
        for name in sorted(listing.keys() - self._previous.keys()):
            if not is_candidate(name):
                log.debug(
                    "inbox: temporary, hidden or marker name; waiting for it to be renamed",
                    file=safe_name(name),
                )
        names = ready(listing, self._previous, now, self.settle)
        self._previous = listing
        return self._stuck() + [self.inbox / n for n in names]

    # -- processing ---------------------------------------------------------------------------

    def _hashes(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.hashes_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def _file(self, path: Path, folder: Path, report: str, rename_only: bool = False) -> Path:
        """Move ``path`` into ``folder`` with its report beside it, both readable by the
        folder's group (HR reads its reports: docs/install.md), nobody else. The name is made
        one-line safe; an entry not read moves by ``rename`` only (the entry itself, never a
        copy of what it points to)."""
        gid = self._hr_folder(folder)
        name = safe_name(path.name)
        target = folder / name
        if os.path.lexists(target):
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            stem, suffix = Path(name).stem, Path(name).suffix
            n = 0
            while os.path.lexists(target):
                n += 1
                target = folder / f"{stem}.{stamp}{f'-{n}' if n > 1 else ''}{suffix}"
        if rename_only:
            os.rename(path, target)
        else:
            shutil.move(str(path), target)
        report_path = target.with_name(target.name + ".report.txt")
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

    def _open_checked(self, path: Path) -> tuple[bytes | None, str | None]:
        """The bytes of ``path`` read from a descriptor opened without following a link and
        checked with ``fstat`` (the file checked is the file read); or why it is not read.
        ``(None, None)``: it could not be opened now (retry)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None, "symbolic link: not read"
            if exc.errno == errno.ENXIO:
                return None, "socket: not read"
            log.warning("inbox file unreadable", file=safe_name(path.name), error=exc.strerror)
            return None, None
        try:
            st = os.fstat(fd)
            why = kind_problem(st.st_mode, st.st_nlink) or _too_big(st.st_size)
            if why is not None:
                return None, why
            chunks, total = [], 0
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
                total += len(chunk)
                if total > MAX_BYTES:
                    return None, _too_big(total)
            return b"".join(chunks), None
        except OSError as exc:
            log.warning("inbox file unreadable", file=safe_name(path.name), error=exc.strerror)
            return None, None
        finally:
            os.close(fd)

    LAST = "last"  # the digest of the roster filed last, in the hashes file

    def _duplicate(self, hashes: dict[str, Any], digest: str) -> bool:
        """Only the roster filed last, sent again, is a mere duplicate. Once any other file
        came in between (a transfer out of another organisation, say), the same bytes are HR's
        word again and are applied (requests are carried out once whatever happens)."""
        return digest in hashes and hashes.get(self.LAST) == digest

    def process(self, path: Path, **run_kwargs: Any) -> tuple[str, RunOutcome | None]:
        """Reconcile one file; returns where it went: processed, rejected, duplicate, retry."""
        marker = path.with_name(path.name + ".done")
        now = datetime.now(UTC)
        month = self.processed / f"{now:%Y}" / f"{now:%m}"
        try:
            st = os.lstat(path)
        except OSError as exc:
            log.warning("inbox file unreadable", file=safe_name(path.name), error=exc.strerror)
            return "retry", None
        # what the entry is, then its name: neither needs reading it
        problems = [
            kind_problem(st.st_mode, st.st_nlink) or _too_big(st.st_size),
            name_problem(path.name, ROSTER_SUFFIXES),
        ]
        why = "; ".join(p for p in problems if p)
        if why:
            _unlink_marker(marker)
            return self._refuse(path, why), None
        # into processing/ (0700: nobody but syncd changes an entry there) before opening it
        if path.parent != self.processing:
            make_dirs(self.processing, 0o700)  # as install.md has it, not the umask's mode
            moved = self.processing / path.name
            os.rename(path, moved)  # the entry itself; never a copy through a link
            path = moved
        _unlink_marker(marker)
        raw, unread = self._open_checked(path)
        if unread is not None:
            return self._refuse(path, unread), None
        if raw is None:
            return "retry", None
        digest = hashlib.sha256(raw).hexdigest()
        hashes = self._hashes()
        if self._duplicate(hashes, digest):
            first = hashes[digest]
            self._file(
                path,
                month,
                f"syncd — {path.name}\nĐã xử lý trước đó / already applied: "
                f"same content as {first['file']} ({first['when']}); nothing done.\n",
            )
            return "duplicate", None
        try:
            outcome = runner.run(
                self.config, rosters=[path], what=f"inbox {path.name}", **run_kwargs
            )
        except DirectoryError as exc:
            log.warning(
                "directory unavailable; file kept for retry", file=path.name, error=str(exc)
            )
            return "retry", None
        if outcome.result is not None and outcome.result.stopped:
            log.info("stopped mid-file; it stays in processing/ and is retried", file=path.name)
            return "retry", outcome
        shown = self._content_free(outcome, raw, path.name)
        report = report_text(shown, [path])
        refused = outcome.plan is not None and outcome.plan.refused
        if (outcome.rejected and not outcome.applied) or refused:
            if refused:
                report += (
                    f"Để áp dụng / to apply anyway: syncd reconcile --roster "
                    f"{self.rejected / path.name} --allow-mass-change\n"
                )
            target = self._file(path, self.rejected, report)
            self._hr_result(shown, path.name, target)
            return "rejected", outcome
        target = self._file(path, month, report)
        self.registry.record(target, {o for snap in outcome.snapshots for o in snap.authoritative})
        hashes[digest] = {"file": str(target), "when": now.isoformat(timespec="seconds")}
        hashes[self.LAST] = digest
        write_private(self.hashes_path, json.dumps(hashes, indent=1))
        self._hr_result(shown, path.name, target)
        return "processed", outcome

    def _hr_result(self, outcome: RunOutcome, name: str, target: Path) -> None:
        """HR's result (XLSX and HTML, connectors.hr_files) beside the filed roster; a failure
        to write it is logged and never undoes the filing (the text report is there)."""
        try:
            file_hr_result(self.config, outcome, name, target)
        except Exception as exc:
            log.error("HR result not written", file=safe_name(name), error=f"{type(exc).__name__}")

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
        for path in self.take(now):
            try:
                where, outcome = self.process(path, **run_kwargs)
            except Exception as exc:  # one bad file never stops the watcher
                log.error("inbox file failed", file=path.name, error=f"{type(exc).__name__}: {exc}")
                continue
            getattr(
                result,
                {
                    "processed": "processed",
                    "rejected": "rejected",
                    "duplicate": "duplicates",
                    "retry": "retry",
                }[where],
            ).append(path.name)
            if outcome is not None:
                result.last = outcome
        return result


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


def _too_big(size: int) -> str | None:
    if size > MAX_BYTES:
        return f"{size} bytes, more than the {MAX_BYTES} a roster may be: not read"
    return None


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
