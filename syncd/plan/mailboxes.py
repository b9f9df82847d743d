"""Organisation mailboxes from the catalogue, and old addresses that outlived their alias."""

from __future__ import annotations

from syncd.model import ActionKind, Field, Org, OrgKind
from syncd.plan.context import Ctx
from syncd.plan.emit import GENERALIZED, alias_end


def org_mailboxes(ctx: Ctx) -> None:
    cat = ctx.inp.catalogue
    orgs = cat.all() if ctx.inp.org_scope is None else cat.subtree(ctx.inp.org_scope)
    for org in orgs:
        org_mailbox(ctx, org)


def org_mailbox(ctx: Ctx, org: Org) -> None:
    home = org.parent if org.kind is OrgKind.OFFICE and org.parent else org.code
    acc = ctx.index.by_uid.get(org.mailbox)
    article = ctx.profile.request_article
    if acc is None:
        attrs = {
            Field.UID: (org.mailbox,),
            Field.NAME: (org.name,),
            Field.SURNAME: (org.name,),
            Field.MAIL: (ctx.mail(org.mailbox),),
            Field.ORG: (home,),
            Field.OFFICE: (org.code,) if org.kind is OrgKind.OFFICE else (),
        }
        ctx.out.add(
            ActionKind.CREATE_ORG_MAILBOX,
            org.mailbox,
            home,
            f"organisation mailbox of {org.name} ({org.kind.value}) from the catalogue",
            article,
            full_name=org.name,
            attrs=attrs,
        )
    elif acc.managed and acc.kind.value == "organisation" and acc.cn != org.name:
        ctx.out.add(
            ActionKind.UPDATE,
            acc.uid,
            home,
            "organisation renamed in the catalogue",
            article,
            dn=acc.dn,
            attrs={Field.NAME: (org.name,), Field.SURNAME: (org.name,)},
            before={Field.NAME: (acc.cn,)},
        )


def expired_aliases(ctx: Ctx) -> None:
    now = ctx.inp.now.strftime(GENERALIZED)
    for a in ctx.index.accounts:
        if not a.managed or not a.aliases:
            continue
        expired = [x for x in a.aliases if x.split(" ")[-1] <= now]
        for x in a.aliases:
            if x not in expired:  # expires later: this plan holds until then
                ctx.out.changes_at(alias_end(x, ctx.inp.now))
        if not expired:
            continue
        gone = {x.split(" ")[0].lower() for x in expired}
        # an address that was someone's never goes to anyone else; to them again, yes (a move
        # back after the alias ended: LocalState.former)
        for g in gone:
            ctx.out.retired_names[g.partition("@")[0]] = a.employee_number or ""
        ctx.out.add(
            ActionKind.UPDATE,
            a.uid,
            a.org,
            f"old address(es) {', '.join(sorted(gone))} kept after a transfer expired",
            ctx.profile.hr_article,
            dn=a.dn,
            employee_number=a.employee_number,
            attrs={
                Field.MAIL: tuple(m for m in a.mail if m.lower() not in gone),
                Field.ALIASES: tuple(x for x in a.aliases if x not in expired),
            },
            before={Field.MAIL: a.mail, Field.ALIASES: a.aliases},
        )
