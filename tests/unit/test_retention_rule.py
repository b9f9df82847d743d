"""The retention rule (syncd/retention.py): calendar months, as the lifecycle clocks count."""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.retention import expired


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 9, tzinfo=UTC)


def test_a_thing_expires_on_the_same_day_months_later_and_month_ends_clamp() -> None:
    written = [("jan31", at(2026, 1, 31)), ("mar31", at(2026, 3, 31)), ("apr01", at(2026, 4, 1))]
    # one month after 31 January is 28 February; after 31 March, 30 April
    assert expired(written, at(2026, 2, 28), 1, set()) == ["jan31"]
    assert expired(written, at(2026, 4, 30), 1, set()) == ["jan31", "mar31"]
    assert expired(written, at(2026, 4, 30).replace(hour=8), 1, set()) == ["jan31"]
    assert expired(written, at(2028, 4, 1), 24, set()) == ["jan31", "mar31", "apr01"]


def test_what_is_still_needed_is_never_expired_and_0_keeps_everything() -> None:
    written = [("old", at(2020, 1, 1)), ("latest", at(2020, 1, 1))]
    assert expired(written, at(2026, 1, 1), 6, {"latest"}) == ["old"]
    assert expired(written, at(2026, 1, 1), 0, set()) == []
