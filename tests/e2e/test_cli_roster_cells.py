"""Issue 11 through the CLI: what ``syncd check`` says of a stray quote and of a huge cell.

tgg.csv with one opening ``"`` never closed was ``tệp hợp lệ (33 người)`` (of 36), exit 0; a
2,000,000-character title was accepted and applied. Both are refused now, nothing applied,
and the answer names the row, the column and what is wrong, in a few lines.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl

from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import write_roster

NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Đức Toàn", "Phạm Thu Hà", "Hoàng Văn Phúc"]


def _tgg(count: int) -> list[str]:
    return [
        f"CB-TGG-{i:04d},{NAMES[i % 5]},tgg,,Chuyên viên,11/02/1971,," for i in range(1, count + 1)
    ]


def test_check_refuses_a_roster_with_a_stray_quote_naming_row_line_and_column(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    rows = _tgg(36)
    good = syncd(
        tmp_path / "syncd.yaml", "check", "--offline", str(write_roster(tmp_path / "ok.csv", rows))
    )
    assert good.returncode == 0 and "tệp hợp lệ (36 người)" in good.stdout, good.stdout
    rows[32] = rows[32].replace("Chuyên viên", '"Chuyên viên')  # row 34 of the file
    result = syncd(
        tmp_path / "syncd.yaml", "check", "--offline", str(write_roster(tmp_path / "tgg.csv", rows))
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "tệp hợp lệ" not in result.stdout and "TỆP BỊ TỪ CHỐI" in result.stdout
    assert "row 34 (line 34), column 'Chức vụ'" in result.stdout
    assert "a cell spanning lines" in result.stdout
    assert "CB-TGG-0036" not in result.stdout  # the value is cut, not the rest of the file
    # HR's result says it in Vietnamese, with what to change
    page = tmp_path / "ketqua.html"
    syncd(
        tmp_path / "syncd.yaml", "check", "--offline", str(tmp_path / "tgg.csv"), "--out", str(page)
    )
    text = page.read_text(encoding="utf-8")
    assert "dấu ngoặc kép" in text and "Xóa dấu" in text


def _patch(path: Path, member: str, old: bytes, new: bytes) -> None:
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    assert member in src.namelist()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                assert old in data
                data = data.replace(old, new)
            dst.writestr(info, data)
    path.write_bytes(out.getvalue())


def test_check_refuses_a_two_million_character_title_showing_its_length(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["Mã cán bộ", "Họ và tên", "Mã đơn vị", "Chức vụ"])
    ws.append(["CB-1", "Lê Đức Toàn", "tgg", "TITLE"])
    ws.append(["CB-2", "Phạm Thu Hà", "tgg", "Chuyên viên"])
    book.save(tmp_path / "title.xlsx")
    # openpyxl cuts a cell at Excel's 32,767 characters; the attacker wrote the XML himself
    _patch(
        tmp_path / "title.xlsx",
        "xl/worksheets/sheet1.xml",
        b">TITLE<",
        b">" + b"A" * 2_000_000 + b"<",
    )
    assert (tmp_path / "title.xlsx").stat().st_size < 20_000
    result = syncd(tmp_path / "syncd.yaml", "check", "--offline", str(tmp_path / "title.xlsx"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TỆP BỊ TỪ CHỐI" in result.stdout
    assert "2000000 characters, more than the 128 this column may have" in result.stdout
    [line] = [x for x in result.stdout.splitlines() if "2000000 characters" in x]
    assert "dòng 2" in line or "row 2" in line, line
    assert len(result.stdout) < 5_000  # the value is shown cut


def test_check_refuses_an_invisible_control_character_showing_where_it_is(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: ``CB-TGG-0002`` with a U+001F inside (an Excel export's stray
    separator) or a DEL at its end read as another employee number that looks the same: a
    second mailbox made and the person's own revoked. Refused now, nothing applied."""
    make_config()
    rows = _tgg(5)
    rows[1] = rows[1].replace("CB-TGG-0002", "CB-TGG-\x1f0002")  # row 3 of the file
    rows[2] = rows[2].replace("CB-TGG-0003", "CB-TGG-0003\x7f")
    rows[3] = rows[3].replace("Hoàng Văn Phúc", "Hoàng Văn\x02 Phúc")
    roster = write_roster(tmp_path / "tgg.csv", rows)
    result = syncd(tmp_path / "syncd.yaml", "check", "--offline", str(roster))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TỆP BỊ TỪ CHỐI" in result.stdout
    assert "dòng 3" in result.stdout and "CB-TGG-⟨U+001F⟩0002" in result.stdout
    assert "dòng 4" in result.stdout and "dòng 5" in result.stdout
    assert "U+001F" in result.stdout and "U+007F" in result.stdout and "U+0002" in result.stdout
    assert "an invisible control character" in result.stdout
    page = tmp_path / "ketqua.html"
    syncd(tmp_path / "syncd.yaml", "check", "--offline", str(roster), "--out", str(page))
    assert "ký tự điều khiển" in page.read_text(encoding="utf-8")
