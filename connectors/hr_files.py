"""The HR result of a roster file as files HR opens: an XLSX workbook and an HTML page.

The content is :mod:`syncd.hr_result`'s; this module only renders and writes it. Both files lie
beside the processed or rejected roster, group-readable (0640) like the text report, so the
``hrdrop`` group reads them over SFTP (docs/install.md); the operator's copy, with the English
beside the Vietnamese, goes to ``<state>/reports/`` (0600). No cell ever starts a formula, no
password is ever in one (the content has none to give), and every text is UTF-8.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from connectors.config import Config
from connectors.loading import load_catalogue
from connectors.outcome import RunOutcome
from connectors.roster.workbooks import Sheet, workbook_bytes
from connectors.store import write_private
from syncd.hr_result import HrResult, Problem, RunFacts, Verdict, build
from syncd.orgs import Catalogue

RESULT_SUFFIX = ".ketqua"  # <roster>.ketqua.xlsx / .html: "kết quả", the result

_PEOPLE_HEAD = (
    ("Dòng", "row"),
    ("Mã cán bộ", "employee number"),
    ("Họ và tên", "name"),
    ("Cơ quan, đơn vị", "organisation"),
    ("Phòng/Ban", "office"),
    ("Kết quả", "what happened"),
    ("Địa chỉ hộp thư", "address"),
    ("Ghi chú", "detail"),
    ("Căn cứ", "article"),
)
_PROBLEM_HEAD = (
    ("Cột", "column"),
    ("Lỗi", "problem"),
    ("Giá trị", "value"),
    ("Các dòng", "rows"),
    ("Số dòng", "count"),
    ("Cần sửa", "what to change"),
    ("Ai sửa", "who fixes it"),
)
_WHO = {True: "Quản trị hệ thống", False: "Phòng tổ chức (người gửi tệp)"}


def _head(pairs: Sequence[tuple[str, str]], english: bool) -> list[str]:
    return [f"{vi} / {en}" if english else vi for vi, en in pairs]


def _rows_text(rows: Sequence[int]) -> str:
    return ", ".join(map(str, rows))


LONGEST_VALUE = 80  # a value echoed back longer than this is cut (a 3,000-character "name")


def _short(value: str) -> str:
    if len(value) <= LONGEST_VALUE:
        return value
    return f"{value[:LONGEST_VALUE]}… ({len(value)} ký tự)"


def _values_text(p: Problem) -> str:
    shown = [_short(v) if v else "(trống)" for v in p.values[:5]]
    more = len(p.values) - len(shown)
    return ", ".join(shown) + (f" … (+{more})" if more > 0 else "")


def people_rows(result: HrResult, english: bool) -> list[list[str]]:
    return [
        [
            str(p.row) if p.row is not None else "—",
            _short(p.employee_number),
            _short(p.full_name),
            p.org,
            p.office,
            p.what.show(english),
            p.address,
            p.detail.show(english),
            p.article,
        ]
        for p in result.people
    ]


def problem_rows(result: HrResult, english: bool) -> list[list[str]]:
    return [
        [
            p.column,
            p.what.show(english),
            _values_text(p),
            _rows_text(p.rows) or "cả tệp",
            str(len(p.rows)) if p.rows else "",
            p.fix.show(english),
            _WHO[p.operator_fault],
        ]
        for p in result.problems
    ]


def result_xlsx(result: HrResult, english: bool = False) -> bytes:
    """Sheet ``Kết quả``: the file, the headline, one row per person; sheet ``Lỗi`` (when
    there are problems): one row per kind of problem, with its rows."""
    lead = [f"Tệp: {result.source}", result.headline.show(english)]
    if result.problems:
        lead.append("Xem trang «Lỗi»: từng lỗi, các dòng có lỗi và cách sửa.")
    lead += [n.show(english) for n in result.notes]
    sheets = [
        Sheet(
            "Kết quả",
            _head(_PEOPLE_HEAD, english) if result.people else (),
            people_rows(result, english),
            lead,
            red_lead=_bad(result),
        )
    ]
    if result.problems:
        sheets.append(Sheet("Lỗi", _head(_PROBLEM_HEAD, english), problem_rows(result, english)))
    return workbook_bytes(sheets)


def _bad(result: HrResult) -> bool:
    return result.verdict in (Verdict.REJECTED, Verdict.REFUSED)


# characters: longer than any Vietnamese word or code HR reads. An address (with its "@") is
# never broken: HR copies it, and a search of the page finds it whole
_LONG_WORD = 40

_CSS = """
body{font-family:'Times New Roman',serif;margin:1.5em;color:#111}
h1{font-size:1.3em} .head{font-weight:bold;padding:.6em;border:2px solid}
.bad{color:#a00;border-color:#a00;background:#fff0f0}.good{color:#060;border-color:#060;
background:#f0fff0}
table{border-collapse:collapse;margin:1em 0;width:100%}
th,td{border:1px solid #555;padding:3px 6px;vertical-align:top;text-align:left;
overflow-wrap:break-word}
th{background:#ddebf7} tr.op td{background:#fff6d6} td.n{text-align:right}
@media print{body{margin:0}}
"""


def result_html(result: HrResult, english: bool = False) -> str:
    def esc(s: str) -> str:
        return html.escape(s, quote=True)

    def cell(s: str) -> str:
        """A cell's text: words whole (found by an attack: with the columns allowed to break
        anywhere, "Phòng/Ban" printed as "Phòn g/Ba n"), a word too long for a column
        (a hostile value; never an address) offered a break every 16 characters."""
        return " ".join(
            "<wbr>".join(esc(w[i : i + 16]) for i in range(0, len(w), 16))
            if len(w) > _LONG_WORD and "@" not in w
            else esc(w)
            for w in s.split(" ")
        )

    def table(head: list[str], rows: list[list[str]], marks: Sequence[bool] = ()) -> str:
        out = ["<table><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr>"]
        for i, row in enumerate(rows):
            cls = " class='op'" if i < len(marks) and marks[i] else ""
            out.append(f"<tr{cls}>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
        out.append("</table>")
        return "".join(out)

    parts = [
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>",
        f"<title>Kết quả xử lý tệp {esc(result.source)}</title><style>{_CSS}</style></head>",
        f"<body><h1>Kết quả xử lý tệp danh sách: {esc(result.source)}</h1>",
        f"<p class='head {'bad' if _bad(result) else 'good'}'>"
        f"{esc(result.headline.show(english))}</p>",
    ]
    if result.problems:
        parts.append("<h2>Lỗi cần sửa</h2>")
        parts.append(
            table(
                _head(_PROBLEM_HEAD, english),
                problem_rows(result, english),
                [p.operator_fault for p in result.problems],
            )
        )
    if result.people:
        parts.append("<h2>Từng người</h2>")
        parts.append(table(_head(_PEOPLE_HEAD, english), people_rows(result, english)))
    if result.notes:
        parts.append("<h2>Ghi chú</h2><ul>")
        parts += [f"<li>{esc(n.show(english))}</li>" for n in result.notes]
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def result_for(
    config: Config,
    outcome: RunOutcome | None,
    name: str,
    catalogue: Catalogue | None = None,
    checking: bool = False,
) -> HrResult:
    """The HR result of the file called ``name`` in ``outcome`` (its snapshot or its
    rejection, and the plan's actions for its people)."""
    catalogue = catalogue or load_catalogue(config.orgs)
    snap = next((s for s in (outcome.snapshots if outcome else []) if s.source == name), None)
    rejected = [r for r in (outcome.rejected if outcome else []) if r.source == name]
    row_errors = [e for r in rejected for e in r.problems]
    file_errors = [m for r in rejected if not r.problems for m in r.errors]
    facts = None
    plan = outcome.plan if outcome else None
    if outcome is not None and plan is not None:
        res = outcome.result
        facts = RunFacts(
            now=plan.now,
            zone=config.zone,
            domain=config.domain,
            alias_days=config.alias_days,
            applied=outcome.applied,
            actions=plan.actions,
            held=plan.held_actions,
            failed=frozenset(id(o.action) for o in res.failed) if res else frozenset(),
            failed_for_good=frozenset(
                id(o.action) for o in (res.failed if res else []) if o.status == "permanent"
            ),
            decisions=plan.decisions,
            accounts=outcome.accounts,
            refused=bool(plan.refused),
            slips_to_folder=(config.slips.hr_area is not None) if outcome.applied else None,
            slips_delivered=_delivered_orgs(config, outcome),
        )
    return build(
        name,
        snap.people if snap else (),
        snap.authoritative if snap else (),
        row_errors,
        file_errors,
        facts,
        catalogue,
        snap.notes if snap else (),
        checking=checking,
    )


def _delivered_orgs(config: Config, outcome: RunOutcome) -> frozenset[str]:
    """The organisations whose slip page reached their folder in the HR area this run (the
    slip writer returns the delivered copies among the run's slip files)."""
    area = config.slips.hr_area
    if area is None:
        return frozenset()
    return frozenset(p.parent.name for p in outcome.slip_files if p.parent.parent == area)


def write_result(result: HrResult, beside: Path, mode: int = 0o640) -> list[Path]:
    """``<beside>.ketqua.xlsx`` and ``.html`` for HR (Vietnamese only), with ``mode``."""
    return write_rendered(result_xlsx(result), result_html(result), beside, mode)


def result_paths(beside: Path) -> tuple[Path, Path]:
    """Where HR's result of the file filed as ``beside`` goes: its XLSX and its page."""
    return (
        beside.with_name(beside.name + RESULT_SUFFIX + ".xlsx"),
        beside.with_name(beside.name + RESULT_SUFFIX + ".html"),
    )


def write_rendered(xlsx: bytes, page: str, beside: Path, mode: int = 0o640) -> list[Path]:
    """An HR result already rendered, beside the filed file (each made whole, then named)."""
    xlsx_path, page_path = result_paths(beside)
    write_private(xlsx_path, xlsx, mode=mode)
    write_private(page_path, page, mode=mode)
    return [xlsx_path, page_path]


def write_operator_copy(config: Config, result: HrResult, run_id: str) -> Path:
    """The operator's copy (English beside the Vietnamese) in the state's reports, 0600."""
    path = operator_copy_path(config, result.source, run_id)
    write_private(path, result_html(result, english=True))
    return path


def operator_copy_path(config: Config, name: str, run_id: str) -> Path:
    return config.paths.state / "reports" / f"{run_id}-{_stem(name)}.html"


def _stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


def render_hr_result(
    config: Config, outcome: RunOutcome | None, name: str
) -> tuple[bytes, str, str]:
    """HR's result of the file ``name`` rendered, not written: its XLSX, its page, and the
    operator's English copy. The inbox keeps them with what is left to do for the file
    before it files anything (connectors/inbox.py, "Filing"), so a crash between filing the
    roster and writing its result cannot leave HR without one."""
    result = result_for(config, outcome, name)
    return result_xlsx(result), result_html(result), result_html(result, english=True)
