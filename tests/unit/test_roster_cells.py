"""Issue 11, items 1 and 3: a cell that spans lines, and a cell of any length.

One stray ``"`` in tgg.csv joined the three rows after it into one title: ``syncd check`` said
33 people of 36, the plan revoked the three, and phucnv.tgg's title held their birth dates and
employee numbers. A 2,000,000-character title went into the directory and the audit log.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from connectors.roster import read_table
from syncd.intake import MAX_FIELD, MAX_LENGTH, MAX_SHOWN, read_roster
from syncd.naming.parse import MAX_NAME
from syncd.orgs import parse_catalogue
from syncd.roster import RosterError, Table

CAT = parse_catalogue([("e1", {"code": "tgg", "name": "Sở Tài chính", "mailbox": "tgg"})])
HEADER = "Mã cán bộ,Họ và tên,Mã đơn vị,Chức vụ,Ngày sinh\n"


def _people(count: int) -> list[str]:
    return [
        f"CB-TGG-{i:04d},Nguyễn Văn {'ABCDEFGHIK'[i % 10]}ăn,tgg,Chuyên viên,11/02/1971\n"
        for i in range(1, count + 1)
    ]


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


# --- item 1: a CSV cell spanning lines ---------------------------------------------------------


def test_a_stray_quote_in_a_csv_refuses_the_file_naming_row_line_column_and_value(
    tmp_path: Path,
) -> None:
    lines = _people(36)
    lines[32] = lines[32].replace("Chuyên viên", '"Chuyên viên')  # row 34: never closed
    with pytest.raises(RosterError) as err:
        read_table(_csv(tmp_path / "tgg.csv", lines))
    assert str(err.value).startswith(
        "tgg.csv: row 34 (line 34), column 'Chức vụ', "
        "value 'Chuyên viên,11/02/1971\\nCB-TGG-0034,Nguy…'"
        ': a cell spanning lines: a quote (") never closed joins the lines after it'
    ), err.value


def test_the_physical_line_of_a_spanning_cell_counts_the_lines_before_it(tmp_path: Path) -> None:
    """Row and line differ after a blank line; the row is the table's, the line the file's."""
    lines = _people(3)
    lines[2] = lines[2].replace("Chuyên viên", '"Chuyên\r\nviên"')  # a closed quote, CRLF inside
    with pytest.raises(RosterError) as err:
        read_table(_csv(tmp_path / "tgg.csv", [lines[0], "\n", lines[1], lines[2]]))
    assert str(err.value).startswith(
        "tgg.csv: row 5 (line 5), column 'Chức vụ', value 'Chuyên\\r\\nviên': a cell spanning"
    ), err.value


def test_a_quote_left_open_on_the_last_line_without_a_newline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tgg.csv"
    path.write_text(HEADER + "".join(_people(2)) + 'CB-TGG-0003,Lê Đức Toàn,tgg,"Chuyên viên')
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        'tgg.csv: row 4 (line 4): a quote (") opened on this row is never closed before the end '
        "of the file: remove or close the quote"
    )


def test_quotes_that_close_on_their_line_are_still_read(tmp_path: Path) -> None:
    path = _csv(tmp_path / "tgg.csv", ['CB-1,"Lê Văn, An",tgg,"Phó ""Giám đốc""",\n'])
    assert [r for _, r in read_table(path).rows] == [
        ["CB-1", "Lê Văn, An", "tgg", 'Phó "Giám đốc"', ""]
    ]


# --- item 1: an XLSX cell spanning lines: an error, but a title or a reason is folded ---------


def _xlsx_table(tmp_path: Path, row: list[str]) -> Table:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["Mã cán bộ", "Họ và tên", "Mã đơn vị", "Chức vụ", "Lý do nghỉ", "Nghỉ đến ngày"])
    ws.append(row)
    book.save(tmp_path / "tgg.xlsx")
    return read_table(tmp_path / "tgg.xlsx")


def test_an_xlsx_name_typed_on_two_lines_is_a_row_error(tmp_path: Path) -> None:
    table = _xlsx_table(tmp_path, ["CB-1", "Lê Đức\nToàn", "tgg", "", "", ""])
    snap = read_roster(table, CAT)
    assert snap.rejected and not snap.people
    [error] = snap.errors
    assert str(error) == (
        "tgg.xlsx: row 2, column 'Họ và tên', value 'Lê Đức\\nToàn': a line break in the cell; "
        "this column holds one line (type it on one line, without Alt+Enter)"
    )


def test_an_xlsx_title_or_reason_on_two_lines_is_folded_to_one(tmp_path: Path) -> None:
    row = ["CB-1", "Lê Đức Toàn", "tgg", "Phó Giám đốc\r\nphụ trách", "Nghỉ\nốm", "01/01/2030"]
    snap = read_roster(_xlsx_table(tmp_path, row), CAT)
    assert not snap.errors
    [person] = snap.people
    assert person.title == "Phó Giám đốc phụ trách"
    assert person.exemption is not None and person.exemption.reason == "Nghỉ ốm"


# --- item 3: lengths --------------------------------------------------------------------------

TABLE_HEADERS = ["Mã cán bộ", "Họ và tên", "Mã đơn vị", "Chức vụ", "Phòng/Ban", "Lý do nghỉ"]


def _row(**cells: str) -> Table:
    base = {
        "emp": "CB-1",
        "name": "Lê Đức Toàn",
        "org": "tgg",
        "title": "",
        "office": "",
        "why": "",
    }
    base.update(cells)
    return Table("tgg.xlsx", TABLE_HEADERS, [(2, list(base.values()))], "xlsx")


@pytest.mark.parametrize(
    ("field", "column", "limit"),
    [
        ("title", "Chức vụ", MAX_LENGTH["title"]),
        ("emp", "Mã cán bộ", MAX_LENGTH["employee_number"]),
        ("office", "Phòng/Ban", MAX_FIELD),
        ("why", "Lý do nghỉ", MAX_FIELD),
        ("org", "Mã đơn vị", MAX_FIELD),
    ],
)
def test_a_cell_longer_than_its_field_may_be_is_a_row_error_showing_the_value_cut(
    field: str, column: str, limit: int
) -> None:
    snap = read_roster(_row(**{field: "Chuyên viên " * 200_000}), CAT)  # 2,400,000 characters
    assert snap.rejected and not snap.people
    [error] = snap.errors
    assert (error.row, error.column) == (2, column)
    assert error.message == (
        f"2399999 characters, more than the {limit} this column may have"  # normalised: trimmed
    )
    assert len(error.value) == MAX_SHOWN and error.value.endswith("…")
    assert len(str(error)) < 250


def test_values_at_the_limit_are_accepted() -> None:
    title = "x" * MAX_LENGTH["title"]
    snap = read_roster(_row(title=title, office="", why=""), CAT)
    assert not snap.errors and snap.people[0].title == title


def test_a_name_longer_than_the_naming_rules_allow_is_one_error_with_its_length() -> None:
    snap = read_roster(_row(name="Lê " * 1_000_000), CAT)
    [error] = snap.errors
    assert error.column == "Họ và tên"
    assert error.message == f"2999999 characters, more than the {MAX_NAME} this column may have"
    assert len(error.value) == MAX_SHOWN


@pytest.mark.parametrize(
    ("field", "column", "value"),
    [
        ("title", "Chức vụ", "Chuyên\u202eviên"),  # RIGHT-TO-LEFT OVERRIDE
        ("office", "Phòng/Ban", "Văn\u2067 phòng"),  # RIGHT-TO-LEFT ISOLATE
        ("name", "Họ và tên", "Hoàng\u202eVăn Tú"),
        ("why", "Lý do nghỉ", "Nghỉ\u200f ốm"),  # RIGHT-TO-LEFT MARK
    ],
)
def test_a_direction_control_in_any_cell_is_a_row_error_showing_where_it_is(
    field: str, column: str, value: str
) -> None:
    """Found by an attack: "Chuyên‮viên" was accepted as a title and published, reversed, in
    the organisation's address list (HTML, CSV, vCard, XLSX); a name with one was shown
    reversed on HR's page. Refused like any control character, the value written out."""
    snap = read_roster(_row(**{field: value}), CAT)
    assert snap.rejected and not snap.people
    [error] = snap.errors
    assert (error.row, error.column) == (2, column)
    assert "an invisible control character (U+" in error.message
    code = next(f"U+{ord(c):04X}" for c in value if not (c.isalnum() or c == " "))
    assert code in error.message and f"⟨{code}⟩" in error.value
    assert all(c.isalnum() or c in " ⟨⟩+" for c in error.value), error.value


@pytest.mark.parametrize(
    "odd", ["\u2061", "\U000e0020", "\u180e", "\u034f", "\u3164", "\u206a", "\ufff9", "С"]
)
def test_an_employee_number_with_an_invisible_or_look_alike_character_is_refused(odd: str) -> None:
    """Found by an attack: ``CB-SNV-0001`` with U+2061 at its end (or a tag character, a
    Hangul filler, a Cyrillic С for C, …) was another person: a second mailbox made and the
    real one revoked. An employee number is printable ASCII; the character is named."""
    value = f"CB-SNV-0001{odd}" if odd != "С" else "СB-SNV-0001"
    snap = read_roster(_row(emp=value), CAT)
    assert snap.rejected and not snap.people
    [error] = snap.errors
    assert error.column == "Mã cán bộ"
    assert f"U+{ord(odd):04X}" in error.message and "retype it" in error.message


def test_plain_employee_numbers_with_signs_and_spaces_are_accepted() -> None:
    for value in ("CB-SNV-0001", "tgg/2024.15_a", "NV 0012"):
        snap = read_roster(_row(emp=value), CAT)
        assert not snap.errors, (value, snap.errors)
