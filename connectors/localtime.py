"""Times as people read them: in the province's zone (``timezone``), never bare UTC.

The audit log, the journal and every ``--json`` answer keep UTC with its offset: machines
compare them. What a person reads — ``syncd show``, ``history``, ``forecast``, ``status``, the
reports — is the province's clock: a lock at 17:30 UTC on 31 December is 00:30 on 1 January
in Cao Bằng, and printing "2026-12-31T17:30" to an operator in Cao Bằng was wrong by a day
(found by an attack). The dates inside the lifecycle clocks' reasons ("locked since …", in the
audit, the plan and ``show``) are the province's days too (``PlanInput.zone``,
``syncd/plan/lifecycle.py``). Each text form names nothing further: the zone is the configuration's,
and ``syncd config`` shows it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo


def in_zone(when: datetime | str | None, zone: tzinfo, *, date_only: bool = False) -> str:
    """``when`` (a datetime, or an ISO text as the audit keeps it) in ``zone``: ``YYYY-MM-DD
    HH:MM:SS``, or the date alone; a naive or unreadable value is shown as it is."""
    if when is None or when == "":
        return ""
    if isinstance(when, str):
        try:
            parsed = datetime.fromisoformat(when)
        except ValueError:
            return when
    else:
        parsed = when
    if parsed.tzinfo is None:
        return str(when)[: 10 if date_only else 19]
    shown = parsed.astimezone(zone)
    return f"{shown:%Y-%m-%d}" if date_only else f"{shown:%Y-%m-%d %H:%M:%S}"


__all__ = ["in_zone"]
