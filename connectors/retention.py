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
    needed = {p for f in SnapshotRegistry(state).recorded() for p in (f, _real(f))}
    out = []
    for what, folder in (
        ("run reports and operator copies of HR results", state / "reports"),
        ("copies of applied rosters no longer the latest", state / KEPT),
    ):
        files: list[tuple[Path, ...]] = [(p,) for p in _files(folder)]
        out.append(_expired(what, folder, files, now, months, needed, dated_by=None))
    base = config.paths.inbox.parent
    for what, folder in (
        ("filed rosters and their results", base / "processed"),
        ("rejected files and their reports", base / "rejected"),
    ):
        groups = list(_filed_groups(folder))
        out.append(_expired(what, folder, groups, now, months, needed, dated_by=REPORT))
    return out


def _expired(
    what: str,
    folder: Path,
    groups: list[tuple[Path, ...]],
    now: datetime,
    months: int,
    needed: set[Path],
    dated_by: str | None,
) -> Expired:
    written = [(g, _written(g, dated_by)) for g in groups]
    keep = {g for g in groups if any(p in needed or _real(p) in needed for p in g)}
    return Expired(what, folder, expired(written, now, months, keep))


def _written(group: tuple[Path, ...], dated_by: str | None) -> datetime:
    """When syncd wrote ``group``: its ``dated_by`` companion's modification time when it
    has one, else the newest of its files' (a leftover companion is syncd's own too)."""
    marked = [p for p in group if dated_by and p.name.endswith(dated_by)]
    stamps = [_mtime(p) for p in (marked[:1] or group)]
    return datetime.fromtimestamp(max(stamps), UTC)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return 0.0


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except FileNotFoundError:
        return []
    return [p for p in entries if p.is_file() and not p.is_symlink()]


def _filed_groups(folder: Path) -> Iterator[tuple[Path, ...]]:
    """Each filed file with its companions (``<name>.report.txt``, ``<name>.ketqua.*``),
    folder by folder; a companion whose filed file is gone is a group of its own."""
    for here, dirs, names in os.walk(folder):
        dirs.sort()
        present = set(names)
        claimed: set[str] = set()
        # the longest report names first: a file HR named x.report.txt has its own report
        for report in sorted((n for n in names if n.endswith(REPORT)), key=len, reverse=True):
            if report in claimed:
                continue
            filed = report[: -len(REPORT)]
            members = [filed] if filed in present and filed not in claimed else []
            members += [n for n in (filed + c for c in COMPANIONS) if n in present]
            members = [n for n in members if n not in claimed]
            claimed.update(members)
            yield tuple(Path(here, n) for n in members)
        for name in sorted(present - claimed):
            path = Path(here, name)
            if path.is_file() or path.is_symlink():
                yield (path,)


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
