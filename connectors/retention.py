"""What the daemon's nightly sweep deletes after a while: one place to find it.

- Credential slips after ``slips.retention_days`` (30): they carry one-time passwords
  (``connectors/slips.py``, ``sweep_slips``, one audit record per deletion).
- After ``retention.months`` (24; the rule is ``syncd/retention.py``), what each run leaves
  besides the audit log, each dated by when syncd wrote it:

  - ``state/reports/``: run reports and the operator's copies of HR's results;
  - ``state/rosters/``: syncd's copies of applied rosters, except the latest accepted one of
    each organisation (``state/snapshots.json``), which the nightly run re-applies;
  - ``processed/YYYY/MM/`` and ``rejected/``: each filed file with its text report and HR's
    result, deleted together and dated by the text report syncd wrote when it filed them (the
    filed copy of an entry moved by rename keeps the uploader's time, which proves nothing;
    without its report yet, by the rename's inode change). A folder HR dropped, filed under
    ``rejected/`` by an older syncd (the inbox now leaves folders where HR put them), is one
    entry: never entered (it is HR's to change while it is walked),
    deleted whole by descriptors. Month folders left empty go, the current and the previous
    month's never (the inbox may be filing into them).

The audit log has its own retention (``audit.keep_months``, ``connectors/audit.py``). The
run journal and the outbox of a run that died are never touched here: its recovery reads
them. Each kind deleted is one audit record naming the files, written before they go, under
the run lock (a run accepting a roster is never half-seen). A registry that cannot be read
keeps every roster copy and filed roster; a kind that fails is reported (``RetentionError``:
the daemon's status) after the others went.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from connectors.audit import open_audit
from connectors.config import Config
from connectors.inbox import BESIDE_FILED, REPORT_SUFFIX
from connectors.runlock import RunLock
from connectors.slips import sweep_slips
from connectors.snapshots import KEPT, AcceptedRosterChanged, SnapshotRegistry
from syncd.errors import SyncdError
from syncd.inbox import safe_name
from syncd.retention import expired

log = structlog.get_logger("syncd.retention")


class RetentionError(SyncdError):
    """A kind of file could not be looked at or deleted; the others were."""


@dataclass(frozen=True)
class Expired:
    """One kind of thing past its retention: where it lives and the groups of files (a
    filed roster and its companions are one group) to delete together."""

    what: str
    folder: Path
    groups: list[tuple[Path, ...]]

    def files(self) -> list[Path]:
        return [p for g in self.groups for p in g]


def sweep(config: Config, now: datetime, run_id: str) -> list[Path]:
    """Delete what is past its retention at ``now`` (slips, then the rest); the paths
    deleted. A file that cannot be deleted is logged and left for the next night."""
    gone = list(sweep_slips(config, now, run_id))
    months = config.retention.months
    if not months:  # 0: kept for ever
        return gone
    with RunLock(config.paths.state, "retention", config.daemon.lock_timeout):
        found, problems = find_expired(config, now, months)
        for e in found:
            if not e.groups:
                continue
            try:
                gone += _delete(config, e, run_id, months, problems)
            except Exception as exc:  # the other kinds still go; the daemon's status says so
                problems.append(f"{e.what}: {type(exc).__name__}: {exc}")
        _prune_month_folders(config.paths.inbox.parent / "processed", now)
    log.info("retention: deleted what was past retention.months", files=len(gone))
    if problems:
        raise RetentionError("retention: " + "; ".join(problems))
    return gone


def find_expired(config: Config, now: datetime, months: int) -> tuple[list[Expired], list[str]]:
    """What is past ``months`` at ``now``, by kind (nothing deleted), and why a kind could
    not be looked at (then none of it is deleted)."""
    state = config.paths.state
    out: list[Expired] = []
    problems: list[str] = []
    try:
        needed = _needed(SnapshotRegistry(state).recorded())
    except AcceptedRosterChanged as exc:  # nothing of a registry unread may be taken for old
        problems.append(f"roster copies kept, the registry unread: {exc}")
        needed = None
    for what, folder in (
        ("run reports and operator copies of HR results", state / "reports"),
        ("copies of applied rosters no longer the latest", state / KEPT),
    ):
        if needed is None and folder == state / KEPT:
            continue
        files: list[tuple[_File, ...]] = [(f,) for f in _scan(folder)]
        out.append(_expired(what, folder, files, now, months, needed or set(), dated_by=None))
    base = config.paths.inbox.parent
    processed, rejected = base / "processed", base / "rejected"
    months_filed = [m for y in _subfolders(processed, YEAR) for m in _subfolders(y, MONTH)]
    for what, folder, here in (
        ("filed rosters and their results", processed, months_filed),
        ("rejected files and their reports", rejected, [rejected]),
    ):
        if needed is None and folder == processed:
            continue  # an older registry may name a filed roster
        groups = [g for h in here for g in _filed_groups(_scan(h))]
        out.append(
            _expired(what, folder, groups, now, months, needed or set(), dated_by=REPORT_SUFFIX)
        )
    return out, problems


YEAR, MONTH = re.compile(r"\d{4}"), re.compile(r"\d{2}")


def _subfolders(folder: Path, name: re.Pattern[str]) -> list[Path]:
    """The folders (never a link to one) in ``folder`` whose name is ``name``."""
    try:
        return sorted(
            Path(e.path)
            for e in os.scandir(folder)
            if name.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
        )
    except (FileNotFoundError, NotADirectoryError):
        return []


@dataclass(frozen=True)
class _File:
    """An entry of a folder syncd owns — a file, a link (never followed) or a folder HR
    dropped (never entered: it is HR's, and HR could swap what is in it for links while it is
    walked; found by an attack: the sweep deleted state/snapshots.json that way) — as one
    ``lstat`` saw it."""

    path: Path
    mtime: float
    ctime: float
    ident: tuple[int, int]  # (device, inode)


def _needed(recorded: set[Path]) -> set[tuple[int, int] | Path]:
    """The registry's files, by path and by identity (however the path is spelled)."""
    out: set[tuple[int, int] | Path] = set(recorded)
    for path in recorded:
        try:
            st = path.stat()
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return out


def _scan(folder: Path) -> list[_File]:
    """The entries of ``folder`` (not of the folders in it), each stat'ed once."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for e in entries:
        try:
            st = e.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone meanwhile
        out.append(_File(Path(e.path), st.st_mtime, st.st_ctime, (st.st_dev, st.st_ino)))
    return out


def _expired(
    what: str,
    folder: Path,
    groups: list[tuple[_File, ...]],
    now: datetime,
    months: int,
    needed: set[tuple[int, int] | Path],
    dated_by: str | None,
) -> Expired:
    written = [(g, _written(g, dated_by)) for g in groups]
    keep = {g for g in groups if any(f.path in needed or f.ident in needed for f in g)}
    old = expired(written, now, months, keep)
    return Expired(what, folder, [tuple(f.path for f in g) for g in old])


def _written(group: tuple[_File, ...], dated_by: str | None) -> datetime:
    """When syncd wrote ``group``: its ``dated_by`` companion's modification time when it
    has one (syncd wrote it when it filed them); else, for a filed group, the newest inode
    change of its entries — a rename into the folder is one, and nobody can set it back (a
    rejected entry keeps HR's modification time, and a sweep between its rename and its
    report deleted it the day it came: found by an attack); else the modification time."""
    marked = [f for f in group if dated_by and f.path.name.endswith(dated_by)]
    if marked:
        return datetime.fromtimestamp(marked[0].mtime, UTC)
    stamp = max((f.ctime if dated_by else f.mtime) for f in group)
    return datetime.fromtimestamp(stamp, UTC)


def _filed_groups(files: list[_File]) -> Iterator[tuple[_File, ...]]:
    """The files of one folder, each filed file with its companions (``<name>.report.txt``,
    ``<name>.ketqua.*``); a companion whose filed file is gone is a group of its own."""
    present = {f.path.name: f for f in files}
    claimed: set[str] = set()
    # the longest report names first: a file HR named x.report.txt has its own report
    for report in sorted((n for n in present if n.endswith(REPORT_SUFFIX)), key=len, reverse=True):
        if report in claimed:
            continue
        filed = report[: -len(REPORT_SUFFIX)]
        members = [n for n in (filed, *(filed + c for c in BESIDE_FILED)) if n in present]
        members = [n for n in members if n not in claimed]
        claimed.update(members)
        yield tuple(present[n] for n in members)
    for name in sorted(present.keys() - claimed):
        yield (present[name],)


def _delete(
    config: Config, e: Expired, run_id: str, months: int, problems: list[str]
) -> list[Path]:
    """One kind: its audit record, then its files (a folder HR dropped goes whole, without
    following a link in it); a file that could not go, a second record saying so."""
    # names made one-line safe (an undecodable byte, a newline): found by an attack, one such
    # name stopped every sweep for good
    named = [safe_name(str(p.relative_to(e.folder))) for p in e.files()]
    reason = f"{e.what}: written {months} months or more ago (retention.months)"
    _record(config, e, run_id, named, len(e.groups), reason, result="ok")
    gone: list[Path] = []
    kept: dict[str, str] = {}
    for path in e.files():
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)  # by descriptors: a link in it is removed, not followed
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            kept[safe_name(str(path.relative_to(e.folder)))] = exc.strerror or str(exc)
            log.warning("retention: could not delete", path=safe_name(str(path)), error=str(exc))
            continue
        gone.append(path)
    if kept:  # the record above named them: this one says they are still there, and why
        why = "; ".join(f"{n}: {err}" for n, err in sorted(kept.items())[:10])
        reason = f"{e.what}: could not be deleted, tried again at the next sweep"
        _record(config, e, run_id, sorted(kept), len(kept), reason, result="failed", error=why)
        problems.append(f"{e.what}: {len(kept)} could not be deleted ({next(iter(kept))})")
    return gone


def _record(
    config: Config, e: Expired, run_id: str, files: list[str], count: int, reason: str, **more: str
) -> None:
    audit = open_audit(config)
    try:
        audit.record(
            run_id=run_id,
            action="delete-kept",
            what=e.what,
            folder=str(e.folder),
            files=files,
            count=count,
            reason=reason,
            **more,
        )
    finally:
        audit.close()


def _prune_month_folders(processed: Path, now: datetime) -> None:
    """Empty ``YYYY/MM`` folders before last month, then empty years before this one."""
    this = now.year * 12 + now.month - 1
    for year in _subfolders(processed, YEAR):
        for month in _subfolders(year, MONTH):
            if int(year.name) * 12 + int(month.name) - 1 < this - 1:
                _rmdir_if_empty(month)
        if int(year.name) < now.year:
            _rmdir_if_empty(year)


def _rmdir_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or not ours to remove: left as it is
        folder.rmdir()


__all__ = ["Expired", "RetentionError", "find_expired", "sweep"]
