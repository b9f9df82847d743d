"""Issue "A safe inbox", item 2: a roster file may not take unbounded memory or time.

A 5 KB XLSX whose one cell sits at XFD1048576 grew to 7.8 GB in 60 s: openpyxl padded each of
the million missing rows to the sheet's declared 16,384 columns. Hostile files are read here in
a child process under a 1 GiB address-space limit and a timeout, so a regression fails the test
instead of the machine.

Issue 11, item 2: a 5 MB XLSX of one person and a million rows each holding one empty cell at
column XFD took about a quarter of an hour to read (inside the run lock): empty cells are
trimmed, so no bound fired. Every row now counts, and the reading stops after
MAX_EMPTY_TAIL consecutive empty rows.
"""

from __future__ import annotations

import io
import re
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from connectors.roster import files, read_table
from syncd.roster import RosterError

HEADER = ["Mã cán bộ", "Họ và tên", "Đơn vị"]
ROW = ["E1", "Lê Văn A", "skhcn"]
GIB = 1024**3
TIMEOUT = 60  # seconds; the bounded reader takes about one

# The child reads one file and prints its verdict, the time it took and its peak memory.
CHILD = """
import sys, time
from pathlib import Path
# Linux keeps ru_maxrss across fork and exec: the child would report the test process's own
# size (hundreds of MiB late in a run). Reset the peak (clear_refs 5) and read VmHWM instead.
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
from connectors.roster import read_table
from syncd.roster import RosterError
start = time.monotonic()
try:
    table = read_table(Path(sys.argv[1]))
    verdict = f"read {len(table.rows)} rows"
    code = 0
except RosterError as exc:
    verdict, code = str(exc), 2
status = Path("/proc/self/status").read_text()
peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) // 1024
print(verdict)
print(f"{time.monotonic() - start:.2f} s, {peak} MiB")
sys.exit(code)
"""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (GIB, GIB))


def _read_capped(path: Path) -> tuple[int, str, float, int]:
    """(exit code, verdict line, seconds, peak MiB) of reading ``path`` in a capped child."""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_cap_memory,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert "Traceback" not in result.stderr, result.stderr
    verdict, figures = result.stdout.splitlines()
    peak = int(re.fullmatch(r"[\d.]+ s, (\d+) MiB", figures)[1])  # type: ignore[index]
    print(path.name, "→", verdict, f"({figures}, {elapsed:.2f} s in all)")
    return result.returncode, verdict, elapsed, peak


def _xlsx(path: Path, cells: dict[str, str], rows: list[list[str]] | None = None) -> Path:
    wb = Workbook()
    ws = wb.active
    for row in rows or []:
        ws.append(row)
    for ref, value in cells.items():
        ws[ref] = value
    wb.save(path)
    return path


def _rewrite_sheet(path: Path, edit: dict[bytes, bytes]) -> None:
    """Patch the first sheet's XML in place (what a forged workbook says about itself)."""
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                for pattern, new in edit.items():
                    data, n = re.subn(pattern, new, data)
                    assert n, pattern
            dst.writestr(info, data)
    path.write_bytes(out.getvalue())


# --- the bomb ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [False, True], ids=["lone-cell", "roster-and-cell"])
def test_the_xfd1048576_bomb_is_one_clear_error_in_little_memory_and_time(
    tmp_path: Path, header: bool
) -> None:
    path = _xlsx(tmp_path / "bomb.xlsx", {"XFD1048576": "x"}, [HEADER, ROW] if header else None)
    assert path.stat().st_size < 10_000
    code, verdict, elapsed, peak = _read_capped(path)
    assert code == 2, verdict
    first = 3 if header else 1  # the first empty row: the reading stops long before the cell
    assert verdict == (
        f"bomb.xlsx: row {first + 10_000}: more than the 10000 empty rows a roster may have "
        f"after the data (from row {first}); delete them"
    )
    assert elapsed < 20 and peak < 300, (elapsed, peak)  # was: MemoryError at 1 GiB after 8 s


def test_a_cell_far_right_is_still_refused_by_its_column(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "far.xlsx", {"XFD3": "x"}, [HEADER, ROW])
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        "far.xlsx: row 3: a cell in column 16384 (XFD), more than the 100 columns a roster may have"
    )


def _empty_cells_at_xfd(path: Path, rows: int) -> Path:
    """The attacker's workbook: a roster, then ``rows`` rows of one empty cell at XFD."""
    _xlsx(path, {}, [HEADER, ROW])
    empty = b"".join(b'<row r="%d"><c r="XFD%d"/></row>' % (n, n) for n in range(3, rows + 3))
    _rewrite_sheet(path, {rb"</sheetData>": empty + b"</sheetData>"})
    return path


def test_a_million_rows_of_empty_cells_is_refused_in_seconds(tmp_path: Path) -> None:
    path = _empty_cells_at_xfd(tmp_path / "empty.xlsx", 1_048_000)
    assert path.stat().st_size < files.MAX_BYTES
    code, verdict, _elapsed, peak = _read_capped(path)
    assert code == 2, verdict
    assert verdict == (
        "empty.xlsx: row 10003: more than the 10000 empty rows a roster may have after the data "
        "(from row 3); delete them"
    )
    # before: 100,000 of these rows alone took 68 s, so the child's timeout fails a regression
    assert peak < 300, peak


def test_rows_of_empty_cells_below_the_roster_within_the_bound_are_not_data(
    tmp_path: Path,
) -> None:
    path = _empty_cells_at_xfd(tmp_path / "empty.xlsx", files.MAX_EMPTY_TAIL)
    assert read_table(path).rows == [(2, ROW)]


def test_a_declared_dimension_is_not_trusted(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "wide.xlsx", {}, [HEADER, ROW])
    _rewrite_sheet(path, {rb'<dimension ref="[^"]*" ?/>': b'<dimension ref="A1:XFD1048576"/>'})
    table = read_table(path)
    assert table.headers == HEADER and [r for _, r in table.rows] == [ROW]


def test_a_forged_row_number_beyond_excel_s_last_row_stops_the_reading(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "forged.xlsx", {"A3": ""}, [HEADER, ROW, ["x"]])
    _rewrite_sheet(path, {rb'<row r="3"': b'<row r="4000000000"', rb'r="A3"': b'r="A4000000000"'})
    code, verdict, elapsed, peak = _read_capped(path)
    assert code == 2, verdict
    assert verdict == (
        "forged.xlsx: row 10003: more than the 10000 empty rows a roster may have after the data "
        "(from row 3); delete them"
    )
    assert elapsed < 30 and peak < 300, (elapsed, peak)


def test_data_far_below_a_gap_in_an_xlsx_is_refused_not_dropped(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "gap.xlsx", {"A1048576": "E2"}, [HEADER, ROW])
    code, verdict, elapsed, peak = _read_capped(path)
    assert code == 2, verdict
    assert verdict == (
        "gap.xlsx: row 10003: more than the 10000 empty rows a roster may have after the data "
        "(from row 3); delete them"
    )
    assert elapsed < 20 and peak < 300, (elapsed, peak)
    _xlsx(path, {"A5003": "E2"}, [HEADER, ROW])  # within the rows looked through
    with pytest.raises(RosterError, match=r"^gap\.xlsx: row 5003: data after 5000 empty rows "):
        read_table(path)


def test_too_many_columns_in_an_xlsx(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "wide.xlsx", {"CW2": "x"}, [HEADER, ROW])  # CW is column 101
    with pytest.raises(RosterError, match=r"^wide\.xlsx: row 2: a cell in column 101 \(CW\), "):
        read_table(path)
    _xlsx(path, {"CV2": "x"}, [HEADER, ROW])  # column 100 is allowed
    assert read_table(path).rows[0][1][99] == "x"


def test_a_workbook_that_unpacks_to_too_much_is_refused_before_openpyxl(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "inflated.xlsx", {}, [HEADER, ROW])
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    unpacked = src.getinfo("xl/styles.xml").file_size + files.MAX_PART_BYTES + 1
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/styles.xml":  # held in memory whole by openpyxl
                data = b" " * (files.MAX_PART_BYTES + 1) + data
            dst.writestr(info, data)
    path.write_bytes(out.getvalue())
    assert path.stat().st_size < files.MAX_BYTES
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        f"inflated.xlsx: part 'xl/styles.xml' unpacks to {unpacked} bytes, "
        f"more than the {files.MAX_PART_BYTES} a workbook part may"
    )


# --- CSV --------------------------------------------------------------------------------------


def test_a_csv_with_1000_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(f"c{i}" for i in range(1000)) + "\n")
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == "wide.csv: line 2: 1000 columns, more than the 100 a roster may have"


def test_empty_cells_beyond_the_last_column_are_dropped_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(ROW) + "," * 500 + "\n")
    table = read_table(path)
    assert table.rows[0][1][:3] == ROW and len(table.rows[0][1]) == files.MAX_COLUMNS


def test_a_csv_line_of_millions_of_columns_stays_in_bounds(tmp_path: Path) -> None:
    path = tmp_path / "million.csv"
    path.write_bytes(b"a," * (files.MAX_BYTES // 2 - 1))  # one line, ten million columns
    code, verdict, elapsed, peak = _read_capped(path)
    assert code == 2, verdict
    assert verdict.startswith("million.csv: line 1: 10485759 columns, more than the 100"), verdict
    assert elapsed < 30 and peak < 700, (elapsed, peak)


def test_a_file_over_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("wb") as f:
        f.truncate(files.MAX_BYTES + 1)  # sparse: nothing is written, nothing is read
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        f"big.csv: {files.MAX_BYTES + 1} bytes, more than the {files.MAX_BYTES} a roster may be"
    )


def test_too_many_rows(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("Mã\n" + "E\n" * files.MAX_ROWS)
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        f"long.csv: row {files.MAX_ROWS + 1}: more than the {files.MAX_ROWS} rows a roster may have"
        " (empty rows count)"
    )
    path.write_text("Mã\n" + "E\n" * (files.MAX_ROWS - 1))
    assert len(read_table(path).rows) == files.MAX_ROWS - 1


def test_too_many_cells(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    line = ",".join(["x"] * files.MAX_COLUMNS) + "\n"
    path.write_text(line * (files.MAX_CELLS // files.MAX_COLUMNS + 1))
    with pytest.raises(RosterError) as err:
        read_table(path)
    row = files.MAX_CELLS // files.MAX_COLUMNS + 1
    assert str(err.value) == (
        f"cells.csv: row {row}: more than the {files.MAX_CELLS} cells a roster may have"
    )


def _gap(empty: int, after: bool) -> str:
    return (
        ",".join(HEADER)
        + "\n"
        + ",".join(ROW)
        + "\n"
        + ",,\n" * empty
        + ("E2,Lê Văn B,skhcn\n" if after else "")
    )


def test_data_after_1000_empty_rows_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    path.write_text(_gap(1000, after=True))
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        "gap.csv: row 1003: data after 1000 empty rows (from row 3); rows after 1000 empty rows "
        "are not read: remove the empty rows"
    )


def test_data_after_999_empty_rows_is_read(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    path.write_text(_gap(999, after=True))
    rows = read_table(path).rows
    assert rows[-1] == (1002, ["E2", "Lê Văn B", "skhcn"])


def test_a_long_run_of_trailing_empty_rows_is_not_data(tmp_path: Path) -> None:
    path = tmp_path / "tail.csv"
    path.write_text(_gap(files.MAX_EMPTY_TAIL, after=False))
    assert read_table(path).rows == [(2, ROW)]


def test_more_empty_rows_after_the_data_than_the_bound_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tail.csv"
    path.write_text(_gap(files.MAX_EMPTY_TAIL + 1, after=False))
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        "tail.csv: row 10003: more than the 10000 empty rows a roster may have after the data "
        "(from row 3); delete them"
    )


def test_empty_rows_count_toward_the_row_bound(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    # runs of 999 empty rows never end the data, yet each is a row read
    path.write_text("Mã\n" + ("E\n" + ",\n" * 999) * (files.MAX_ROWS // 1000))
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        f"long.csv: row {files.MAX_ROWS + 1}: more than the {files.MAX_ROWS} rows a roster may have"
        " (empty rows count)"
    )


def test_a_workbook_whose_parts_unpack_to_too_much_in_all_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _xlsx(tmp_path / "inflated.xlsx", {}, [HEADER, ROW])
    total = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    monkeypatch.setattr(files, "MAX_UNZIPPED_BYTES", total - 1)
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        f"inflated.xlsx: unpacks to {total} bytes, more than the {total - 1} a roster may"
    )


def test_a_zip_of_too_many_parts_is_refused_before_it_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "parts.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(files.MAX_ZIP_MEMBERS + 1):
            z.writestr(f"p{i}", b"")
    with pytest.raises(RosterError) as err:
        read_table(path)
    assert str(err.value) == (
        f"parts.xlsx: more than {files.MAX_ZIP_MEMBERS} parts in the workbook; not a roster"
    )
