"""A text that would start a formula is written to an XLSX as that text, not with the CSV's
apostrophe (found by an attack: the published address list showed ``'-2+3``)."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from connectors.roster.workbooks import Sheet, safe_cell, workbook_bytes

HOSTILE = ['=HYPERLINK("http://x","Lê")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1"]


@pytest.mark.parametrize("value", HOSTILE)
def test_an_xlsx_keeps_the_value_as_text_never_a_formula(value: str) -> None:
    data = workbook_bytes([Sheet("Danh bạ", header=["Chức vụ"], rows=[[value]], lead=[value])])
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet  # no formula anywhere
    ws = openpyxl.load_workbook(io.BytesIO(data))["Danh bạ"]
    cells = [c for row in ws.iter_rows() for c in row if c.value not in (None, "Chức vụ")]
    assert [c.value for c in cells] == [value, value]  # the lead line and the row, as typed
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)


def test_a_csv_cell_still_carries_the_apostrophe_excel_hides() -> None:
    assert [safe_cell(v)[0] for v in HOSTILE] == ["'"] * len(HOSTILE)
    assert safe_cell("Chuyên viên") == "Chuyên viên"
