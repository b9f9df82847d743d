"""Automatic forwarding out of the state's mail (Hưng Yên Đ4.5).

"Đặt chế độ chuyển thư điện tử tự động từ hộp thư điện tử công vụ được cấp đến các hộp thư
điện tử khác không phải do cơ quan nhà nước cấp" is forbidden: an official mailbox may forward
automatically only to mailboxes a state body issued. The regulation file names the rule
(``forwarding:`` in syncd/regulation/<id>.yaml: its article, the domains a state body issues,
and whether syncd reports or removes); the profile reads the forwarding addresses
(:attr:`~syncd.model.Account.forwarding`, None where it keeps none: nothing to check). This
step compares them, per managed account in the run's scope:

- ``report`` (the default): a notice naming the mailbox and the outside addresses. A
  forwarding address may hold a person's only copy of their mail; removing it is the
  operator's decision.
- ``remove``: one ``enforce`` action replacing the addresses with those a state body issued
  (the mailbox's own address — iRedMail's "keep a copy in the mailbox" — is one of them, so it
  stays), audited with the regulation and its article, and held back past the lock limits
  in a stage of its own (:mod:`syncd.plan.guard`): a thousand mailboxes forwarding out at
  once is an import or a script to look at before it is undone, but a backlog of them must
  never hold back a security lock put back in the same run.

Only the forwarding syncd's directory holds is in reach: the "or the reverse" of Đ4.5
(another provider forwarding into an official mailbox) is not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import getaddresses

from syncd.model import ActionKind, Field
from syncd.plan.context import Ctx
from syncd.plan.states import MANUAL_LOCK

RULE = "forwarding-outside-state"
# An operator's lock for these reasons (syncd lock --reason; the regulation's
# lifecycle.manual_lock, Hưng Yên Đ7.2b) says someone else may hold the mailbox: an attacker
# or malware. A locked mailbox still receives (Hưng Yên Đ7.1), so a forward they set would
# keep carrying its mail out through the lock; such a lock also stops automatic forwarding
# where the profile can (iredmail: enabledService forward), and the restore gives it back.
# Spam and misuse are the holder's own doing: their forwarding is the Đ4.5 check's.
LOCKS_STOPPING_FORWARDING = ("compromised", "malware")
_STOPS = re.compile(rf"{re.escape(MANUAL_LOCK)}({'|'.join(LOCKS_STOPPING_FORWARDING)})\b")

# Postfix reads a virtual_alias_maps result as a list "separated by comma or whitespace"
# (virtual(5)): one LDAP value may hold several addresses, and each is checked.
_SEPARATORS = re.compile(r"[,\s]+")
# What a plain address's parts may be. Anything else (quotes, a route, ``%`` or ``!``
# relaying, an IP literal) is not a plain address a state body issued: counted as outside.
_LOCAL = re.compile(r"[A-Za-z0-9#$&'*+/=?^_`{|}~.-]+")
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"({_LABEL}\.)+{_LABEL}")


def issued_by_state(address: str, state_domains: Sequence[str], own_domain: str) -> bool:
    """Whether the single plain address ``address`` is in a domain a state body issues: the
    province's own, a domain of ``state_domains``, or one under a ``*.<domain>`` of them
    (``*.gov.vn`` takes ``hungyen.gov.vn`` and ``sokhcn.hungyen.gov.vn``, not
    ``gov.vn.example.com``). Whatever is not a plain ``local@domain`` with a valid host name
    counts as outside: a bare ``q`` (Postfix appends a domain syncd cannot see), ``x@.gov.vn``,
    a quoted or routed address: Đ4.5 is kept only where syncd can tell it is."""
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL.fullmatch(local):
        return False
    domain = domain.lower().removesuffix(".")
    if not _HOST.fullmatch(domain):
        return False
    for pattern in (own_domain.lower(), *state_domains):
        if pattern.startswith("*."):
            if domain.endswith(pattern[1:]):
                return True
        elif domain == pattern:
            return True
    return False


def lock_stops_forwarding(reason: str) -> bool:
    """Whether a lock whose state reason is ``reason`` (as syncd writes it: ``manual lock:
    compromised — ticket 42 [hungyen-2025 Đ7.2b]``) also stops automatic forwarding. The
    profile asks this of the reason it is given rather than knowing the lock reasons itself:
    which locks stop forwarding is the core's to say, in one place."""
    return _STOPS.match(reason) is not None


def read_forwarding(
    values: Sequence[str], state_domains: Sequence[str], own_domain: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The forwarding ``values`` as (the clean state addresses, what is outside).

    Each value is split as Postfix splits it (comma or whitespace), and each part must be
    exactly one plain address to the standard library's mail parser
    (:func:`email.utils.getaddresses`: no display name, no comment, nothing left over) and in
    a state domain; a part that is not (``<x@gmail.com>ok@so.gov.vn``, ``@so.gov.vn``, ``q``)
    is outside as it is written. So ``x@gmail.com, ok@so.gov.vn`` in one value is seen whole:
    Gmail outside, ``ok@so.gov.vn`` kept as a value of its own."""
    kept: dict[str, None] = {}
    outside: dict[str, None] = {}
    for value in values:
        for part in _SEPARATORS.split(value):
            if not part:
                continue
            # the cheap test first: the parser only confirms a plain state address
            state = issued_by_state(part, state_domains, own_domain)
            if state and getaddresses([part]) == [("", part)]:
                kept[part] = None
            else:
                outside[part] = None
    return tuple(kept), tuple(outside)


def forwarding(ctx: Ctx) -> None:
    """A notice or an ``enforce`` per account forwarding outside the state's mail."""
    rule = ctx.profile.forwarding
    if rule is None:
        return
    for acc in ctx.index.accounts:
        if not acc.forwarding or not acc.managed or not ctx.in_scope(acc):
            continue
        kept, outside = read_forwarding(acc.forwarding, rule.state_domains, ctx.inp.domain)
        if not outside:
            continue
        what = (
            f"automatic forwarding to {', '.join(outside)}, not a mailbox a state body issued "
            f"(state domains: {ctx.inp.domain}, {', '.join(rule.state_domains)})"
        )
        if not rule.remove:
            ctx.out.notices.append(
                f"{acc.uid}: {what} [{rule.article}]; reported only: the regulation's "
                "forwarding.action is report (syncd.yaml rules: {forwarding: {action: remove}} "
                "removes it)"
            )
            continue
        ctx.out.add(
            ActionKind.ENFORCE,
            acc.uid,
            acc.org,
            # no tense: the same words stand in a held-back row and in the audit record
            f"{what}; the outside addresses go (forwarding.action: remove, {ctx.profile.id})"
            + (f"; kept: {', '.join(kept)}" if kept else ""),
            rule.article,
            dn=acc.dn,
            employee_number=acc.employee_number,
            full_name=acc.cn,
            attrs={Field.FORWARDING: kept},
            before={Field.FORWARDING: acc.forwarding},
            rule=RULE,
        )
        # said before it is done: a safety limit may hold the removal back (guard.py, its
        # own stage), and the run report's held-back line then says so
        ctx.out.notices.append(
            f"{acc.uid}: {what}; to be removed by this run (remove forwarding) [{rule.article}]"
        )
