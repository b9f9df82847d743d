"""What a plan collects, and the attributes HR decides for a person.

:class:`Emitter` is the one place actions, decisions, notices and held-back stages are written
to while a plan is built; every other planning module reads the inputs and calls it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from syncd.model import Account, Action, ActionKind, Decision, DecisionKind, Field, Person, Values
from syncd.naming.text import normalise

GENERALIZED = "%Y%m%d%H%M%SZ"


def alias_end(alias: str, like: datetime) -> datetime:
    """When an old address kept after a transfer (``"addr YYYYmmddHHMMSSZ"``) expires, in the
    zone of ``like`` (the plan's ``now``, whose GENERALIZED text the rules compare it with);
    ``like`` itself for one that does not parse (a hand edit): the rules' string comparison
    may change its answer at any time, so no plan holding it is reused."""
    try:
        return datetime.strptime(alias.split(" ")[-1], GENERALIZED).replace(tzinfo=like.tzinfo)
    except ValueError:
        return like


Attrs = Values


def decision_id(*parts: str | None) -> str:
    """Stable across runs, so an operator's answer finds its question again."""
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()[:10]


def display_name(name: str) -> str:
    """The name as it should appear: NFC, single spaces; ALL-CAPS or all-lower made Title."""
    name = normalise(name)
    return name.title() if name.isupper() or name.islower() else name


def _one(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def person_attrs(p: Person) -> Attrs:
    """The fields HR decides for a person (the uid and mail aside)."""
    name = display_name(p.full_name)
    words = name.split(" ")
    return {
        Field.NAME: (name,),
        Field.SURNAME: (words[0],),
        Field.GIVEN_NAME: _one(" ".join(words[1:])),
        Field.EMPLOYEE_NUMBER: (p.employee_number,),
        Field.ORG: (p.org,),
        Field.OFFICE: _one(p.office),
        Field.TITLE: _one(p.title),
    }


def current_attrs(a: Account) -> Attrs:
    return {
        Field.NAME: _one(a.cn),
        Field.SURNAME: _one(a.sn),
        Field.GIVEN_NAME: _one(a.given_name),
        Field.EMPLOYEE_NUMBER: _one(a.employee_number),
        Field.ORG: _one(a.org),
        Field.OFFICE: _one(a.office),
        Field.TITLE: _one(a.title),
    }


def _same(f: Field, have: tuple[str, ...], want: tuple[str, ...]) -> bool:
    if f is Field.EMPLOYEE_NUMBER:  # the directory compares it without case, so does syncd
        return [v.casefold() for v in have] == [v.casefold() for v in want]
    return have == want


def drift(want: Attrs, acc: Account, skip: Iterable[Field] = ()) -> tuple[Attrs, Attrs]:
    """The fields of ``want`` that differ from ``acc``, and their current values."""
    have = current_attrs(acc)
    changed = {
        k: v for k, v in want.items() if k in have and k not in skip and not _same(k, have[k], v)
    }
    return changed, {k: have.get(k, ()) for k in changed}


@dataclass
class Emitter:
    """The plan being built: actions, decisions, notices, held-back stages, requests."""

    now: datetime
    actions: list[Action] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    # roster requests already fulfilled by the directory's state (nothing to do): done
    requests_done: set[str] = field(default_factory=set)
    # requests done earlier that the roster no longer carries: a new one may come
    requests_withdrawn: set[str] = field(default_factory=set)
    retired_names: dict[str, str] = field(default_factory=dict)  # name → employee number
    quiet_until: datetime | None = None  # see Plan.quiet_until

    def changes_at(self, when: datetime) -> None:
        """A rule that read ``now`` answers otherwise from ``when`` on (``when`` at or before
        ``now``: it changes right away, so no later run may reuse this plan)."""
        if self.quiet_until is None or when < self.quiet_until:
            self.quiet_until = when

    def add(
        self, kind: ActionKind, uid: str, org: str | None, reason: str, article: str, **kw: object
    ) -> None:
        self.actions.append(Action(kind, uid, org, reason, article, **kw))  # type: ignore[arg-type]

    def touched(self) -> set[str]:
        return {a.uid for a in self.actions}

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
