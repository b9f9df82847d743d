"""What the five-year province simulation (seed 7) found the planner doing wrong.

Each test replays, on the pure planner, the inputs of one incident the simulation's oracle
reported, and is named for the behaviour the regulation asks for; each failed before its fix.
"""

from __future__ import annotations

from datetime import date, timedelta

from syncd.model import ActionKind, Exemption, HrStatus, State
from syncd.plan import decision_id
from syncd.state import LocalState, Resolution, Resolve
from tests.unit.test_planner import NOW, acc, person, plan


def test_a_transfer_collision_is_asked_again_when_the_persons_decision_was_answered_before() -> (
    None
):
    """Hưng Yên Đ5.3 (found: HY00135 and four others stayed in their old organisation until
    the end of the run). The person's uid was chosen by an operator when they were hired; at
    their transfer the destination's name is taken. The question must reach `syncd
    decisions`, which lists only unanswered ids, and its answer must rename the mailbox."""
    mine = acc("nhphuc1.skhcn", "Nguyễn Hoàng Phúc", emp="E1")
    theirs = acc("nhphuc.syt", "Nguyễn Hoàng Phúc", org="syt", emp="E0")
    rows = [person("E1", "Nguyễn Hoàng Phúc", org="syt"), person("E0", "Nguyễn Hoàng Phúc", "syt")]
    hired = {decision_id("person", "E1"): Resolution(Resolve.UID, "nhphuc1.skhcn")}
    first = plan(rows, [mine, theirs], profile="hungyen-2025", state=LocalState(resolutions=hired))
    [asked] = first.decisions
    assert asked.id not in hired and asked.candidates
    answered = {**hired, asked.id: Resolution(Resolve.UID, asked.candidates[0])}
    second = plan(
        rows, [mine, theirs], profile="hungyen-2025", state=LocalState(resolutions=answered)
    )
    [move] = [a for a in second.actions if a.kind is ActionKind.MOVE]
    assert (move.uid, move.new_uid) == ("nhphuc1.skhcn", asked.candidates[0])
    assert not second.decisions


def test_a_transfer_in_is_restored_when_a_run_died_after_the_organisation_changed() -> None:
    """Found: CO00063, Cao Bằng 2011, 2028-02-01. sgd said "chuyển công tác" (revoked), stc
    listed the person; the run applying stc's file was killed after its update had written
    the new organisation and before the restore. The run that took the file over saw a
    revoked mailbox already in stc: the person waited 14 days for a khôi phục request."""
    since = NOW - timedelta(days=4)
    half = acc(
        "hoand2",
        "Nông Đức Hoa",
        org="syt",
        emp="E1",
        state=State.REVOKED,
        state_since=since,
        state_reason="HR status chuyển công tác (transferred-out); sgd-20280128.csv:4 "
        "[caobang-2011 Đ8.2]",
    )
    p = plan([person("E1", "Nông Đức Hoa", org="syt")], [half], profile="caobang-2011")
    assert [a.kind for a in p.actions] == [ActionKind.RESTORE]
    # a mailbox revoked for another reason is still restored only on request
    resigned = acc(
        "hoand2",
        "Nông Đức Hoa",
        org="syt",
        emp="E1",
        state=State.REVOKED,
        state_since=since,
        state_reason="HR status nghỉ việc (resigned); syt.csv:4 [caobang-2011 Đ8.2]",
    )
    again = plan([person("E1", "Nông Đức Hoa", org="syt")], [resigned], profile="caobang-2011")
    assert again.actions == ()


def _quiet(since: date):  # type: ignore[no-untyped-def]
    when = NOW.replace(year=since.year, month=since.month, day=since.day)
    return acc("andh1.skhcn", "Đặng Hồng An", emp="E1", state_since=when, last_login=when)


def test_the_former_organisations_transfer_out_row_keeps_the_new_ones_absence() -> None:
    """Caobang-2025 Đ8.2a (found: CB00351 on 2028-06-19, HY00748 on 2031-12-26): the new
    organisation declared an absence; the former one's "chuyển công tác" row, without the
    absence columns, made syncd forget it and lock the person in the middle of it."""
    leave = Exemption("E1", "công tác nước ngoài", NOW.date() - timedelta(days=80), NOW.date())
    state = LocalState()
    state.remember_exemptions(
        [person("E1", "Đặng Hồng An", org="syt", exemption=leave)], NOW.date()
    )
    state.remember_exemptions(
        [person("E1", "Đặng Hồng An", status=HrStatus.TRANSFERRED_OUT)], NOW.date()
    )
    quiet = _quiet((NOW - timedelta(days=100)).date())
    p = plan([], [quiet], exemptions=state.exemptions)
    assert p.actions == ()


def test_an_absence_that_follows_an_earlier_one_keeps_the_clock_stopped_through_both() -> None:
    """Caobang-2025 Đ8.2a (found: CB andh1.skhcn locked on 2028-01-03): notified absences
    2027-06-22..12-22, then 2027-10-28..2028-05-13; HR lists only the current one, so once
    the first ended the roster named only the second, syncd forgot the first and counted
    90 days from the last login before it. The person was never without a notified reason."""
    first = Exemption("E1", "đi học", date(2026, 6, 22), date(2026, 11, 20))
    second = Exemption("E1", "ốm dài ngày", date(2026, 10, 28), date(2027, 5, 13))
    state = LocalState()
    state.remember_exemptions([person("E1", "Đặng Hồng An", exemption=first)], NOW.date())
    state.remember_exemptions([person("E1", "Đặng Hồng An", exemption=second)], NOW.date())
    state.remember_exemptions(
        [person("E1", "Đặng Hồng An", exemption=second)], NOW.date()
    )  # re-sent
    assert state.exemptions["E1"] == [first, second]
    p = plan([], [_quiet(date(2026, 6, 20))], exemptions=state.exemptions)
    assert p.actions == ()


def test_an_absence_that_ended_is_remembered_when_the_roster_stops_naming_it() -> None:
    """Caobang-2025 Đ8.2a (found by the five-year simulation, about 20 people): HR lists only
    current absences; once one ended the next roster named none, syncd forgot it, and the
    person was locked days after coming back, counted from the last login before it."""
    today = NOW.date()
    leave = Exemption("E1", "nghỉ thai sản", today - timedelta(days=200), today - timedelta(20))
    state = LocalState()
    state.remember_exemptions(
        [person("E1", "Đặng Hồng An", exemption=leave)], today - timedelta(30)
    )
    state.remember_exemptions([person("E1", "Đặng Hồng An")], today - timedelta(days=10))
    assert state.exemptions["E1"] == [leave]
    # back 20 days ago, last login before the leave: no lock (the clock restarted on return)
    p = plan([], [_quiet(today - timedelta(days=201))], exemptions=state.exemptions)
    assert p.actions == ()
    # an absence withdrawn before it ended is forgotten, and one ended over a year ago too
    withdrawn = Exemption("E1", "đi học", today - timedelta(days=5), today + timedelta(days=90))
    state.remember_exemptions([person("E1", "Đặng Hồng An", exemption=withdrawn)], today)
    state.remember_exemptions([person("E1", "Đặng Hồng An")], today)
    assert state.exemptions["E1"] == [leave]
    state.remember_exemptions([person("E1", "Đặng Hồng An")], today + timedelta(days=400))
    assert "E1" not in state.exemptions
