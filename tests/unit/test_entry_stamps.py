"""The generalized time syncd writes into the entries it creates (``syncdStateSince``,
``syncdActiveSince``): the plan's ``now`` in UTC, formatted once per run (a cache), never a
neighbouring reading's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from connectors.directory.openldap import _stamp


def test_the_same_instant_in_any_zone_is_one_stamp_and_a_repeated_local_hour_is_two() -> None:
    """Found by an attack: the cache keyed two readings of a repeated local hour (daylight
    saving's end) as one, giving the second the first's stamp, an hour off."""
    first = datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert _stamp(first) == "20261101053000Z"
    assert _stamp(second) == "20261101063000Z"
    hanoi = datetime(2027, 1, 1, 6, 59, 59, tzinfo=timezone(timedelta(hours=7)))
    assert _stamp(hanoi) == _stamp(hanoi.astimezone(UTC)) == "20261231235959Z"


def test_no_time_given_is_the_wall_clock_each_time() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    got = datetime.strptime(_stamp(None), "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    assert before <= got <= datetime.now(UTC)
