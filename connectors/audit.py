"""The audit log: one JSON line per action, chained so that tampering shows."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.crashpoints import crash_point
from connectors.store import private_dir, write_private

GENESIS = "0" * 64


def _digest(prev: str, record: dict[str, Any]) -> str:
    body = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + "\n" + body).encode()).hexdigest()


class AuditLog:
    """Append-only JSON lines, one record per action, hash-chained.

    Every record carries ``prev`` (the hash of the record before it, across monthly files) and
    ``hash`` (sha256 of ``prev`` and the record itself), so ``syncd audit verify`` finds an
    edited, inserted or deleted record. The chain's head is kept beside the log
    (``<log>.head``) so it continues across rotation. A new month starts a new file; the old
    one is kept as ``<log>.YYYY-MM`` (``keep_months``, at least 6: Tuyên Quang Đ9.1).
    """

    def __init__(
        self,
        path: Path,
        keep_months: int = 24,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        private_dir(path.parent)
        self.path = path
        self.clock = clock
        self.head_path = path.with_name(path.name + ".head")
        self._rotate(keep_months)
        self._prev = self._last_hash()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")

    def _last_hash(self) -> str:
        """The chain's head: the current file's last record, or (after a rotation) the head
        kept beside it."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 65536))
                lines = fh.read().splitlines()
            if lines:
                return str(json.loads(lines[-1])["hash"])
        except (OSError, ValueError, KeyError):
            pass
        try:
            return self.head_path.read_text(encoding="ascii").strip() or GENESIS
        except OSError:
            return GENESIS

    def _rotate(self, keep_months: int) -> None:
        try:
            first = self.path.open(encoding="utf-8").readline()
            month = json.loads(first)["time"][:7] if first.strip() else None
        except (OSError, ValueError, KeyError):
            return
        now = self.clock().strftime("%Y-%m")
        if month and month != now:
            write_private(self.head_path, self._last_hash())
            os.replace(self.path, self.path.with_name(f"{self.path.name}.{month}"))
            old = sorted(self.path.parent.glob(self.path.name + ".????-??"))
            for stale in old[: max(0, len(old) - max(keep_months, 6))]:
                stale.unlink()

    def record(self, **fields: Any) -> None:
        record = {"time": self.clock().isoformat(), "event": "audit", **fields}
        record["prev"] = self._prev
        record["hash"] = _digest(self._prev, record)
        self._fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()
        self._prev = record["hash"]
        crash_point("audit written")

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        write_private(self.head_path, self._prev)  # for the first record after a rotation


def recorded(path: Path, run_ids: set[str]) -> set[tuple[str, str, str]]:
    """(run, action, uid) of every record of these runs in the log's last two files."""
    out: set[tuple[str, str, str]] = set()
    for file in audit_files(path)[-2:]:
        if not file.exists():
            continue
        with file.open(encoding="utf-8") as fh:
            for line in fh:
                if not any(r in line for r in run_ids):
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("run_id") in run_ids:
                    for uid in (rec.get("uid"), rec.get("new_uid")):
                        if uid:
                            out.add((rec["run_id"], str(rec.get("action")), uid))
    return out


def audit_files(path: Path) -> list[Path]:
    """The log's files, oldest first: rotated months, then the current one."""
    return [*sorted(path.parent.glob(path.name + ".????-??")), path]


def verify_audit(path: Path) -> tuple[int, str | None]:
    """(records checked, the first problem or None)."""
    prev = GENESIS
    count = 0
    for file in audit_files(path):
        if not file.exists():
            continue
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                record = json.loads(line)
                stored = record.pop("hash")
            except (ValueError, KeyError):
                return count, f"{file.name}:{n}: not a chained audit record"
            if record.get("prev") != prev:
                return (
                    count,
                    f"{file.name}:{n}: chain broken (a record before it was removed or inserted)",
                )
            if _digest(prev, record) != stored:
                return count, f"{file.name}:{n}: record was edited (hash mismatch)"
            prev = stored
            count += 1
    return count, None


def history(path: Path, uid: str) -> list[dict[str, Any]]:
    """Every audit record of one account, following renames (transfers) both ways."""
    records = [
        json.loads(line)
        for file in audit_files(path)
        if file.exists()
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    names = {uid.lower()}
    changed = True
    while changed:
        changed = False
        for r in records:
            pair = {r.get("uid"), r.get("new_uid")} - {None}
            if pair & names and not pair <= names:
                names |= pair
                changed = True
    return [r for r in records if r.get("uid") in names or r.get("new_uid") in names]
