"""Lifecycle inputs and outputs on disk: exemptions, the purge archive (mail activity: the
sources in :mod:`connectors.activity`)."""

from __future__ import annotations

import csv
import io
import shlex
import subprocess
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

from connectors.store import private_dir, write_private
from syncd.errors import SyncdError
from syncd.model import Exemption
from syncd.roster import parse_date


class InputFileError(SyncdError):
    """An activity or exemption file is unusable; the run stops (exit 2), nothing changes."""


def csv_rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read as UTF-8 CSV: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip() for h in reader.fieldnames or []]
    missing = [h for h in required if h not in headers]
    if missing:
        raise InputFileError(f"{path}: row 1: missing column(s) {missing}; found {headers}")
    return [
        (i, {(k or "").strip(): (v or "").strip() for k, v in row.items()})
        for i, row in enumerate(reader, start=2)
    ]


def read_exemptions(path: Path) -> dict[str, list[Exemption]]:
    """``employee_number,reason,from,until`` → exemptions by employee number."""
    out: dict[str, list[Exemption]] = defaultdict(list)
    errors = []
    for row_no, row in csv_rows(path, ("employee_number", "reason", "from", "until")):
        dates: dict[str, date | None] = {}
        for col in ("from", "until"):
            try:
                dates[col] = parse_date(row[col])
            except ValueError:
                errors.append(
                    f"{path.name}: row {row_no}, column {col!r}, value {row[col]!r}: "
                    "unparseable date (use dd/mm/yyyy)"
                )
        start, until = dates.get("from"), dates.get("until")
        if not row["employee_number"] or until is None:
            errors.append(f"{path.name}: row {row_no}: employee_number and until are required")
            continue
        if start is not None and start > until:
            errors.append(
                f"{path.name}: row {row_no}, column 'until', value {row['until']!r}: ends "
                f"before it starts ({start:%d/%m/%Y})"
            )
            continue
        out[row["employee_number"]].append(
            Exemption(
                row["employee_number"],
                row["reason"] or "notified absence",
                start or date.min,
                until,
                f"{path.name}:{row_no}",
            )
        )
    if errors:
        raise InputFileError("\n".join(errors))
    return dict(out)


class FileArchive:
    """LDIF archives of purged accounts: ``<dir>/<uid>.ldif``, mode 0600 in a 0700 directory."""

    def __init__(self, folder: Path, hook: str | None = None) -> None:
        self.folder = folder
        self.hook = hook

    def tombstones(self) -> set[str]:
        """Every archived uid: a purged uid is never issued again, even if state is lost."""
        if not self.folder.is_dir():
            return set()
        return {p.name.split(".ldif")[0] for p in self.folder.glob("*.ldif*")}

    def store(self, uid: str, ldif: str) -> str:
        private_dir(self.folder)
        path = self.folder / f"{uid}.ldif"
        if path.exists():
            path = self.folder / f"{uid}.ldif.{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        write_private(path, ldif)
        return str(path)

    def after_purge(self, uid: str, path: str) -> None:
        if not self.hook:
            return
        cmd = [part.format(uid=uid, archive=path) for part in shlex.split(self.hook)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"purge hook {cmd[0]} exited {result.returncode}: {result.stderr.strip()[:300]}"
            )
