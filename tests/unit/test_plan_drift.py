"""The planner's step for changes made by hand (syncd.plan.drift), with no directory at all:
which differences it repairs, with which article, and when it holds them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.regulations import PROFILES, get_scheme
from syncd.model import Account, ActionKind, Field, Plan, State
from syncd.orgs import parse_catalogue
from syncd.plan import PlanInput, make_plan

NOW = datetime(2026, 11, 25, tzinfo=UTC)
LOCKED_AT = NOW - timedelta(days=3)
REASON = "manual lock: compromised [caobang-2025 Đ9.2]"


def locked(uid: str, **kw: object) -> Account:
    fields: dict[str, object] = {
        "dn": f"uid={uid},ou=people",
        "uid": uid,
        "cn": "Đàm Văn Hùng",
        "org": "skhcn",
        "employee_number": uid,
        "mail": (f"{uid}@x.gov.vn",),
        "state": State.LOCKED,
        "state_since": LOCKED_AT,
        "state_reason": REASON,
        "receives_mail": True,
    }
    fields.update(kw)
    return Account(**fields)  # type: ignore[arg-type]


def plan(accounts: list[Account], regulation: str = "caobang-2025", **kw: object) -> Plan:
    return make_plan(
        PlanInput(
            snapshots=[],
            catalogue=parse_catalogue([]),
            profile=PROFILES[regulation],
            scheme=get_scheme(PROFILES[regulation].scheme),
            domain="x.gov.vn",
            accounts=accounts,
            now=NOW,
            **kw,  # type: ignore[arg-type]
        )
    )


def test_a_lock_undone_by_hand_is_put_back_with_the_locks_date_reason_and_article() -> None:
    p = plan([locked("a", drift=("pwdAccountLockedTime removed",))])
    [action] = p.actions
    assert action.kind is ActionKind.ENFORCE
    assert action.reason == "changed outside syncd: pwdAccountLockedTime removed; put back"
    assert action.article == "caobang-2025 Đ9.2"
    assert (action.state, action.since, action.state_reason) == (State.LOCKED, LOCKED_AT, REASON)
    assert any("syncd restore" in n for n in p.notices)


def test_delivery_is_judged_by_the_regulations_locked_receives_mail() -> None:
    assert plan([locked("a")]).actions == ()  # Cao Bằng Đ8.1: a locked mailbox receives
    [action] = plan([locked("a")], "tuyenquang-2025").actions  # Tuyên Quang Đ8.1: it does not
    assert "mail is delivered to a locked mailbox" in action.reason


def test_delivery_stopped_by_hand_on_a_locked_mailbox_is_pointed_out_and_left_stopped() -> None:
    p = plan([locked("a", receives_mail=False)])  # Cao Bằng: it should receive
    assert p.actions == ()
    assert any("a: changed outside syncd (mail delivery stopped" in n for n in p.notices)


def test_an_unexpired_alias_deleted_by_hand_is_added_back_and_an_expired_one_is_not() -> None:
    later = (NOW + timedelta(days=30)).strftime("%Y%m%d%H%M%SZ")
    active = locked("a", state=State.ACTIVE, aliases=(f"old@x.gov.vn {later}",))
    [action] = plan([active]).actions
    assert action.kind is ActionKind.ENFORCE and action.state is None
    assert action.attrs == {Field.MAIL: ("a@x.gov.vn", "old@x.gov.vn")}
    gone = (NOW - timedelta(days=1)).strftime("%Y%m%d%H%M%SZ")
    expired = plan([locked("a", state=State.ACTIVE, aliases=(f"old@x.gov.vn {gone}",))])
    assert all(a.kind is not ActionKind.ENFORCE for a in expired.actions)


def test_an_old_address_removed_by_hand_and_now_held_by_another_entry_is_not_put_back() -> None:
    """Found by an attack: the old address removed by hand from the moved person's entry and
    given by hand to another entry was put back by the next whole run: two entries held it."""
    later = (NOW + timedelta(days=30)).strftime("%Y%m%d%H%M%SZ")
    moved = locked("a", state=State.ACTIVE, aliases=(f"old@x.gov.vn {later}",))
    other = Account(dn="uid=b.hand,ou=people", uid="b.hand", mail=("OLD@x.gov.vn",))
    p = plan([moved, other])
    assert all(a.kind is not ActionKind.ENFORCE for a in p.actions), p.actions
    assert any("held now by uid=b.hand,ou=people); not put back" in n for n in p.notices)
    # held as another entry's uid (its own <uid>@domain), its mail saying otherwise
    by_uid = Account(dn="uid=old,ou=people", uid="old", mail=("hand1@x.gov.vn",))
    p = plan([moved, by_uid])
    assert all(a.kind is not ActionKind.ENFORCE for a in p.actions), p.actions
    assert any("held now by uid=old,ou=people); not put back" in n for n in p.notices)
    # held by nobody: put back as before
    [action] = plan([moved]).actions
    assert action.attrs == {Field.MAIL: ("a@x.gov.vn", "old@x.gov.vn")}


def test_a_mass_hand_edit_is_held_back_like_a_mass_lock_and_released_on_request() -> None:
    accounts = [locked(f"u{i}", drift=("ACCOUNTDISABLE cleared",)) for i in range(30)]
    held = plan(accounts)
    assert held.actions == ()
    assert len(held.held_actions) == 30
    assert held.held and "putting back hand changes of 30 accounts" in held.held[0]
    assert "safety.max_lock_share" in held.held[0]
    released = plan(accounts, allow_mass_change=True)
    assert [a.kind for a in released.actions] == [ActionKind.ENFORCE] * 30
