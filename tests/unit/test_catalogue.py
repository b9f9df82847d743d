"""The organisation catalogue: unique codes and mailboxes, parents, no cycles."""

import pytest

from syncd.model import OrgKind
from syncd.orgs import CatalogueError, parse_catalogue


def _cat(*rows: dict[str, str]):  # type: ignore[no-untyped-def]
    return parse_catalogue((f"orgs.yaml: entry {i}", r) for i, r in enumerate(rows, 1))


def test_organisations_are_found_by_code_or_by_name_without_accents() -> None:
    cat = _cat(
        {
            "code": "skhcn",
            "name": "Sở Khoa học và Công nghệ",
            "mailbox": "sokhcn",
            "kind": "department",
        },
        {
            "code": "vp",
            "name": "Văn phòng Sở",
            "mailbox": "vanphong.skhcn",
            "kind": "office",
            "parent": "skhcn",
        },
    )
    assert cat.find("SKHCN").code == "skhcn"  # type: ignore[union-attr]
    assert cat.find("so khoa hoc va cong nghe").mailbox == "sokhcn"  # type: ignore[union-attr]
    assert cat.find_office("skhcn", "VĂN PHÒNG SỞ").kind is OrgKind.OFFICE  # type: ignore[union-attr]
    assert cat.mailboxes == {"sokhcn", "vanphong.skhcn"}


def test_same_office_code_may_appear_under_two_parents() -> None:
    cat = _cat(
        {"code": "a", "name": "A", "mailbox": "soa"},
        {"code": "b", "name": "B", "mailbox": "sob"},
        {"code": "vp", "name": "VP A", "mailbox": "vp.a", "kind": "office", "parent": "a"},
        {"code": "vp", "name": "VP B", "mailbox": "vp.b", "kind": "office", "parent": "b"},
    )
    assert len(cat.offices) == 2


def test_every_catalogue_problem_is_reported() -> None:
    with pytest.raises(CatalogueError) as info:
        _cat(
            {"code": "Sở", "name": "X", "mailbox": "x"},
            {"code": "a", "name": "A", "mailbox": "x", "parent": "b"},
            {"code": "b", "name": "B", "mailbox": "b..c", "parent": "a"},
            {"code": "a", "name": "A2", "mailbox": "a2", "kind": "planet"},
            {"code": "o", "name": "O", "mailbox": "o.a", "kind": "office"},
            {"code": "z", "mailbox": "z", "colour": "red"},
        )
    text = "\n".join(info.value.issues)
    for expected in (
        "entry 1: code: 'Sở' must be lowercase",
        "entry 2: mailbox: 'x' is already",
        "entry 3: mailbox:",
        "is its own ancestor",
        "entry 4: code: 'a' is used twice",
        "entry 4: kind: 'planet'",
        "entry 5: parent: an office needs",
        "entry 6: unknown field(s) ['colour']",
        "entry 6: name: required",
    ):
        assert expected in text, expected
