"""The planner's rules that only show over time: requests once, adoption, transitions, scope.

Each test is named for the behaviour it proves; each failed on the planner before it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from syncd.model import ActionKind, DecisionKind, Exemption, Field, HrStatus, Request, State
from syncd.plan import decision_id
from syncd.plan.states import TransitionRefused, carried, manual_lock, transition
from syncd.settings import AdoptionSettings
from syncd.state import LocalState, Resolution, Resolve
from tests.unit.test_planner import NOW, acc, person, plan


def _after(p, state: LocalState) -> LocalState:  # type: ignore[no-untyped-def]
    """What the runner keeps after applying plan ``p`` (every action succeeded)."""
    done = set(state.done_requests) | set(p.requests_done)
    done |= {a.request_key for a in p.actions if a.request_key}
    done -= set(p.requests_withdrawn)
    return replace(state, done_requests=done)


# -- requests are consumed exactly once --------------------------------------------------------


def test_a_restore_request_is_not_replayed_after_a_security_lock() -> None:
    """A khôi phục row stays in the latest roster; the nightly re-apply must not lift a
    compromised lock made after the restore was done."""
    locked = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1", state=State.LOCKED)
    row = person("E1", "Đàm Văn Hùng", request=Request.RESTORE)
    first = plan([row], [locked])
    assert [a.kind for a in first.actions] == [ActionKind.RESTORE]
    state = _after(first, LocalState())
    compromised = replace(locked, state_reason="manual lock: compromised")
    again = plan([row], [compromised], state=state)
    assert again.actions == ()


def test_a_restore_request_seen_while_active_does_not_lift_a_later_lock() -> None:
    active = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1")
    row = person("E1", "Đàm Văn Hùng", request=Request.RESTORE)
    first = plan([row], [active])
    assert first.actions == () and first.requests_done == {"e1|restore"}
    state = _after(first, LocalState())
    locked = replace(active, state=State.LOCKED)
    assert plan([row], [locked], state=state).actions == ()


def test_a_password_reset_happens_once_even_from_an_edited_copy_of_the_roster() -> None:
    active = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1")
    row = person("E1", "Đàm Văn Hùng", request=Request.RESET_PASSWORD)
    first = plan([row], [active])
    assert [a.kind for a in first.actions] == [ActionKind.RESET_PASSWORD]
    state = _after(first, LocalState())
    edited = replace(row, title="Chuyên viên", source="r-v2.csv:2")  # another file, same row
    assert [a.kind for a in plan([edited], [active], state=state).actions] == [ActionKind.UPDATE]


def test_a_new_request_counts_once_the_old_one_left_the_roster() -> None:
    active = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1")
    row = person("E1", "Đàm Văn Hùng", request=Request.RESET_PASSWORD)
    state = _after(plan([row], [active]), LocalState())
    quiet = plan([replace(row, request=Request.NONE)], [active], state=state)
    assert quiet.requests_withdrawn == {"e1|reset-password"}
    state = _after(quiet, state)
    assert [a.kind for a in plan([row], [active], state=state).actions] == [
        ActionKind.RESET_PASSWORD
    ]


def test_a_reset_request_for_a_locked_mailbox_waits_for_a_restore() -> None:
    locked = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1", state=State.LOCKED)
    p = plan([person("E1", "Đàm Văn Hùng", request=Request.RESET_PASSWORD)], [locked])
    assert p.actions == () and any("waits" in n for n in p.notices)


# -- adoption keeps tone marks -----------------------------------------------------------------


def test_adoption_never_links_a_name_that_differs_only_in_tone_marks() -> None:
    legacy = acc("hoalt", "Lý Thị Hoa")
    p = plan([person("E1", "Lý Thị Hòa")], [legacy])
    assert not any(a.kind is ActionKind.LINK for a in p.actions)
    assert [d.kind for d in p.decisions] == [DecisionKind.AMBIGUOUS_MATCH]
    assert "hoalt (Lý Thị Hoa, skhcn)" in p.decisions[0].summary


def test_adoption_links_the_same_name_in_old_or_new_tone_placement() -> None:
    legacy = acc("thuylt", "Lê Thị Thuỷ")
    p = plan([person("E1", "LÊ THỊ THỦY")], [legacy])
    assert [a.kind for a in p.actions] == [ActionKind.LINK]


def test_an_unlinked_account_can_be_revoked_by_decision() -> None:
    legacy = acc("tuanlv", "Lục Văn Tuấn")
    p = plan([person("E1", "Đàm Văn Hùng")], [legacy])
    [d] = [d for d in p.decisions if d.kind is DecisionKind.UNLINKED_ACCOUNT]
    state = LocalState(resolutions={d.id: Resolution(Resolve.REVOKE)})
    revoked = plan([person("E1", "Đàm Văn Hùng")], [legacy], state=state)
    assert [(a.kind, a.uid) for a in revoked.actions if a.kind is ActionKind.REVOKE] == [
        (ActionKind.REVOKE, "tuanlv")
    ]
    assert d.id == decision_id("account", "tuanlv")


def test_adoption_unmatched_revoke_setting_revokes_without_asking() -> None:
    legacy = acc("tuanlv", "Lục Văn Tuấn")
    p = plan(
        [person("E1", "Đàm Văn Hùng")],
        [legacy],
        adoption=AdoptionSettings(unmatched="revoke"),
    )
    assert ("tuanlv", ActionKind.REVOKE) in [(a.uid, a.kind) for a in p.actions]
    assert not any(d.kind is DecisionKind.UNLINKED_ACCOUNT for d in p.decisions)


# -- the uid namespace is the whole directory --------------------------------------------------


def test_a_scoped_run_sees_uids_held_in_other_organisations() -> None:
    """caobang-2011 uids carry no organisation: datnv held in syt must not be given again by a
    file for skhcn, although the run read only skhcn's accounts."""
    elsewhere = acc("datnv", "Nông Văn Đạt", org="syt", emp="E7")
    p = plan(
        [person("E1", "Nông Văn Đạt")],
        [],
        profile="caobang-2011",
        namespace=[elsewhere],
        org_scope=frozenset({"skhcn"}),
    )
    [create] = [a for a in p.actions if a.kind is ActionKind.CREATE]
    assert create.uid == "datnv2"


def test_addresses_kept_as_aliases_are_never_given_again() -> None:
    moved = acc(
        "hungdv.syt",
        "Đàm Văn Hùng",
        org="syt",
        emp="E7",
        aliases=("hungdv.skhcn@x.gov.vn 20270101000000Z",),
    )
    p = plan([person("E1", "Đàm Văn Hùng")], [], namespace=[moved])
    [create] = [a for a in p.actions if a.kind is ActionKind.CREATE]
    assert create.uid == "hungdv1.skhcn"


# -- one state machine -------------------------------------------------------------------------


def test_a_revoked_mailbox_cannot_be_locked() -> None:
    with pytest.raises(TransitionRefused, match="delivery back on"):
        transition(State.REVOKED, ActionKind.LOCK)


def test_revoking_a_locked_account_keeps_the_lock_date_for_the_purge_clock() -> None:
    since = NOW - timedelta(days=40)
    locked = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1", state=State.LOCKED, state_since=since)
    p = plan([person("E1", "Đàm Văn Hùng", status=HrStatus.RETIRED)], [locked])
    [revoke] = p.actions
    assert revoke.kind is ActionKind.REVOKE and revoke.since == since


def test_caobang_2025_revoke_after_a_lock_keeps_the_lock_date() -> None:
    since = NOW - timedelta(days=31)
    locked = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1", state=State.LOCKED, state_since=since)
    p = plan([person("E1", "Đàm Văn Hùng")], [locked])
    [revoke] = p.actions
    assert (revoke.kind, revoke.rule, revoke.since) == (ActionKind.REVOKE, "revoke_locked", since)


# -- per-profile semantics ---------------------------------------------------------------------


def test_tuyenquang_2025_D7_2_a_leaver_is_archived_and_deleted() -> None:
    active = acc("nvan.stc", "Ngô Văn An", org="skhcn", emp="E1")
    p = plan(
        [person("E1", "Ngô Văn An", status=HrStatus.RESIGNED)],
        [active],
        profile="tuyenquang-2025",
    )
    [purge] = p.actions
    assert purge.kind is ActionKind.PURGE and "tuyenquang-2025 Đ7.2" in purge.article


def test_hungyen_2025_without_a_mail_activity_source_applies_no_inactivity_lock() -> None:
    old = acc(
        "nhphuc.skhcn",
        "Nguyễn Hoàng Phúc",
        emp="E1",
        state_since=NOW - timedelta(days=400),
        last_login=NOW - timedelta(days=1),
    )
    p = plan([], [old], profile="hungyen-2025")
    assert not any(a.kind is ActionKind.LOCK for a in p.actions)
    assert any("hungyen-2025 Đ7.2a counts send / receive" in n for n in p.notices)
    fed = plan(
        [],
        [old],
        profile="hungyen-2025",
        activity_available=frozenset({"login", "send", "receive"}),
        activity={"nhphuc.skhcn@x.gov.vn": {"send": NOW - timedelta(days=100)}},
    )
    assert [a.rule for a in fed.actions] == ["lock_inactive"]


def test_caobang_2025_a_daily_login_keeps_the_mailbox_open() -> None:
    daily = acc(
        "hungdv.skhcn",
        "Đàm Văn Hùng",
        emp="E1",
        state_since=NOW - timedelta(days=400),
        last_login=NOW - timedelta(hours=20),
    )
    assert plan([], [daily]).actions == ()
    gone = replace(daily, last_login=NOW - timedelta(days=91))
    assert [a.rule for a in plan([], [gone]).actions] == ["lock_inactive"]


def test_an_exemption_from_the_roster_restarts_the_clock_after_the_leave() -> None:
    since = NOW - timedelta(days=200)
    quiet = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1", state_since=since, last_login=since)
    leave = Exemption("E1", "đi học", date(2026, 6, 1), (NOW - timedelta(days=10)).date())
    p = plan([person("E1", "Đàm Văn Hùng", exemption=leave)], [quiet])
    assert p.actions == ()


def test_two_same_name_collisions_are_never_offered_the_same_uid() -> None:
    """Hưng Yên Đ5.3: two more Nguyễn Hoàng Phúc at khcn wait for an operator; their
    candidates differ, so answering both with their first candidate gives two mailboxes."""
    held = acc("nhphuc.skhcn", "Nguyễn Hoàng Phúc", emp="E0")
    people = [person("E1", "Nguyễn Hoàng Phúc"), person("E2", "Nguyễn Hoàng Phúc")]
    first = plan(people, [held], profile="hungyen-2025")
    d1, d2 = first.decisions
    assert not set(d1.candidates) & set(d2.candidates)
    state = LocalState(
        resolutions={
            d1.id: Resolution(Resolve.UID, d1.candidates[0]),
            d2.id: Resolution(Resolve.UID, d2.candidates[0]),
        }
    )
    second = plan(people, [held], profile="hungyen-2025", state=state)
    assert sorted(a.uid for a in second.actions if a.kind is ActionKind.CREATE) == sorted(
        [d1.candidates[0], d2.candidates[0]]
    )


def test_a_security_lock_is_carried_through_a_revoke_and_not_lifted_by_a_transfer_in() -> None:
    locked = acc(
        "phucnt",
        "Nguyễn Thị Phúc",
        emp="E1",
        state=State.LOCKED,
        state_reason="manual lock: compromised [caobang-2011 Đ13.4]",
    )
    left = plan(
        [person("E1", "Nguyễn Thị Phúc", status=HrStatus.TRANSFERRED_OUT)],
        [locked],
        profile="caobang-2011",
    )
    [revoke] = left.actions
    assert "security lock stands (manual lock: compromised" in revoke.reason
    revoked = replace(
        locked, state=State.REVOKED, state_reason=f"{revoke.reason} [{revoke.article}]"
    )
    arrived = plan([person("E1", "Nguyễn Thị Phúc", org="syt")], [revoked], profile="caobang-2011")
    assert arrived.actions == () and any("security lock" in n for n in arrived.notices)
    asked = plan(
        [person("E1", "Nguyễn Thị Phúc", org="syt", request=Request.RESTORE)],
        [revoked],
        profile="caobang-2011",
    )
    assert ActionKind.RESTORE in [a.kind for a in asked.actions]


def test_employee_numbers_compare_without_case() -> None:
    """A careless export writes a-002 for A-002: the same person, not a second mailbox."""
    held = acc("binhtt.skhcn", "Trần Thị Bình", emp="A-002")
    p = plan([person("a-002", "Trần Thị Bình")], [held])
    assert p.actions == ()


def test_an_absence_ending_years_ahead_is_pointed_out() -> None:
    quiet = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1")
    leave = Exemption("E1", "đi học", date(2026, 1, 1), date(2099, 1, 1), "r.csv:2")
    p = plan([person("E1", "Đàm Văn Hùng", exemption=leave)], [quiet])
    assert any("until 01/01/2099" in n and "check it" in n for n in p.notices)


def test_mail_activity_dated_after_now_is_not_counted() -> None:
    """Found by an attack: a 2099 line in the activity file kept a mailbox open for ever."""
    quiet = acc(
        "hungdv.skhcn",
        "Đàm Văn Hùng",
        emp="E1",
        state_since=NOW - timedelta(days=400),
        last_login=NOW - timedelta(days=400),
    )
    from datetime import UTC, datetime

    forged = {"hungdv.skhcn@x.gov.vn": {"mail": datetime(2099, 1, 1, tzinfo=UTC)}}
    p = plan([], [quiet], profile="tuyenquang-2025", activity=forged)
    assert [a.rule for a in p.actions] == ["lock_inactive"]
    assert any("dated after" in n and "hungdv.skhcn@x.gov.vn" in n for n in p.notices)


def test_moving_back_to_a_former_organisation_gives_the_old_address_back() -> None:
    """Found by an attack: skhcn → syt → skhcn gave hungdv1.skhcn, though hungdv.skhcn was
    still this person's own alias."""
    moved = replace(
        acc("hungdv.syt", "Đàm Văn Hùng", org="syt", emp="E1"),
        mail=("hungdv.syt@x.gov.vn", "hungdv.skhcn@x.gov.vn"),
        aliases=("hungdv.skhcn@x.gov.vn 20270601000000Z",),
    )
    p = plan([person("E1", "Đàm Văn Hùng", org="skhcn")], [moved])
    [move] = [a for a in p.actions if a.kind is ActionKind.MOVE]
    assert move.new_uid == "hungdv.skhcn"
    # the primary address is no longer an alias due to expire; the left one is
    assert [x.split(" ")[0] for x in move.attrs[Field.ALIASES]] == ["hungdv.syt@x.gov.vn"]


def test_inbox_files_ready_together_are_taken_oldest_first() -> None:
    """Found by an attack: a.csv (newer) then z-old.csv (older) were applied in name order,
    so the older file's word (a revocation) undid the newer one's restore."""
    from syncd.inbox import Seen, ready

    listing = {"a-new.csv": Seen(size=10, mtime=2000.0), "z-old.csv": Seen(size=10, mtime=1000.0)}
    assert ready(listing, listing, now=5000.0, settle=30) == ["z-old.csv", "a-new.csv"]


def test_adoption_compares_the_organisation_without_case() -> None:
    """Found by an attack: a pre-syncd entry with ou: SKHCN was not adopted by skhcn."""
    legacy = acc("hungdv", "Đàm Văn Hùng", org="SKHCN")
    p = plan([person("E1", "Đàm Văn Hùng")], [legacy])
    assert [a.kind for a in p.actions] == [ActionKind.LINK]


def test_a_repeated_reset_request_says_how_to_ask_again() -> None:
    active = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1")
    row = person("E1", "Đàm Văn Hùng", request=Request.RESET_PASSWORD)
    state = _after(plan([row], [active]), LocalState())
    again = plan([row], [active], state=state)
    assert again.actions == () and any("was done before" in n for n in again.notices)


def test_the_uid_pool_is_built_only_when_a_plan_gives_out_a_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Most runs give out no name: the pool of every uid and address of the directory (100,000
    at a province's size) is built only when a step first needs it, and then the same."""
    import syncd.plan.context as context

    built: list[int] = []
    real = context.build_pool

    def counted(inp):  # type: ignore[no-untyped-def]
        built.append(1)
        return real(inp)

    monkeypatch.setattr(context, "build_pool", counted)
    hung = acc("hungdv.skhcn", "Đàm Văn Hùng", emp="E1")
    assert plan([person("E1", "Đàm Văn Hùng")], [hung]).actions == ()
    assert built == []  # nobody new: no pool
    p = plan([person("E1", "Đàm Văn Hùng"), person("E2", "Đặng Văn Hùng")], [hung])
    assert built == [1]
    assert [a.uid for a in p.actions if a.kind is ActionKind.CREATE] == ["hungdv1.skhcn"]


def test_a_security_lock_carried_by_a_revocation_is_carried_again_without_nesting() -> None:
    """Found by an attack: a revocation quoting the security lock, set active by hand and
    read back as locked, was revoked again quoting the lock *and* the first revocation's
    article, one more level at each round."""
    lock = "manual lock: compromised — phishing [caobang-2011 Đ13.4]"
    once = f"HR status nghỉ việc (resigned); the security lock stands ({lock}) [caobang-2011 Đ8.2]"
    revoked = acc("phucnt", "Nguyễn Thị Phúc", emp="E1", state=State.REVOKED, state_reason=once)
    assert manual_lock(revoked) == lock
    assert carried(replace(revoked, state=State.LOCKED)) == f"; the security lock stands ({lock})"
    plain = replace(revoked, state=State.LOCKED, state_reason=lock)
    assert manual_lock(plain) == lock
