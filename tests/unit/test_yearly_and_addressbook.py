"""The figures of the usage report and the entries of the address list, from given accounts and
audit records (the CLI and the files: tests/integration/test_usage_report_and_addressbook.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from connectors.regulations import PROFILES
from syncd.addressbook import build as address_lists
from syncd.model import Account, Kind, Org, OrgKind, State
from syncd.orgs import Catalogue
from syncd.yearly import LOCK_LABELS, Period, build, period_of

CATALOGUE = Catalogue(
    orgs={
        "skhcn": Org("skhcn", "Sở Khoa học và Công nghệ", "sokhcn", OrgKind.DEPARTMENT),
        "syt": Org("syt", "Sở Y tế", "soyte", OrgKind.DEPARTMENT),
    },
    offices={("skhcn", "vp"): Org("vp", "Văn phòng Sở", "vanphong.skhcn", OrgKind.OFFICE, "skhcn")},
)
MADE = datetime(2026, 11, 20, 9, tzinfo=UTC)


def _acc(uid: str, org: str, state: State = State.ACTIVE, **kw: object) -> Account:
    return Account(
        dn=f"uid={uid},dc=x",
        uid=uid,
        cn=str(kw.pop("cn", uid)),
        mail=(f"{uid}@x.gov.vn",),
        employee_number=uid.upper(),
        org=org,
        state=state,
        **kw,  # type: ignore[arg-type]
    )


def _rec(action: str, uid: str, org: str, when: str, **kw: object) -> dict[str, object]:
    return {"event": "audit", "time": when, "action": action, "uid": uid, "org": org, **kw}


def test_a_report_made_before_the_year_ends_covers_the_year_so_far() -> None:
    assert period_of(2026, None, date(2026, 11, 20)) == Period(date(2026, 1, 1), date(2026, 11, 20))
    assert period_of(2025, None, date(2026, 11, 20)) == Period(date(2025, 1, 1), date(2025, 12, 31))
    assert period_of(2026, 1, date(2026, 11, 20)) == Period(date(2026, 1, 1), date(2026, 6, 30))


def test_only_successful_changes_inside_the_period_are_counted() -> None:
    records = [
        _rec("create", "a.skhcn", "skhcn", "2026-03-01T08:00:00+00:00"),
        _rec("create", "b.skhcn", "skhcn", "2025-12-31T23:00:00+00:00"),  # last year
        _rec("create", "c.skhcn", "skhcn", "2026-03-02T08:00:00+00:00", result="failed"),
        _rec("revoke", "a.skhcn", "skhcn", "2026-06-01T08:00:00+00:00"),
        {"event": "anchor", "time": "2026-04-01T00:00:00+00:00"},
    ]
    report = build(
        profile=PROFILES["caobang-2025"],
        articles=["caobang-2025 Đ11.3"],
        catalogue=CATALOGUE,
        accounts=[_acc("a.skhcn", "skhcn", State.REVOKED)],
        records=records,
        activity={},
        period=period_of(2026, None, MADE.date()),
        made=MADE,
    )
    skhcn = report.org("skhcn")
    assert skhcn is not None
    assert (skhcn.counts.created, skhcn.counts.revoked) == (1, 1)
    assert report.total.created == 1


def test_locks_are_counted_by_their_reason_and_article() -> None:
    records = [
        _rec(
            "lock", "a", "syt", "2026-05-01T00:00:00+00:00", rule="lock_inactive", article="Đ8.2a"
        ),
        _rec(
            "lock", "b", "syt", "2026-05-02T00:00:00+00:00", rule="lock_inactive", article="Đ8.2a"
        ),
        _rec(
            "lock",
            "c",
            "syt",
            "2026-05-03T00:00:00+00:00",
            reason="manual lock: spam",
            article="Đ8.2b",
        ),
    ]
    report = build(
        profile=PROFILES["caobang-2025"],
        articles=[],
        catalogue=CATALOGUE,
        accounts=[],
        records=records,
        activity={},
        period=period_of(2026, None, MADE.date()),
        made=MADE,
    )
    assert dict(report.total.locked) == {
        (LOCK_LABELS["lock_inactive"], "Đ8.2a"): 2,
        (LOCK_LABELS["spam"], "Đ8.2b"): 1,
    }


def test_a_person_active_without_any_sign_of_life_is_inactive_and_never_logged_in() -> None:
    old = datetime(2026, 1, 1, tzinfo=UTC)
    accounts = [
        _acc("quiet", "skhcn", active_since=old),
        _acc("busy", "skhcn", active_since=old, last_login=datetime(2026, 11, 19, tzinfo=UTC)),
        _acc("mailer", "skhcn", active_since=old),
    ]
    report = build(
        profile=PROFILES["hungyen-2025"],  # counts send / receive, not logins
        articles=[],
        catalogue=CATALOGUE,
        accounts=accounts,
        records=[],
        activity={"mailer@x.gov.vn": {"send": datetime(2026, 11, 1, tzinfo=UTC)}},
        period=period_of(2026, None, MADE.date()),
        made=MADE,
    )
    c = report.total
    assert c.never_logged_in == 1  # quiet: no login, no mail
    assert c.inactive == 2  # busy logs in, but Hưng Yên counts only mail; quiet neither


def test_a_locked_mailbox_is_published_only_where_it_still_receives_mail() -> None:
    accounts = [
        _acc("an.syt", "syt", cn="Hoàng Thị Ánh"),
        _acc("son.syt", "syt", State.LOCKED, cn="Bế Văn Sơn"),
        _acc("gone.syt", "syt", State.REVOKED, cn="Lê Văn Tám"),
        Account(
            dn="uid=soyte,dc=x",
            uid="soyte",
            cn="Sở Y tế",
            mail=("soyte@x.gov.vn",),
            kind=Kind.ORGANISATION,
        ),
    ]
    receives = address_lists(CATALOGUE, accounts, "x.gov.vn", True, "syt")[0]
    assert [e.address for e in receives.entries] == [
        "soyte@x.gov.vn",
        "an.syt@x.gov.vn",
        "son.syt@x.gov.vn",
    ]
    blocked = address_lists(CATALOGUE, accounts, "x.gov.vn", False, "syt")[0]
    assert [e.address for e in blocked.entries] == ["soyte@x.gov.vn", "an.syt@x.gov.vn"]
