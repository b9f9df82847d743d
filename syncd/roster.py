"""What an HR roster is: its table, the Vietnamese words HR writes, what a file yields.

A connector turns a CSV or XLSX file into a :class:`Table` of Unicode strings;
:mod:`syncd.intake` validates it into a :class:`Snapshot`. This module holds the vocabulary
both share: the headers and words HR uses (status, request), dates, located row errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from syncd.errors import SyncdError
from syncd.model import HrStatus, Person, Request
from syncd.naming.text import fold_words

# field → the headers HR writes (compared without accents, case or spaces)
HEADERS: dict[str, tuple[str, ...]] = {
    "employee_number": ("Mã cán bộ", "Mã CB", "Mã nhân viên", "Số hiệu cán bộ", "employee_number"),
    "full_name": ("Họ và tên", "Họ tên", "full_name"),
    "org": ("Mã đơn vị", "Đơn vị", "Cơ quan", "org"),
    "office": ("Phòng/Ban", "Phòng ban", "Phòng", "office"),
    "title": ("Chức vụ", "title"),
    "birth_date": ("Ngày sinh", "birth_date"),
    "status": ("Trạng thái", "status"),
    "request": ("Đề nghị", "Yêu cầu", "request"),
    # a notified absence (leave, study, illness) that suspends the inactivity rules
    "exempt_reason": ("Lý do nghỉ", "Lý do vắng mặt", "exempt_reason"),
    "exempt_from": ("Nghỉ từ ngày", "exempt_from"),
    "exempt_until": ("Nghỉ đến ngày", "exempt_until"),
}
REQUIRED = ("employee_number", "full_name", "org")
TEXT_FIELDS = ("full_name", "org", "office", "title", "status", "request", "exempt_reason")

STATUS_WORDS = {
    "": HrStatus.ACTIVE,
    "dang cong tac": HrStatus.ACTIVE,
    "dang lam viec": HrStatus.ACTIVE,
    "active": HrStatus.ACTIVE,
    "nghi huu": HrStatus.RETIRED,
    "retired": HrStatus.RETIRED,
    "nghi viec": HrStatus.RESIGNED,
    "thoi viec": HrStatus.RESIGNED,
    "resigned": HrStatus.RESIGNED,
    "chuyen cong tac": HrStatus.TRANSFERRED_OUT,
    "transferred out": HrStatus.TRANSFERRED_OUT,
    "tu tran": HrStatus.DECEASED,
    "da tu tran": HrStatus.DECEASED,
    "deceased": HrStatus.DECEASED,
}
REQUEST_WORDS = {
    "": Request.NONE,
    "cap moi": Request.CREATE,
    "cap lai mat khau": Request.RESET_PASSWORD,
    "thu hoi": Request.REVOKE,
    "khoi phuc": Request.RESTORE,
    "khoi phuc lai": Request.RESTORE,
}
_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y")


class RosterError(SyncdError):
    """The file as a whole cannot be read (no header, missing required column)."""


@dataclass(frozen=True)
class Table:
    """Cells as Unicode strings; ``rows`` carry their row number in the file (header = 1)."""

    source: str
    headers: Sequence[str]
    rows: Sequence[tuple[int, Sequence[str]]]
    decoded_as: str = "utf-8"
    sha256: str = ""
    # (row, column index) → formula, for cells that hold a formula with no saved value (they
    # read as empty): intake says so instead of "empty name"
    formulas: Mapping[tuple[int, int], str] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    source: str
    row: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: row {self.row}, column {self.column!r}, value {self.value!r}: " + (
            self.message
        )


@dataclass(frozen=True)
class Snapshot:
    """What one roster file says, once validated."""

    source: str
    sha256: str
    people: tuple[Person, ...]
    authoritative: frozenset[str]
    errors: tuple[RowError, ...] = ()
    notes: tuple[str, ...] = ()
    rejected: bool = False


def _key(text: str) -> str:
    return fold_words(text).replace(" ", "")


def map_columns(
    headers: Sequence[str], source: str, overrides: Mapping[str, str] | None = None
) -> dict[str, int]:
    """field → column index; raises :class:`RosterError` naming a missing required column."""
    wanted = {f: (overrides[f],) if overrides and f in overrides else h for f, h in HEADERS.items()}
    index = {_key(h): i for i, h in reversed(list(enumerate(headers))) if _key(h)}
    found: dict[str, int] = {}
    for f, names in wanted.items():
        for name in names:
            if _key(name) in index:
                found[f] = index[_key(name)]
                break
    # "Đơn vị" (name) and "Mã đơn vị" (code) may both be present: the code wins.
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        labels = ", ".join(repr(wanted[f][0]) for f in missing)
        raise RosterError(
            f"{source}: row 1: missing required column(s) {labels}; found {list(headers)}"
        )
    return found


def parse_date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text[:10] if fmt == "%Y-%m-%d" else text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)
