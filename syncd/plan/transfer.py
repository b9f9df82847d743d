"""A person who changed organisation in a scheme whose uid carries it: rename the mailbox.

The new uid follows the scheme (or an operator's chosen uid); the old address stays on the
entry as an alias for ``transfer.alias_days`` so mail still reaches the person, and is never
given to anyone else meanwhile.
"""

from __future__ import annotations

from datetime import timedelta

from syncd.model import Account, ActionKind, DecisionKind, Field, Person
from syncd.naming import Allocation, Status, allocate
from syncd.naming.allocate import check_local_part
from syncd.naming.text import fold_words
from syncd.plan.context import Ctx
from syncd.plan.emit import GENERALIZED, decision_id
from syncd.state import Resolution, Resolve


def move(ctx: Ctx, p: Person, acc: Account) -> str | None:
    """Rename the mailbox of a person who changed organisation; the new uid, or None when
    it waits for a decision."""
    pool, scheme = ctx.pool, ctx.inp.scheme
    key, res = _question(ctx, p)
    if res is not None:
        new_uid = res.value
        pool.claim(new_uid, fold_words(p.full_name))
    else:
        result = _allocate_own(ctx, p, acc)
        if result.status is not Status.OK:
            ctx.out.decide(
                DecisionKind.UID_COLLISION,
                key,
                p.org,
                f"{p.full_name} moves {acc.org} → {p.org} ({p.source}): {result.detail}",
                p,
                result.candidates,
                scheme.article,
            )
            return None
        new_uid = result.uid
    until = (ctx.inp.now + timedelta(days=ctx.inp.alias_days)).strftime(GENERALIZED)
    ctx.out.changes_at(ctx.inp.now)  # the alias's end counts from now, to the second
    new_mail = ctx.mail(new_uid)
    # the address to keep: the current one, or (when a crash left the entry renamed but
    # not updated) the primary address it still carries
    old = next((m for m in acc.mail if m.lower() != new_mail), ctx.mail(acc.uid))
    attrs = {
        Field.MAIL: tuple(dict.fromkeys((new_mail, old, *acc.mail))),
        # an alias that is the primary address again (moving back) is no alias any more
        Field.ALIASES: (
            *(x for x in acc.aliases if x.split(" ")[0].lower() != new_mail),
            f"{old} {until}",
        ),
        Field.ORG: (p.org,),
        Field.OFFICE: (p.office,) if p.office else (),
    }
    ctx.out.add(
        ActionKind.MOVE,
        acc.uid,
        p.org,
        f"transferred from {acc.org} to {p.org} ({p.source}); the uid carries the "
        f"organisation, so {acc.uid} becomes {new_uid}; {old} stays an alias until "
        f"{until[:8]}",
        f"{ctx.profile.hr_article}; {scheme.article}",
        dn=acc.dn,
        employee_number=p.employee_number,
        full_name=p.full_name,
        attrs=attrs,
        before={
            Field.MAIL: acc.mail,
            Field.ORG: (acc.org or "",),
            Field.OFFICE: (acc.office,) if acc.office else (),  # the report's office left
        },
        new_uid=new_uid,
    )
    return new_uid


def _question(ctx: Ctx, p: Person) -> tuple[str, Resolution | None]:
    """The decision this move asks under, and the operator's answer to it when it can be used.

    The person's decision id is the one their creation asked under, so it may hold an answer
    given for another question (the uid chosen when they were hired, or at an earlier
    transfer: their own address now). Asking again under an answered id would hide the
    question: ``syncd decisions`` lists only unanswered ones, and the mailbox would wait in
    its old organisation for ever (Hưng Yên Đ5.3: the operator agrees a name with the
    person). So an answer that cannot be used here leads to a new id, derived from it, and
    an answer given to that one is followed in turn.
    """
    key = decision_id("person", p.employee_number)
    resolutions, pool = ctx.inp.state.resolutions, ctx.pool
    while (res := resolutions.get(key)) is not None:
        if res.how is Resolve.UID and not (
            check_local_part(res.value) or pool.unavailable(res.value, p.employee_number)
        ):
            return key, res
        key = decision_id(key, "answered", res.how.value, res.value)
    return key, None


def _allocate_own(ctx: Ctx, p: Person, acc: Account) -> Allocation:
    """A uid in the new organisation; the person's own old addresses count as free for them,
    so moving back to a former organisation gives its old address back (``hungdv.skhcn`` →
    ``hungdv.syt`` → ``hungdv.skhcn``), never a numbered new one. Once the alias has ended,
    the old address is in ``LocalState.former`` under this person's employee number, and
    the pool gives it to them alone (``UidPool.unavailable``)."""
    pool = ctx.pool
    own = {m.lower().partition("@")[0] for m in acc.mail} | {
        x.split(" ")[0].lower().partition("@")[0] for x in acc.aliases
    }
    own.discard(acc.uid)
    released = {uid: pool.taken.pop(uid) for uid in own if uid in pool.taken}
    try:
        return allocate(ctx.inp.scheme, p.full_name, p.org, pool, employee=p.employee_number)
    finally:
        for uid, holder in released.items():
            pool.taken.setdefault(uid, holder)
