"""Each organisation's published address list (Cao Bằng 2011 Đ6, Hưng Yên Đ11.5).

The list an organisation publishes on its portal: its own mailbox first, then its offices',
then its people by office, each with name, title and address. Only addresses that receive
mail are listed: an active mailbox, or a locked one where the regulation keeps delivering to
it (Cao Bằng 2025 Đ8.1, Hưng Yên Đ7.1); a revoked or half-made mailbox never appears.

Pure: the directory's accounts and the catalogue are given; files are written in connectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from syncd.model import Account, Kind, State
from syncd.naming.text import fold_words
from syncd.orgs import Catalogue


@dataclass(frozen=True)
class Entry:
    name: str
    address: str
    office: str  # the office's name; "" for the organisation itself or no office
    title: str
    kind: Kind


@dataclass(frozen=True)
class Book:
    code: str
    name: str
    entries: tuple[Entry, ...]


def _address(acc: Account, domain: str) -> str:
    return acc.mail[0] if acc.mail else f"{acc.uid}@{domain}"


def _sort_key(e: Entry) -> tuple[int, str, str, str]:
    """Organisation mailbox, office mailboxes, then people by office; a Vietnamese list sorts
    people by their given name (the last word), then the whole name."""
    words = fold_words(e.name).split(" ")
    rank = (
        0
        if e.kind is Kind.ORGANISATION and not e.office
        else 1
        if e.kind is Kind.ORGANISATION
        else 2
    )
    return (rank, fold_words(e.office), words[-1] if words else "", fold_words(e.name))


def build(
    catalogue: Catalogue,
    accounts: Iterable[Account],
    domain: str,
    locked_receives: bool,
    only: str | None = None,
) -> list[Book]:
    """The address list of every organisation of the catalogue (or of ``only``)."""
    boxes = {o.mailbox: o for o in catalogue.all()}
    listed = {State.ACTIVE, *((State.LOCKED,) if locked_receives else ())}
    per_org: dict[str, list[Entry]] = {code: [] for code in catalogue.orgs}
    for acc in accounts:
        if acc.state not in listed:
            continue
        box = boxes.get(acc.uid)
        if box is not None:  # an organisation's or an office's own mailbox
            parent = box.parent or box.code
            office = box.name if box.parent else ""
            if parent in per_org:
                per_org[parent].append(
                    Entry(box.name, _address(acc, domain), office, "", Kind.ORGANISATION)
                )
            continue
        if acc.kind is not Kind.PERSON or acc.org not in per_org:
            continue
        office = ""
        if acc.office:
            known = catalogue.offices.get((acc.org, acc.office.lower()))
            office = known.name if known else acc.office
        per_org[acc.org].append(
            Entry(acc.cn or acc.uid, _address(acc, domain), office, acc.title or "", Kind.PERSON)
        )
    return [
        Book(code, catalogue.orgs[code].name, tuple(sorted(entries, key=_sort_key)))
        for code, entries in sorted(per_org.items())
        if only is None or code == only
    ]
