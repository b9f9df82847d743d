"""Roster tables: Vietnamese headers, legacy encodings, row validation."""

from pathlib import Path

import pytest
from openpyxl import Workbook

from connectors.roster import read_table
from syncd.intake import read_roster
from syncd.model import HrStatus, Request
from syncd.naming.legacy import unicode_to_tcvn3, unicode_to_vni
from syncd.orgs import parse_catalogue
from syncd.roster import RosterError, Table

CAT = parse_catalogue(
    [
        ("e1", {"code": "skhcn", "name": "Sở Khoa học và Công nghệ", "mailbox": "sokhcn"}),
        (
            "e2",
            {
                "code": "vp",
                "name": "Văn phòng Sở",
                "mailbox": "vp.skhcn",
                "kind": "office",
                "parent": "skhcn",
            },
        ),
    ]
)
HEADERS = ["Mã cán bộ", "Họ và tên", "Đơn vị", "Phòng/Ban", "Ngày sinh", "Trạng thái", "Đề nghị"]
PEOPLE = [
    ["E1", "Nguyễn Văn Đạt", "skhcn", "Văn phòng Sở", "01/02/1980", "Đang công tác", ""],
    ["E2", "Trần Thị Thuỷ", "Sở Khoa học và Công nghệ", "", "1979-12-31", "Nghỉ hưu", ""],
    ["E3", "Lê Hoàng Yến", "skhcn", "", "", "", "Cấp lại mật khẩu"],
]


def _table(headers: list[str], rows: list[list[str]], decoded_as: str = "utf-8") -> Table:
    return Table("hr.csv", headers, list(enumerate(rows, start=2)), decoded_as)


def test_headers_match_without_case_accents_or_spacing() -> None:
    headers = [
        "MÃ CÁN BỘ",
        "ho va ten",
        "Don Vi",
        "phòng / ban",
        "NGÀY SINH",
        "trang thai",
        "đề nghị",
    ]
    snap = read_roster(_table(headers, PEOPLE), CAT)
    assert [p.employee_number for p in snap.people] == ["E1", "E2", "E3"]
    e1, e2, e3 = snap.people
    assert e1.office == "vp" and e1.birth_date.year == 1980  # type: ignore[union-attr]
    assert e2.org == "skhcn" and e2.status is HrStatus.RETIRED
    assert e3.request is Request.RESET_PASSWORD
    assert snap.authoritative == {"skhcn"}


def test_column_mapping_in_config_overrides_the_defaults() -> None:
    snap = read_roster(
        _table(["So hieu", "Ten day du", "Co quan"], [["X1", "Lê Văn Tám", "skhcn"]]),
        CAT,
        overrides={"employee_number": "Số hiệu", "full_name": "Tên đầy đủ"},
    )
    assert snap.people[0].full_name == "Lê Văn Tám"


@pytest.mark.parametrize(("encode", "name"), [(unicode_to_tcvn3, "TCVN3"), (unicode_to_vni, "VNI")])
def test_a_column_typed_in_a_legacy_font_is_converted_and_reported(encode, name) -> None:  # type: ignore[no-untyped-def]
    rows = [[r[0], encode(r[1]), *r[2:]] for r in PEOPLE]
    snap = read_roster(_table(HEADERS, rows), CAT)
    assert [p.full_name for p in snap.people] == [r[1] for r in PEOPLE]
    assert any(f"typed in {name}" in n for n in snap.notes)


def test_every_row_error_is_reported_and_the_file_rejected() -> None:
    rows = [*PEOPLE, ["E1", "", "nowhere", "", "32/13/2000", "đi chơi", "xin việc"]]
    snap = read_roster(_table(HEADERS, rows), CAT)
    assert snap.rejected and snap.people == () and snap.authoritative == frozenset()
    text = "\n".join(map(str, snap.errors))
    for column, message in [
        ("Mã cán bộ", "duplicate employee number (also on row 2)"),
        ("Họ và tên", "empty name"),
        ("Đơn vị", "unknown organisation"),
        ("Ngày sinh", "unparseable date"),
        ("Trạng thái", "unknown status"),
        ("Đề nghị", "unknown request"),
    ]:
        assert f"hr.csv: row 5, column {column!r}" in text and message in text


def test_missing_required_column_names_it() -> None:
    with pytest.raises(RosterError, match="'Họ và tên'"):
        read_roster(_table(["Mã cán bộ", "Đơn vị"], [["E1", "skhcn"]]), CAT)


def test_blank_lines_are_skipped() -> None:
    snap = read_roster(_table(HEADERS, [PEOPLE[0], [""] * 7, PEOPLE[1]]), CAT)
    assert len(snap.people) == 2 and not snap.errors


def cp1258(text: str) -> bytes:
    """Encode as Windows-1258 does: precomposed base vowel + a combining tone mark."""
    import unicodedata

    out = b""
    for ch in text:
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            d = unicodedata.normalize("NFD", ch)
            tones = "".join(c for c in d if c in "\u0300\u0301\u0303\u0309\u0323")
            base = unicodedata.normalize("NFC", "".join(c for c in d if c not in tones))
            out += (base + tones).encode("cp1258")
    return out


CSV = "Mã cán bộ,Họ và tên,Mã đơn vị\r\nE1,Nguyễn Văn Đạt,skhcn\r\nE2,Trần Thị Thuỷ,skhcn\r\n"


@pytest.mark.parametrize(
    ("label", "data", "decoded_as"),
    [
        ("utf-8", CSV.encode(), "utf-8"),
        ("utf-8 BOM", b"\xef\xbb\xbf" + CSV.encode(), "utf-8-sig"),
        ("utf-16 unicode text", CSV.replace(",", "\t").encode("utf-16"), "utf-16"),
        ("windows-1258", cp1258(CSV), "windows-1258"),
        ("tcvn3", unicode_to_tcvn3(CSV).encode("latin-1"), "tcvn3"),
        ("vni", unicode_to_vni(CSV).encode("cp1252"), "vni"),
        ("semicolons", CSV.replace(",", ";").encode(), "utf-8"),
    ],
)
def test_csv_files_in_every_encoding_hr_uses_read_the_same(
    tmp_path: Path, label: str, data: bytes, decoded_as: str
) -> None:
    path = tmp_path / "hr.csv"
    path.write_bytes(data)
    table = read_table(path)
    assert table.decoded_as == decoded_as, label
    snap = read_roster(table, CAT)
    assert [p.full_name for p in snap.people] == ["Nguyễn Văn Đạt", "Trần Thị Thuỷ"], label


def test_xlsx_first_sheet_or_named_sheet_with_dates_and_numbers(tmp_path: Path) -> None:
    from datetime import datetime

    wb = Workbook()
    wb.active.append(["ignored"])
    ws = wb.create_sheet("Danh sách")
    ws.append(["Mã cán bộ", "Họ và tên", "Mã đơn vị", "Ngày sinh"])
    ws.append([1001, "Nguyễn Văn Đạt", "skhcn", datetime(1980, 2, 1)])
    path = tmp_path / "hr.xlsx"
    wb.save(path)
    with pytest.raises(RosterError, match=r"no header row|missing required"):
        read_roster(read_table(path), CAT)
    snap = read_roster(read_table(path, sheet="Danh sách"), CAT)
    assert snap.people[0].employee_number == "1001"
    assert str(snap.people[0].birth_date) == "1980-02-01"
    with pytest.raises(RosterError, match="no sheet named 'Nope'"):
        read_table(path, sheet="Nope")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("junk.xlsx", b"PK\x03\x04 not really a zip", "not a readable XLSX"),
        ("binary.csv", b"\x00\x01\x02\xff\xfe\x00", r"binary data|no header"),
        ("empty.csv", b"", "no header row"),
        ("old.xls", b"\xd0\xcf\x11\xe0", ".xls is not supported"),
    ],
)
def test_unreadable_files_are_rejected_with_the_file_name(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(RosterError, match=message) as info:
        read_roster(read_table(path), CAT)
    assert name in str(info.value)


def test_tcvn3_u_horn_survives_although_it_is_a_soft_hyphen_in_latin_1() -> None:
    names = ["Trương Văn Hưng", "Dương Thị Thương", "Lương Đức Cường"]
    encoded = [unicode_to_tcvn3(n) for n in names]
    assert all("\u00ad" in e for e in encoded)  # TCVN3's ư is byte 0xAD
    rows = [[f"E{i}", e, "skhcn"] for i, e in enumerate(encoded)]
    snap = read_roster(_table(["Mã cán bộ", "Họ và tên", "Đơn vị"], rows), CAT)
    assert [p.full_name for p in snap.people] == names


def test_a_leaver_with_a_request_that_keeps_the_mailbox_is_a_row_error() -> None:
    """Found by an attack: 'Nghỉ việc' + 'Khôi phục' in one row passed silently as a revoke."""
    table = Table(
        "hr.csv",
        ["Mã cán bộ", "Họ và tên", "Mã đơn vị", "Trạng thái", "Đề nghị"],
        [(2, ["E1", "Đàm Văn Hùng", "skhcn", "Nghỉ việc", "Khôi phục"])],
    )
    snap = read_roster(table, CAT)
    assert snap.rejected
    assert "contradicts the status 'Nghỉ việc'" in str(snap.errors[0])
