"""Which organisation's roster speaks for a person listed by two: the newest listing.

HR offices do not update their files on the same day. After a transfer the destination lists
the person while the former organisation may send, for weeks, a file that still lists them as
working there (a stale export, a re-sent copy). Comparing files by arrival would move the
mailbox back and forth with every such file. Instead each organisation's latest roster is
remembered with the date it *began* listing each person without a break
(:attr:`syncd.state.LocalState.listed`): the organisation that began listing the person most
recently has the newer word, whatever order the files arrive in. A file that drops a person
and lists them again later starts a new listing, so a real move back still happens. Two
listings that began in the same run cannot be told apart: the person waits for HR to agree.
"""

from __future__ import annotations

from datetime import datetime

from syncd.model import Account, Person, emp_key
from syncd.plan.context import Ctx

Since = tuple[int, str]  # (the run that began the listing, its date-time)


def listed_since(ctx: Ctx, org: str | None, employee_number: str) -> Since | None:
    """When ``org``'s roster began listing the employee as working there (run number, ISO
    date-time), or None when its latest roster does not. An organisation a file of this run
    speaks for is judged by that file: a person it lists anew is listed from this run."""
    if org is None:
        return None
    emp = emp_key(employee_number)
    state = ctx.inp.state
    known = state.listed.get(org, {}).get(emp)
    if org in ctx.index.authoritative:
        if (org, emp) not in ctx.index.listed_now:
            return None
        return known or (state.listing_runs + 1, ctx.inp.now.isoformat(timespec="seconds"))
    return known


def stale(ctx: Ctx, p: Person, acc: Account) -> str | None:
    """Why ``p``'s file must not move the mailbox from ``acc.org`` (a notice), or None.

    Asked only of a person whose mailbox is in another organisation than the file says.
    """
    if acc.org is None or acc.org in ctx.index.authoritative:
        return None  # that organisation's own file is part of this run and was weighed
    theirs = listed_since(ctx, acc.org, p.employee_number)
    if theirs is None:
        return None  # the former organisation's latest roster no longer lists them
    ours = listed_since(ctx, p.org, p.employee_number)
    if ours is not None and ours > theirs:
        return None  # a newer listing: the person moved
    when = "as long as" if ours == theirs else "since before"
    return (
        f"{p.source}: {p.full_name} ({p.employee_number}) is listed by {p.org} "
        f"{when} {acc.org}, whose latest roster has listed them since {theirs[1][:10]}; the "
        f"mailbox {acc.uid} stays in {acc.org} until one of the two files drops them "
        "(an old roster sent again does not move a person back)"
    )


def newest(ctx: Ctx, active: list[Person]) -> Person | None:
    """Of one person listed as working by several files of a run, the one whose organisation
    began listing them last; None when that cannot be told (HR must agree)."""
    dated = sorted(
        ((listed_since(ctx, p.org, p.employee_number) or (0, ""), p) for p in active),
        key=lambda x: x[0],
    )
    if len(dated) > 1 and dated[-1][0] > dated[-2][0]:
        return dated[-1][1]
    return None


def listed_anew(ctx: Ctx, p: Person, since: datetime | None) -> bool:
    """Whether ``p``'s organisation began listing them as working after ``since`` (a
    revocation): a new listing, not the one the revocation ended."""
    began = listed_since(ctx, p.org, p.employee_number)
    return began is not None and since is not None and datetime.fromisoformat(began[1]) > since
