"""Crontab lines as an operator means them, for APScheduler.

APScheduler 3's ``CronTrigger.from_crontab`` reads the weekday field with 0 = Monday, while
every crontab (POSIX, cron(8), crontab.guru) counts 0 or 7 = Sunday, 1 = Monday: ``30 3 * *
1`` ran on Tuesdays and ``0 2 * * 1-5`` from Tuesday to Saturday. The weekday field is
translated here to day names, which mean the same to both; the other fields are the same.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    token = token.strip().lower()
    if token[:3] in NAMES:
        return NAMES.index(token[:3])
    number = int(token)
    if not 0 <= number <= 7:
        raise ValueError(f"weekday {token!r} is not 0-7 (0 and 7: Sunday) or a day name")
    return number % 7


def weekdays(field: str) -> str:
    """A crontab weekday field as APScheduler day names (``1-5`` → ``mon,tue,wed,thu,fri``)."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"weekday step {step_text!r} must be at least 1")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _day(a), int(b) if b.strip().isdigit() else _day(b)
            if last == 7:
                last = 7  # 5-7: Friday to Sunday
            elif first > last:
                raise ValueError(f"weekday range {base!r} runs backwards")
        else:
            first = last = _day(base)
        days |= {d % 7 for d in range(first, last + 1, step)}
    return ",".join(NAMES[d] for d in sorted(days))


def crontab(expression: str, zone: tzinfo) -> CronTrigger:
    """The trigger of a five-field crontab line, in ``zone``."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    # imported here: only a configuration with a schedule, and the daemon, need APScheduler
    # (its import reads every installed package's metadata: ~10 ms of every command)
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=weekdays(weekday),
        timezone=zone,
    )
