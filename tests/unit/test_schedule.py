"""Crontab weekdays mean what they mean in every crontab: 0 and 7 Sunday, 1 Monday (APScheduler
3's own from_crontab counts 0 = Monday: a Monday job ran on Tuesdays)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from connectors.schedule import crontab, weekdays

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def _next(expr: str, after: datetime) -> datetime:
    fire = crontab(expr, HCM).get_next_fire_time(None, after)
    assert fire is not None
    return fire


def test_weekday_one_is_monday_and_zero_and_seven_are_sunday() -> None:
    thursday = datetime(2026, 11, 26, 12, tzinfo=HCM)
    assert _next("30 3 * * 1", thursday).strftime("%A %H:%M") == "Monday 03:30"
    assert _next("0 2 * * 0", thursday).strftime("%A") == "Sunday"
    assert _next("0 2 * * 7", thursday).strftime("%A") == "Sunday"


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("0-6/2", "sun,tue,thu,sat"),
        ("sat,sun", "sun,sat"),
        ("*", "*"),
    ],
)
def test_a_weekday_field_becomes_day_names(field: str, names: str) -> None:
    assert weekdays(field) == names


def test_a_bad_weekday_is_refused() -> None:
    with pytest.raises(ValueError, match="0-7"):
        crontab("0 2 * * 8", HCM)
