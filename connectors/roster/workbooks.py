"""Workbooks syncd writes for HR: the result of a file, the official roster template.

openpyxl stays in this package (the import-linter contract "only the roster reader opens
spreadsheets"): what HR sends and what HR gets back are the same kind of file, and one home
keeps one rule for both — a text cell never starts a formula, so a name such as
``=HYPERLINK(…)`` typed by someone stays text in every workbook syncd writes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """A CSV cell that a spreadsheet opens as text, never the start of a formula: the
    apostrophe is how a CSV says so (Excel hides it). An XLSX says it without touching the
    value (``_append``)."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def _append(ws: Any, values: Sequence[str]) -> None:
    """A row of text cells. A value that would start a formula (``=HYPERLINK(…)`` typed by
    someone) is stored as the text it is, with Excel's own "text, even when edited" mark
    (quotePrefix): shown without an apostrophe, never evaluated, also after F2 and Enter.
    Found by an attack: the address list published ``'-2+3`` with the apostrophe in the
    value, since openpyxl had been handed the CSV's defence."""
    ws.append(list(values))
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str) and cell.value[:1] in FORMULA_STARTS:
            cell.data_type = "s"  # openpyxl made it a formula
            cell.quotePrefix = True


@dataclass(frozen=True)
class Choice:
    """A drop-down list on one column of a sheet (Excel's data validation)."""

    column: int  # 1-based
    values: tuple[str, ...]
    title: str
    prompt: str


@dataclass(frozen=True)
class Sheet:
    """One sheet: ``lead`` lines, then a table (``header`` bold and frozen, then ``rows``)."""

    title: str
    header: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    lead: Sequence[str] = ()
    red_lead: bool = False  # the first lead line in red (a rejected file) or green
    choices: Sequence[Choice] = field(default_factory=tuple)
    empty_rows: int = 0  # rows the drop-down lists cover below the header (a template)


def workbook_bytes(sheets: Sequence[Sheet]) -> bytes:
    """An XLSX of ``sheets``, in order; the first is the active one."""
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for spec in sheets:
        ws = book.create_sheet(spec.title)
        for i, line in enumerate(spec.lead):
            _append(ws, [line])
            colour = "C00000" if spec.red_lead and i == 1 else "000000"
            ws.cell(row=ws.max_row, column=1).font = Font(bold=i < 2, color=colour)
        if spec.lead and spec.header:
            ws.append([])
        if not spec.header:
            continue
        _append(ws, spec.header)
        top = ws.max_row
        for c in ws[top]:
            c.font = Font(bold=True)
            c.fill = PatternFill("solid", fgColor="DDEBF7")
        for row in spec.rows:
            _append(ws, row)
            for c in ws[ws.max_row]:
                c.alignment = Alignment(wrap_text=True, vertical="top")
        for i, head in enumerate(spec.header, start=1):
            width = max([len(head), *(len(r[i - 1]) for r in spec.rows if len(r) >= i)])
            ws.column_dimensions[get_column_letter(i)].width = min(60, max(10, width + 2))
        ws.freeze_panes = ws.cell(row=top + 1, column=1)
        last = top + max(len(spec.rows), spec.empty_rows)
        for choice in spec.choices:
            letter = get_column_letter(choice.column)
            listed = ",".join(choice.values)
            dv = DataValidation(
                type="list",
                formula1=f'"{listed}"',
                allow_blank=True,
                showErrorMessage=True,
                errorTitle=choice.title,
                error=choice.prompt,
                promptTitle=choice.title,
                prompt=choice.prompt,
                showInputMessage=True,
            )
            dv.add(f"{letter}{top + 1}:{letter}{last}")
            ws.add_data_validation(dv)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


__all__ = ["Choice", "Sheet", "safe_cell", "workbook_bytes"]
