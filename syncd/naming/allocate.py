"""Turn a person into a free, valid uid according to a scheme.

Every candidate is checked against the uids already taken (the directory, and earlier rows of
the same batch), reserved names (role addresses and organisation mailboxes) and tombstones (uids
that ever belonged to someone, never re-issued). A name that cannot make a valid RFC 5321 local
part gets a clear error, never a silent truncation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from syncd.errors import NameError_, OrgCodeError, SyncdError
from syncd.naming.parse import ParsedName, parse_name
from syncd.naming.schemes import Collision, Scheme

MAX_LOCAL_PART = 64
MAX_NUMBER_TRIES = 999
_LOCAL_PART = re.compile(r"^[a-z0-9]+(?:\.[a-z0-9]+)*$")
_ORG_CODE = re.compile(r"^[a-z0-9]+$")

RESERVED: frozenset[str] = frozenset(
    {
        "postmaster",
        "abuse",
        "hostmaster",
        "webmaster",
        "root",
        "admin",
        "administrator",
        "noreply",
        "no-reply",
        "mailer-daemon",
        "hotromail",
    }
)


class Status(StrEnum):
    OK = "ok"
    NEEDS_DECISION = "needs-decision"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Allocation:
    """The outcome for one person: a uid, or why there is none (with candidates to choose)."""

    status: Status
    uid: str = ""
    detail: str = ""
    candidates: tuple[str, ...] = ()


def check_local_part(uid: str) -> str | None:
    """Why ``uid`` is not a valid mailbox local part, or None when it is."""
    if len(uid) > MAX_LOCAL_PART:
        return f"{uid!r} is {len(uid)} characters; a mailbox name allows at most {MAX_LOCAL_PART}"
    if not _LOCAL_PART.match(uid):
        return f"{uid!r} is not lowercase [a-z0-9] words joined by single dots"
    return None


def check_org_code(org: str) -> None:
    """Organisation codes become part of uids, so they must already be clean ASCII."""
    if not _ORG_CODE.match(org):
        raise OrgCodeError(f"organisation code {org!r} must be lowercase ASCII [a-z0-9]")


# Why a name is not given: it belonged to another person (LocalState.former). Only for that
# person: the numbering's memory (UidPool.next_number) never skips past such a name.
FORMER = "held before by another person"


@dataclass
class UidPool:
    """Everything that is not free, and who holds what (for name-sensitive collision rules).

    ``taken`` maps a uid to its holder's unaccented full name, or None where unknown (a uid
    list without names); an unknown holder counts as a different person.
    """

    taken: dict[str, str | None] = field(default_factory=dict)
    reserved: frozenset[str] = RESERVED
    tombstones: frozenset[str] = frozenset()
    # name → the employee number of the person it belonged to ("" unknown): LocalState.former
    former: Mapping[str, str] = field(default_factory=dict)
    # Where the numbering of a base stopped last time: the pool only grows, so every number
    # below it is still unavailable. Keeps a batch of 100,000 same-name people linear.
    next_number: dict[str, int] = field(default_factory=dict)
    # The names found held by the directory (not claimed here) when a name was given out:
    # what the names given out depend on. A run whose namespace may hold names since deleted
    # checks these on the server (Plan.passed_over).
    consulted: set[str] = field(default_factory=set)
    claimed: set[str] = field(default_factory=set)

    @classmethod
    def build(
        cls,
        taken: Mapping[str, str | None] | Iterable[str] = (),
        reserved: Iterable[str] = (),
        tombstones: Iterable[str] = (),
        former: Mapping[str, str] | None = None,
    ) -> UidPool:
        held = dict(taken) if isinstance(taken, Mapping) else dict.fromkeys(taken)
        return cls(
            taken={k.lower(): v for k, v in held.items()},
            reserved=RESERVED | {r.lower() for r in reserved},
            tombstones=frozenset(t.lower() for t in tombstones),
            former={k.lower(): v.strip().casefold() for k, v in (former or {}).items()},
        )

    def unavailable(self, uid: str, employee: str | None = None) -> str | None:
        """Why ``uid`` cannot be given (to the person with ``employee`` number), or None when
        it is free (to them)."""
        if uid in self.taken:
            if uid not in self.claimed:
                self.consulted.add(uid)
            return "taken"
        if uid in self.reserved:
            return "reserved"
        if uid in self.tombstones:
            return "tombstoned (belonged to someone before)"
        owner = self.former.get(uid)
        if owner is not None and (not owner or owner != (employee or "").strip().casefold()):
            return FORMER
        return None

    def holder(self, uid: str) -> str | None:
        return self.taken.get(uid)

    def claim(self, uid: str, holder: str | None) -> None:
        self.taken[uid] = holder
        self.claimed.add(uid)


def _expansion_tokens(scheme: Scheme, name: ParsedName, org: str) -> Iterator[dict[str, str]]:
    """Lengthen abbreviated words one letter at a time, left to right, each fully in turn."""
    others = name.others
    lengths = [1] * len(others)
    for i, word in enumerate(others):
        for k in range(2, len(word) + 1):
            lengths[i] = k
            tokens = scheme.tokens(name.words, org)
            tokens["initials"] = "".join([w[:n] for w, n in zip(others, lengths, strict=True)])
            yield tokens


def _expansions(scheme: Scheme, name: ParsedName, org: str) -> Iterator[str]:
    for tokens in _expansion_tokens(scheme, name, org):
        yield scheme.render_tokens(tokens)


def _expand(
    scheme: Scheme, name: ParsedName, org: str, pool: UidPool, employee: str | None = None
) -> str | None:
    """Tuyên Quang Đ5.2: lengthen until unique; identical unaccented names get a number.

    At every step, a candidate held by someone whose unaccented full name is the same as
    this person's means lengthening cannot tell them apart: the order number is appended to
    that candidate (``ngovan`` held by Ngô Văn An → Ngô Văn Ấn gets ``ngovan1``).
    """
    base_tokens = scheme.tokens(name.words, org)
    for tokens in (base_tokens, *_expansion_tokens(scheme, name, org)):
        uid = scheme.render_tokens(dict(tokens))
        if check_local_part(uid) is not None:
            continue
        why = pool.unavailable(uid, employee)
        if why is None:
            return uid
        if why == "taken" and pool.holder(uid) == name.folded:
            return _first_free(pool, _numbered(scheme, dict(tokens), uid, pool, employee), employee)
    base = scheme.render_tokens(base_tokens)
    return _first_free(pool, _numbered(scheme, base_tokens, base, pool, employee), employee)


def _numbered(
    scheme: Scheme, tokens: dict[str, str], base: str, pool: UidPool, employee: str | None = None
) -> Iterator[str]:
    key = f"{scheme.id}\0{base}"
    first = max(scheme.numeric_start, pool.next_number.get(key, 0))
    skipping = True  # every number so far unavailable to anyone: remembered
    for n in range(first, scheme.numeric_start + MAX_NUMBER_TRIES):
        uid = scheme.render_tokens(tokens, n)
        why = pool.unavailable(uid, employee)
        skipping = skipping and why is not None and why != FORMER
        if skipping:
            pool.next_number[key] = n + 1
        yield uid


def _first_free(
    pool: UidPool, candidates: Iterable[str], employee: str | None = None
) -> str | None:
    for uid in candidates:
        if check_local_part(uid) is None and pool.unavailable(uid, employee) is None:
            return uid
    return None


def allocate(
    scheme: Scheme,
    full_name: str | ParsedName,
    org: str | None,
    pool: UidPool,
    *,
    claim: bool = True,
    employee: str | None = None,
) -> Allocation:
    """Allocate a uid for one person; with ``claim`` the pool records it for later rows.
    ``employee``: the person's employee number, to whom the names they held before are free
    (``UidPool.former``); None for someone the directory never saw."""
    try:
        name = full_name if isinstance(full_name, ParsedName) else parse_name(full_name)
        org = (org or "").strip()
        if scheme.needs_org:
            if not org:
                raise OrgCodeError(f"scheme {scheme.id} needs an organisation code")
            check_org_code(org)
    except SyncdError as exc:
        return Allocation(Status.INVALID, detail=str(exc))

    tokens = scheme.tokens(name.words, org)
    base = scheme.render_tokens(tokens)
    problem = check_local_part(base)
    if problem:
        return Allocation(Status.INVALID, detail=problem)

    why = pool.unavailable(base, employee)
    if why is None:
        uid: str | None = base
    elif scheme.collision is Collision.MANUAL:
        options = [
            c
            for c in (
                *_take(_numbered(scheme, tokens, base, pool, employee), pool, 3, employee),
                *_take(_expansions(scheme, name, org), pool, 2, employee),
            )
        ]
        return Allocation(
            Status.NEEDS_DECISION,
            detail=f"{base} is {why}; {scheme.article}: an operator agrees a name with the person",
            candidates=tuple(options),
        )
    elif scheme.collision is Collision.EXPAND:
        uid = _expand(scheme, name, org, pool, employee)
    elif scheme.collision is Collision.ORG_SUFFIX and org:
        uid = _first_free(pool, [f"{base}.{org}"], employee) or _first_free(
            pool, _numbered(scheme, tokens, base, pool, employee), employee
        )
    else:
        uid = _first_free(pool, _numbered(scheme, tokens, base, pool, employee), employee)

    if uid is None:
        return Allocation(Status.INVALID, detail=f"no free mailbox name near {base}")
    if claim:
        pool.claim(uid, name.folded)
    detail = "" if uid == base else f"{base} is {why}; {scheme.article}"
    return Allocation(Status.OK, uid=uid, detail=detail)


def _take(
    candidates: Iterable[str], pool: UidPool, count: int, employee: str | None = None
) -> list[str]:
    out: list[str] = []
    for uid in candidates:
        if len(out) == count:
            break
        if check_local_part(uid) is None and pool.unavailable(uid, employee) is None:
            out.append(uid)
    return out


__all__ = [
    "RESERVED",
    "Allocation",
    "NameError_",
    "Status",
    "UidPool",
    "allocate",
    "check_local_part",
    "check_org_code",
]
