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
    filed copy of an entry moved by rename keeps the uploader's time, which proves nothing).
    Month folders left empty go, the current and the previous month's never (the inbox may
    be filing into them).

The audit log has its own retention (``audit.keep_months``, ``connectors/audit.py``). The
run journal and the outbox of a run that died are never touched here: its recovery reads
them. Each kind deleted is one audit record naming the files, written before they go, under
the run lock (a run accepting a roster is never half-seen).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from connectors.audit import open_audit
from connectors.config import Config
from connectors.hr_files import RESULT_SUFFIX
from connectors.runlock import RunLock
from connectors.slips import sweep_slips
from connectors.snapshots import KEPT, SnapshotRegistry
from syncd.retention import expired

log = structlog.get_logger("syncd.retention")

REPORT = ".report.txt"  # the inbox's text report beside each filed file
COMPANIONS = (REPORT, RESULT_SUFFIX + ".xlsx", RESULT_SUFFIX + ".html")


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
        found = [e for e in find_expired(config, now, months) if e.groups]
        if found:
            gone += _delete(config, found, run_id, months, now)
    return gone


def find_expired(config: Config, now: datetime, months: int) -> list[Expired]:
    """What is past ``months`` at ``now``, by kind (nothing deleted)."""
    state = config.paths.state
    needed = _needed(SnapshotRegistry(state).recorded())
    out = []
    for what, folder in (
        ("run reports and operator copies of HR results", state / "reports"),
        ("copies of applied rosters no longer the latest", state / KEPT),
    ):
        files: list[tuple[_File, ...]] = [(f,) for h in _scan(folder, 0).values() for f in h]
        out.append(_expired(what, folder, files, now, months, needed, dated_by=None))
    base = config.paths.inbox.parent
    for what, folder in (
        ("filed rosters and their results", base / "processed"),
        ("rejected files and their reports", base / "rejected"),
    ):
        groups = [g for here in _scan(folder, 3).values() for g in _filed_groups(here)]
        out.append(_expired(what, folder, groups, now, months, needed, dated_by=REPORT))
    return out


@dataclass(frozen=True)
class _File:
    """A file (or a link, never followed) as one ``lstat`` saw it."""

    path: Path
    mtime: float
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


def _scan(folder: Path, depth: int) -> dict[Path, list[_File]]:
    """Each folder under ``folder`` (``depth`` levels down, links to folders not followed)
    → the files in it, each stat'ed once."""
    out: dict[Path, list[_File]] = {}
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return out
    here = out.setdefault(folder, [])
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                if depth:
                    out.update(_scan(Path(e.path), depth - 1))
                continue
            st = e.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone meanwhile
        here.append(_File(Path(e.path), st.st_mtime, (st.st_dev, st.st_ino)))
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
    has one, else the newest of its files' (a leftover companion is syncd's own too)."""
    marked = [f for f in group if dated_by and f.path.name.endswith(dated_by)]
    return datetime.fromtimestamp(max(f.mtime for f in (marked[:1] or group)), UTC)


def _filed_groups(files: list[_File]) -> Iterator[tuple[_File, ...]]:
    """The files of one folder, each filed file with its companions (``<name>.report.txt``,
    ``<name>.ketqua.*``); a companion whose filed file is gone is a group of its own."""
    present = {f.path.name: f for f in files}
    claimed: set[str] = set()
    # the longest report names first: a file HR named x.report.txt has its own report
    for report in sorted((n for n in present if n.endswith(REPORT)), key=len, reverse=True):
        if report in claimed:
            continue
        filed = report[: -len(REPORT)]
        members = [n for n in (filed, *(filed + c for c in COMPANIONS)) if n in present]
        members = [n for n in members if n not in claimed]
        claimed.update(members)
        yield tuple(present[n] for n in members)
    for name in sorted(present.keys() - claimed):
        yield (present[name],)


def _delete(
    config: Config, found: list[Expired], run_id: str, months: int, now: datetime
) -> list[Path]:
    audit = open_audit(config)
    try:
        for e in found:
            audit.record(
                run_id=run_id,
                action="delete-kept",
                what=e.what,
                folder=str(e.folder),
                files=[str(p.relative_to(e.folder)) for p in e.files()],
                count=len(e.groups),
                reason=f"{e.what}: written {months} months or more ago (retention.months)",
                result="ok",
            )
    finally:
        audit.close()
    gone: list[Path] = []
    for e in found:
        for path in e.files():
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("retention: could not delete", path=str(path), error=str(exc))
                continue
            gone.append(path)
    _prune_month_folders(config.paths.inbox.parent / "processed", now)
    log.info("retention: deleted what was past retention.months", files=len(gone))
    return gone


def _prune_month_folders(processed: Path, now: datetime) -> None:
    """Empty ``YYYY/MM`` folders before last month, then empty years before this one."""
    this = now.year * 12 + now.month - 1
    for year in sorted(processed.glob("[0-9][0-9][0-9][0-9]")):
        for month in sorted(year.glob("[0-9][0-9]")):
            if int(year.name) * 12 + int(month.name) - 1 < this - 1:
                _rmdir_if_empty(month)
        if int(year.name) < now.year:
            _rmdir_if_empty(year)


def _rmdir_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or not ours to remove: left as it is
        folder.rmdir()


__all__ = ["Expired", "find_expired", "sweep"]
