"""Charts added to a workbook syncd wrote (the usage reports for the leadership).

openpyxl stays in this package (see workbooks.py); a chart is drawn by Excel or LibreOffice
from the numbers in the workbook itself, so a reader can check every bar against a cell.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openpyxl import load_workbook
from openpyxl.chart import BarChart, Reference


@dataclass(frozen=True)
class Bars:
    """A grouped bar chart: one group per name, one bar per series."""

    title: str
    names: Sequence[str]
    series: Mapping[str, Sequence[int]]


def add_bar_charts(book: bytes, sheet_title: str, charts: Sequence[Bars]) -> bytes:
    """``book`` with a sheet ``sheet_title`` holding each chart's numbers and the chart."""
    wb = load_workbook(io.BytesIO(book))
    ws = wb.create_sheet(sheet_title)
    row = 1
    for chart in charts:
        labels = list(chart.series)
        ws.cell(row=row, column=1, value=chart.title)
        for j, label in enumerate(labels, start=2):
            ws.cell(row=row, column=j, value=label)
        for i, name in enumerate(chart.names, start=1):
            ws.cell(row=row + i, column=1, value=name)
            for j, label in enumerate(labels, start=2):
                ws.cell(row=row + i, column=j, value=int(chart.series[label][i - 1]))
        bar = BarChart()
        bar.type = "bar"
        bar.title = chart.title
        bar.height = max(7.5, 0.6 * len(chart.names) * max(1, len(labels)) / 2 + 3)
        bar.width = 18
        last = row + len(chart.names)
        data = Reference(ws, min_col=2, max_col=1 + len(labels), min_row=row, max_row=last)
        cats = Reference(ws, min_col=1, min_row=row + 1, max_row=last)
        bar.add_data(data, titles_from_data=True)
        bar.set_categories(cats)
        ws.add_chart(bar, f"{chr(ord('A') + len(labels) + 2)}{row}")
        row = last + max(18, int(bar.height * 2)) + 2
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


__all__ = ["Bars", "add_bar_charts"]
