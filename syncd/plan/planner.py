"""The plan: a pure diff of what HR says against what the directory holds, at ``now``.

(roster snapshots, catalogue, profile, directory accounts, the whole namespace, local state,
now) → :class:`~syncd.model.Plan`. Every action carries its reason and the article it
enforces; anything syncd must not decide alone becomes a decision; the safety guard refuses
the whole plan on signs of truncated input, and holds back a stage over its limit.

This module only orchestrates; each step has its home:
``people`` (HR facts and requests), ``match`` (adoption, accounts nobody lists),
``mailboxes`` (organisation mailboxes, expired aliases), ``recovery`` (crash debts),
``clocks`` (the lifecycle step), ``drift`` (changes made by hand put back), ``forwarding``
(automatic forwarding out of the state's mail), ``guard`` (safety), ``states`` (what may
follow what).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, time, timedelta

from syncd.model import Action, Exemption, Plan, emp_key
from syncd.plan.clocks import clocks
from syncd.plan.context import Ctx, Index, PlanInput
from syncd.plan.drift import drift
from syncd.plan.emit import Emitter
from syncd.plan.forwarding import forwarding
from syncd.plan.guard import hold, managed_people, refusal
from syncd.plan.lifecycle import not_after
from syncd.plan.mailboxes import expired_aliases, org_mailboxes
from syncd.plan.match import absent
from syncd.plan.people import all_people
from syncd.plan.recovery import recovery

LONG_ABSENCE_DAYS = 366  # an absence ending further ahead than this is pointed out


def make_plan(inp: PlanInput) -> Plan:
    """The plan for ``inp``; pure and deterministic."""
    exemptions: dict[str, list[Exemption]] = defaultdict(list)
    for emp, items in inp.exemptions.items():
        exemptions[emp_key(emp)].extend(items)
    for snap in inp.snapshots:
        for p in snap.people:
            if p.exemption is not None:
                exemptions[emp_key(p.employee_number)].append(p.exemption)
    activity, ahead = not_after(inp.activity, inp.now + timedelta(days=1))
    if ahead:
        inp = replace(inp, activity=activity)
    ctx = Ctx(inp, Index(inp), Emitter(inp.now), exemptions)
    if ahead:
        ctx.out.changes_at(inp.now)  # the notice names today; the records count tomorrow
        today = inp.now.astimezone(inp.zone)
        ctx.out.notices.append(
            f"{len(ahead)} mail activity record(s) dated after {today:%Y-%m-%d} were not "
            f"counted (a wrong clock, or a line that would keep a mailbox open for ever): "
            f"{', '.join(sorted(ahead)[:5])}"
        )
    far = inp.now.date() + timedelta(days=LONG_ABSENCE_DAYS)
    for items in exemptions.values():
        for ex in items:
            if ex.until > far:  # a typo, or a way to keep a mailbox open for ever
                # said until the day the absence ends within LONG_ABSENCE_DAYS
                last = ex.until - timedelta(days=LONG_ABSENCE_DAYS)
                ctx.out.changes_at(datetime.combine(last, time.min, tzinfo=inp.now.tzinfo))
                ctx.out.notices.append(
                    f"{ex.source or ex.employee_number}: a notified absence ({ex.reason}) until "
                    f"{ex.until:%d/%m/%Y} keeps the inactivity clocks stopped that long; check it"
                )

    org_mailboxes(ctx)
    seen = all_people(ctx)
    absent(ctx, seen)
    expired_aliases(ctx)
    recovery(ctx)
    clocks(ctx)
    drift(ctx)
    forwarding(ctx)
    out = ctx.out
    for snap in inp.snapshots:
        out.notices.extend(snap.notes)

    actions = out.actions
    refused = None
    held: list[Action] = []
    if not inp.allow_mass_change:
        people = managed_people(ctx.index.accounts, inp.org_scope)
        refused = refusal(actions, people, inp.safety)
        if refused is None:
            actions, held, out.held = hold(actions, people, inp.safety)
    return Plan(
        now=inp.now,
        actions=tuple(sorted(actions, key=Action.sort_key)),
        decisions=tuple(out.decisions),
        notices=tuple(out.notices),
        refused=refused,
        held=tuple(out.held),
        held_actions=tuple(sorted(held, key=Action.sort_key)),
        requests_done=frozenset(out.requests_done),
        requests_withdrawn=frozenset(out.requests_withdrawn),
        retired_names=dict(out.retired_names),
        quiet_until=out.quiet_until,
        # the pool exists only if a step gave out a name (Ctx.pool is built on first use)
        passed_over=frozenset(ctx.__dict__["pool"].consulted if "pool" in ctx.__dict__ else ()),
    )
