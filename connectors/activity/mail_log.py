"""Last login, send and receive per address from the mail server's syslog files.

What counts, as Postfix and Dovecot write it (``tests/integration/test_activity_sources.py``
parses lines real servers wrote on the test machine):

- **send**: ``postfix/smtpd[…]: <queue id>: client=…, sasl_method=…, sasl_username=<user>`` —
  a message accepted from a person who authenticated (submission);
- **receive**: ``postfix/virtual|lmtp|pipe|local[…]: <queue id>: to=<address>, … status=sent``
  — a delivery into the mailbox; and Dovecot's own ``lmtp(<user>)`` / ``lda(<user>)`` ``saved
  mail to`` lines;
- **login**: ``imap-login: Login: user=<user>`` (also ``pop3-``, ``submission-``,
  ``managesieve-login``), from Dovecot through syslog or its own ``log_path``.

A user without ``@`` (the generic profile logs in with the uid) is ``<user>@<domain>``.

Time stamps: RFC 3339 ones carry their zone. Traditional syslog ones (``Nov 26 07:42:05``) carry
neither year nor zone: they are in ``timezone`` (the mail server's), and in the year of the
file's last change unless that would put them after it — then the year before (the December
lines of a file closed in January).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from connectors.activity.follow import Follower, Line
from connectors.activity.saved import Saved, Seen, record
from connectors.lifecycle_files import InputFileError

log = structlog.get_logger(__name__)

MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_STAMP = re.compile(
    r"(?:(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)(?:\.\d+)?"
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)) "
)
_POSTFIX = r"postfix[\w.-]*/(?:[\w.-]+/)*"
_EVENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("send", re.compile(_POSTFIX + r"smtpd\[\d+\]: \w+: client=.*?\bsasl_username=([^\s,]+)")),
    (
        "receive",
        re.compile(
            _POSTFIX + r"(?:virtual|lmtp|pipe|local)\[\d+\]: \w+: to=<([^>]+)>.*\bstatus=sent\b"
        ),
    ),
    ("receive", re.compile(r"\b(?:lmtp|lda)\(([^)\s]+)\).*: (?:saved|stored) mail (?:to|into)")),
    (
        "login",
        re.compile(
            r"\b(?:imap|pop3|submission|managesieve)-login: (?:Info: )?Login: user=<([^>]*)>"
        ),
    ),
)

# one of these is in every line a pattern above matches
_TOKENS = ("sasl_username=", "status=sent", "Login: user=", " mail to", " mail into")


def syslog_time(line: str, mtime: datetime, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """The UTC time of a log line's stamp; None if the line has no stamp."""
    m = _STAMP.match(line)
    if m is None:
        return None
    if m["iso"]:
        when = datetime.fromisoformat(m["iso"].replace("Z", "+00:00").replace(" ", "T"))
        return (when if when.tzinfo else when.replace(tzinfo=zone)).astimezone(UTC)
    month = MONTHS.get(m["mon"])
    if month is None:
        raise ValueError(f"{m['mon']!r} is not a month")
    h, mi, s = (int(x) for x in m["hms"].split(":"))
    latest = mtime.astimezone(zone) + timedelta(days=1)  # a clock a little ahead of the file's
    for year in range(latest.year, latest.year - 5, -1):  # 29 February: the last leap year
        try:
            when = datetime(year, month, int(m["day"]), h, mi, s, tzinfo=zone)
        except ValueError:
            continue
        if when <= latest:
            return when.astimezone(UTC)
    raise ValueError(f"{m.group(0).strip()!r} is not a date")


def address_of(user: str, domain: str) -> str | None:
    user = user.strip().lower()
    if not user or any(c in user for c in " <>,;\"'"):
        return None
    return user if "@" in user else f"{user}@{domain}"


def parse(
    lines: Iterable[Line], zone: zoneinfo.ZoneInfo, domain: str, kinds: frozenset[str]
) -> list[tuple[str, str, datetime]]:
    """``(address, kind, when)`` for each line that records activity of ``kinds``.

    A line that records activity but whose time stamp cannot be read is an error naming the
    file, the byte offset and the value: counting it at some other time, or not at all, could
    lock a person who was active.
    """
    found: list[tuple[str, str, datetime]] = []
    errors: list[str] = []
    for line in lines:
        if not any(token in line.text for token in _TOKENS):
            continue  # most of a mail log: a cheap test before the patterns
        for kind, pattern in _EVENTS:
            m = pattern.search(line.text)
            if m is None or kind not in kinds:
                continue
            address = address_of(m.group(1), domain)
            if address is None:
                break
            try:
                when = syslog_time(line.text, line.mtime, zone)
            except ValueError as exc:
                errors.append(f"{line.file}: byte {line.offset}: time stamp: {exc}")
                break
            if when is None:
                errors.append(
                    f"{line.file}: byte {line.offset}: value {line.text[:40]!r}: no syslog "
                    "time stamp (Mon DD HH:MM:SS or RFC 3339) at the start of the line"
                )
                break
            found.append((address, kind, when))
            break
        if len(errors) >= 20:
            break
    if errors:
        raise InputFileError("\n".join(errors))
    return found


@dataclass
class MailLogSource:
    """:class:`syncd.ports.ActivitySource`: a syslog file (and its rotations) of Postfix and
    Dovecot, read from where the last run stopped."""

    path: Path
    name: str
    reports: frozenset[str]
    zone: zoneinfo.ZoneInfo
    domain: str
    state: Path  # the folder of saved positions
    note: str = ""  # why the last read started over, if it did (also logged)
    remember: bool = True  # False: a plan, which saves nothing (the next run reads again)

    @property
    def source_id(self) -> str:
        return f"mail-log {self.path}"

    def kinds(self) -> frozenset[str]:
        return self.reports

    def last_activity(self) -> Seen:
        saved = Saved.load(self.state, self.source_id)
        follower = Follower(self.path, saved.where)
        if not self.path.exists() and not saved.where:
            raise InputFileError(f"{self.path}: mail log not found (lifecycle.activity_sources)")
        found = parse(follower.lines(), self.zone, self.domain, self.reports)
        self.note = follower.note
        if follower.note:
            log.warning("activity log re-read", source=self.name, why=follower.note)
        for address, kind, when in found:
            record(saved.seen, address, kind, self.name, when)
        saved.where = follower.position
        if self.remember:
            saved.save(self.source_id)
        return saved.seen
