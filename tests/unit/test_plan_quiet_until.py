"""``Plan.quiet_until``: the earliest time a plan can change by the clock alone.

A run whose inputs are those of the last quiet run is not planned again before it
(connectors/quiet.py), so it must never be late: the property test plans the same inputs at
other times before it and finds the same plan. The exact cases keep it from being uselessly
early (a horizon of ``now`` would pass the property and skip nothing).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.regulations import PROFILES
from syncd.model import Account, Exemption, Person, Plan, State
from syncd.plan.emit import GENERALIZED
from syncd.plan.lifecycle import lock_warnings
from tests.unit.test_planner import plan

NOW = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
NAMES = ("Lê Văn An", "Trần Thị Bình", "Hoàng Văn Phúc", "Ngô Thị Cúc")


def _account(i: int, state: State, since: int, login: int | None, **kw: object) -> Account:
    uid = f"u{i}.skhcn"
    fields: dict[str, object] = {"mail": (f"{uid}@x.gov.vn",), **kw}
    return Account(
        dn=f"uid={uid},ou=people",
        uid=uid,
        cn=NAMES[i],
        sn=NAMES[i].split()[0],
        given_name=" ".join(NAMES[i].split()[1:]),
        org="skhcn",
        employee_number=f"E{i}",
        state=state,
        state_since=NOW - timedelta(days=since),
        active_since=NOW - timedelta(days=since),
        created=NOW - timedelta(days=since + 5),
        last_login=None if login is None else NOW - timedelta(days=login, hours=3),
        has_syncd_class=True,
        **fields,
    )  # type: ignore[arg-type]


def _plan(profile: str, accounts: list[Account], people: list[Person], now: datetime) -> Plan:
    return plan(people, accounts, profile, now=now)  # type: ignore[no-any-return]


def _same(a: Plan, b: Plan) -> bool:
    return (a.actions, a.decisions, a.notices, a.refused, a.held) == (
        b.actions,
        b.decisions,
        b.notices,
        b.refused,
        b.held,
    )


@st.composite
def _province(draw: st.DrawFn) -> tuple[str, list[Account], list[Person]]:
    profile = draw(st.sampled_from(sorted(PROFILES)))
    accounts, people = [], []
    for i in range(draw(st.integers(1, len(NAMES)))):
        state = draw(st.sampled_from([State.ACTIVE, State.LOCKED, State.REVOKED]))
        since = draw(st.integers(0, 1500))
        login = draw(st.one_of(st.none(), st.integers(0, 400)))
        extra: dict[str, object] = {"must_change_password": draw(st.booleans())}
        if draw(st.booleans()):  # an old address kept after a transfer, ending some day
            ends = NOW + timedelta(
                days=draw(st.integers(-30, 60)), seconds=draw(st.integers(0, 86399))
            )
            old = f"old{i}@x.gov.vn"
            extra["aliases"] = (f"{old} {ends.strftime(GENERALIZED)}",)
            if draw(st.booleans()):
                extra["mail"] = (f"u{i}.skhcn@x.gov.vn", old)
        accounts.append(_account(i, state, since, login, **extra))
        absence = None
        if draw(st.booleans()):
            start = NOW.date() + timedelta(days=draw(st.integers(-200, 30)))
            absence = Exemption(
                f"E{i}", "nghỉ phép", start, start + timedelta(days=draw(st.integers(1, 900)))
            )
        people.append(Person(f"E{i}", NAMES[i], "skhcn", exemption=absence))
    return profile, accounts, people


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_province(), st.floats(0, 1))
def test_a_plan_is_the_same_at_any_time_before_its_quiet_until(
    province: tuple[str, list[Account], list[Person]], fraction: float
) -> None:
    profile, accounts, people = province
    first = _plan(profile, accounts, people, NOW)
    until = first.quiet_until
    if until is None:  # time alone never changes it: ten years on, the same plan
        later = [NOW + timedelta(days=3650 * fraction), NOW + timedelta(days=3650)]
    else:
        if until <= NOW:
            return  # changes at once: nobody may reuse it (a transfer's alias counts from now)
        last = until - timedelta(microseconds=1)
        later = [min(NOW + (until - NOW) * fraction, last), last]
    for when in later:
        assert _same(_plan(profile, accounts, people, when), first), when


def test_quiet_until_is_the_day_an_inactivity_lock_falls_due() -> None:
    active = _account(0, State.ACTIVE, since=100, login=20)
    people = [Person("E0", NAMES[0], "skhcn")]
    first = _plan("caobang-2025", [active], people, NOW)
    assert not first.actions
    assert active.last_login is not None
    lock = active.last_login + timedelta(days=90)  # caobang-2025 Đ8.2a
    assert first.quiet_until == lock
    assert not _plan("caobang-2025", [active], people, lock - timedelta(seconds=1)).actions
    assert [a.rule for a in _plan("caobang-2025", [active], people, lock).actions] == [
        "lock_inactive"
    ]


def test_quiet_until_is_the_end_of_an_old_address_kept_after_a_transfer() -> None:
    ends = NOW + timedelta(days=3, hours=2)
    moved = _account(
        0,
        State.ACTIVE,
        since=10,
        login=0,
        mail=("u0.skhcn@x.gov.vn", "old@x.gov.vn"),
        aliases=(f"old@x.gov.vn {ends.strftime(GENERALIZED)}",),
    )
    people = [Person("E0", NAMES[0], "skhcn")]
    assert _plan("caobang-2025", [moved], people, NOW).quiet_until == ends
    expired = _plan("caobang-2025", [moved], people, ends)
    assert [a.reason for a in expired.actions] == [
        "old address(es) old@x.gov.vn kept after a transfer expired"
    ]


def test_quiet_until_is_when_an_absence_stops_being_pointed_out_as_far_ahead() -> None:
    active = _account(0, State.ACTIVE, since=10, login=0)
    far = date(2028, 3, 1)
    people = [Person("E0", NAMES[0], "skhcn", exemption=Exemption("E0", "học", NOW.date(), far))]
    first = _plan("caobang-2025", [active], people, NOW)
    assert any("keeps the inactivity clocks stopped" in n for n in first.notices)
    assert first.quiet_until == datetime(2027, 3, 1, tzinfo=UTC)  # 366 days before the end
    assert not any(
        "keeps the inactivity clocks stopped" in n
        for n in _plan("caobang-2025", [active], people, first.quiet_until).notices
    )


def test_the_next_lock_warning_is_the_lock_less_the_days_before() -> None:
    lc = PROFILES["caobang-2025"].lifecycle
    quiet = _account(0, State.ACTIVE, since=100, login=20)
    assert quiet.last_login is not None
    lock = quiet.last_login + timedelta(days=90)
    at = lock_warnings([quiet], lc, {}, {}, NOW, 14, (), zone=UTC).next_at
    assert at == lock - timedelta(days=14)
    just_before = lock_warnings([quiet], lc, {}, {}, at - timedelta(seconds=1), 14, (), zone=UTC)
    assert just_before.due == [] and just_before.next_at == at
    then = lock_warnings([quiet], lc, {}, {}, at, 14, (), zone=UTC)
    assert [a.uid for a, _, _ in then.due] == [quiet.uid] and then.next_at is None
    # warned already: no warning is coming for that lock date
    key = f"{quiet.uid}|{lock:%Y-%m-%d}"
    assert lock_warnings([quiet], lc, {}, {}, NOW, 14, (key,), zone=UTC).next_at is None
