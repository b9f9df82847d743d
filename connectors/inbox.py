"""The HR inbox: take complete files, reconcile each, file it with a report beside it.

Layout, next to ``paths.inbox``: ``processing/`` (being applied; a file left there by a crash
or an unreachable directory is retried first), ``processed/YYYY/MM/`` and ``rejected/``. Every
file gets ``<name>.report.txt`` (Vietnamese and English) beside it. The same content dropped
twice is recognised by its sha256 and not applied twice. A file that cannot be read or moved
is reported and skipped: it never stops the watcher.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from connectors import runner
from connectors.config import Config
from connectors.outcome import RunOutcome, report_text
from connectors.snapshots import SnapshotRegistry
from connectors.store import make_dirs, write_private
from syncd.inbox import Seen, is_candidate, ready
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
        out: dict[str, Seen] = {}
        if not self.inbox.is_dir():
            return out
        for path in self.inbox.iterdir():
            try:
                if path.is_file():
                    st = path.stat()
                    out[path.name] = Seen(st.st_size, st.st_mtime)
            except OSError:
                continue
        return out

    def backlog(self) -> int:
        pending = [n for n in self.listing() if is_candidate(n)]
        stuck = list(self.processing.iterdir()) if self.processing.is_dir() else []
        return len(pending) + len(stuck)

    def take(self, now: float) -> list[Path]:
        """Files ready now: first any left in processing/, then complete inbox files."""
        listing = self.listing()
        names = ready(listing, self._previous, now, self.settle)
        self._previous = listing
        stuck = sorted(self.processing.iterdir()) if self.processing.is_dir() else []
        return [p for p in stuck if p.is_file() and is_candidate(p.name)] + [
            self.inbox / n for n in names
        ]

    # -- processing ---------------------------------------------------------------------------

    def _hashes(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.hashes_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def _file(self, path: Path, folder: Path, report: str) -> Path:
        """Move ``path`` into ``folder`` with its report beside it, both readable by the
        folder's group (HR reads its reports: docs/install.md), nobody else."""
        make_dirs(folder, 0o2750)  # setgid, group read for HR by design (install.md)
        target = folder / path.name
        if target.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            target = folder / f"{path.stem}.{stamp}{path.suffix}"
        shutil.move(str(path), target)
        write_private(target.with_name(target.name + ".report.txt"), report, mode=0o640)
        return target

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
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            log.warning("inbox file unreadable", file=path.name, error=str(exc))
            return "retry", None
        hashes = self._hashes()
        if self._duplicate(hashes, digest):
            first = hashes[digest]
            self._file(
                path,
                month,
                f"syncd — {path.name}\nĐã xử lý trước đó / already applied: "
                f"same content as {first['file']} ({first['when']}); nothing done.\n",
            )
            marker.unlink(missing_ok=True)
            return "duplicate", None
        if path.parent != self.processing:
            self.processing.mkdir(parents=True, exist_ok=True)
            moved = self.processing / path.name
            shutil.move(str(path), moved)
            path = moved
        marker.unlink(missing_ok=True)
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
        report = report_text(outcome, [path])
        refused = outcome.plan is not None and outcome.plan.refused
        if (outcome.rejected and not outcome.applied) or refused:
            if refused:
                report += (
                    f"Để áp dụng / to apply anyway: syncd reconcile --roster "
                    f"{self.rejected / path.name} --allow-mass-change\n"
                )
            self._file(path, self.rejected, report)
            return "rejected", outcome
        target = self._file(path, month, report)
        self.registry.record(target, {o for snap in outcome.snapshots for o in snap.authoritative})
        hashes[digest] = {"file": str(target), "when": now.isoformat(timespec="seconds")}
        hashes[self.LAST] = digest
        write_private(self.hashes_path, json.dumps(hashes, indent=1))
        return "processed", outcome

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
