"""The organisation catalogue: codes, names, mailboxes and the tree they form.

Checked on load: unique codes (offices: unique within their parent), unique mailbox names,
parents that exist, no cycles, codes and mailboxes that are valid mail local parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from syncd.errors import SyncdError
from syncd.model import Org, OrgKind
from syncd.naming.allocate import check_local_part
from syncd.naming.text import fold_words, normalise

_KINDS = {
    "department": OrgKind.DEPARTMENT,
    "so": OrgKind.DEPARTMENT,
    "commune": OrgKind.COMMUNE,
    "ward": OrgKind.COMMUNE,
    "commune/ward": OrgKind.COMMUNE,
    "xa": OrgKind.COMMUNE,
    "phuong": OrgKind.COMMUNE,
    "office": OrgKind.OFFICE,
    "phong": OrgKind.OFFICE,
    "other": OrgKind.OTHER,
    "": OrgKind.OTHER,
}
_FIELDS = {"code", "name", "mailbox", "parent", "kind"}


class CatalogueError(SyncdError):
    def __init__(self, issues: list[str]) -> None:
        super().__init__("\n".join(issues))
        self.issues = issues


def _key(text: str) -> str:
    return fold_words(text).replace(" ", "")


@dataclass(frozen=True)
class Catalogue:
    """Organisations by code; offices by (parent code, office code)."""

    orgs: Mapping[str, Org]
    offices: Mapping[tuple[str, str], Org]

    def find(self, value: str) -> Org | None:
        """An organisation by its code or by its Vietnamese name (accents and case ignored)."""
        value = normalise(value)
        if value.lower() in self.orgs:
            return self.orgs[value.lower()]
        key = _key(value)
        matches = [o for o in self.orgs.values() if _key(o.name) == key]
        return matches[0] if len(matches) == 1 else None

    def find_office(self, org: str, value: str) -> Org | None:
        value = normalise(value)
        if (org, value.lower()) in self.offices:
            return self.offices[(org, value.lower())]
        key = _key(value)
        matches = [o for (p, _), o in self.offices.items() if p == org and _key(o.name) == key]
        return matches[0] if len(matches) == 1 else None

    def all(self) -> list[Org]:
        return [*self.orgs.values(), *self.offices.values()]

    @property
    def mailboxes(self) -> frozenset[str]:
        return frozenset(o.mailbox for o in self.all())

    def subtree(self, codes: Iterable[str]) -> list[Org]:
        """The organisations ``codes`` and their offices."""
        wanted = set(codes)
        return [o for o in self.all() if o.code in wanted and o.kind is not OrgKind.OFFICE] + [
            o for (p, _), o in self.offices.items() if p in wanted
        ]


def parse_catalogue(entries: Iterable[tuple[str, Mapping[str, Any]]]) -> Catalogue:
    """Build a catalogue from ``(location, row)`` pairs; every problem is reported at once."""
    issues: list[str] = []
    rows: list[tuple[str, Org]] = []
    for where, row in entries:
        unknown = set(row) - _FIELDS
        if unknown:
            issues.append(f"{where}: unknown field(s) {sorted(unknown)}")
        values = {k: normalise(str(row.get(k) or "")) for k in _FIELDS}
        for k in ("code", "name", "mailbox"):
            if not values[k]:
                issues.append(f"{where}: {k}: required")
        code, mailbox = values["code"], values["mailbox"]
        if code and not re.fullmatch(r"[a-z0-9]+", code):
            issues.append(f"{where}: code: {code!r} must be lowercase ASCII [a-z0-9]")
        if mailbox and (problem := check_local_part(mailbox)):
            issues.append(f"{where}: mailbox: {problem}")
        kind = _KINDS.get(fold_words(values["kind"]).replace(" ", ""))
        if kind is None:
            kind = _KINDS.get(values["kind"].lower())
        if kind is None:
            issues.append(
                f"{where}: kind: {values['kind']!r} is not department, commune, office or other"
            )
            kind = OrgKind.OTHER
        parent = values["parent"].lower() or None
        if kind is OrgKind.OFFICE and not parent:
            issues.append(f"{where}: parent: an office needs the organisation it belongs to")
        rows.append((where, Org(code, values["name"], mailbox, kind, parent)))

    orgs: dict[str, Org] = {}
    offices: dict[tuple[str, str], Org] = {}
    seen_mailbox: dict[str, str] = {}
    for where, org in rows:
        if org.kind is OrgKind.OFFICE:
            key = (org.parent or "", org.code)
            if key in offices:
                issues.append(f"{where}: code: office {org.code!r} repeated in {org.parent!r}")
            offices[key] = org
        else:
            if org.code in orgs:
                issues.append(f"{where}: code: {org.code!r} is used twice")
            orgs[org.code] = org
        if org.mailbox in seen_mailbox:
            issues.append(
                f"{where}: mailbox: {org.mailbox!r} is already used by {seen_mailbox[org.mailbox]}"
            )
        seen_mailbox.setdefault(org.mailbox, where)

    for where, org in rows:
        if org.parent and org.parent not in orgs:
            issues.append(f"{where}: parent: {org.parent!r} is not in the catalogue")
    for where, org in rows:
        seen = {org.code}
        parent = org.parent if org.kind is not OrgKind.OFFICE else None
        while parent and parent in orgs:
            if parent in seen:
                issues.append(f"{where}: parent: {org.code!r} is its own ancestor (a cycle)")
                break
            seen.add(parent)
            parent = orgs[parent].parent
    if issues:
        raise CatalogueError(issues)
    return Catalogue(orgs, offices)
