"""The inputs of a plan and the shared context its steps work on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from functools import cached_property

from syncd.model import Account, Exemption, HrStatus, Kind, Named, emp_key
from syncd.naming import UidPool
from syncd.naming.schemes import Scheme
from syncd.naming.text import fold_words, name_key
from syncd.orgs import Catalogue
from syncd.plan.emit import Emitter
from syncd.plan.lifecycle import Activity
from syncd.regulation import Profile
from syncd.roster import Snapshot
from syncd.settings import AdoptionSettings, Safety
from syncd.state import LocalState


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
    namespace: Sequence[Named] | None = None
    state: LocalState = field(default_factory=LocalState)
    safety: Safety = field(default_factory=Safety)
    adoption: AdoptionSettings = field(default_factory=AdoptionSettings)
    alias_days: int = 180
    org_scope: frozenset[str] | None = None  # None: the whole catalogue (a full run)
    allow_mass_change: bool = False
    activity: Activity = field(default_factory=dict)  # address → kind → last activity
    # kinds of activity some source reports: the directory always reports logins
    activity_available: frozenset[str] = frozenset({"login"})
    # uids whose one-time password an interrupted run set without a safely written slip
    recover_passwords: frozenset[str] = frozenset()
    exemptions: Mapping[str, Sequence[Exemption]] = field(default_factory=dict)  # by employee
    # the province's zone: the days a person reads in reasons and notices (``timezone``)
    zone: tzinfo = UTC


class Index:
    """The accounts a plan reasons about, looked up the ways the steps need."""

    def __init__(self, inp: PlanInput) -> None:
        # An organisation mailbox made by hand before syncd is still an organisation mailbox.
        boxes = inp.catalogue.mailboxes
        self.accounts = [
            replace(a, kind=Kind.ORGANISATION)
            if a.uid in boxes and a.kind is Kind.PERSON and not a.employee_number
            else a
            for a in inp.accounts
        ]
        self.by_uid = {a.uid: a for a in self.accounts}
        self.by_emp: dict[str, list[Account]] = defaultdict(list)
        # accounts made before syncd, waiting for their person: by exact name and organisation,
        # and by the unaccented name anywhere (those only ever make a decision)
        self.exact: dict[tuple[str, str | None], list[Account]] = defaultdict(list)
        self.loose: dict[str, list[Account]] = defaultdict(list)
        for a in self.accounts:
            if a.kind is not Kind.PERSON:
                continue
            if a.employee_number:
                self.by_emp[emp_key(a.employee_number)].append(a)
            elif a.managed:
                self.exact[(name_key(a.cn), (a.org or "").lower() or None)].append(a)
                self.loose[fold_words(a.cn)].append(a)
        self.linked: set[str] = set()
        self.proposed: set[str] = set()  # accounts offered in an ambiguous-match decision
        # the organisations this run's files speak for, and whom they list as working there
        self.authoritative = frozenset(o for s in inp.snapshots for o in s.authoritative)
        self.listed_now = {
            (p.org, emp_key(p.employee_number))
            for s in inp.snapshots
            for p in s.people
            if p.status is HrStatus.ACTIVE and p.org in s.authoritative
        }


def build_pool(inp: PlanInput) -> UidPool:
    """Every uid and address of the whole directory, reserved names and tombstones.

    Built from the namespace read (the whole base), not from the accounts a scoped run
    reads: a file for one organisation must still see uids held in every other.
    """
    taken: dict[str, str | None] = {}
    names = inp.namespace if inp.namespace is not None else inp.accounts
    for a in (*names, *inp.accounts):
        holder = fold_words(a.cn) if a.kind is Kind.PERSON and a.cn else None
        if a.uid and (a.uid not in taken or taken[a.uid] is None):
            taken[a.uid] = holder
        addresses = [*a.mail, *(x.split(" ")[0] for x in a.aliases)]
        for mail in addresses:
            local, _, dom = mail.lower().partition("@")
            if dom == inp.domain and local not in taken:
                taken[local] = None
    return UidPool.build(
        taken=taken,
        reserved=inp.catalogue.mailboxes,
        tombstones=inp.state.tombstones,
        former=inp.state.former,
    )


@dataclass
class Ctx:
    """One plan in the making: its inputs, the account index, the uid pool, the output."""

    inp: PlanInput
    index: Index
    out: Emitter
    exemptions: dict[str, list[Exemption]]

    @cached_property
    def pool(self) -> UidPool:
        """The uid pool, built when a step first gives out a name (a new person, a transfer):
        most runs give out none, and at 100,000 names the pool is a dict of every uid and
        address with each holder's folded name (issue 14). Built from the inputs only, which
        planning never changes, so it is the same whenever it is built."""
        return build_pool(self.inp)

    @property
    def profile(self) -> Profile:
        return self.inp.profile

    def mail(self, uid: str) -> str:
        return f"{uid}@{self.inp.domain}"

    def in_scope(self, acc: Account) -> bool:
        return self.inp.org_scope is None or acc.org in self.inp.org_scope
