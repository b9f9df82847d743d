"""Changes made by hand outside syncd: the wire no longer enforces what syncd recorded.

An administrator re-enables a locked account in ADUC, sets ``accountStatus: active`` on a
revoked iRedMail mailbox, deletes ``pwdAccountLockedTime``, or deletes an old address that a
transfer keeps until its alias expires. Each profile reads its own attributes and says what
no longer matches the recorded state (:attr:`~syncd.model.Account.drift`) and whether the mail
server delivers (:attr:`~syncd.model.Account.receives_mail`); this step compares delivery with
what the state and the regulation's ``locked_receives_mail`` want, finds the unexpired aliases
missing from the addresses, and plans one ``enforce`` action per account that puts it back.

The recorded state wins, in one direction only: syncd closes what was opened by hand, never
opens what was closed by hand. Whether a locked or revoked mailbox should be open again is a
person's decision, taken with ``syncd restore`` (audited), not a guess from a changed
attribute; what was shut by hand beyond the recorded state (delivery stopped on a locked
mailbox the regulation lets receive) is pointed out in a notice and left shut, because the one
who shut it may have had a security reason syncd cannot see.

Repairs count against the lock limits (:mod:`syncd.plan.guard`): a thousand entries changed at
once is a restored backup or a script far more often than a thousand decisions, so it is held
back and reported like a mass lock, and released with ``--allow-mass-change``.

This step runs after the others: an account that an HR action, a request or a clock already
changes in this plan is left alone (a restore asked for must not be locked again, a lock or
revoke puts the wire right by itself); the next run compares again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from syncd.model import Account, ActionKind, Field, State, names_held
from syncd.plan.context import Ctx
from syncd.plan.emit import GENERALIZED, alias_end
from syncd.regulation import Flag

PREFIX = "changed outside syncd"
_BLOCKED = (State.LOCKED, State.REVOKED)


def article_of(acc: Account, fallback: str) -> str:
    """The article the recorded state enforces: syncd writes every state's reason as
    ``<why> [<article>]``, so the lock's (or the revoke's) article is its last bracket."""
    reason = (acc.state_reason or "").rstrip()
    if reason.endswith("]") and "[" in reason:
        return reason[reason.rfind("[") + 1 : -1]
    return fallback


def wants_mail(acc: Account, locked_receives: Flag) -> bool | None:
    """Whether the recorded state lets mail in (None: active and provisioning, not judged)."""
    if acc.state is State.REVOKED:
        return False
    if acc.state is State.LOCKED:
        return locked_receives.value
    return None


def on_the_wire(acc: Account, locked_receives: Flag) -> list[str]:
    """What opens more than the recorded state allows: the profile's own findings (a login
    switch back on) and mail delivered to a mailbox that must receive nothing
    (``locked_receives``: the regulation's ``lifecycle.locked_receives_mail``)."""
    what = list(acc.drift)
    if acc.mail and acc.receives_mail and wants_mail(acc, locked_receives) is False:
        what.append(f"mail is delivered to a {acc.state.value} mailbox")
    return what


def closed_by_hand(acc: Account, locked_receives: Flag) -> list[str]:
    """What is shut more than the recorded state says: delivery stopped on a locked mailbox
    that the regulation says still receives. Pointed out, never reopened (module docstring)."""
    if acc.mail and acc.receives_mail is False and wants_mail(acc, locked_receives):
        return [f"mail delivery stopped, which a locked mailbox keeps ({locked_receives.article})"]
    return []


def primary_missing(acc: Account, domain: str) -> list[str]:
    """The primary address syncd gave the account (``<uid>@<domain>``) gone from its
    addresses: replaced or deleted by hand, the official address no longer exists at the mail
    server. Named (``syncd show``, ``syncd doctor``), not put back: which address is right
    is the operator's call (docs/mail-server.md, "Changes made by hand")."""
    primary = f"{acc.uid}@{domain}".lower()
    if any(m.lower() == primary for m in acc.mail):
        return []
    have = ", ".join(acc.mail) or "none"
    return [f"primary address {primary} missing (addresses: {have})"]


def missing_aliases(acc: Account, when: datetime) -> tuple[str, ...]:
    """The old addresses a transfer keeps until their alias expires that are gone at ``when``."""
    if not acc.aliases:  # most accounts: no strftime for them (100,000 a run)
        return ()
    now = when.strftime(GENERALIZED)
    have = {m.lower() for m in acc.mail}
    return tuple(
        dict.fromkeys(
            x.split(" ")[0]
            for x in acc.aliases
            if x.split(" ")[-1] > now and x.split(" ")[0].lower() not in have
        )
    )


def _held_elsewhere(ctx: Ctx, acc: Account, addresses: Iterable[str]) -> dict[str, str]:
    """Of ``addresses`` (lower case), those another entry of the namespace holds (its uid,
    an address or an old one: ``names_held``), with its DN. Walked only for an account
    missing an old address (rare)."""
    domain = ctx.inp.domain.lower()
    wanted = {
        local: address.lower()
        for address in addresses
        for local, _, where in [address.lower().partition("@")]
        if where == domain
    }
    found: dict[str, str] = {}
    mine = acc.dn.lower()
    names = ctx.inp.namespace if ctx.inp.namespace is not None else ctx.inp.accounts
    for n in names:
        if n.dn.lower() != mine:
            for local in names_held(n, domain) & wanted.keys():
                found.setdefault(wanted[local], n.dn)
    return found


def drift(ctx: Ctx) -> None:
    """One ``enforce`` per account whose wire differs from what syncd recorded."""
    # a state change this plan already makes puts the wire right (or opens it on purpose);
    # an update of the addresses would race with the alias repair: both wait for the next run
    busy = {
        a.uid
        for a in ctx.out.actions
        if a.kind is not ActionKind.UPDATE or Field.MAIL in a.attrs or Field.ALIASES in a.attrs
    }
    for acc in ctx.index.accounts:
        if not acc.managed or acc.uid in busy or not ctx.in_scope(acc):
            continue
        flag = ctx.profile.lifecycle.locked_receives_mail
        state_what = on_the_wire(acc, flag)
        missing = missing_aliases(acc, ctx.inp.now)
        if missing:
            # an old address removed by hand that another entry holds now is not put back:
            # an address is never held by two entries (found by an attack: both had it)
            taken = _held_elsewhere(ctx, acc, missing)
            for address in missing:
                if address.lower() in taken:
                    ctx.out.notices.append(
                        f"{acc.uid}: {PREFIX} (old address {address} removed before its alias "
                        f"expires, and held now by {taken[address.lower()]}); not put back: "
                        "an address is never given to two entries"
                    )
            missing = tuple(m for m in missing if m.lower() not in taken)
        for x in acc.aliases:  # a missing old address is put back only until it expires
            if x.split(" ")[0] in missing:
                ctx.out.changes_at(alias_end(x, ctx.inp.now))
        shut = closed_by_hand(acc, flag)
        if shut:
            ctx.out.notices.append(
                f"{acc.uid}: {PREFIX} ({'; '.join(shut)}); left so: syncd never reopens what "
                "was closed by hand"
            )
        if state_what and acc.state not in _BLOCKED:
            # closed by hand while syncd has it active (or still provisioning): not reopened
            ctx.out.notices.append(
                f"{acc.uid}: {PREFIX} ({'; '.join(state_what)}); syncd has it "
                f"{acc.state.value} and leaves it so: record a lock with syncd lock"
            )
            state_what = []
        if missing:
            state_what.append(
                f"old address(es) {', '.join(missing)} removed before their alias expires"
            )
        if not state_what:
            continue
        enforce = acc.state in _BLOCKED and len(state_what) > (1 if missing else 0)
        what = "; ".join(state_what)
        ctx.out.add(
            ActionKind.ENFORCE,
            acc.uid,
            acc.org,
            f"{PREFIX}: {what}; put back",
            article_of(acc, ctx.profile.hr_article) if enforce else ctx.profile.hr_article,
            dn=acc.dn,
            employee_number=acc.employee_number,
            full_name=acc.cn,
            attrs={Field.MAIL: (*acc.mail, *missing)} if missing else {},
            before={Field.MAIL: acc.mail} if missing else {},
            rule="changed-outside-syncd",
            since=acc.state_since if enforce else None,
            state=acc.state if enforce else None,
            state_reason=acc.state_reason if enforce else None,
        )
        ctx.out.notices.append(
            f"{acc.uid}: {PREFIX} ({what}); put back"
            + (
                f" as syncd recorded it ({acc.state.value}); to open it, run syncd restore"
                if enforce
                else ""
            )
        )
