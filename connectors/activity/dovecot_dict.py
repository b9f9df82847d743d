"""Last logins from Dovecot's ``last_login`` plugin, in its dict file or ``fs`` dict folder.

Dovecot writes, at every login, ``shared/<last_login_key>`` = the Unix time (seconds; with
``last_login_precision`` ms/us/ns, told apart by size). The key is ``last-login/%u`` by default;
iRedMail's form ``last-login/%s/%u/%d`` names the service first (``imap``, ``pop3``; ``lda`` and
``lmtp`` are a delivery, so a *receive*). Two stores are read:

- ``dict { lastlogin = file:/var/lib/dovecot/lastlogin }``: one file, key and value on
  alternate lines (Dovecot rewrites it whole at each change);
- ``fs:posix:prefix=/var/lib/dovecot/lastlogin/``: a folder, one file per key (its path
  under the folder), the value its content.

Either holds the newest time per person, so it is read whole at each run and merged with
what was seen before (a person removed from the dict keeps their last known login).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connectors.activity.saved import Saved, Seen, record
from connectors.lifecycle_files import InputFileError

DELIVERY_SERVICES = {"lda", "lmtp"}
SERVICES = {"imap", "pop3", "submission", "managesieve", "sieve", "smtp", "imaps", "pop3s"}


def unix_time(value: str) -> datetime:
    """A last_login value (seconds, or ms/us/ns with ``last_login_precision``) as UTC."""
    n = int(value.strip())
    if n <= 0:
        raise ValueError("not a positive Unix time")
    for scale in (1, 1_000, 1_000_000, 1_000_000_000):
        if n / scale < 10**11:  # before the year 5138: seconds at this scale
            return datetime.fromtimestamp(n / scale, UTC)
    raise ValueError("not a Unix time")


def key_address(key: str, domain: str) -> tuple[str, str] | None:
    """``(address, kind)`` of a last_login dict key, None for a key of something else."""
    parts = [p for p in key.split("/") if p]
    if parts and parts[0] in ("shared", "priv"):
        parts = parts[1:]
    if len(parts) < 2 or parts[0] != "last-login":
        return None
    rest = parts[1:]
    kind = "login"
    if len(rest) > 1 and rest[0].lower() in SERVICES | DELIVERY_SERVICES:
        kind = "receive" if rest[0].lower() in DELIVERY_SERVICES else "login"
        rest = rest[1:]
    user = rest[0].lower()
    if "@" not in user:  # %n/%d: the domain follows
        user = f"{user}@{rest[1].lower() if len(rest) > 1 and '.' in rest[1] else domain}"
    return user, kind


def dict_pairs(path: Path) -> Iterator[tuple[str, str, str]]:
    """``(where, key, value)`` of a file dict or an ``fs`` dict folder."""
    if path.is_dir():
        for item in sorted(path.rglob("*")):
            if item.is_file():
                rel = item.relative_to(path).as_posix()
                yield str(item), rel, item.read_text(encoding="utf-8", errors="replace")
        return
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) % 2:
        raise InputFileError(
            f"{path}: line {len(lines)}: a key without a value: not a Dovecot file dict "
            "(key and value on alternate lines)"
        )
    for i in range(0, len(lines), 2):
        yield f"{path}: line {i + 2}", lines[i], lines[i + 1]


@dataclass
class DovecotDictSource:
    """:class:`syncd.ports.ActivitySource`: Dovecot's last_login dict (file or fs)."""

    path: Path
    name: str
    reports: frozenset[str]
    domain: str
    state: Path
    remember: bool = True  # False: a plan, which saves nothing (the next run reads again)

    @property
    def source_id(self) -> str:
        return f"dovecot-dict {self.path}"

    def kinds(self) -> frozenset[str]:
        return self.reports

    def last_activity(self) -> Seen:
        if not self.path.exists():
            raise InputFileError(
                f"{self.path}: Dovecot's last_login dict not found (lifecycle.activity_sources)"
            )
        saved = Saved.load(self.state, self.source_id)
        errors: list[str] = []
        found: list[tuple[str, str, datetime]] = []
        try:
            for where, key, value in dict_pairs(self.path):
                hit = key_address(key, self.domain)
                if hit is None or hit[1] not in self.reports:
                    continue
                try:
                    found.append((hit[0], hit[1], unix_time(value)))
                except (ValueError, OverflowError, OSError):
                    errors.append(
                        f"{where}: key {key!r}, value {value.strip()[:40]!r}: not a Unix time"
                    )
        except OSError as exc:
            raise InputFileError(f"{self.path}: cannot read: {exc.strerror}") from exc
        if errors:
            raise InputFileError("\n".join(errors[:20]))
        for address, kind, when in found:
            record(saved.seen, address, kind, self.name, when)
        if self.remember:
            saved.save(self.source_id)
        return saved.seen
