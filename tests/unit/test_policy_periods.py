"""A regulation's period as a server's maximum age: never longer than the period can be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.directory.policy import shortest_days
from syncd.regulation import Duration


@pytest.mark.parametrize(
    ("period", "days"),
    [("3m", 89), ("6m", 181), ("1m", 28), ("12m", 365), ("1y", 365), ("90d", 90)],
)
def test_a_period_in_months_is_written_as_the_fewest_days_it_can_span(
    period: str, days: int
) -> None:
    assert shortest_days(Duration.parse(period)) == days


@pytest.mark.parametrize("period", ["1m", "3m", "6m", "13m", "2y"])
def test_the_written_age_never_outlasts_the_period_from_any_day_of_a_leap_cycle(
    period: str,
) -> None:
    d = Duration.parse(period)
    first = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(4 * 365 + 1):
        start = first + timedelta(days=n)
        assert (d.after(start) - start).days >= shortest_days(d), start
