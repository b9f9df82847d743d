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
