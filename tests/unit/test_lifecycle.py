"""Time travel through every clock of every profile, on both sides of each threshold.

Each test is named after the article it proves. Accounts are built by hand; ``now`` moves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.regulations import PROFILES
from syncd.model import Account, ActionKind, Exemption, Kind, State
from syncd.plan.lifecycle import activity_reference, due, forecast, timeline
from syncd.regulation import Duration, with_overrides

T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def acc(
    state: State = State.ACTIVE,
    since: datetime = T0,
    last_login: datetime | None = T0,
    must_change: bool = False,
    emp: str = "E1",
    **kw: object,
) -> Account:
    return Account(
        dn="uid=a,ou=people",
        uid="a.skhcn",
        cn="Lê Văn A",
        org="skhcn",
        employee_number=emp,
        mail=("a.skhcn@x.gov.vn",),
        state=state,
        state_since=since,
        last_login=last_login,
        created=T0 - timedelta(days=400),
        must_change_password=must_change,
        **kw,
    )  # type: ignore[arg-type]


def step(profile: str, account: Account, now: datetime, activity=None, exemptions=()):  # type: ignore[no-untyped-def]
    """The one lifecycle action due at ``now`` (kind, rule) or None."""
    lc = PROFILES[profile].lifecycle
    ev = due(timeline(account, lc, activity or {}, list(exemptions), now, zone=UTC), now)
    return (ev.kind, ev.rule, ev.article) if ev else None


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


# -- caobang-2025 -----------------------------------------------------------------------------


def test_caobang_2025_D8_2a_lock_after_90_days_without_login() -> None:
    assert step("caobang-2025", acc(), days(89)) is None
    assert step("caobang-2025", acc(), days(91)) == (
        ActionKind.LOCK,
        "lock_inactive",
        "caobang-2025 Đ8.2a",
    )


def test_caobang_2025_D8_1_revoke_30_days_after_lock_without_restore() -> None:
    locked = acc(State.LOCKED, since=days(100))
    assert step("caobang-2025", locked, days(129)) is None
    assert step("caobang-2025", locked, days(131)) == (
        ActionKind.REVOKE,
        "revoke_locked",
        "caobang-2025 Đ8.1",
    )


def test_caobang_2025_purge_is_off_by_default_and_a_site_can_set_it() -> None:
    revoked = acc(State.REVOKED, since=days(0))
    assert step("caobang-2025", revoked, days(365 * 10)) is None
    site = with_overrides(PROFILES["caobang-2025"], {"purge_locked": {"after": "3y"}}, "syncd.yaml")
    lc = site.lifecycle
    assert lc.purge_locked.source == "syncd.yaml"
    assert (
        due(timeline(revoked, lc, {}, [], days(365 * 3 - 2), zone=UTC), days(365 * 3 - 2)) is None
    )
    ev = due(timeline(revoked, lc, {}, [], days(365 * 3 + 2), zone=UTC), days(365 * 3 + 2))
    assert ev is not None and ev.kind is ActionKind.PURGE


def test_caobang_2025_D8_1_locked_mailbox_still_receives_mail() -> None:
    assert PROFILES["caobang-2025"].lifecycle.locked_receives_mail.value is True


def test_caobang_2025_has_no_default_password_lock() -> None:
    assert step("caobang-2025", acc(must_change=True, last_login=None), days(60)) is None


# -- caobang-2011 -----------------------------------------------------------------------------


def test_caobang_2011_D8_3_revoke_after_6_months_without_access() -> None:
    # 6 calendar months from 10 Jan is 10 Jul
    assert step("caobang-2011", acc(), datetime(2026, 7, 9, 8, tzinfo=UTC)) is None
    assert step("caobang-2011", acc(), datetime(2026, 7, 11, tzinfo=UTC)) == (
        ActionKind.REVOKE,
        "revoke_inactive",
        "caobang-2011 Đ8.3",
    )


def test_caobang_2011_has_no_lock_and_no_purge() -> None:
    lc = PROFILES["caobang-2011"].lifecycle
    assert lc.lock_inactive.after is None and lc.purge_locked.after is None
    assert step("caobang-2011", acc(State.REVOKED, since=T0), days(5000)) is None


# -- hungyen-2025 -----------------------------------------------------------------------------


def test_hungyen_2025_D7_2a_lock_after_3_months_without_send_or_receive() -> None:
    assert step("hungyen-2025", acc(), datetime(2026, 4, 9, tzinfo=UTC)) is None
    assert step("hungyen-2025", acc(), datetime(2026, 4, 11, tzinfo=UTC))[:2] == (  # type: ignore[index]
        ActionKind.LOCK,
        "lock_inactive",
    )


def test_hungyen_2025_D7_2d_lock_when_default_password_kept_one_month() -> None:
    fresh = acc(must_change=True, last_login=None, since=T0, password_changed=T0)
    assert step("hungyen-2025", fresh, days(30)) is None
    assert step("hungyen-2025", fresh, days(32)) == (
        ActionKind.LOCK,
        "lock_default_password",
        "hungyen-2025 Đ7.2d",
    )
    changed = acc(must_change=False, last_login=days(5), since=T0, password_changed=days(5))
    assert step("hungyen-2025", changed, days(32)) is None


def test_hungyen_2025_D6_2c_revoke_after_6_months_without_send_or_receive() -> None:
    locked = acc(State.LOCKED, since=datetime(2026, 4, 11, tzinfo=UTC))
    sent = {"a.skhcn@x.gov.vn": {"send": T0}}
    assert step("hungyen-2025", locked, datetime(2026, 7, 9, tzinfo=UTC), sent) is None
    assert step("hungyen-2025", locked, datetime(2026, 7, 11, tzinfo=UTC), sent) == (
        ActionKind.REVOKE,
        "revoke_inactive",
        "hungyen-2025 Đ6.2c",
    )


def test_hungyen_2025_D7_1_locked_mailbox_still_receives_mail() -> None:
    assert PROFILES["hungyen-2025"].lifecycle.locked_receives_mail.value is True


# -- tuyenquang-2025 --------------------------------------------------------------------------


def test_tuyenquang_2025_D8_2a_lock_after_6_months_without_login_send_or_receive() -> None:
    assert step("tuyenquang-2025", acc(), datetime(2026, 7, 9, tzinfo=UTC)) is None
    assert step("tuyenquang-2025", acc(), datetime(2026, 7, 11, tzinfo=UTC)) == (
        ActionKind.LOCK,
        "lock_inactive",
        "tuyenquang-2025 Đ8.2a",
    )


def test_tuyenquang_2025_D8_2d_lock_when_default_password_kept_one_month() -> None:
    fresh = acc(must_change=True, last_login=None, since=T0, password_changed=T0)
    assert step("tuyenquang-2025", fresh, days(30)) is None
    assert step("tuyenquang-2025", fresh, days(32))[1] == "lock_default_password"  # type: ignore[index]


def test_tuyenquang_2025_D8_4_purge_after_3_years_locked_continuously() -> None:
    locked = acc(State.LOCKED, since=datetime(2023, 3, 1, tzinfo=UTC))
    assert step("tuyenquang-2025", locked, datetime(2026, 2, 28, tzinfo=UTC)) is None
    assert step("tuyenquang-2025", locked, datetime(2026, 3, 2, tzinfo=UTC)) == (
        ActionKind.PURGE,
        "purge_locked",
        "tuyenquang-2025 Đ8.4",
    )


def test_tuyenquang_2025_D8_1_locked_mailbox_neither_sends_nor_receives() -> None:
    assert PROFILES["tuyenquang-2025"].lifecycle.locked_receives_mail.value is False


# -- shared behaviour -------------------------------------------------------------------------


def test_a_notified_absence_restarts_the_inactivity_clock_when_it_ends() -> None:
    leave = Exemption("E1", "nghỉ thai sản", date(2026, 3, 1), date(2026, 9, 30))
    assert step("caobang-2025", acc(), days(120), exemptions=[leave]) is None
    # back on 1 October: a full 90 days to log in again, not a lock the morning after
    back = datetime(2026, 10, 1, tzinfo=UTC)
    assert step("caobang-2025", acc(), back + timedelta(days=1), exemptions=[leave]) is None
    assert step("caobang-2025", acc(), back + timedelta(days=89), exemptions=[leave]) is None
    assert (
        step("caobang-2025", acc(), back + timedelta(days=91), exemptions=[leave])[1]
        == "lock_inactive"
    )  # type: ignore[index]
    expired = Exemption("E1", "ốm", date(2025, 1, 1), date(2025, 12, 31))
    assert step("caobang-2025", acc(), days(91), exemptions=[expired])[1] == "lock_inactive"  # type: ignore[index]


def test_a_restore_restarts_the_clock() -> None:
    restored = acc(last_login=days(-400), since=days(100))  # made active again at day 100
    assert step("caobang-2025", restored, days(150)) is None
    assert step("caobang-2025", restored, days(191))[1] == "lock_inactive"  # type: ignore[index]


def test_newest_activity_the_profile_counts_wins() -> None:
    account = acc(last_login=days(0))
    mail = {"a.skhcn@x.gov.vn": {"mail": days(50)}}
    # Tuyên Quang Đ8.2a counts login, send or receive: the mail at day 50 keeps it open
    assert step("tuyenquang-2025", account, days(200), activity=mail) is None
    sources = PROFILES["tuyenquang-2025"].lifecycle.activity.sources
    assert activity_reference(account, mail, sources) == (days(50), "mail activity")


def test_caobang_2025_D8_2a_counts_logins_only_not_mail_activity() -> None:
    account = acc(last_login=days(0))
    mail = {"a.skhcn@x.gov.vn": {"mail": days(50), "send": days(60)}}
    assert step("caobang-2025", account, days(91), activity=mail) == (
        ActionKind.LOCK,
        "lock_inactive",
        "caobang-2025 Đ8.2a",
    )


def test_hungyen_2025_D7_2a_counts_send_and_receive_not_logins() -> None:
    daily = acc(last_login=days(95), since=T0)  # logs in, but sends and receives nothing
    assert step("hungyen-2025", daily, days(96))[1] == "lock_inactive"  # type: ignore[index]
    received = {"a.skhcn@x.gov.vn": {"receive": days(80)}}
    assert step("hungyen-2025", daily, days(96), activity=received) is None


def test_never_used_account_ages_from_password_issue_then_creation() -> None:
    never = acc(last_login=None, since=None, password_changed=days(-10))  # type: ignore[arg-type]
    assert activity_reference(never, {})[0] == days(-10)
    older = acc(last_login=None, since=None)  # type: ignore[arg-type]
    assert activity_reference(older, {})[0] == T0 - timedelta(days=400)


def test_only_one_step_per_run_even_when_several_are_overdue() -> None:
    long_gone = acc(last_login=days(-1000), since=days(-1000))
    ev = step("caobang-2025", long_gone, days(0))
    assert ev is not None and ev[0] is ActionKind.LOCK  # not straight to revoke


def test_unmanaged_accounts_and_organisation_mailboxes_have_no_clock() -> None:
    assert step("caobang-2025", acc(managed=False), days(500)) is None
    assert step("caobang-2025", acc(kind=Kind.ORGANISATION), days(500)) is None


def test_forecast_lists_the_chain_in_the_window() -> None:
    lc = PROFILES["caobang-2025"].lifecycle
    events = forecast([acc()], lc, {}, {}, days(80), 60, zone=UTC)
    assert [(e.kind, e.when.date()) for e, _ in events] == [
        (ActionKind.LOCK, days(90).date()),
        (ActionKind.REVOKE, days(120).date()),
    ]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("1m", datetime(2026, 1, 31), datetime(2026, 2, 28)),
        ("3y", datetime(2024, 2, 29), datetime(2027, 2, 28)),
        ("90d", datetime(2026, 1, 1), datetime(2026, 4, 1)),
    ],
)
def test_durations_use_calendar_months_and_years(text: str, start: datetime, end: datetime) -> None:
    assert Duration.parse(text).after(start) == end


def test_hungyen_2025_a_restore_restarts_the_6_month_revoke_clock() -> None:
    """Restored on day 0 (a new one-time password), locked a month later for keeping it
    (Đ7.2d): the Đ6.2c revoke counts 6 months from the restore, not from the last mail."""
    restored = days(0)
    locked = acc(
        State.LOCKED,
        since=days(32),
        last_login=None,
        password_changed=restored,
        must_change=True,
        active_since=restored,
    )
    old_mail = {"a.skhcn@x.gov.vn": {"send": days(-200)}}
    assert step("hungyen-2025", locked, days(33), old_mail) is None
    assert step("hungyen-2025", locked, days(170), old_mail) is None
    assert step("hungyen-2025", locked, days(183), old_mail)[1] == "revoke_inactive"  # type: ignore[index]


def test_hungyen_2025_a_password_reset_does_not_restart_the_inactivity_clock() -> None:
    """A reset (cấp lại mật khẩu) is no send or receive: Đ7.2a still counts from the mail."""
    reset = acc(last_login=None, password_changed=days(80), must_change=True, since=days(-30))
    mail = {"a.skhcn@x.gov.vn": {"send": days(0)}}
    assert step("hungyen-2025", reset, days(93), mail)[1] == "lock_inactive"  # type: ignore[index]


def test_the_days_in_a_clocks_reasons_are_the_provinces_not_utcs() -> None:
    """00:30 on 1 January in Việt Nam is 17:30 on 31 December in UTC: a reason a person reads
    beside ``syncd show``'s local times names 1 January (found by an attack); the clocks
    themselves count in exact time either way."""
    vn = ZoneInfo("Asia/Ho_Chi_Minh")
    new_year = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    lc = PROFILES["caobang-2025"].lifecycle
    active = acc(since=new_year, last_login=new_year, must_change=True)
    locked = acc(State.LOCKED, since=new_year, last_login=new_year)
    now = new_year + timedelta(days=1)
    for account in (active, locked):
        local = timeline(account, lc, {}, [], now, zone=vn)
        utc = timeline(account, lc, {}, [], now, zone=UTC)
        assert [e.when for e in local] == [e.when for e in utc]
        assert all("2026-12-31" not in e.reason for e in local), local
        assert all("2026-12-31" in e.reason for e in utc[:1])
    reasons = " ".join(e.reason for e in timeline(locked, lc, {}, [], now, zone=vn))
    assert "locked since 2027-01-01" in reasons
    [(ev, _)] = forecast([locked], lc, {}, {}, now, 40, zone=vn)
    assert "since 2027-01-01" in ev.reason
