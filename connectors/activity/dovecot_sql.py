"""Last logins from Dovecot's ``last_login`` plugin in an SQL table, as iRedMail keeps it.

iRedMail maps ``last-login/<service>/<user>/<domain>`` to the table ``last_login`` (in its
``iredadmin`` or ``vmail`` database) with the columns ``username`` (the address), ``domain``,
and one Unix time per service: ``imap``, ``pop3`` (logins) and ``lda`` (a delivery: a receive);
an older or hand-made map has a single ``last_login`` column. The columns the table has are
used. Only SQLite is read (``sqlite:///path/to/db``): it is what the tests can run for real
here (Dovecot's ``dovecot-sqlite`` writes it); MySQL and PostgreSQL would need a driver and a
server of their own and are not supported yet.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from connectors.activity.dovecot_dict import unix_time
from connectors.activity.saved import Saved, Seen, record
from connectors.lifecycle_files import InputFileError

COLUMNS = {"last_login": "login", "imap": "login", "pop3": "login", "lda": "receive"}


def sqlite_path(dsn: str) -> Path:
    """The database file of ``sqlite:///<absolute path>`` (``sqlite:////var/lib/…``), the only
    form accepted."""
    path = Path(dsn.removeprefix("sqlite:///"))
    if not dsn.startswith("sqlite:///") or not path.is_absolute():
        raise InputFileError(
            f"{dsn!r}: only sqlite:///<absolute path> is supported (MySQL, PostgreSQL: not yet)"
        )
    return path


@dataclass
class DovecotSqlSource:
    """:class:`syncd.ports.ActivitySource`: the last_login table, read-only."""

    dsn: str
    table: str
    name: str
    reports: frozenset[str]
    domain: str
    state: Path
    remember: bool = True  # False: a plan, which saves nothing (the next run reads again)

    @property
    def source_id(self) -> str:
        return f"dovecot-sql {self.dsn} {self.table}"

    def kinds(self) -> frozenset[str]:
        return self.reports

    def last_activity(self) -> Seen:
        path = sqlite_path(self.dsn)
        where = f"{path}: table {self.table}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.table):
            raise InputFileError(f"{where}: not a table name")
        if not path.is_file():
            raise InputFileError(f"{path}: the last_login database not found")
        try:
            # read-only: syncd never writes the mail server's database
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
                have = [row[1] for row in db.execute(f'PRAGMA table_info("{self.table}")')]
                cols = [c for c in COLUMNS if c in have and COLUMNS[c] in self.reports]
                if "username" not in have or not [c for c in COLUMNS if c in have]:
                    raise InputFileError(
                        f"{where}: needs the columns username and one of "
                        f"{', '.join(COLUMNS)}; found {have}"
                    )
                # the table name is checked above and the columns are COLUMNS' own names
                query = f'SELECT username, {", ".join(cols)} FROM "{self.table}"'  # noqa: S608
                rows = db.execute(query).fetchall() if cols else []
        except sqlite3.Error as exc:
            raise InputFileError(f"{where}: {exc}") from exc
        saved = Saved.load(self.state, self.source_id)
        errors: list[str] = []
        found: list[tuple[str, str, datetime]] = []
        for row in rows:
            user = str(row[0] or "").strip().lower()
            address = user if "@" in user else f"{user}@{self.domain}"
            for col, value in zip(cols, row[1:], strict=True):
                if value is None:
                    continue
                try:
                    found.append((address, COLUMNS[col], unix_time(str(value))))
                except (ValueError, OverflowError, OSError):
                    errors.append(
                        f"{where}: username {user!r}, column {col!r}, value {value!r}: "
                        "not a Unix time"
                    )
        if errors:
            raise InputFileError("\n".join(errors[:20]))
        for address, kind, when in found:
            record(saved.seen, address, kind, self.name, when)
        if self.remember:
            saved.save(self.source_id)
        return saved.seen
