"""The regulation's clocks in a plan: one lifecycle step per account per run.

Accounts an HR action already touches in this plan are left to the next run, which projects
the clocks again from the real new state (never lock and revoke at once).
"""

from __future__ import annotations

from syncd.model import ActionKind, Kind, emp_key
from syncd.plan.context import Ctx
from syncd.plan.lifecycle import due, effective, timeline
from syncd.plan.states import carried, transition


def clocks(ctx: Ctx) -> None:
    # an HR data update or an expired alias does not change the state: the clock still runs
    touched = {a.uid for a in ctx.out.actions if a.kind is not ActionKind.UPDATE}
    lc, notice = effective(ctx.profile.lifecycle, ctx.inp.activity_available)
    if notice:
        ctx.out.notices.append(notice)
    for acc in ctx.index.accounts:
        if acc.uid in touched or not acc.managed or acc.kind is not Kind.PERSON:
            continue
        if not ctx.in_scope(acc):
            continue
        exemptions = ctx.exemptions.get(emp_key(acc.employee_number), ())
        events = timeline(acc, lc, ctx.inp.activity, exemptions, ctx.inp.now, zone=ctx.inp.zone)
        ev = due(events, ctx.inp.now)
        if ev is None:
            if events:  # the account's next step: this plan holds until it falls due
                ctx.out.changes_at(events[0].when)
            continue
        step = transition(acc.state, ev.kind)
        ctx.out.add(
            ev.kind,
            acc.uid,
            acc.org,
            f"{ev.rule}: {ev.reason}" + (carried(acc) if ev.kind is ActionKind.REVOKE else ""),
            ev.article,
            dn=acc.dn,
            employee_number=acc.employee_number,
            full_name=acc.cn,
            rule=ev.rule,
            since=acc.state_since if step.keeps_since else None,
        )
