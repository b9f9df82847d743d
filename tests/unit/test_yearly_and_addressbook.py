"""The figures of the usage report and the entries of the address list, from given accounts and
audit records (the CLI and the files: tests/integration/test_usage_report_and_addressbook.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from connectors.regulations import PROFILES
from syncd.addressbook import build as address_lists
from syncd.model import Account, Kind, Org, OrgKind, State
from syncd.orgs import Catalogue
from syncd.yearly import LOCK_LABELS, Period, Report, build, period_of

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


def _report(records: list[dict[str, object]], accounts: list[Account]) -> Report:
    """The caobang-2025 report of 2026 so far, made at ``MADE``, on UTC days."""
    return build(
        profile=PROFILES["caobang-2025"],
        articles=[],
        catalogue=CATALOGUE,
        accounts=accounts,
        records=records,
        activity={},
        period=period_of(2026, None, MADE.date()),
        made=MADE,
        zone=UTC,
    )


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
        zone=UTC,
    )
    skhcn = report.org("skhcn")
    assert skhcn is not None
    assert (skhcn.counts.created, skhcn.counts.revoked) == (1, 1)
    assert report.total.created == 1


def test_a_change_counts_on_the_provinces_day_not_the_utc_one() -> None:
    """00:30 on 1 January in Việt Nam is 17:30 on 31 December UTC, as the audit keeps it: it
    belongs to the new year's report (found by an attack: it went to the old one)."""
    records = [
        _rec("revoke", "a.skhcn", "skhcn", "2026-12-31T17:30:00+00:00"),  # 2027-01-01 00:30
        _rec("create", "b.skhcn", "skhcn", "2026-12-31T16:59:00+00:00"),  # 2026-12-31 23:59
    ]
    zone = ZoneInfo("Asia/Ho_Chi_Minh")

    def year(y: int) -> tuple[int, int]:
        report = build(
            profile=PROFILES["caobang-2025"],
            articles=[],
            catalogue=CATALOGUE,
            accounts=[],
            records=records,
            activity={},
            period=Period(date(y, 1, 1), date(y, 12, 31)),
            made=datetime(2027, 1, 2, 3, tzinfo=UTC),
            zone=zone,
        )
        return report.total.created, report.total.revoked

    assert year(2026) == (1, 0)
    assert year(2027) == (0, 1)


def test_a_transfer_out_counts_in_the_office_left_and_the_tables_add_up() -> None:
    """The organisation's row and its offices' rows agree (found by an attack: the office
    rows all showed 0 moved out where the organisation showed 1)."""
    moved = {"mail": ["a.skhcn@x.gov.vn"], "org": ["skhcn"], "office": ["vp"]}
    records = [
        _rec("move", "a.skhcn", "syt", "2026-05-01T03:00:00+00:00", new_uid="a.syt", before=moved),
        # a move recorded before moves named the office: the organisation's unnamed row
        _rec("move", "b.skhcn", "syt", "2026-05-02T03:00:00+00:00", before={"org": ["skhcn"]}),
    ]
    report = _report(records, [_acc("a.syt", "syt"), _acc("b.syt", "syt")])
    skhcn, syt = report.org("skhcn"), report.org("syt")
    assert skhcn is not None and syt is not None
    assert skhcn.counts.moved_out == 2 and syt.counts.moved_in == 2
    assert {name: c.moved_out for name, c in skhcn.offices} == {"Văn phòng Sở": 1, "": 1}
    assert sum(c.moved_in for _, c in syt.offices) == 2


def test_a_transfer_a_crash_interrupted_counts_when_the_entry_moved() -> None:
    """Found by an attack: a move whose run died ("interrupted", the entry already under its
    new uid) was counted nowhere, though the person counted in the new organisation."""
    before = {"org": ["skhcn"], "office": []}
    when = "2026-05-01T03:00:00+00:00"
    records = [
        _rec("move", "a.skhcn", "syt", when, new_uid="a.syt", before=before,
             result="interrupted", found="active", found_uid="a.syt", found_org="syt"),
        _rec("move", "b.skhcn", "syt", when, new_uid="b.syt", before=before,
             result="interrupted", found="active", found_uid="b.skhcn", found_org="skhcn"),
        # caobang-2011: the uid carries no organisation; the record's "before" names no office
        _rec("update", "c", "syt", when, before={"org": ["skhcn"], "office": []},
             result="interrupted", found="active", found_uid="c", found_org="syt"),
    ]  # fmt: skip
    report = _report(
        records, [_acc("a.syt", "syt", office="vp"), _acc("b.skhcn", "skhcn"), _acc("c", "syt")]
    )
    skhcn, syt = report.org("skhcn"), report.org("syt")
    assert skhcn is not None and syt is not None
    assert (skhcn.counts.moved_out, syt.counts.moved_in) == (2, 2)
    # the office left is the one recorded: none, so no office of the new organisation appears
    assert {name: c.moved_out for name, c in skhcn.offices} == {"": 2}


def test_records_that_are_no_figure_of_the_report_make_no_organisation_row() -> None:
    """A names-kept record, a deletion of slips or of old files carries no organisation: none
    of them makes the report say "accounts carry no organisation" (found by an attack)."""
    records = [
        {"event": "audit", "time": "2026-05-01T00:00:00+00:00", "action": a, "result": "ok"}
        for a in ("names-kept", "delete-slips", "delete-kept")
    ]
    report = _report(records, [_acc("a.skhcn", "skhcn")])
    assert report.notes == [] and report.notes_vi == []
    assert [o.code for o in report.orgs] == ["skhcn", "syt"]


def test_the_leaderships_notes_are_in_vietnamese() -> None:
    report = _report([], [_acc("a.tkh", "tkh")])
    assert report.notes == ["tkh: accounts of an organisation not in the catalogue"]
    assert report.notes_vi == ["tkh: hộp thư của một cơ quan, đơn vị không có trong danh mục"]


def test_a_creation_a_crash_interrupted_counts_once_and_its_finishing_is_no_reset() -> None:
    """The next run writes the dead run's create as "interrupted", with what the directory
    shows, and finishes it with a new one-time password (rule "recovery"): one creation, no
    reset (found by an attack: 25 created and 1 reset where 26 were created)."""
    when = "2026-03-01T08:00:00+00:00"
    records = [
        _rec("create", "a", "skhcn", when, result="interrupted", found="active"),
        _rec("reset-password", "a", "skhcn", when, rule="recovery"),
        _rec("create", "b", "skhcn", when, result="interrupted", found="provisioning"),
        _rec("restore", "b", "skhcn", when, rule="recovery"),
        _rec("create", "c", "skhcn", when, result="interrupted", found="absent"),  # never made
        _rec("create", "c", "skhcn", when),  # made by the next run
        _rec("revoke", "d", "skhcn", when, result="interrupted", found="active"),  # not done
        _rec("revoke", "e", "skhcn", when, result="interrupted", found="revoked"),
        _rec("reset-password", "f", "skhcn", when),  # asked for by HR
    ]
    report = _report(records, [])
    c = report.total
    assert (c.created, c.resets, c.restored, c.revoked) == (3, 1, 0, 1)


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
    report = _report(records, [])
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
        zone=UTC,
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
