"""The pure planner: decisions, guards and edge cases, with no directory at all."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.regulations import PROFILES, get_scheme
from syncd.model import Account, ActionKind, DecisionKind, HrStatus, Kind, Person, Request, State
from syncd.orgs import parse_catalogue
from syncd.plan import PlanInput, make_plan
from syncd.roster import Snapshot
from syncd.settings import Safety
from syncd.state import LocalState

NOW = datetime(2026, 11, 25, tzinfo=UTC)
CAT = parse_catalogue(
    [
        ("e1", {"code": "skhcn", "name": "Sở KH&CN", "mailbox": "sokhcn"}),
        ("e2", {"code": "syt", "name": "Sở Y tế", "mailbox": "soyte"}),
    ]
)
BOXES = [
    Account(dn=f"uid={b}", uid=b, cn=n, kind=Kind.ORGANISATION, org=c)
    for b, n, c in (("sokhcn", "Sở KH&CN", "skhcn"), ("soyte", "Sở Y tế", "syt"))
]


def person(emp: str, name: str, org: str = "skhcn", **kw: object) -> Person:
    return Person(employee_number=emp, full_name=name, org=org, source=f"r.csv:{emp}", **kw)  # type: ignore[arg-type]


def acc(uid: str, cn: str, org: str = "skhcn", emp: str | None = None, **kw: object) -> Account:
    words = cn.split()
    return Account(
        dn=f"uid={uid},ou=people",
        uid=uid,
        cn=cn,
        sn=words[0],
        given_name=" ".join(words[1:]),
        org=org,
        employee_number=emp,
        mail=(f"{uid}@x.gov.vn",),
        **kw,
    )  # type: ignore[arg-type]


def plan(
    people: list[Person],
    accounts: list[Account],
    profile: str = "caobang-2025",
    files: int = 1,
    now: datetime = NOW,
    **kw: object,
):  # type: ignore[no-untyped-def]
    snaps = [
        Snapshot(
            source=f"r{i}.csv",
            sha256=f"sha{i}",
            people=tuple(p for j, p in enumerate(people) if j % files == i),
            authoritative=frozenset(p.org for p in people),
        )
        for i in range(files)
    ]
    return make_plan(
        PlanInput(
            snapshots=snaps,
            catalogue=CAT,
            profile=PROFILES[profile],
            scheme=get_scheme(PROFILES[profile].scheme),
            domain="x.gov.vn",
            accounts=[*BOXES, *accounts],
            now=now,
            **kw,
        )
    )  # type: ignore[arg-type]


def test_missing_organisation_mailboxes_are_created() -> None:
    p = make_plan(
        PlanInput(
            snapshots=[],
            catalogue=CAT,
            profile=PROFILES["caobang-2025"],
            scheme=get_scheme("caobang-2025"),
            domain="x.gov.vn",
            accounts=[],
            now=NOW,
        )
    )
    assert {(a.kind, a.uid) for a in p.actions} == {
        (ActionKind.CREATE_ORG_MAILBOX, "sokhcn"),
        (ActionKind.CREATE_ORG_MAILBOX, "soyte"),
    }


def test_every_action_cites_an_article_of_the_profile() -> None:
    p = plan(
        [person("E1", "Đàm Văn Hùng"), person("E2", "Lê Văn Tám", status=HrStatus.RETIRED)],
        [acc("tamlv.skhcn", "Lê Văn Tám", emp="E2")],
    )
    assert p.actions
    assert all("caobang-2025 Đ" in a.article for a in p.actions)


def test_two_roster_people_with_the_name_of_one_old_account_wait_for_a_decision() -> None:
    p = plan(
        [person("E1", "Nguyễn Thị Lan"), person("E2", "Nguyễn Thị Lan")],
        [acc("lannt", "Nguyễn Thị Lan")],
    )
    assert [d.kind for d in p.decisions] == [DecisionKind.AMBIGUOUS_MATCH] * 2
    assert not any(a.kind in (ActionKind.CREATE, ActionKind.LINK) for a in p.actions)


def test_old_account_without_organisation_is_never_linked_automatically() -> None:
    p = plan([person("E1", "Nông Văn Đạt")], [acc("datnv", "Nông Văn Đạt", org=None)])  # type: ignore[arg-type]
    assert [d.kind for d in p.decisions] == [DecisionKind.AMBIGUOUS_MATCH]


def test_an_old_account_nobody_matches_becomes_an_unlinked_decision_not_a_revocation() -> None:
    p = plan([person("E1", "Đàm Văn Hùng")], [acc("tuanlv", "Lục Văn Tuấn")])
    assert [d.kind for d in p.decisions] == [DecisionKind.UNLINKED_ACCOUNT]
    assert not any(a.kind is ActionKind.REVOKE for a in p.actions)


def test_one_employee_number_on_two_accounts_is_reported_and_left_alone() -> None:
    p = plan(
        [person("E1", "Đàm Văn Hùng", title="Giám đốc")],
        [
            acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1"),
            acc("hungdv1.skhcn", "Đàm Văn Hùng", emp="E1"),
        ],
    )
    assert p.actions == ()
    assert any("several accounts" in n for n in p.notices)


def test_active_in_two_files_is_skipped_until_hr_agrees() -> None:
    p = plan([person("E1", "Đàm Văn Hùng"), person("E1", "Đàm Văn Hùng", org="syt")], [], files=2)
    assert p.actions == ()
    assert any("active in several places" in n for n in p.notices)


def test_name_change_updates_cn_but_never_the_uid() -> None:
    p = plan([person("E1", "Đàm Văn Hưng")], [acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1")])
    [a] = p.actions
    assert a.kind is ActionKind.UPDATE and a.uid == "hungdv.skhcn"
    assert a.attrs["cn"] == ("Đàm Văn Hưng",) and "uid" not in a.attrs


def test_revoked_account_listed_as_active_needs_a_restore_request() -> None:
    revoked = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1", state=State.REVOKED)
    assert plan([person("E1", "Đàm Văn Hùng")], [revoked]).actions == ()
    again = plan([person("E1", "Đàm Văn Hùng", request=Request.RESTORE)], [revoked])
    assert [a.kind for a in again.actions] == [ActionKind.RESTORE]


def test_hungyen_transfer_collision_becomes_a_decision() -> None:
    p = plan(
        [person("E1", "Nguyễn Hoàng Phúc", org="syt")],
        [
            acc("nhphuc.skhcn", "Nguyễn Hoàng Phúc", emp="E1"),
            acc("nhphuc.syt", "Nguyễn Hồng Phúc", org="syt", emp="E2"),
        ],
        profile="hungyen-2025",
    )
    assert [d.kind for d in p.decisions] == [DecisionKind.UID_COLLISION]
    assert not any(a.kind is ActionKind.MOVE for a in p.actions)


def test_a_stage_over_its_count_limit_is_held_back_and_the_rest_applies() -> None:
    accounts = [acc(f"u{i}.skhcn", f"Lê Văn A{i}", emp=f"E{i}") for i in range(5)]
    p = plan(
        [person("E0", "Lê Văn A0"), person("E9", "Hoàng Văn Phúc")],
        accounts,
        safety=Safety(max_revoke_share=1.0, max_revoke_count=3, max_org_drop_share=1.0),
    )
    assert p.refused is None
    assert len(p.held) == 1 and "max_revoke_count = 3" in p.held[0]
    assert "--allow-mass-change" in p.held[0]
    # the new hire is not blocked by the held-back revocations
    assert [a.kind for a in p.actions] == [ActionKind.CREATE]
    ok = plan(
        [person("E0", "Lê Văn A0")],
        accounts,
        allow_mass_change=True,
        safety=Safety(max_revoke_share=1.0, max_revoke_count=3, max_org_drop_share=1.0),
    )
    assert ok.refused is None and len([a for a in ok.actions if a.kind is ActionKind.REVOKE]) == 4


def test_plan_is_deterministic() -> None:
    people = [
        person(f"E{i}", n) for i, n in enumerate(["Đàm Văn Hùng", "Đặng Văn Hùng", "Lê Thị Mai"])
    ]
    assert plan(people, []) == plan(people, [])


def test_ignored_decision_is_not_raised_again() -> None:
    from syncd.plan import decision_id
    from syncd.state import Resolution, Resolve

    state = LocalState(resolutions={decision_id("account", "tuanlv"): Resolution(Resolve.IGNORE)})
    p = plan([person("E1", "Đàm Văn Hùng")], [acc("tuanlv", "Lục Văn Tuấn")], state=state)
    assert p.decisions == ()


def test_a_roster_that_drops_most_of_an_organisation_is_refused() -> None:
    accounts = [acc(f"u{i}.skhcn", f"Lê Văn A{i}", emp=f"E{i}") for i in range(10)]
    kept = [person(f"E{i}", f"Lê Văn A{i}") for i in range(4)]
    refused = plan(kept, accounts, safety=Safety(max_revoke_share=1.0, max_revoke_count=100))
    assert refused.refused and "drops 6 of its 10 people" in refused.refused
    ok = plan(
        [person(f"E{i}", f"Lê Văn A{i}") for i in range(6)],
        accounts,
        safety=Safety(max_revoke_share=1.0, max_revoke_count=100),
    )
    assert ok.refused is None  # 4 of 10 is within max_org_drop_share = 50 %


def test_the_global_revoke_share_applies_across_organisations() -> None:
    accounts = [acc(f"u{i}.skhcn", f"Lê Văn A{i}", emp=f"E{i}") for i in range(10)]
    leaving = [person(f"E{i}", f"Lê Văn A{i}", status=HrStatus.RETIRED) for i in range(3)]
    staying = [person(f"E{i}", f"Lê Văn A{i}") for i in range(3, 10)]
    p = plan(leaving + staying, accounts)
    assert p.refused is None and not any(a.kind is ActionKind.REVOKE for a in p.actions)
    assert len(p.held) == 1 and "max_revoke_share = 10%" in p.held[0]
