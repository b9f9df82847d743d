"""Every decode or parse failure of a roster file is a one-line RosterError naming the file.

Issue "A safe inbox", item 3: a UTF-8 BOM followed by invalid UTF-8, odd-length UTF-16 or a
lone surrogate escaped the reader as ``UnicodeDecodeError`` (a traceback and exit 1).
"""

from __future__ import annotations

import codecs
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from connectors.roster import read_table
from syncd.roster import RosterError

TEXT = "Mã cán bộ,Họ và tên,Mã đơn vị\r\nE1,Nguyễn Văn Đạt,skhcn\r\n"
HEAD = TEXT.encode()  # 75 bytes (56 characters), two lines


def _xlsx() -> bytes:
    wb = Workbook()
    wb.active.append(TEXT.splitlines()[0].split(","))
    wb.active.append(["E1", "Lê Văn Tám", "skhcn"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _with_sheet(data: bytes) -> bytes:
    """The good workbook with its first sheet's XML replaced by ``data``."""
    good = zipfile.ZipFile(io.BytesIO(_xlsx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in good.infolist():
            z.writestr(info, data if info.filename.endswith("sheet1.xml") else good.read(info))
    return out.getvalue()


LE, BE = codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE
CASES = [
    # (file name, bytes, what the message must say)
    (
        "bom-then-bad-utf8.csv",
        codecs.BOM_UTF8 + HEAD + b"E2,\xff\xfe,skhcn\r\n",
        "byte 81 (line 3)",
    ),
    ("bom-then-cut-utf8.csv", codecs.BOM_UTF8 + HEAD + "E2,Lê".encode()[:-1], "byte 82 (line 3)"),
    ("odd-utf16.csv", LE + TEXT.encode("utf-16-le") + b"A", "byte 114 (line 3)"),
    ("odd-utf16-be.csv", BE + TEXT.encode("utf-16-be") + b"\x00", "byte 114 (line 3)"),
    (
        "lone-surrogate-le.csv",
        LE + TEXT.encode("utf-16-le") + b"\x00\xd8A\x00",
        "byte 114 (line 3)",
    ),
    (
        "lone-surrogate-be.csv",
        BE + TEXT.encode("utf-16-be") + b"\xdc\x00\x00A",
        "byte 114 (line 3)",
    ),
    ("utf8-surrogate.csv", HEAD + b"E2,L\xed\xa0\x80,skhcn\r\n", "byte 79 (line 3)"),
    ("utf8-one-bad-byte.csv", HEAD + b"E2,L\xea V\xc4\x83n,skhcn\r\n", "byte 79 (line 3)"),
    ("utf32.csv", codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), "UTF-32"),
    ("nul.csv", HEAD + b"E2,L\x00,skhcn\r\n", "byte 79 (line 3): NUL"),
    ("nul-utf16.csv", LE + (TEXT + "E2,L\x00").encode("utf-16-le"), "byte 122 (line 3): NUL"),
    ("nul-8bit.csv", b"M\xe3,H\xf4\r\nE1,L\x00\r\n", "byte 11 (line 2): NUL"),
    ("utf16-without-bom.csv", TEXT.encode("utf-16-le"), "NUL"),
    ("truncated.xlsx", _xlsx()[:700], "not a readable XLSX"),
    ("not-xml-sheet.xlsx", _with_sheet(b"this is not XML \x00\xff"), "not a readable XLSX"),
    ("cut-xml-sheet.xlsx", _with_sheet(b"<worksheet><sheetData><row><c>"), "not a readable XLSX"),
    ("zip-not-xlsx.xlsx", b"PK\x05\x06" + bytes(18), "not a readable XLSX"),
    ("big-field.csv", HEAD + b'E2,"' + b"A" * 200_000 + b'",skhcn\r\n', "line 3"),
]


@pytest.mark.parametrize(("name", "data", "where"), CASES, ids=[c[0] for c in CASES])
def test_a_broken_file_is_a_one_line_roster_error_naming_the_file(
    tmp_path: Path, name: str, data: bytes, where: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(RosterError) as info:
        read_table(path)
    message = str(info.value)
    assert message.startswith(f"{name}: "), message
    assert where in message, message
    assert "\n" not in message and "\r" not in message and "\x00" not in message
    assert len(message) < 300


def test_a_cp1258_file_is_still_read_as_8_bit_text(tmp_path: Path) -> None:
    # Legacy 8-bit text almost never forms valid UTF-8 sequences; it must not be mistaken for
    # damaged UTF-8 by the rule that rejects those.
    path = tmp_path / "hr.csv"
    path.write_bytes("Mã,Họ tên\r\nE1,Lê Thu Hà\r\nE2,Hồ Thị Ánh\r\n".encode("cp1258", "replace"))
    assert read_table(path).decoded_as == "windows-1258"


@settings(max_examples=200)
@given(
    prefix=st.sampled_from([b"", codecs.BOM_UTF8, LE, BE, b"PK\x03\x04"]),
    body=st.binary(max_size=400),
)
def test_any_bytes_give_a_table_or_a_roster_error(prefix: bytes, body: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.csv"
        path.write_bytes(prefix + body)
        try:
            read_table(path)
        except RosterError as exc:
            assert str(exc).startswith("fuzz.csv: ") and "\n" not in str(exc)


# --- 8-bit files whose lines are in different encodings (rows pasted from another file) -------

_HEADER = "Mã cán bộ,Họ và tên,Mã đơn vị\r\n"
_A = ["Nguyễn Văn Đạt", "Trần Thị Thuỷ"]
_B = ["Phạm Đức Cường", "Bùi Thị Hương", "Hoàng Văn Phúc"]


def _rows(names: list[str], first: int = 1) -> str:
    return "".join(f"E{i},{n},skhcn\r\n" for i, n in enumerate(names, start=first))


def _cp1258(text: str) -> bytes:
    from tests.unit.test_roster import cp1258

    return cp1258(text)


def test_an_8_bit_file_with_rows_in_two_encodings_reads_each_row_right(tmp_path: Path) -> None:
    from syncd.intake import read_roster
    from syncd.naming.legacy import unicode_to_tcvn3, unicode_to_vni
    from tests.unit.test_roster import CAT

    cases = {
        "tcvn3+cp1258.csv": unicode_to_tcvn3(_HEADER + _rows(_B)).encode("latin-1")
        + _cp1258(_rows(_A, 4)),
        "tcvn3+vni.csv": unicode_to_tcvn3(_HEADER + _rows(_A)).encode("latin-1")
        + unicode_to_vni(_rows(_B, 3)).encode("cp1252"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        table = read_table(tmp_path / name)
        assert "+" in table.decoded_as, name
        snap = read_roster(table, CAT)
        assert sorted(p.full_name for p in snap.people) == sorted(_A + _B), name
        assert any("lines in different encodings" in n for n in snap.notes)


def test_a_mixed_8_bit_file_with_a_line_valid_in_two_encodings_is_refused(tmp_path: Path) -> None:
    # "Lê Văn Tám" in Windows-1258 bytes reads as "Lờ Vón Tỏm" in TCVN3: in a file that mixes
    # encodings nothing tells which was meant, so the file is refused, naming the line.
    from syncd.naming.legacy import unicode_to_tcvn3

    data = unicode_to_tcvn3(_HEADER + _rows(_B)).encode("latin-1") + _cp1258(
        _rows([*_A, "Lê Văn Tám"], 4)
    )
    (tmp_path / "mixed.csv").write_bytes(data)
    with pytest.raises(RosterError, match=r"^mixed\.csv: line 7: the file mixes encodings") as e:
        read_table(tmp_path / "mixed.csv")
    assert "'E6,Lê Văn Tám,skhcn'" in str(e.value) and "\n" not in str(e.value)


def test_a_pure_tcvn3_file_keeps_its_file_wide_reading_for_ambiguous_lines(tmp_path: Path) -> None:
    # "Vũ Thu Mai" in TCVN3 is "Vò Thu Mai", Vietnamese in Windows-1258 too; the file as a whole
    # is TCVN3 and nothing contradicts it, so the line is read as TCVN3, as before.
    from syncd.naming.legacy import unicode_to_tcvn3

    names = [*_B, "Vũ Thu Mai", "Y Bih Niê Kdăm"]
    (tmp_path / "hr.csv").write_bytes(unicode_to_tcvn3(_HEADER + _rows(names)).encode("latin-1"))
    table = read_table(tmp_path / "hr.csv")
    assert table.decoded_as == "tcvn3"
    assert [r[1] for _, r in table.rows] == names
