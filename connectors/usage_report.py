"""The report on mailbox use (``syncd report``): read, compute, write XLSX and HTML.

What it counts is :mod:`syncd.yearly`'s; here the inputs are gathered (the directory read as
the service account, the audit log, the imported mail activity) and the result is written for
people: one workbook and one web page for the province, and one of each per organisation,
in Vietnamese, with charts. The files go to ``reports.folder`` (group-readable by the
leadership's group, never a password in them).
"""

from __future__ import annotations

import grp
import html
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.audit import audit_records
from connectors.config import Config
from connectors.loading import lifecycle_inputs, load_catalogue
from connectors.roster.charts import Bars, add_bar_charts
from connectors.roster.workbooks import Sheet, workbook_bytes
from connectors.runner import close_directory, open_directory
from connectors.store import write_private
from syncd.errors import SyncdError
from syncd.model import State
from syncd.ports import Scope
from syncd.yearly import STATE_LABELS, Counts, OrgReport, Period, Report, build, period_of

COLUMNS = (
    "Hộp thư hiện có",
    "Đang hoạt động",
    "Tạm khóa",
    "Đã thu hồi",
    "Cấp mới trong kỳ",
    "Chuyển đến",
    "Chuyển đi",
    "Tạm khóa trong kỳ",
    "Thu hồi trong kỳ",
    "Xóa vĩnh viễn trong kỳ",
    "Khôi phục trong kỳ",
    "Cấp lại mật khẩu",
    "Chưa từng đăng nhập",
    "Không hoạt động",
)


def _figures(c: Counts) -> list[int]:
    return [
        c.accounts,
        c.by_state[State.ACTIVE],
        c.by_state[State.LOCKED],
        c.by_state[State.REVOKED],
        c.created,
        c.moved_in,
        c.moved_out,
        c.locks,
        c.revoked,
        c.purged,
        c.restored,
        c.resets,
        c.never_logged_in,
        c.inactive,
    ]


def _lead(report: Report, who: str) -> list[str]:
    return [
        f"BÁO CÁO TÌNH HÌNH QUẢN LÝ, SỬ DỤNG HỘP THƯ ĐIỆN TỬ CÔNG VỤ — {who}",
        f"Kỳ báo cáo: {report.period.label}; lập ngày {report.made:%d/%m/%Y %H:%M}",
        # found by an attack: a past period's report showed today's mailboxes, unsaid
        f"Số hộp thư hiện có, theo trạng thái, chưa từng đăng nhập và không hoạt động: tại "
        f"ngày lập báo cáo ({report.made:%d/%m/%Y}); các cột “trong kỳ”, chuyển đến, chuyển "
        "đi và cấp lại mật khẩu: trong kỳ báo cáo",
        f"Căn cứ: {', '.join(report.articles) or report.title}",
        f"Không hoạt động: hộp thư đang hoạt động không có hoạt động trong "
        f"{report.inactive_days} ngày gần nhất ({report.title})",
    ]


def _lock_rows(c: Counts) -> list[list[str]]:
    return [[why, art, str(n)] for (why, art), n in sorted(c.locked.items())]


def org_sheets(report: Report, org: OrgReport) -> list[Sheet]:
    rows = [["Toàn cơ quan", *map(str, _figures(org.counts))]]
    rows += [[name or "(không thuộc phòng nào)", *map(str, _figures(c))] for name, c in org.offices]
    return [
        Sheet(
            "Báo cáo",
            ["Phòng/Ban", *COLUMNS],
            rows,
            lead=_lead(report, f"{org.name} ({org.code})"),
        ),
        Sheet("Lý do tạm khóa", ["Lý do", "Điều khoản", "Số hộp thư"], _lock_rows(org.counts)),
    ]


def province_sheets(report: Report) -> list[Sheet]:
    rows = [[f"{o.name} ({o.code})", *map(str, _figures(o.counts))] for o in report.orgs]
    rows.append(["Toàn tỉnh", *map(str, _figures(report.total))])
    return [
        Sheet("Tổng hợp", ["Cơ quan, đơn vị", *COLUMNS], rows, lead=_lead(report, "TOÀN TỈNH")),
        Sheet("Lý do tạm khóa", ["Lý do", "Điều khoản", "Số hộp thư"], _lock_rows(report.total)),
        *(
            [Sheet("Ghi chú", ["Ghi chú"], [[n] for n in report.notes_vi])]
            if report.notes_vi
            else []
        ),
    ]


def _xlsx(sheets: list[Sheet], names: list[str], counts: list[Counts]) -> bytes:
    """The workbook, with a chart of accounts by state and of the period's changes."""
    book = workbook_bytes(sheets)
    state_bars = Bars(
        "Hộp thư theo trạng thái",
        names,
        {
            STATE_LABELS[s]: [c.by_state[s] for c in counts]
            for s in (State.ACTIVE, State.LOCKED, State.REVOKED)
        },
    )
    change_bars = Bars(
        "Biến động trong kỳ",
        names,
        {
            "Cấp mới": [c.created for c in counts],
            "Tạm khóa": [c.locks for c in counts],
            "Thu hồi": [c.revoked for c in counts],
            "Khôi phục": [c.restored for c in counts],
        },
    )
    return add_bar_charts(book, "Biểu đồ", [state_bars, change_bars])


def _svg_bars(title: str, names: list[str], series: dict[str, list[int]]) -> str:
    """A grouped bar chart as inline SVG: readable offline, printable, no script."""
    colours = ["#2f6fb0", "#e0a030", "#b03030", "#4a9a4a"]
    top = max([1, *(v for values in series.values() for v in values)])
    bar, gap, left = 14, 18, 220
    rows = len(names)
    group = bar * len(series) + gap
    width, height = 760, 40 + rows * group + 30
    out = [
        f"<svg role='img' aria-label='{html.escape(title)}' xmlns='http://www.w3.org/2000/svg' "
        f"width='{width}' height='{height}' viewBox='0 0 {width} {height}'>",
        f"<text x='4' y='18' font-weight='bold'>{html.escape(title)}</text>",
    ]
    scale = (width - left - 60) / top
    for i, name in enumerate(names):
        y0 = 34 + i * group
        out.append(f"<text x='4' y='{y0 + bar}' font-size='12'>{html.escape(name[:34])}</text>")
        for j, (label, values) in enumerate(series.items()):
            w = values[i] * scale
            y = y0 + j * bar
            colour = colours[j % len(colours)]
            out.append(
                f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{bar - 2}' fill='{colour}'>"
                f"<title>{html.escape(label)}: {values[i]}</title></rect>"
                f"<text x='{left + w + 4:.1f}' y='{y + bar - 4}' font-size='11'>{values[i]}</text>"
            )
    ly = height - 12
    for j, label in enumerate(series):
        x = left + j * 130
        out.append(
            f"<rect x='{x}' y='{ly - 10}' width='10' height='10' fill='{colours[j % 4]}'/>"
            f"<text x='{x + 14}' y='{ly}' font-size='12'>{html.escape(label)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


_CSS = """
body{font-family:'Times New Roman',serif;margin:1.5em;color:#111}
h1{font-size:1.25em} p.lead{margin:.2em 0}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #555;padding:3px 6px;vertical-align:top}
th{background:#ddebf7} td.n{text-align:right} tr.total td{font-weight:bold}
@media print{body{margin:0} svg{page-break-inside:avoid}}
"""


def _html(sheets: list[Sheet], names: list[str], counts: list[Counts], title: str) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for k, sheet in enumerate(sheets):
        if k == 0:
            parts.append(f"<h1>{esc(sheet.lead[0])}</h1>")
            parts += [f"<p class='lead'>{esc(line)}</p>" for line in sheet.lead[1:]]
            parts.append(
                _svg_bars(
                    "Hộp thư theo trạng thái",
                    names,
                    {
                        STATE_LABELS[s]: [c.by_state[s] for c in counts]
                        for s in (State.ACTIVE, State.LOCKED, State.REVOKED)
                    },
                )
            )
            parts.append(
                _svg_bars(
                    "Biến động trong kỳ",
                    names,
                    {
                        "Cấp mới": [c.created for c in counts],
                        "Tạm khóa": [c.locks for c in counts],
                        "Thu hồi": [c.revoked for c in counts],
                        "Khôi phục": [c.restored for c in counts],
                    },
                )
            )
        else:
            parts.append(f"<h2>{esc(sheet.title)}</h2>")
        parts.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in sheet.header) + "</tr>")
        for i, row in enumerate(sheet.rows):
            total = " class='total'" if k == 0 and i == len(sheet.rows) - 1 else ""
            cells = "".join(
                f"<td class='n'>{esc(v)}</td>" if v.isdigit() else f"<td>{esc(v)}</td>" for v in row
            )
            parts.append(f"<tr{total}>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


@dataclass(frozen=True)
class Written:
    report: Report
    files: tuple[Path, ...]
    only: str | None = None  # --org: what is shown is that organisation's, nothing else

    def orgs(self) -> list[OrgReport]:
        return [o for o in self.report.orgs if self.only in (None, o.code)]


def compute(config: Config, period: Period, now: datetime) -> Report:
    """The report's figures: the directory now, the audit log in the period."""
    profile = config.effective
    rule = profile.reports.usage
    catalogue = load_catalogue(config.orgs)
    inputs = lifecycle_inputs(config, remember=False)  # a report changes nothing
    directory = open_directory(config, [])
    try:
        accounts = directory.read(Scope())
    finally:
        close_directory(directory)
    clock = profile.lifecycle.lock_inactive.after
    days = (clock.after(now) - now).days if clock else 90
    return build(
        profile=profile,
        articles=[rule.article] if rule else [],
        catalogue=catalogue,
        accounts=accounts,
        records=audit_records(config.paths.audit_log),
        activity=inputs.activity,
        period=period,
        made=now,
        inactive_days=days,
        zone=config.zone,
    )


def write(config: Config, report: Report, folder: Path, only: str | None = None) -> Written:
    """Files of the province's summary and of each organisation (or of ``only``)."""
    stem = f"{report.period.start:%Y%m%d}-{report.period.end:%Y%m%d}"
    files: list[Path] = []

    gid = published_folder(folder, 0o750, config.publish.group, config.publish.folder)

    def put(name: str, data: str | bytes) -> None:
        path = folder / name
        write_private(path, data, mode=0o640)
        if gid is not None:
            os.chown(path, -1, gid)  # the leadership's group reads the reports
        files.append(path)

    if only is None:
        sheets = province_sheets(report)
        names = [o.name for o in report.orgs]  # the leadership reads names, not codes
        counts = [o.counts for o in report.orgs]
        put(f"baocao-{stem}-toantinh.xlsx", _xlsx(sheets, names, counts))
        put(f"baocao-{stem}-toantinh.html", _html(sheets, names, counts, "Báo cáo toàn tỉnh"))
    for org in report.orgs:
        if only is not None and org.code != only:
            continue
        sheets = org_sheets(report, org)
        names = ["Toàn cơ quan", *(n or "(khác)" for n, _ in org.offices)]
        counts = [org.counts, *(c for _, c in org.offices)]
        put(f"baocao-{stem}-{org.code}.xlsx", _xlsx(sheets, names, counts))
        put(f"baocao-{stem}-{org.code}.html", _html(sheets, names, counts, org.name))
    return Written(report, tuple(files), only)


class ReportError(SyncdError):
    """A report asked for something the configuration does not know."""


def published_folder(folder: Path, mode: int, group: str | None, ours: Path | None) -> int | None:
    """Make ``folder`` (and its parents) ``mode``, in ``group`` when given (its id returned):
    the reports are for the leadership's group (0750), the address lists for everyone (0755)
    — never syncd's private 0700, which nobody else could open. A folder that already
    exists is changed only under ``ours`` (``publish.folder``): an operator's ``--out``, or
    the current directory by default, keeps its mode and group (found when a ``syncd report``
    run in a working copy made it 0750, and another user could no longer enter it)."""
    gid = None
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ReportError(f"publish.group: no group {group!r} on this host") from None
    missing = []
    at = folder
    while not at.exists():
        missing.append(at)
        at = at.parent
    for made in reversed(missing):
        made.mkdir(mode=mode)
        # a parent made here (publish.folder itself) only leads the way in: 0755, whatever
        # the service's umask (0077 would hide the public address lists)
        os.chmod(made, 0o755)  # noqa: S103
    if missing or (ours is not None and folder.resolve().is_relative_to(ours.resolve())):
        os.chmod(folder, mode)
        if gid is not None:
            os.chown(folder, -1, gid)
    return gid


def default_folder(config: Config, kind: str) -> Path:
    return config.publish.folder / kind if config.publish.folder else Path(".")


def make(
    config: Config,
    year: int,
    half: int | None,
    only: str | None,
    folder: Path | None,
    now: datetime,
) -> Written:
    """``syncd report``: compute the period's report and write its files."""
    if only is not None and only not in load_catalogue(config.orgs).orgs:
        raise ReportError(f"--org {only!r}: no such organisation in {config.orgs}")
    local = now.astimezone(ZoneInfo(config.timezone))
    period = period_of(year, half, local.date())
    if period.start > local.date():
        raise ReportError(f"{period.label}: the period has not begun")
    report = compute(config, period, local)
    return write(config, report, folder or default_folder(config, "baocao"), only)


def summary_text(made: Written) -> str:
    r = made.report
    lines = [
        f"Report on mailbox use, {r.period.label} ({', '.join(r.articles) or r.title})",
        f"{'organisation':<28} {'accounts':>8} {'active':>7} {'locked':>7} {'revoked':>8} "
        f"{'created':>8} {'locks':>6} {'never':>6} {'inactive':>8}",
    ]
    for o in made.orgs():
        c = o.counts
        lines.append(
            f"{o.code:<28} {c.accounts:>8} {c.by_state[State.ACTIVE]:>7} "
            f"{c.by_state[State.LOCKED]:>7} {c.by_state[State.REVOKED]:>8} {c.created:>8} "
            f"{c.locks:>6} {c.never_logged_in:>6} {c.inactive:>8}"
        )
    t = r.total
    if made.only is None:  # an organisation's report shows no other's figures, nor the sum
        lines.append(
            f"{'(province)':<28} {t.accounts:>8} {t.by_state[State.ACTIVE]:>7} "
            f"{t.by_state[State.LOCKED]:>7} {t.by_state[State.REVOKED]:>8} {t.created:>8} "
            f"{t.locks:>6} {t.never_logged_in:>6} {t.inactive:>8}"
        )
        lines += [f"note: {n}" for n in r.notes]
    lines += [f"wrote {p}" for p in made.files]
    return "\n".join(lines)


def _counts_dict(c: Counts) -> dict[str, Any]:
    return {
        "by_state": {s.value: n for s, n in sorted(c.by_state.items())},
        "created": c.created,
        "moved_in": c.moved_in,
        "moved_out": c.moved_out,
        "locked": [
            {"reason": why, "article": art, "count": n}
            for (why, art), n in sorted(c.locked.items())
        ],
        "revoked": c.revoked,
        "purged": c.purged,
        "restored": c.restored,
        "resets": c.resets,
        "never_logged_in": c.never_logged_in,
        "inactive": c.inactive,
    }


def summary_json(made: Written) -> str:
    r = made.report
    return json.dumps(
        {
            "profile": r.profile,
            "articles": list(r.articles),
            "period": [r.period.start.isoformat(), r.period.end.isoformat()],
            "made": r.made.isoformat(),
            "inactive_days": r.inactive_days,
            **({"province": _counts_dict(r.total)} if made.only is None else {}),
            "organisations": {
                o.code: {
                    "name": o.name,
                    **_counts_dict(o.counts),
                    "offices": {name: _counts_dict(c) for name, c in o.offices},
                }
                for o in made.orgs()
            },
            "notes": r.notes if made.only is None else [],
            "files": [str(p) for p in made.files],
        },
        ensure_ascii=False,
        indent=1,
    )
