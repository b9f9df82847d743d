"""Adoption: accounts made before syncd (no employee number) and the people they belong to.

A person is linked to an existing account only on an exact match of the full name as the
person owns it (every tone mark kept; case, spacing and old/new tone placement aside) within
the same organisation, and only when nobody else on the roster has that name there. Anything
weaker — the same name without marks (``Lý Thị Hòa`` and ``Lý Thị Hoa``), another
organisation, several candidates — becomes an operator decision: a live mailbox is never
handed to a different person by guesswork.
"""

from __future__ import annotations

from collections import defaultdict

from syncd.model import Account, ActionKind, DecisionKind, Field, Kind, Person, State, emp_key
from syncd.naming.text import fold_words, name_key
from syncd.plan.context import Ctx
from syncd.plan.emit import decision_id, drift, person_attrs
from syncd.plan.states import carried, transition
from syncd.state import Resolve


def adopt(ctx: Ctx, p: Person, same_name: int, key: str) -> bool:
    """Link ``p`` to a pre-existing account, or ask; False when there is no candidate."""
    index = ctx.index
    here = (name_key(p.full_name), p.org.lower())
    exact = [a for a in index.exact.get(here, []) if _free(ctx, a)]
    if len(exact) == 1 and same_name == 1:
        link(ctx, p, exact[0], "existing account with the same name and organisation")
        return True
    loose = [
        a for a in index.loose.get(fold_words(p.full_name), []) if _free(ctx, a) and a not in exact
    ]
    if not exact and not loose:
        return False
    found = exact + loose
    index.proposed |= {a.uid for a in found}
    shown = ", ".join(f"{a.uid} ({a.cn}, {a.org or '?'})" for a in found)
    ctx.out.decide(
        DecisionKind.AMBIGUOUS_MATCH,
        key,
        p.org,
        f"{p.full_name} ({p.org}, {p.source}) may already have a mailbox: {shown}; "
        "link one if it is the same person, or create",
        p,
        [a.uid for a in found],
        ctx.profile.hr_article,
    )
    return True


def link(ctx: Ctx, p: Person, acc: Account, why: str) -> None:
    ctx.index.linked.add(acc.uid)
    changed, before = drift(person_attrs(p), acc)
    changed[Field.EMPLOYEE_NUMBER] = (p.employee_number,)
    ctx.out.add(
        ActionKind.LINK,
        acc.uid,
        p.org,
        f"{why}: {p.full_name} ({p.source}) keeps the mailbox {acc.uid}",
        f"{ctx.profile.hr_article}; never a second mailbox for one person",
        dn=acc.dn,
        employee_number=p.employee_number,
        full_name=p.full_name,
        attrs=changed,
        before=before,
    )


def _free(ctx: Ctx, a: Account) -> bool:
    return a.uid not in ctx.index.linked


def _listed_later(ctx: Ctx, a: Account, emp: str, authoritative: dict[str, list[str]]) -> list[str]:
    """Other organisations whose latest roster (not part of this run) began listing the person
    after ``a.org``'s did: where they went. A former organisation's stale listing is older and
    never spares a leaver (the newest listing wins: syncd/plan/listings.py)."""
    listed = ctx.inp.state.listed
    here = listed.get(a.org or "", {}).get(emp)
    return sorted(
        org
        for org, who in listed.items()
        if org != a.org
        and org not in authoritative
        and emp in who
        # where this organisation's latest roster no longer lists them at all (it said they
        # left, or dropped them before), any listing elsewhere is newer
        and (here is None or who[emp] > here)
    )


def absent(ctx: Ctx, seen: set[str]) -> None:
    """Accounts of an organisation whose roster is authoritative and does not list them."""
    authoritative: dict[str, list[str]] = defaultdict(list)
    for snap in ctx.inp.snapshots:
        for org in snap.authoritative:
            authoritative[org].append(snap.source)
    index, out, prof = ctx.index, ctx.out, ctx.profile
    for a in index.accounts:
        if not a.managed or a.kind is not Kind.PERSON or a.org not in authoritative:
            continue
        if a.state in (State.REVOKED, State.PROVISIONING):
            continue
        files = ", ".join(authoritative[a.org])
        if a.employee_number:
            emp = emp_key(a.employee_number)
            if emp in seen:
                continue
            if newer := _listed_later(ctx, a, emp, authoritative):
                # gone from here because they moved there: the move follows that roster, not a
                # revoke (a transfer whose destination file came before this one)
                out.notices.append(
                    f"{a.uid} is no longer on the roster of {a.org} ({files}), but the latest "
                    f"roster of {', '.join(newer)} lists them since later: not revoked; the "
                    "mailbox moves when that roster is applied again (the nightly run)"
                )
                continue
            _revoke(ctx, a, f"no longer on the roster of {a.org} ({files})")
            continue
        if a.uid in index.linked or a.uid in index.proposed:
            continue
        key = decision_id("account", a.uid)
        res = ctx.inp.state.resolutions.get(key)
        if res is not None and res.how is Resolve.IGNORE:
            continue
        if res is not None and res.how is Resolve.REVOKE:
            _revoke(
                ctx,
                a,
                f"operator decision {key}: {a.uid} belongs to nobody on the roster",
                "operator-decision",
            )
            continue
        if ctx.inp.adoption.unmatched == "revoke":
            _revoke(
                ctx,
                a,
                f"{a.uid} ({a.cn}) has no employee number and matches nobody on the roster "
                f"of {a.org} ({files}); adoption.unmatched: revoke",
            )
            continue
        out.decide(
            DecisionKind.UNLINKED_ACCOUNT,
            key,
            a.org,
            f"{a.uid} ({a.cn}) has no employee number and matches nobody on the roster of "
            f"{a.org} ({files}); link it from the person's decision, revoke it "
            "(syncd decide ID --revoke), or ignore it",
            candidates=(a.uid,),
            article=prof.hr_article,
        )


def _revoke(ctx: Ctx, a: Account, why: str, rule: str = "missing-from-roster") -> None:
    step = transition(a.state, ActionKind.REVOKE)
    ctx.out.add(
        ActionKind.REVOKE,
        a.uid,
        a.org,
        why + carried(a),
        ctx.profile.hr_article,
        dn=a.dn,
        employee_number=a.employee_number,
        full_name=a.cn,
        rule=rule,
        since=a.state_since if step.keeps_since else None,
    )
