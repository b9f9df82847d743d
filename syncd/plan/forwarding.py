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
  stays), audited with the regulation and its article, and counted by the lock limits like
  every enforce (:mod:`syncd.plan.guard`): a thousand mailboxes forwarding out at once is an
  import or a script to look at before it is undone.

Only the forwarding syncd's directory holds is in reach: the "or the reverse" of Đ4.5
(another provider forwarding into an official mailbox) is not.
"""

from __future__ import annotations

from collections.abc import Sequence

from syncd.model import ActionKind, Field
from syncd.plan.context import Ctx

RULE = "forwarding-outside-state"


def issued_by_state(address: str, state_domains: Sequence[str], own_domain: str) -> bool:
    """Whether ``address`` is in a domain a state body issues: the province's own, a domain
    of ``state_domains``, or one under a ``*.<domain>`` of them (``*.gov.vn`` takes
    ``hungyen.gov.vn`` and ``sokhcn.hungyen.gov.vn``, not ``gov.vn.example.com``). An
    address without a domain is the mail server's own (Postfix appends it)."""
    _, at, domain = address.strip().rpartition("@")
    if not at:
        return True
    domain = domain.lower().rstrip(".")
    for pattern in (own_domain.lower(), *state_domains):
        if pattern.startswith("*."):
            if domain.endswith(pattern[1:]):
                return True
        elif domain == pattern:
            return True
    return False


def forwarding(ctx: Ctx) -> None:
    """A notice or an ``enforce`` per account forwarding outside the state's mail."""
    rule = ctx.profile.forwarding
    if rule is None:
        return
    for acc in ctx.index.accounts:
        if not acc.forwarding or not acc.managed or not ctx.in_scope(acc):
            continue
        outside = tuple(
            a for a in acc.forwarding if not issued_by_state(a, rule.state_domains, ctx.inp.domain)
        )
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
        kept = tuple(a for a in acc.forwarding if a not in outside)
        ctx.out.add(
            ActionKind.ENFORCE,
            acc.uid,
            acc.org,
            f"{what}: removed by {ctx.profile.id} (forwarding.action: remove)"
            + (f"; kept: {', '.join(kept)}" if kept else ""),
            rule.article,
            dn=acc.dn,
            employee_number=acc.employee_number,
            full_name=acc.cn,
            attrs={Field.FORWARDING: kept},
            before={Field.FORWARDING: acc.forwarding},
            rule=RULE,
        )
        ctx.out.notices.append(f"{acc.uid}: {what}; removed [{rule.article}]")
