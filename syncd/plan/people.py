"""What HR says about each person: create, adopt, update, move, restore, reset, revoke.

One entry per employee number across the files of a run; each roster request (cấp mới,
cấp lại mật khẩu, khôi phục, thu hồi) is carried out once per person: a request already
done, or already true of the mailbox when first seen, is never repeated by a later run that
re-reads the same roster or an edited copy of it. A new request of the same kind counts once
the rosters have dropped the old one (or once it carries another date).
"""

from __future__ import annotations

from collections import defaultdict

from syncd.model import (
    Account,
    ActionKind,
    DecisionKind,
    Field,
    HrStatus,
    Person,
    Request,
    State,
    emp_key,
)
from syncd.naming import Status, allocate
from syncd.naming.allocate import check_local_part
from syncd.naming.text import fold_words, name_key
from syncd.plan.context import Ctx
from syncd.plan.departures import leaves, transferred_out
from syncd.plan.emit import decision_id, drift, person_attrs
from syncd.plan.listings import listed_anew, newest, stale
from syncd.plan.match import adopt, link
from syncd.plan.requests import done_keys, request_key
from syncd.plan.states import manual_lock
from syncd.plan.transfer import move
from syncd.state import Resolve


def choose(ctx: Ctx) -> tuple[list[Person], set[str]]:
    """One entry per employee number across files; conflicting files skip the person."""
    groups: dict[str, list[Person]] = defaultdict(list)
    for snap in ctx.inp.snapshots:
        for p in snap.people:
            groups[emp_key(p.employee_number)].append(p)
    chosen: list[Person] = []
    for emp, group in groups.items():
        active = [p for p in group if p.status is HrStatus.ACTIVE]
        if len(group) == 1 or len(active) == 1:
            chosen.append(active[0] if active else group[0])
        elif not active:
            chosen.append(group[0])
        elif (latest := newest(ctx, active)) is not None:
            # a transfer whose former organisation still lists the person: the newer listing
            chosen.append(latest)
            others = ", ".join(p.source for p in active if p is not latest)
            ctx.out.notices.append(
                f"employee {emp} is listed as working in {latest.org} ({latest.source}), the "
                f"newest listing, and still in {others}; HR there should drop them"
            )
        else:
            where = ", ".join(p.source for p in group)
            ctx.out.notices.append(
                f"employee {emp} is active in several places ({where}); skipped until HR agrees"
            )
    return chosen, set(groups)


def all_people(ctx: Ctx) -> set[str]:
    """Plan every person of the rosters; return the employee numbers seen."""
    people, seen = choose(ctx)
    done = done_keys(ctx.inp.state.done_requests)
    for p in people:
        # a request done before and no longer on the roster: the next one is a new request
        for key in done:
            emp, _, kind = key.partition("|")
            if emp == emp_key(p.employee_number) and kind != p.request.value:
                ctx.out.requests_withdrawn.add(key)
    same: dict[tuple[str, str], int] = defaultdict(int)
    for p in people:
        same[(name_key(p.full_name), p.org)] += 1
    # people whose decision an operator answered go first: the uid they were given is theirs
    # before anyone else's candidates are offered in this plan
    answered = ctx.inp.state.resolutions
    people.sort(key=lambda p: decision_id("person", p.employee_number) not in answered)
    for p in people:
        person(ctx, p, same[(name_key(p.full_name), p.org)], done)
    return seen


def person(ctx: Ctx, p: Person, same_name: int, done: set[str]) -> None:
    accs = ctx.index.by_emp.get(emp_key(p.employee_number), [])
    if len(accs) > 1:
        uids = ", ".join(a.uid for a in accs)
        ctx.out.notices.append(
            f"employee {p.employee_number} has several accounts ({uids}); skipped"
        )
        return
    if accs:
        if accs[0].managed:
            existing(ctx, p, accs[0], request_key(p) in done)
        return
    new(ctx, p, same_name, request_key(p) in done)


def new(ctx: Ctx, p: Person, same_name: int, done: bool) -> None:
    if p.status.leaves or p.request is Request.REVOKE:
        return
    key = decision_id("person", p.employee_number)
    res = ctx.inp.state.resolutions.get(key)
    index, pool = ctx.index, ctx.pool
    if res is not None:
        if res.how is Resolve.IGNORE:
            return
        if res.how is Resolve.LINK:
            target = index.by_uid.get(res.value)
            if (
                target
                and target.managed
                and not target.employee_number
                and target.uid not in index.linked
            ):
                link(ctx, p, target, f"operator decision {key}: same person")
                return
            ctx.out.notices.append(
                f"decision {key}: account {res.value!r} cannot be linked "
                "(missing, unmanaged or already keyed)"
            )
        if res.how is Resolve.UID:
            problem = check_local_part(res.value) or pool.unavailable(res.value, p.employee_number)
            if not problem:
                pool.claim(res.value, fold_words(p.full_name))
                create(ctx, p, res.value, f"operator decision {key}: chosen uid")
                return
            ctx.out.notices.append(f"decision {key}: chosen uid {res.value!r}: {problem}")

    if adopt(ctx, p, same_name, key):
        return
    result = allocate(ctx.inp.scheme, p.full_name, p.org, pool, employee=p.employee_number)
    scheme = ctx.inp.scheme
    if result.status is Status.OK:
        create(ctx, p, result.uid, result.detail)
    elif result.status is Status.NEEDS_DECISION:
        ctx.out.decide(
            DecisionKind.UID_COLLISION,
            key,
            p.org,
            f"{p.full_name} ({p.org}, {p.source}): {result.detail}",
            p,
            result.candidates,
            scheme.article,
        )
        # offered to this person: another person's decision in this plan offers others, so an
        # operator answering both with the first candidate cannot pick one uid twice
        for uid in result.candidates:
            pool.claim(uid, None)
    else:
        ctx.out.decide(
            DecisionKind.INVALID_NAME,
            key,
            p.org,
            f"{p.full_name!r} ({p.org}, {p.source}): {result.detail}",
            p,
            (),
            scheme.article,
        )


def create(ctx: Ctx, p: Person, uid: str, detail: str) -> None:
    attrs = {Field.UID: (uid,), Field.MAIL: (ctx.mail(uid),), **person_attrs(p)}
    scheme = ctx.inp.scheme
    reason = f"new on the roster ({p.source}); uid by {scheme.id}"
    if detail:
        reason += f": {detail}"
    reason += "; a one-time password, to be changed at first login"
    # citations only: HR's result shows them as they are under "Căn cứ" (found by an attack:
    # English prose in the Vietnamese page)
    article = f"{ctx.profile.hr_article}; {scheme.article}; {ctx.profile.must_change_article}"
    ctx.out.add(
        ActionKind.CREATE,
        uid,
        p.org,
        reason,
        article,
        employee_number=p.employee_number,
        full_name=p.full_name,
        attrs=attrs,
        request_key=request_key(p) if p.request is Request.CREATE else None,
    )


def existing(ctx: Ctx, p: Person, acc: Account, done: bool) -> None:
    if p.status.leaves or p.request is Request.REVOKE:
        leaves(ctx, p, acc, done)
        return
    if acc.state is State.PROVISIONING:
        return  # recovery finishes it first
    prof, out, key = ctx.profile, ctx.out, request_key(p)
    moved = acc.org != p.org
    if moved and (why := stale(ctx, p, acc)):
        out.notices.append(why)
        return
    asks_restore = p.request in (Request.RESTORE, Request.CREATE) and not done
    if asks_restore and acc.state is State.ACTIVE:
        # true already when seen: done, so a later lock is not lifted by this old request
        out.requests_done.add(key)
    # a transfer in: the mailbox is revoked and the person works here now. Told by the
    # organisation, or, when a run died between the organisation's change and the restore
    # (the mailbox already says the new one), by a transfer-out revocation that this
    # organisation's listing of the person began after
    transfer_in = acc.state is State.REVOKED and (
        moved or (transferred_out(acc) and listed_anew(ctx, p, acc.state_since))
    )
    security = manual_lock(acc)
    if transfer_in and security and not asks_restore:
        # a transfer does not lift a security lock: the new organisation asks (khôi phục)
        out.notices.append(
            f"{p.source}: {p.full_name} moved to {p.org}, but {acc.uid} carries a security "
            f"lock ({security}); a restore request (khôi phục) or syncd restore lifts it"
        )
        transfer_in = False
    restore = acc.state is not State.ACTIVE and (asks_restore or transfer_in)
    if acc.state is State.REVOKED and not restore:
        if not security:
            out.notices.append(
                f"{p.source}: {p.full_name} is active on the roster but "
                f"{acc.uid} is revoked; request khôi phục to restore it"
            )
        return
    dn = acc.dn
    carries_org = ctx.inp.scheme.needs_org
    uid = acc.uid  # after a rename, later actions (and the slip) name the new uid
    if moved and carries_org:
        uid = move(ctx, p, acc) or uid
    changed, before = drift(
        person_attrs(p), acc, skip=(Field.ORG, Field.OFFICE) if moved and carries_org else ()
    )
    if changed:
        why = f"HR data changed ({p.source})"
        if Field.ORG in changed:
            why = f"transferred from {acc.org} to {p.org} ({p.source}); uid unchanged"
        out.add(
            ActionKind.UPDATE,
            uid,
            p.org,
            why,
            prof.hr_article,
            dn=dn,
            employee_number=p.employee_number,
            full_name=p.full_name,
            attrs=changed,
            before=before,
        )
    wants_reset = p.request is Request.RESET_PASSWORD and not done
    if p.request is Request.RESET_PASSWORD and done:
        out.notices.append(
            f"{p.source}: the password reset for {acc.uid} was done before; to ask for another, "
            "send a roster without the request, then one with it"
        )
    if restore:
        out.add(
            ActionKind.RESTORE,
            uid,
            p.org,
            f"restore requested ({p.request.value or 'transfer in'}, {p.source}); "
            "new one-time password, must change at first login",
            f"{prof.request_article}; {prof.must_change_article}",
            dn=dn,
            employee_number=p.employee_number,
            full_name=p.full_name,
            request_key=key if asks_restore or wants_reset else None,
        )
    elif wants_reset and acc.state is State.ACTIVE:
        out.add(
            ActionKind.RESET_PASSWORD,
            uid,
            p.org,
            f"password reset requested (cấp lại mật khẩu, {p.source})",
            f"{prof.request_article}; {prof.must_change_article}",
            dn=dn,
            employee_number=p.employee_number,
            full_name=p.full_name,
            request_key=key,
        )
    elif wants_reset:
        out.notices.append(
            f"{p.source}: password reset for {acc.uid} waits: the mailbox is "
            f"{acc.state.value}; a restore request (khôi phục) issues a new password"
        )
