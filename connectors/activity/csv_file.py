"""Activity from a CSV a site's own job writes (``lifecycle.activity_file``, or a source of
type ``csv``): ``address,last_activity[,kind]``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connectors.activity.saved import Seen, record
from connectors.lifecycle_files import InputFileError, csv_rows

ACTIVITY_KINDS = ("login", "send", "receive", "mail")


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def read_activity(path: Path) -> dict[str, dict[str, datetime]]:
    """``address,last_activity[,kind]`` → the newest activity per address and kind.

    ``kind`` says what the mail server saw: ``login``, ``send``, ``receive``, or ``mail`` (a
    log line that does not tell the direction; the default when the column is absent). Which
    kinds count is the profile's ``lifecycle.activity``.
    """
    out: dict[str, dict[str, datetime]] = {}
    errors = []
    for row_no, row in csv_rows(path, ("address", "last_activity")):
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
        seen = out.setdefault(address, {})
        seen[kind] = max(when, seen.get(kind, when))
    if errors:
        raise InputFileError("\n".join(errors))
    return out


@dataclass
class CsvActivitySource:
    """:class:`syncd.ports.ActivitySource` from a CSV a mail-log job writes."""

    path: Path
    name: str = ""

    def last_activity(self) -> Seen:
        out: Seen = {}
        for address, kinds in read_activity(self.path).items():
            for kind, when in kinds.items():
                record(out, address, kind, self.name, when)
        return out

    def kinds(self) -> frozenset[str]:
        """What this source reports: the mail server's records (send and receive), and
        logins where the file has them."""
        seen = {k for per in read_activity(self.path).values() for k in per}
        return frozenset({"send", "receive"} | ({"login"} & seen))
