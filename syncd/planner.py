"""The plan: a pure diff of what HR says against what the directory holds, at ``now``.

(roster snapshots, catalogue, profile, directory accounts, local state, now) → :class:`Plan`.
Every action carries its reason and the article it enforces; anything syncd must not decide
alone becomes a :class:`Decision`; a safety limit refuses the whole plan before anything runs.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from syncd.config import Safety
from syncd.lifecycle import due, timeline
from syncd.model import (
    Account,
    Action,
    ActionKind,
    Decision,
    DecisionKind,
    Exemption,
    HrStatus,
    Kind,
    Org,
    OrgKind,
    Person,
    Plan,
    Request,
    State,
)
from syncd.naming import Status, UidPool, allocate
from syncd.naming.allocate import check_local_part
from syncd.naming.schemes import Scheme
from syncd.naming.text import fold_words, normalise
from syncd.orgs import Catalogue
from syncd.profiles import Profile
from syncd.roster import Snapshot
from syncd.state import LocalState, Resolve

GENERALIZED = "%Y%m%d%H%M%SZ"
STATUS_VI = {
    HrStatus.RETIRED: "nghỉ hưu",
    HrStatus.RESIGNED: "nghỉ việc",
    HrStatus.TRANSFERRED_OUT: "chuyển công tác",
    HrStatus.DECEASED: "từ trần",
}


@dataclass(frozen=True)
class PlanInput:
    snapshots: Sequence[Snapshot]
    catalogue: Catalogue
    profile: Profile
    scheme: Scheme
    domain: str
    accounts: Sequence[Account]
    now: datetime
    # the whole directory's uids and addresses (Directory.names()); None: use ``accounts``
    namespace: Sequence[Account] | None = None
    state: LocalState = field(default_factory=LocalState)
    safety: Safety = field(default_factory=Safety)
    alias_days: int = 180
    org_scope: frozenset[str] | None = None  # None: the whole catalogue (a full run)
    allow_mass_change: bool = False
    activity: Mapping[str, datetime] = field(default_factory=dict)  # address → last activity
    # uids whose one-time password an interrupted run set without a safely written slip
    recover_passwords: frozenset[str] = frozenset()
    exemptions: Mapping[str, Sequence[Exemption]] = field(default_factory=dict)  # by employee


def decision_id(*parts: str | None) -> str:
    """Stable across runs, so an operator's answer finds its question again."""
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()[:10]


def display_name(name: str) -> str:
    """The name as it should appear: NFC, single spaces; ALL-CAPS or all-lower made Title."""
    name = normalise(name)
    return name.title() if name.isupper() or name.islower() else name


def person_attrs(p: Person) -> dict[str, tuple[str, ...]]:
    """The directory attributes HR decides for a person (the uid and mail aside)."""
    name = display_name(p.full_name)
    words = name.split(" ")
    return {
        "cn": (name,),
        "displayName": (name,),
        "sn": (words[0],),
        "givenName": (" ".join(words[1:]),) if len(words) > 1 else (),
        "employeeNumber": (p.employee_number,),
        "ou": (p.org,),
        "departmentNumber": (p.office,) if p.office else (),
        "title": (p.title,) if p.title else (),
    }


def _current(a: Account) -> dict[str, tuple[str, ...]]:
    return {
        "cn": (a.cn,) if a.cn else (),
        "sn": (a.sn,) if a.sn else (),
        "givenName": (a.given_name,) if a.given_name else (),
        "employeeNumber": (a.employee_number,) if a.employee_number else (),
        "ou": (a.org,) if a.org else (),
        "departmentNumber": (a.office,) if a.office else (),
        "title": (a.title,) if a.title else (),
    }


def _drift(
    want: dict[str, tuple[str, ...]], acc: Account, skip: Iterable[str] = ()
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    have = _current(acc)
    changed = {k: v for k, v in want.items() if k in have and k not in skip and have[k] != v}
    if "cn" in changed:
        changed["displayName"] = want["displayName"]
    return changed, {k: have.get(k, ()) for k in changed}


class _Planner:
    def __init__(self, inp: PlanInput) -> None:
        self.inp = inp
        self.profile = inp.profile
        # An organisation mailbox made by hand before syncd is still an organisation mailbox.
        boxes = inp.catalogue.mailboxes
        self.accounts = [
            replace(a, kind=Kind.ORGANISATION)
            if a.uid in boxes and a.kind is Kind.PERSON and not a.employee_number
            else a
            for a in inp.accounts
        ]
        self.actions: list[Action] = []
        self.decisions: list[Decision] = []
        self.notices: list[str] = []
        self.by_uid = {a.uid: a for a in self.accounts}
        self.by_emp: dict[str, list[Account]] = defaultdict(list)
        self.unlinked: dict[tuple[str, str | None], list[Account]] = defaultdict(list)
        for a in self.accounts:
            if a.kind is not Kind.PERSON:
                continue
            if a.employee_number:
                self.by_emp[a.employee_number].append(a)
            elif a.managed:
                self.unlinked[(fold_words(a.cn), a.org)].append(a)
        self.exemptions: dict[str, list[Exemption]] = defaultdict(list)
        for emp, items in inp.exemptions.items():
            self.exemptions[emp].extend(items)
        for snap in inp.snapshots:
            for p in snap.people:
                if p.exemption is not None:
                    self.exemptions[p.employee_number].append(p.exemption)
        self.sha_of: dict[str, str] = {}  # employee number → the roster file it came from
        self.linked: set[str] = set()
        self.proposed: set[str] = set()  # accounts offered in an ambiguous-match decision
        taken: dict[str, str | None] = {}
        for a in self.accounts:
            taken[a.uid] = fold_words(a.cn) if a.kind is Kind.PERSON else None
            for mail in a.mail:
                local, _, dom = mail.lower().partition("@")
                if dom == inp.domain and local not in taken:
                    taken[local] = None
        self.pool = UidPool.build(
            taken=taken, reserved=inp.catalogue.mailboxes, tombstones=inp.state.tombstones
        )

    # -- helpers ----------------------------------------------------------------------------

    def mail(self, uid: str) -> str:
        return f"{uid}@{self.inp.domain}"

    def add(
        self, kind: ActionKind, uid: str, org: str | None, reason: str, article: str, **kw: object
    ) -> None:
        self.actions.append(Action(kind, uid, org, reason, article, **kw))  # type: ignore[arg-type]

    def decide(
        self,
        kind: DecisionKind,
        key: str,
        org: str | None,
        summary: str,
        p: Person | None = None,
        candidates: Sequence[str] = (),
        article: str = "",
    ) -> None:
        self.decisions.append(
            Decision(
                id=key,
                kind=kind,
                org=org,
                summary=summary,
                employee_number=p.employee_number if p else None,
                full_name=p.full_name if p else "",
                candidates=tuple(candidates),
                article=article,
            )
        )

    # -- organisation mailboxes -------------------------------------------------------------

    def org_mailboxes(self) -> None:
        cat = self.inp.catalogue
        orgs = cat.all() if self.inp.org_scope is None else cat.subtree(self.inp.org_scope)
        for org in orgs:
            self.org_mailbox(org)

    def org_mailbox(self, org: Org) -> None:
        home = org.parent if org.kind is OrgKind.OFFICE and org.parent else org.code
        acc = self.by_uid.get(org.mailbox)
        article = self.profile.request_article
        if acc is None:
            attrs = {
                "uid": (org.mailbox,),
                "cn": (org.name,),
                "displayName": (org.name,),
                "sn": (org.name,),
                "mail": (self.mail(org.mailbox),),
                "ou": (home,),
                "departmentNumber": (org.code,) if org.kind is OrgKind.OFFICE else (),
            }
            self.add(
                ActionKind.CREATE_ORG_MAILBOX,
                org.mailbox,
                home,
                f"organisation mailbox of {org.name} ({org.kind.value}) from the catalogue",
                article,
                full_name=org.name,
                attrs=attrs,
            )
        elif acc.managed and acc.kind is Kind.ORGANISATION and acc.cn != org.name:
            self.add(
                ActionKind.UPDATE,
                acc.uid,
                home,
                "organisation renamed in the catalogue",
                article,
                dn=acc.dn,
                attrs={"cn": (org.name,), "displayName": (org.name,), "sn": (org.name,)},
                before={"cn": (acc.cn,)},
            )

    # -- people -----------------------------------------------------------------------------

    def people(self) -> tuple[list[Person], set[str]]:
        """One entry per employee number across files; conflicting files skip the person."""
        groups: dict[str, list[Person]] = defaultdict(list)
        for snap in self.inp.snapshots:
            for p in snap.people:
                groups[p.employee_number].append(p)
                self.sha_of[p.employee_number] = snap.sha256
        chosen: list[Person] = []
        for emp, group in groups.items():
            active = [p for p in group if p.status is HrStatus.ACTIVE]
            if len(group) == 1 or len(active) == 1:
                chosen.append(active[0] if active else group[0])
            elif not active:
                chosen.append(group[0])
            else:
                where = ", ".join(p.source for p in group)
                self.notices.append(
                    f"employee {emp} is active in several places ({where}); skipped until HR agrees"
                )
        return chosen, set(groups)

    def person(self, p: Person, same_name: int) -> None:
        accs = self.by_emp.get(p.employee_number, [])
        if len(accs) > 1:
            uids = ", ".join(a.uid for a in accs)
            self.notices.append(
                f"employee {p.employee_number} has several accounts ({uids}); skipped"
            )
            return
        if accs:
            if accs[0].managed:
                self.existing(p, accs[0])
            return
        self.new(p, same_name)

    def new(self, p: Person, same_name: int) -> None:
        if p.status.leaves or p.request is Request.REVOKE:
            return
        key = decision_id("person", p.employee_number)
        res = self.inp.state.resolutions.get(key)
        hr = self.profile.hr_article
        if res is not None:
            if res.how is Resolve.IGNORE:
                return
            if res.how is Resolve.LINK:
                target = self.by_uid.get(res.value)
                if (
                    target
                    and target.managed
                    and not target.employee_number
                    and target.uid not in self.linked
                ):
                    self.link(p, target, f"operator decision {key}: same person")
                    return
                self.notices.append(
                    f"decision {key}: account {res.value!r} cannot be linked "
                    "(missing, unmanaged or already keyed)"
                )
            if res.how is Resolve.UID:
                problem = check_local_part(res.value) or self.pool.unavailable(res.value)
                if not problem:
                    self.pool.claim(res.value, fold_words(p.full_name))
                    self.create(p, res.value, f"operator decision {key}: chosen uid")
                    return
                self.notices.append(f"decision {key}: chosen uid {res.value!r}: {problem}")

        folded = fold_words(p.full_name)
        cands = [a for a in self.unlinked.get((folded, p.org), []) if a.uid not in self.linked]
        if len(cands) == 1 and same_name == 1:
            self.link(p, cands[0], "existing account with the same name and organisation")
            return
        loose = [a for a in self.unlinked.get((folded, None), []) if a.uid not in self.linked]
        if cands or loose:
            self.proposed |= {a.uid for a in cands + loose}
            self.decide(
                DecisionKind.AMBIGUOUS_MATCH,
                key,
                p.org,
                f"{p.full_name} ({p.org}, {p.source}) may already have a mailbox: "
                f"{', '.join(a.uid for a in cands + loose)}; link one or create",
                p,
                [a.uid for a in cands + loose],
                hr,
            )
            return
        result = allocate(self.inp.scheme, p.full_name, p.org, self.pool)
        if result.status is Status.OK:
            self.create(p, result.uid, result.detail)
        elif result.status is Status.NEEDS_DECISION:
            self.decide(
                DecisionKind.UID_COLLISION,
                key,
                p.org,
                f"{p.full_name} ({p.org}, {p.source}): {result.detail}",
                p,
                result.candidates,
                self.inp.scheme.article,
            )
        else:
            self.decide(
                DecisionKind.INVALID_NAME,
                key,
                p.org,
                f"{p.full_name!r} ({p.org}, {p.source}): {result.detail}",
                p,
                (),
                self.inp.scheme.article,
            )

    def create(self, p: Person, uid: str, detail: str) -> None:
        attrs = {"uid": (uid,), "mail": (self.mail(uid),), **person_attrs(p)}
        reason = f"new on the roster ({p.source}); uid by {self.inp.scheme.id}"
        if detail:
            reason += f": {detail}"
        article = f"{self.profile.hr_article}; {self.inp.scheme.article}; " + (
            f"one-time password, must change: {self.profile.must_change_article}"
        )
        self.add(
            ActionKind.CREATE,
            uid,
            p.org,
            reason,
            article,
            employee_number=p.employee_number,
            full_name=p.full_name,
            attrs=attrs,
        )

    def link(self, p: Person, acc: Account, why: str) -> None:
        self.linked.add(acc.uid)
        changed, before = _drift(person_attrs(p), acc)
        changed["employeeNumber"] = (p.employee_number,)
        self.add(
            ActionKind.LINK,
            acc.uid,
            p.org,
            f"{why}: {p.full_name} ({p.source}) keeps the mailbox {acc.uid}",
            f"{self.profile.hr_article}; never a second mailbox for one person",
            dn=acc.dn,
            employee_number=p.employee_number,
            full_name=p.full_name,
            attrs=changed,
            before=before,
        )

    def existing(self, p: Person, acc: Account) -> None:
        prof = self.profile
        if p.status.leaves or p.request is Request.REVOKE:
            if acc.org != p.org:
                if acc.state is not State.REVOKED:
                    self.notices.append(
                        f"{p.source}: {p.full_name} is listed as leaving "
                        f"{p.org} but the mailbox {acc.uid} is now in {acc.org}; "
                        "not revoked"
                    )
                return
            if acc.state is not State.REVOKED:
                if p.request is Request.REVOKE:
                    why, art = "organisation requests revocation (thu hồi)", prof.request_article
                else:
                    why, art = (
                        f"HR status {STATUS_VI[p.status]} ({p.status.value})",
                        prof.hr_article,
                    )
                self.add(
                    ActionKind.REVOKE,
                    acc.uid,
                    acc.org,
                    f"{why}; {p.source}",
                    art,
                    dn=acc.dn,
                    employee_number=p.employee_number,
                    full_name=p.full_name,
                )
            return

        if acc.state is State.PROVISIONING:
            return  # recovery() finishes it first
        moved = acc.org != p.org
        restore = acc.state is not State.ACTIVE and (
            p.request in (Request.RESTORE, Request.CREATE) or (moved and acc.state is State.REVOKED)
        )
        if acc.state is State.REVOKED and not restore:
            self.notices.append(
                f"{p.source}: {p.full_name} is active on the roster but "
                f"{acc.uid} is revoked; request khôi phục to restore it"
            )
            return
        sha = self.sha_of.get(p.employee_number, "")
        dn = acc.dn
        if moved and self.inp.scheme.needs_org:
            self.move(p, acc)
        changed, before = _drift(
            person_attrs(p),
            acc,
            skip=("ou", "departmentNumber") if moved and self.inp.scheme.needs_org else (),
        )
        if changed:
            why = f"HR data changed ({p.source})"
            if "ou" in changed:
                why = f"transferred from {acc.org} to {p.org} ({p.source}); uid unchanged"
            self.add(
                ActionKind.UPDATE,
                acc.uid,
                p.org,
                why,
                prof.hr_article,
                dn=dn,
                employee_number=p.employee_number,
                full_name=p.full_name,
                attrs=changed,
                before=before,
            )
        reset_key = f"{p.employee_number}|{Request.RESET_PASSWORD.value}|{sha}"
        if restore:
            self.add(
                ActionKind.RESTORE,
                acc.uid,
                p.org,
                f"restore requested ({p.request.value or 'transfer in'}, {p.source}); "
                "new one-time password, must change at first login",
                f"{prof.request_article}; {prof.must_change_article}",
                dn=dn,
                employee_number=p.employee_number,
                full_name=p.full_name,
                request_key=reset_key if p.request is Request.RESET_PASSWORD else None,
            )
        elif p.request is Request.RESET_PASSWORD and reset_key not in self.inp.state.done_requests:
            self.add(
                ActionKind.RESET_PASSWORD,
                acc.uid,
                p.org,
                f"password reset requested (cấp lại mật khẩu, {p.source})",
                f"{prof.request_article}; {prof.must_change_article}",
                dn=dn,
                employee_number=p.employee_number,
                full_name=p.full_name,
                request_key=reset_key,
            )

    def move(self, p: Person, acc: Account) -> None:
        key = decision_id("person", p.employee_number)
        res = self.inp.state.resolutions.get(key)
        if (
            res is not None
            and res.how is Resolve.UID
            and not (check_local_part(res.value) or self.pool.unavailable(res.value))
        ):
            new_uid = res.value
            self.pool.claim(new_uid, fold_words(p.full_name))
        else:
            result = allocate(self.inp.scheme, p.full_name, p.org, self.pool)
            if result.status is not Status.OK:
                self.decide(
                    DecisionKind.UID_COLLISION,
                    key,
                    p.org,
                    f"{p.full_name} moves {acc.org} → {p.org} ({p.source}): {result.detail}",
                    p,
                    result.candidates,
                    self.inp.scheme.article,
                )
                return
            new_uid = result.uid
        until = (self.inp.now + timedelta(days=self.inp.alias_days)).strftime(GENERALIZED)
        new = self.mail(new_uid)
        # the address to keep: the current one, or (when a crash left the entry renamed but
        # not updated) the primary address it still carries
        old = next((m for m in acc.mail if m.lower() != new), self.mail(acc.uid))
        attrs = {
            "mail": tuple(dict.fromkeys((new, old, *acc.mail))),
            "syncdAlias": (*acc.aliases, f"{old} {until}"),
            "ou": (p.org,),
            "departmentNumber": (p.office,) if p.office else (),
        }
        self.add(
            ActionKind.MOVE,
            acc.uid,
            p.org,
            f"transferred from {acc.org} to {p.org} ({p.source}); the uid carries the "
            f"organisation, so {acc.uid} becomes {new_uid}; {old} stays an alias until "
            f"{until[:8]}",
            f"{self.profile.hr_article}; {self.inp.scheme.article}",
            dn=acc.dn,
            employee_number=p.employee_number,
            full_name=p.full_name,
            attrs=attrs,
            before={"mail": acc.mail, "ou": (acc.org or "",)},
            new_uid=new_uid,
        )

    # -- accounts no roster mentions --------------------------------------------------------

    def missing(self, seen: set[str]) -> None:
        authoritative: dict[str, list[str]] = defaultdict(list)
        for snap in self.inp.snapshots:
            for org in snap.authoritative:
                authoritative[org].append(snap.source)
        for a in self.accounts:
            if not a.managed or a.kind is not Kind.PERSON or a.org not in authoritative:
                continue
            files = ", ".join(authoritative[a.org])
            if a.employee_number:
                if a.employee_number not in seen and a.state is not State.REVOKED:
                    self.add(
                        ActionKind.REVOKE,
                        a.uid,
                        a.org,
                        f"no longer on the roster of {a.org} ({files})",
                        self.profile.hr_article,
                        dn=a.dn,
                        employee_number=a.employee_number,
                        full_name=a.cn,
                        rule="missing-from-roster",
                    )
            elif (
                a.uid not in self.linked
                and a.uid not in self.proposed
                and a.state is not State.REVOKED
            ):
                key = decision_id("account", a.uid)
                res = self.inp.state.resolutions.get(key)
                if res is None or res.how is not Resolve.IGNORE:
                    self.decide(
                        DecisionKind.UNLINKED_ACCOUNT,
                        key,
                        a.org,
                        f"{a.uid} ({a.cn}) has no employee number and matches nobody on "
                        f"the roster of {a.org} ({files}); link it from the person's "
                        "decision, or ignore it",
                    )

    def expired_aliases(self) -> None:
        now = self.inp.now.strftime(GENERALIZED)
        for a in self.accounts:
            if not a.managed or not a.aliases:
                continue
            expired = [x for x in a.aliases if x.split(" ")[-1] <= now]
            if not expired:
                continue
            gone = {x.split(" ")[0].lower() for x in expired}
            self.add(
                ActionKind.UPDATE,
                a.uid,
                a.org,
                f"old address(es) {', '.join(sorted(gone))} kept after a transfer expired",
                self.profile.hr_article,
                dn=a.dn,
                employee_number=a.employee_number,
                attrs={
                    "mail": tuple(m for m in a.mail if m.lower() not in gone),
                    "syncdAlias": tuple(x for x in a.aliases if x not in expired),
                },
                before={"mail": a.mail, "syncdAlias": a.aliases},
            )

    # -- safety -----------------------------------------------------------------------------

    def recovery(self) -> None:
        """Finish what a crash interrupted: half-made mailboxes and passwords without a slip."""
        touched = {a.uid for a in self.actions}
        prof = self.profile
        for acc in self.accounts:
            if not acc.managed or acc.uid in touched:
                continue
            if acc.state is State.PROVISIONING:
                self.add(
                    ActionKind.RESTORE,
                    acc.uid,
                    acc.org,
                    "finishing a creation that a crash interrupted: one-time password, "
                    "must change at first login",
                    prof.must_change_article,
                    dn=acc.dn,
                    employee_number=acc.employee_number,
                    full_name=acc.cn,
                    rule="recovery",
                )
            elif acc.uid in self.inp.recover_passwords and acc.state is State.ACTIVE:
                self.add(
                    ActionKind.RESET_PASSWORD,
                    acc.uid,
                    acc.org,
                    "an interrupted run set a password whose slip may be lost: a new "
                    "one-time password is issued",
                    prof.must_change_article,
                    dn=acc.dn,
                    employee_number=acc.employee_number,
                    full_name=acc.cn,
                    rule="recovery",
                )

    def lifecycle(self) -> None:
        """The regulation's clocks, for accounts no HR action touches in this plan."""
        touched = {a.uid for a in self.actions}
        lc = self.profile.lifecycle
        for acc in self.accounts:
            if acc.uid in touched or not acc.managed or acc.kind is not Kind.PERSON:
                continue
            if self.inp.org_scope is not None and acc.org not in self.inp.org_scope:
                continue
            exemptions = self.exemptions.get(acc.employee_number or "", ())
            ev = due(timeline(acc, lc, self.inp.activity, exemptions, self.inp.now), self.inp.now)
            if ev is None:
                continue
            self.add(
                ev.kind,
                acc.uid,
                acc.org,
                f"{ev.rule}: {ev.reason}",
                ev.article,
                dn=acc.dn,
                employee_number=acc.employee_number,
                full_name=acc.cn,
            )

    def guard(self) -> str | None:
        """Per stage — locks, revokes, purges — a count and a share of managed accounts."""
        if self.inp.allow_mass_change:
            return None
        scope = self.inp.org_scope
        people = [
            a
            for a in self.accounts
            if a.managed and a.kind is Kind.PERSON and (scope is None or a.org in scope)
        ]
        live = sum(1 for a in people if a.state is not State.REVOKED)
        s = self.inp.safety
        # A roster that drops a large share of an organisation's people is truncated data far
        # more often than a mass departure: refuse before anything changes.
        dropped: dict[str, int] = defaultdict(int)
        for a in self.actions:
            if a.rule == "missing-from-roster":
                dropped[a.org or "?"] += 1
        for org, n in sorted(dropped.items()):
            size = sum(1 for a in people if a.org == org and a.state is not State.REVOKED)
            if n >= 2 and size and n / size > s.max_org_drop_share:
                return (
                    f"the roster of {org} drops {n} of its {size} people, more than "
                    f"safety.max_org_drop_share = {s.max_org_drop_share:.0%}: a truncated "
                    "file? nothing was changed"
                )
        stages = (
            (ActionKind.LOCK, "lock", s.max_lock_count, s.max_lock_share, live),
            (ActionKind.REVOKE, "revoke", s.max_revoke_count, s.max_revoke_share, live),
            (ActionKind.PURGE, "purge", s.max_purge_count, s.max_purge_share, len(people)),
        )
        for kind, name, max_count, max_share, population in stages:
            hits = [a for a in self.actions if a.kind is kind]
            if not hits:
                continue
            by_org: dict[str, int] = defaultdict(int)
            for a in hits:
                by_org[a.org or "?"] += 1
            detail = ", ".join(f"{o}: {n}" for o, n in sorted(by_org.items()))
            if len(hits) > max_count:
                return (
                    f"would {name} {len(hits)} accounts ({detail}), more than "
                    f"safety.max_{name}_count = {max_count}"
                )
            if len(hits) > max(1, int(max_share * population)):
                return (
                    f"would {name} {len(hits)} of {population} managed accounts ({detail}), "
                    f"more than safety.max_{name}_share = {max_share:.0%}"
                )
        return None

    def run(self) -> Plan:
        self.org_mailboxes()
        people, seen = self.people()
        same: dict[tuple[str, str], int] = defaultdict(int)
        for p in people:
            same[(fold_words(p.full_name), p.org)] += 1
        for p in people:
            self.person(p, same[(fold_words(p.full_name), p.org)])
        self.missing(seen)
        self.expired_aliases()
        self.recovery()
        self.lifecycle()
        for snap in self.inp.snapshots:
            self.notices.extend(snap.notes)
        refused = self.guard()
        return Plan(
            now=self.inp.now,
            actions=tuple(sorted(self.actions, key=Action.sort_key)),
            decisions=tuple(self.decisions),
            notices=tuple(self.notices),
            refused=refused,
        )


def make_plan(inp: PlanInput) -> Plan:
    """The plan for ``inp``; pure and deterministic."""
    return _Planner(inp).run()
