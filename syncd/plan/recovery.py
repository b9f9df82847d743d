"""Finish what a crash interrupted: half-made mailboxes and passwords without a slip."""

from __future__ import annotations

from syncd.model import ActionKind, State
from syncd.plan.context import Ctx


def recovery(ctx: Ctx) -> None:
    touched = ctx.out.touched()
    prof = ctx.profile
    for acc in ctx.index.accounts:
        if not acc.managed or acc.uid in touched:
            continue
        if acc.state is State.PROVISIONING:
            kind, why = (
                ActionKind.RESTORE,
                "finishing a creation that a crash interrupted: one-time password, "
                "must change at first login",
            )
        elif acc.uid in ctx.inp.recover_passwords and acc.state is State.ACTIVE:
            kind, why = (
                ActionKind.RESET_PASSWORD,
                "an interrupted run set a password whose slip may be lost: a new "
                "one-time password is issued",
            )
        else:
            continue
        ctx.out.add(
            kind,
            acc.uid,
            acc.org,
            why,
            prof.must_change_article,
            dn=acc.dn,
            employee_number=acc.employee_number,
            full_name=acc.cn,
            rule="recovery",
        )
