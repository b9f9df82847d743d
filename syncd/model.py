"""The nouns of syncd: organisations, people from HR, accounts in the directory, actions, plans.

Everything here is plain immutable data, so a plan can be printed, compared and replayed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import NamedTuple


class OrgKind(StrEnum):
    DEPARTMENT = "department"
    COMMUNE = "commune"
    OFFICE = "office"
    OTHER = "other"


@dataclass(frozen=True)
class Org:
    """One organisation of the catalogue.

    ``code`` is what HR writes and the abbreviation in people's uids (``skhcn`` in
    ``hungdv.skhcn``); ``mailbox`` is the organisation's own mailbox (``sokhcn``), which differs
    in the regulation's own examples, so both are kept.
    """

    code: str
    name: str
    mailbox: str
    kind: OrgKind = OrgKind.OTHER
    parent: str | None = None


def emp_key(employee_number: str | None) -> str:
    """How employee numbers compare: as LDAP's employeeNumber does (case-insensitive), so
    ``A-002`` and ``a-002`` from a careless export are one person, never two mailboxes.

    Interned: the roster's person, the directory's account and the plan's index each ask for
    it, and a new string per call was 3 copies per employee (~10 MiB at 100k). On Python 3.11
    (the package's: ``python3 (<< 3.12)``) interned strings are freed with their last user;
    on 3.12 they live as long as the process, which for a daemon is one key per employee ever
    seen, a province's size."""
    return sys.intern((employee_number or "").strip().casefold())


class HrStatus(StrEnum):
    """Trạng thái: what HR says about a person."""

    ACTIVE = "active"  # đang công tác
    RETIRED = "retired"  # nghỉ hưu
    RESIGNED = "resigned"  # nghỉ việc
    TRANSFERRED_OUT = "transferred-out"  # chuyển công tác
    DECEASED = "deceased"  # từ trần

    @property
    def leaves(self) -> bool:
        return self is not HrStatus.ACTIVE


class Request(StrEnum):
    """Đề nghị (Cao Bằng 2025 appendix form); NONE keeps the account in step."""

    NONE = ""
    CREATE = "create"  # cấp mới
    RESET_PASSWORD = "reset-password"  # noqa: S105 - cấp lại mật khẩu, not a secret
    REVOKE = "revoke"  # thu hồi
    RESTORE = "restore"  # khôi phục


@dataclass(frozen=True)
class Exemption:
    """A "notified reason" (leave, study, illness): no inactivity lock or revoke meanwhile."""

    employee_number: str
    reason: str
    start: date
    until: date
    source: str = ""

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.until


@dataclass(frozen=True, slots=True)
class Person:
    """One valid roster row."""

    employee_number: str
    full_name: str
    org: str
    office: str | None = None
    title: str | None = None
    birth_date: date | None = None
    status: HrStatus = HrStatus.ACTIVE
    request: Request = Request.NONE
    source: str = ""  # "file.csv:12", for reports and audit
    exemption: Exemption | None = None  # a notified absence from the roster's columns


class State(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    REVOKED = "revoked"
    # created, one-time password not yet set: a crash in between leaves this, and the next
    # run finishes the creation (new password, slip) instead of leaving a mailbox nobody opens
    PROVISIONING = "provisioning"


class Kind(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


@dataclass(frozen=True, slots=True)
class Account:
    """An entry as the directory holds it, reduced to what syncd reasons about."""

    dn: str
    uid: str
    cn: str = ""
    sn: str = ""
    given_name: str = ""
    mail: tuple[str, ...] = ()
    employee_number: str | None = None
    org: str | None = None
    office: str | None = None
    title: str | None = None
    state: State = State.ACTIVE
    state_since: datetime | None = None
    # why the recorded state holds (``<why> [<article>]``). A directory read for a run gives
    # it for every account not active (locked, revoked, provisioning), the locked and revoked
    # ones being those whose reason a rule reads (a security lock, a transfer out, the article
    # to put back); an active account's (how it was made) only when asked (``every_reason``:
    # ``syncd show``)
    state_reason: str | None = None
    # when syncd last made the account active (create, adoption, restore): kept when a lock
    # follows, so a clock that counts inactivity starts there at the earliest
    active_since: datetime | None = None
    managed: bool = True
    kind: Kind = Kind.PERSON
    aliases: tuple[str, ...] = ()
    has_syncd_class: bool = False
    # Activity, from the directory (ppolicy and lastbind): the lifecycle clocks read these.
    last_login: datetime | None = None  # newest of pwdLastSuccess and authTimestamp
    password_changed: datetime | None = None  # pwdChangedTime
    created: datetime | None = None  # createTimestamp
    must_change_password: bool = False  # pwdReset: the one-time password is still in use
    # What on the wire no longer enforces the state syncd recorded (a lock undone by hand:
    # ``pwdAccountLockedTime`` deleted, ``ACCOUNTDISABLE`` cleared, login services back), one
    # line each, said by the profile in its own attributes; empty when the entry is as syncd
    # left it. The planner puts it back (syncd.plan.drift).
    drift: tuple[str, ...] = ()
    # Whether the mail server delivers to it now, as the profile's delivery attributes say
    # (None: the profile cannot tell). Compared by the planner with what the recorded state
    # and the regulation's ``locked_receives_mail`` want, which the profile does not know.
    receives_mail: bool | None = None
    # Where the mail server forwards the mailbox's mail automatically (iRedMail's
    # ``mailForwardingAddress``; the mailbox's own address there is iRedMail's "keep a copy").
    # None where the profile keeps no forwarding: nothing to check (syncd.plan.forwarding).
    forwarding: tuple[str, ...] | None = None


class Name(NamedTuple):
    """One entry of the namespace (``Directory.names()``): what a run needs so that no uid or
    address ever seen is given to someone else, and no more.

    Why not an :class:`Account`: the namespace is every entry of the base (100,000 at a
    province's size), and a run of one organisation's file makes all of them; a frozen,
    slotted dataclass of 29 fields costs ~3.5 µs and 232 bytes to make, this tuple of 8
    ~0.5 µs and 104 (issue 14). An Account has the same fields under the same names, so
    either serves where names are read (:data:`Named`).
    """

    dn: str
    uid: str
    cn: str = ""
    mail: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    kind: Kind = Kind.PERSON
    managed: bool = True
    employee_number: str | None = None


Named = Name | Account  # what the namespace's readers take: a Name, or an Account in full


class Field(StrEnum):
    """What the core says about an account, in its own words (the names of
    :class:`Account`'s fields); a directory profile decides which attributes hold each one
    (``cn`` and ``displayName`` for the name in OpenLDAP, ``sAMAccountName`` and
    ``userPrincipalName`` for the uid in Active Directory, …)."""

    UID = "uid"
    NAME = "cn"  # the full name as displayed
    SURNAME = "sn"
    GIVEN_NAME = "given_name"
    MAIL = "mail"  # every address, the primary first
    EMPLOYEE_NUMBER = "employee_number"
    ORG = "org"
    OFFICE = "office"
    TITLE = "title"
    ALIASES = "aliases"  # old addresses kept after a transfer, each "address expiry"
    FORWARDING = "forwarding"  # automatic forwarding addresses (a profile may keep none)


Values = dict[Field, tuple[str, ...]]


def as_lists(values: Mapping[Field, tuple[str, ...]]) -> dict[str, list[str]]:
    """Field values as JSON wants them (audit records, the journal, plan JSON); no field ever
    holds a password, so nothing needs hiding."""
    return {k._value_: list(v) for k, v in values.items()}  # (``.value`` is a slow property)


class ActionKind(StrEnum):
    CREATE_ORG_MAILBOX = "create-org-mailbox"
    LINK = "link"
    UPDATE = "update"
    MOVE = "move"
    CREATE = "create"
    RESET_PASSWORD = "reset-password"  # noqa: S105 - an action name
    RESTORE = "restore"
    # puts back on the wire what the recorded state (and the aliases) want, after a change made
    # by hand; the recorded state, its date and its reason stay as they are
    ENFORCE = "enforce"
    LOCK = "lock"
    REVOKE = "revoke"
    PURGE = "purge"


# The order actions are applied in: links first, so a moved or updated account is found by
# its key; locks, revocations and purges last, so a failure earlier never leaves someone
# without a mailbox.
ACTION_ORDER = {k: i for i, k in enumerate(ActionKind)}


@dataclass(frozen=True)
class Action:
    """One change to the directory, with the reason and the article it enforces.

    ``attrs`` are the field values the action sets (for create: the whole entry; for
    update: only the changed ones, ``()`` meaning delete); ``before`` the values it replaces.
    Fields, not attributes: the directory profile maps them (:class:`Field`).
    """

    kind: ActionKind
    uid: str
    org: str | None
    reason: str
    article: str
    dn: str | None = None
    employee_number: str | None = None
    full_name: str = ""
    attrs: Values = field(default_factory=dict)
    before: Values = field(default_factory=dict)
    new_uid: str | None = None
    request_key: str | None = None  # a roster request this action fulfils (done once)
    rule: str = ""  # what triggered it, for guards and reports (e.g. "missing-from-roster")
    # when the new state began, if not the plan's ``now``: a locked account that is revoked
    # stays "locked or revoked continuously" since its lock (syncd.plan.states)
    since: datetime | None = None
    # enforce: the recorded state to put back on the wire and its reason, written back as is
    state: State | None = None
    state_reason: str | None = None

    def sort_key(self) -> tuple[int, str, str]:
        return (ACTION_ORDER[self.kind], self.org or "", self.uid)


def names_held(entry: Named, domain: str) -> set[str]:
    """The uid and the local parts of the addresses in ``domain`` that ``entry`` holds (its
    old addresses kept after a transfer too), in lower case: the names no one else may be
    given (a vanished entry's go to ``LocalState.former``)."""
    held = {entry.uid.lower()} if entry.uid else set()
    at = domain.lower()
    for address in (*entry.mail, *(a.split(" ")[0] for a in entry.aliases)):
        local, _, where = address.lower().partition("@")
        if where == at:
            held.add(local)
    return held


def given_out(actions: Iterable[Action]) -> dict[str, str | None]:
    """Every uid and address ``actions`` give to an entry (in lower case), with the DN of the
    entry already holding the name's action (a move's own entry) or None (a new one): what
    no other entry may hold when the plan is applied. A create gives its uid and addresses,
    a move its new uid and new addresses (the old ones stay on the same entry)."""
    out: dict[str, str | None] = {}
    for a in actions:
        if a.kind in (ActionKind.CREATE, ActionKind.CREATE_ORG_MAILBOX):
            names = [a.uid, *a.attrs.get(Field.MAIL, ())]
        elif a.kind is ActionKind.MOVE and a.new_uid:
            names = [a.new_uid, *a.attrs.get(Field.MAIL, ())]
        else:
            continue
        for name in names:
            if name:
                out[name.lower()] = a.dn.lower() if a.dn else None
    return out


class DecisionKind(StrEnum):
    UID_COLLISION = "uid-collision"  # Hưng Yên: an operator agrees a name
    AMBIGUOUS_MATCH = "ambiguous-match"  # adoption is not certain
    UNLINKED_ACCOUNT = "unlinked-account"  # an account without key, on no roster
    INVALID_NAME = "invalid-name"  # no valid uid can be made


@dataclass(frozen=True)
class Decision:
    """Something syncd will not decide alone; ``syncd decide`` resolves it."""

    id: str
    kind: DecisionKind
    org: str | None
    summary: str
    employee_number: str | None = None
    full_name: str = ""
    candidates: tuple[str, ...] = ()
    article: str = ""


@dataclass(frozen=True)
class Plan:
    """What a reconcile would do, for given inputs and ``now``; ``reconcile`` applies exactly it."""

    now: datetime
    actions: tuple[Action, ...]
    decisions: tuple[Decision, ...] = ()
    notices: tuple[str, ...] = ()
    refused: str | None = None  # a safety limit stopped the run; nothing may be applied
    # stages over their safety limit: their actions are not in ``actions`` (the rest applies);
    # each line says what was held back and how to release it (--allow-mass-change)
    held: tuple[str, ...] = ()
    held_actions: tuple[Action, ...] = ()  # shown by `syncd plan`, applied only on release
    # roster requests (``employee|request``) this plan finds already satisfied, and those done
    # before that the rosters no longer carry (a new request of the same kind may then come):
    # the runner records both after an apply, never for a plan alone
    requests_done: frozenset[str] = frozenset()
    requests_withdrawn: frozenset[str] = frozenset()
    # old addresses whose alias ends now → the employee number of the person they were kept
    # for ("" none): given again to that person only (LocalState.former), never to another
    retired_names: Mapping[str, str] = field(default_factory=dict)
    # The earliest time at which this plan could differ with every input but ``now`` the same
    # (a clock falls due, an alias expires, a notice's date passes); None: time alone never
    # changes it. What lets a run whose inputs are those of the last skip planning
    # (connectors/quiet.py); each rule that reads ``now`` says when its answer changes.
    quiet_until: datetime | None = None
    # The names the directory held that made this plan give out others (``sonlv1.tgg`` because
    # ``sonlv.tgg`` was taken): a run whose namespace may still hold names deleted since (a
    # scoped run's, from the snapshot) checks them on the server before it applies anything.
    passed_over: frozenset[str] = frozenset()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for action in self.actions:
            out[action.kind.value] = out.get(action.kind.value, 0) + 1
        return out
