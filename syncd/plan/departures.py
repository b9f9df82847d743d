"""People HR says left (retired, resigned, transferred out, deceased) or whose organisation
asks for revocation (thu hồi): revoke, or archive and delete where the regulation says a
cancelled account is deleted (tuyenquang-2025 Đ7.2)."""

from __future__ import annotations

from syncd.model import Account, ActionKind, HrStatus, Person, Request, State
from syncd.plan.context import Ctx
from syncd.plan.requests import request_key
from syncd.plan.states import carried, transition

STATUS_VI = {
    HrStatus.RETIRED: "nghỉ hưu",
    HrStatus.RESIGNED: "nghỉ việc",
    HrStatus.TRANSFERRED_OUT: "chuyển công tác",
    HrStatus.DECEASED: "từ trần",
}


def transferred_out(acc: Account) -> bool:
    """Whether ``acc`` was revoked because HR said the person transferred out (its reason, as
    :func:`leaves` writes it, names the status)."""
    return acc.state is State.REVOKED and f"({HrStatus.TRANSFERRED_OUT.value})" in (
        acc.state_reason or ""
    )


def leaves(ctx: Ctx, p: Person, acc: Account, done: bool) -> None:
    """HR says the person left, or the organisation asks for revocation (thu hồi)."""
    prof = ctx.profile
    out = ctx.out
    if acc.org != p.org:
        if acc.state is not State.REVOKED:
            out.notices.append(
                f"{p.source}: {p.full_name} is listed as leaving "
                f"{p.org} but the mailbox {acc.uid} is now in {acc.org}; not revoked"
            )
        return
    asked = p.request is Request.REVOKE
    if asked and done:
        return  # carried out before; an operator may have restored it since
    if asked:
        why, art = "organisation requests revocation (thu hồi)", prof.request_article
    else:
        why, art = f"HR status {STATUS_VI[p.status]} ({p.status.value})", prof.hr_article
    delete = prof.lifecycle.delete_on_leave
    if delete.value:
        # a cancelled account is archived, deleted and cannot be restored (tuyenquang Đ7.2)
        out.add(
            ActionKind.PURGE,
            acc.uid,
            acc.org,
            f"{why}; {p.source}; a cancelled account is deleted (archived first)",
            f"{art}; {delete.article}",
            dn=acc.dn,
            employee_number=p.employee_number,
            full_name=p.full_name,
            request_key=request_key(p) if asked else None,
            rule="delete-on-leave",
        )
        return
    if acc.state is State.REVOKED:
        if asked:
            out.requests_done.add(request_key(p))
        return
    step = transition(acc.state, ActionKind.REVOKE)
    out.add(
        ActionKind.REVOKE,
        acc.uid,
        acc.org,
        f"{why}; {p.source}{carried(acc)}",
        art,
        dn=acc.dn,
        employee_number=p.employee_number,
        full_name=p.full_name,
        request_key=request_key(p) if asked else None,
        since=acc.state_since if step.keeps_since else None,
    )
