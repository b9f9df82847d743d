"""Where the mail server's activity comes from: one module per source.

- :mod:`.mail_log` — Postfix and Dovecot syslog files (login, send, receive), read
  incrementally across rotations (:mod:`.follow`);
- :mod:`.dovecot_dict` — Dovecot's ``last_login`` plugin, its dict file or ``fs`` folder;
- :mod:`.dovecot_sql` — the same plugin's SQL table, as iRedMail keeps it (SQLite);
- :mod:`.csv_file` — a CSV a site's own job writes (``lifecycle.activity_file``).

Each yields, per address, the newest time of each kind of activity it sees, keyed with the
source's name (:func:`syncd.plan.lifecycle.activity_key`) so that the clocks' reasons and
``syncd show`` say where a sign of life came from. Which kinds *count* is the profile's
(``lifecycle.activity``: Cao Bằng a login, Hưng Yên a send or receive, Tuyên Quang any);
what the sources can report decides whether a clock can run at all
(:func:`syncd.plan.lifecycle.effective`). The directory's own login times are read with the
accounts (the directory profile), not here. Progress is kept in ``<state>/activity/``
(:mod:`.saved`, 0600).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from connectors.activity.csv_file import CsvActivitySource
from connectors.activity.dovecot_dict import DovecotDictSource
from connectors.activity.dovecot_sql import DovecotSqlSource
from connectors.activity.mail_log import MailLogSource
from connectors.activity.saved import Seen, merge
from syncd.ports import ActivitySource

if TYPE_CHECKING:
    from connectors.config import Config

DEFAULT_REPORTS = {
    "mail-log": ("login", "send", "receive"),
    "dovecot-dict": ("login",),
    "dovecot-sql": ("login",),
}


def configured(config: Config, remember: bool = True) -> list[ActivitySource]:
    """The sources ``lifecycle.activity_sources`` (and ``activity_file``) name; with
    ``remember`` False they keep no progress (a plan saves nothing)."""
    lc = config.lifecycle
    state = config.paths.state / "activity"
    out: list[ActivitySource] = []
    if lc.activity_file:
        out.append(CsvActivitySource(lc.activity_file, f"activity file {lc.activity_file}"))
    for src in lc.activity_sources or ():
        reports = frozenset(src.activity or DEFAULT_REPORTS.get(src.type, ()))
        name = src.name or f"{src.type} {src.path or src.dsn}"
        if src.type == "csv":
            assert src.path is not None
            out.append(CsvActivitySource(src.path, name))
        elif src.type == "mail-log":
            assert src.path is not None
            out.append(
                MailLogSource(
                    src.path, name, reports, config.zone, config.domain, state, remember=remember
                )
            )
        elif src.type == "dovecot-dict":
            assert src.path is not None
            out.append(DovecotDictSource(src.path, name, reports, config.domain, state, remember))
        else:
            assert src.dsn is not None
            out.append(
                DovecotSqlSource(src.dsn, src.table, name, reports, config.domain, state, remember)
            )
    return out


def collect(sources: Sequence[ActivitySource]) -> tuple[dict[str, dict[str, datetime]], set[str]]:
    """Per address and kind the newest of all sources (with its source), and the kinds
    some source reports."""
    activity: Seen = {}
    available: set[str] = set()
    for source in sources:
        available |= source.kinds()
        merge(activity, {a: dict(k) for a, k in source.last_activity().items()})
    return activity, available


__all__ = [
    "CsvActivitySource",
    "DovecotDictSource",
    "DovecotSqlSource",
    "MailLogSource",
    "collect",
    "configured",
]
