"""Lifecycle inputs and outputs on disk: mail activity, exemptions, the purge archive."""

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


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
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


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


ACTIVITY_KINDS = ("login", "send", "receive", "mail")


def read_activity(path: Path) -> dict[str, dict[str, datetime]]:
    """``address,last_activity[,kind]`` → the newest activity per address and kind.

    ``kind`` says what the mail server saw: ``login``, ``send``, ``receive``, or ``mail`` (a
    log line that does not tell the direction; the default when the column is absent). Which
    kinds count is the profile's ``lifecycle.activity``.
    """
    out: dict[str, dict[str, datetime]] = defaultdict(dict)
    errors = []
    for row_no, row in _rows(path, ("address", "last_activity")):
        address = row["address"].lower()
        kind = (row.get("kind") or "mail").lower()
        if kind not in ACTIVITY_KINDS:
            errors.append(
                f"{path.name}: row {row_no}, column 'kind', value {kind!r}: not one of "
                f"{', '.join(ACTIVITY_KINDS)}"
            )
            continue
        try:
            when = _when(row["last_activity"])
        except ValueError:
            errors.append(
                f"{path.name}: row {row_no}, column 'last_activity', value "
                f"{row['last_activity']!r}: not an ISO date-time"
            )
            continue
        if "@" not in address:
            errors.append(
                f"{path.name}: row {row_no}, column 'address', value {address!r}: "
                "not a mail address"
            )
            continue
        seen = out[address]
        seen[kind] = max(when, seen.get(kind, when))
    if errors:
        raise InputFileError("\n".join(errors))
    return dict(out)


def read_exemptions(path: Path) -> dict[str, list[Exemption]]:
    """``employee_number,reason,from,until`` → exemptions by employee number."""
    out: dict[str, list[Exemption]] = defaultdict(list)
    errors = []
    for row_no, row in _rows(path, ("employee_number", "reason", "from", "until")):
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


class CsvActivitySource:
    """:class:`syncd.ports.ActivitySource` from a CSV a mail-log job writes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last_activity(self) -> dict[str, dict[str, datetime]]:
        return read_activity(self.path)

    def kinds(self) -> frozenset[str]:
        """What this source reports: the mail server's records (send and receive), and
        logins where the file has them."""
        seen = {k for per in read_activity(self.path).values() for k in per}
        return frozenset({"send", "receive"} | ({"login"} & seen))


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
