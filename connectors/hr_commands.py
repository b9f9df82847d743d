"""The bodies of ``syncd check``, ``syncd template`` and ``syncd show`` (``connectors.cli``
keeps only their options).

- ``check`` validates a roster exactly as a reconcile does — the same reader and the same
  intake, through the same runner as ``syncd plan`` — and never writes to the directory. By
  default it also reads the directory (read-only, the plan of a dry run) to say who would be
  created, transferred or revoked; ``--offline`` validates only, for a machine without the
  directory or before the bind secret is set up. Its result is the HR result an inbox file
  gets (``connectors.hr_files``), so what HR sees before sending is what it sees after.
- ``template`` writes the official workbook: the headers the reader accepts, drop-down lists
  for ``Trạng thái`` and ``Đề nghị`` made of words the reader knows, a sheet explaining each
  column, and the catalogue's organisations and offices when a configuration is at hand.
- ``show`` looks one account up by uid, address, employee number or name: its state, the
  lifecycle clocks (the same timeline ``syncd forecast`` and the planner use), aliases,
  pending decisions and requests, last activity and its source, and its audit history.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from connectors import runner
from connectors.audit import history
from connectors.config import Config
from connectors.hr_files import result_for, result_html, result_xlsx
from connectors.loading import (
    all_exemptions,
    lifecycle_inputs,
    load_catalogue,
    read_snapshots,
)
from connectors.localtime import in_zone
from connectors.outcome import EXIT_BAD_INPUT, EXIT_OK, RunOutcome
from connectors.roster.workbooks import Choice, Sheet, workbook_bytes
from connectors.store import StateStore, write_private
from syncd.errors import SyncdError
from syncd.hr_result import HrResult
from syncd.model import Account, emp_key
from syncd.naming.text import fold_words, name_key
from syncd.orgs import Catalogue
from syncd.plan.drift import closed_by_hand, missing_aliases, on_the_wire, primary_missing
from syncd.plan.lifecycle import activity_reference
from syncd.plan.lifecycle import forecast as lifecycle_forecast
from syncd.ports import Scope
from syncd.roster import HEADERS, REQUEST_WORDS, STATUS_WORDS

# -- check -----------------------------------------------------------------------------------


def check(config: Config, path: Path, offline: bool) -> tuple[HrResult, int]:
    """The HR result of ``path`` as a reconcile would make it, and the exit code (0 valid,
    2 rejected, 3 a safety limit would refuse or hold back; 1 the directory failed)."""
    catalogue = load_catalogue(config.orgs)
    if offline:
        snapshots, rejected = read_snapshots([path], catalogue, config)
        outcome = RunOutcome("check", snapshots=snapshots, rejected=rejected)
        result = result_for(config, outcome, path.name, catalogue, checking=True)
        return result, EXIT_BAD_INPUT if rejected else EXIT_OK
    outcome = runner.run(config, rosters=[path], dry_run=True, what="syncd check")
    return result_for(config, outcome, path.name, catalogue, checking=True), outcome.exit_code


def write_check(result: HrResult, out: Path) -> None:
    """``--out FILE.xlsx`` or ``FILE.html``: the HR result as HR would receive it."""
    suffix = out.suffix.lower()
    if suffix == ".xlsx":
        write_private(out, result_xlsx(result), mode=0o640)
    elif suffix in (".html", ".htm"):
        write_private(out, result_html(result), mode=0o640)
    else:
        raise SyncdError(f"--out {out}: name a .xlsx or .html file")


def check_text(result: HrResult) -> str:
    """What a terminal shows: the headline, each problem with its rows, each person's line."""
    lines = [f"{result.source}: {result.headline.vi}"]
    for p in result.problems:
        where = f"cột {p.column!r}, dòng {', '.join(map(str, p.rows))}" if p.rows else "cả tệp"
        shown = ", ".join(repr(v) for v in p.values[:5])
        lines.append(
            f"  LỖI {where}: {p.what.vi}"
            + (f" (giá trị {shown})" if p.rows else "")
            + f" — cần sửa: {p.fix.vi}"
            + (" [quản trị hệ thống]" if p.operator_fault else "")
            + (f"  / {p.what.en}" if p.what.en else "")
        )
    for person in result.people:
        row = f"dòng {person.row}" if person.row is not None else "ngoài tệp"
        tail = f" → {person.address}" if person.address else ""
        lines.append(
            f"  {row}: {person.employee_number} {person.full_name}: {person.what.vi}{tail}"
        )
    return "\n".join(lines) + "\n"


def result_json(result: HrResult) -> str:
    return json.dumps(dataclasses.asdict(result), ensure_ascii=False, indent=1)


# -- template --------------------------------------------------------------------------------

# The words offered in the drop-down lists, as HR writes them; each must be one the reader
# knows (syncd.roster STATUS_WORDS / REQUEST_WORDS: a test keeps them in step).
STATUS_CHOICES = ("đang công tác", "nghỉ hưu", "nghỉ việc", "chuyển công tác", "từ trần")
REQUEST_CHOICES = ("cấp mới", "cấp lại mật khẩu", "thu hồi", "khôi phục")

# field → (is it required, what to write), in the template's column order
EXPLAINED: dict[str, tuple[bool, str]] = {
    "employee_number": (
        True,
        "Mã cán bộ do phòng tổ chức cấp, mỗi người một mã, không đổi khi người đó chuyển "
        "đơn vị. Hệ thống nhận ra một người bằng mã này.",
    ),
    "full_name": (
        True,
        "Họ và tên đầy đủ, có dấu, gõ bằng Unicode. Tên hộp thư được đặt từ họ tên theo quy "
        "chế của tỉnh.",
    ),
    "org": (
        True,
        "Mã đơn vị theo danh mục (trang «Danh mục»), ví dụ skhcn; hoặc tên đầy đủ của đơn vị.",
    ),
    "office": (False, "Phòng/Ban trong đơn vị (mã hoặc tên theo danh mục); có thể để trống."),
    "title": (False, "Chức vụ; có thể để trống."),
    "birth_date": (False, "Ngày sinh, dạng ngày/tháng/năm (05/09/1980); có thể để trống."),
    "status": (
        False,
        "Chọn trong danh sách: " + ", ".join(STATUS_CHOICES) + ". Để trống: đang công tác. "
        "Người nghỉ hưu, nghỉ việc, chuyển công tác, từ trần bị thu hồi hộp thư.",
    ),
    "request": (
        False,
        "Đề nghị của đơn vị, chọn trong danh sách: " + ", ".join(REQUEST_CHOICES) + ". Mỗi "
        "đề nghị chỉ thực hiện một lần; để trống khi không đề nghị gì.",
    ),
    "exempt_reason": (
        False,
        "Lý do vắng mặt được thông báo (nghỉ phép, đi học, ốm đau): trong thời gian này hộp "
        "thư không bị tạm khóa vì không sử dụng.",
    ),
    "exempt_from": (False, "Ngày bắt đầu nghỉ (ngày/tháng/năm)."),
    "exempt_until": (False, "Ngày kết thúc nghỉ (ngày/tháng/năm); bắt buộc khi có lý do nghỉ."),
}


def template_bytes(catalogue: Catalogue | None) -> bytes:
    """The official roster workbook: sheet ``Danh sách`` first (the reader reads the first
    sheet), then ``Hướng dẫn`` (each column explained) and ``Danh mục`` (the catalogue)."""
    fields = list(EXPLAINED)
    header = [HEADERS[f][0] for f in fields]
    choices = [
        Choice(
            fields.index("status") + 1,
            STATUS_CHOICES,
            "Trạng thái",
            "Chọn trong danh sách; để trống nghĩa là đang công tác.",
        ),
        Choice(
            fields.index("request") + 1,
            REQUEST_CHOICES,
            "Đề nghị",
            "Chọn trong danh sách, hoặc để trống.",
        ),
    ]
    guide = [
        [HEADERS[f][0], "bắt buộc" if need else "không bắt buộc", text]
        for f, (need, text) in EXPLAINED.items()
    ]
    sheets = [
        Sheet("Danh sách", header, (), choices=choices, empty_rows=2000),
        Sheet(
            "Hướng dẫn",
            ["Cột", "Bắt buộc", "Cách ghi"],
            guide,
            lead=[
                "Mẫu danh sách cán bộ gửi hệ thống thư điện tử công vụ",
                "Mỗi dòng một người; giữ nguyên dòng tiêu đề; gửi danh sách đầy đủ của đơn vị "
                "(người không có trong danh sách sẽ bị thu hồi hộp thư).",
                "Trước khi gửi có thể kiểm tra tệp: syncd check <tệp>.",
            ],
        ),
    ]
    if catalogue is not None:
        rows = [[o.code, o.name, ""] for o in sorted(catalogue.orgs.values(), key=lambda o: o.code)]
        rows += [
            [o.code, o.name, parent]
            for (parent, _), o in sorted(catalogue.offices.items(), key=lambda kv: kv[0])
        ]
        sheets.append(Sheet("Danh mục", ["Mã", "Tên", "Thuộc đơn vị"], rows))
    return workbook_bytes(sheets)


def unknown_choices() -> list[str]:
    """Words offered in the template that the reader would not accept (must be none)."""
    return [w for w in STATUS_CHOICES if fold_words(w) not in STATUS_WORDS] + [
        w for w in REQUEST_CHOICES if fold_words(w) not in REQUEST_WORDS
    ]


# -- show ------------------------------------------------------------------------------------


def find_accounts(accounts: Sequence[Account], query: str, domain: str) -> list[Account]:
    """By uid or address (exact, any case), employee number (without case), then full name
    (tone marks kept, case and spacing aside: as adoption compares names)."""
    q = query.strip()
    low, key = q.lower(), emp_key(q)
    local = low.removesuffix(f"@{domain}")
    hits = [a for a in accounts if a.uid == local or low in (m.lower() for m in a.mail)]
    hits = hits or [a for a in accounts if a.employee_number and emp_key(a.employee_number) == key]
    if not hits and q:
        name = name_key(q)
        hits = [a for a in accounts if a.cn and name_key(a.cn) == name]
    return hits


def _days(when: datetime, now: datetime) -> int:
    return max(0, (when - now + timedelta(hours=23, minutes=59)).days)


def show(config: Config, query: str, now: datetime) -> list[dict[str, Any]]:
    """Everything syncd knows about the accounts ``query`` names (usually one)."""
    directory = runner.open_directory(config, [])
    directory.every_reason = True  # an active account's too: how it was made
    try:
        accounts = directory.read(Scope())
    finally:
        runner.close_directory(directory)
    found = find_accounts(accounts, query, config.domain)
    if not found:
        local = query.strip().lower().removesuffix(f"@{config.domain}".lower())
        owner = StateStore(config.paths.state).load().former.get(local)
        kept = (
            ""
            if owner is None
            else f"; its mailbox vanished from the directory and the name is kept for "
            f"{'the person ' + owner if owner else 'nobody (its holder is unknown)'}, never "
            "given to anyone else (docs/architecture.md, 'Names that belonged to someone')"
        )
        raise SyncdError(
            f"{query}: no account with this uid, address, employee number or name{kept}"
        )
    inputs = lifecycle_inputs(config, remember=False)  # looking changes nothing
    state = StateStore(config.paths.state).load()
    lifecycle = inputs.lifecycle(config)
    events = lifecycle_forecast(
        found,
        lifecycle,
        inputs.activity,
        all_exemptions(inputs, state),
        now,
        36500,
        zone=config.zone,
    )
    catalogue = load_catalogue(config.orgs)
    out = []
    for acc in found:
        org = catalogue.orgs.get(acc.org or "")
        office = catalogue.offices.get((acc.org or "", acc.office or "")) if acc.office else None
        last, source = activity_reference(acc, inputs.activity, lifecycle.activity.sources)
        imported = inputs.activity.get(acc.mail[0].lower() if acc.mail else "", {})
        emp = emp_key(acc.employee_number)
        decisions = [
            dataclasses.asdict(d) | {"kind": d.kind.value}
            for k, d in state.decisions.items()
            if k not in state.resolutions
            and ((emp and emp_key(d.employee_number) == emp) or acc.uid in d.candidates)
        ]
        requests = sorted(
            r.split("|", 1)[1] for r in state.done_requests if emp and r.split("|", 1)[0] == emp
        )
        out.append(
            {
                "uid": acc.uid,
                "dn": acc.dn,
                "name": acc.cn,
                "employee_number": acc.employee_number,
                "organisation": {"code": acc.org, "name": org.name if org else None},
                "office": {"code": acc.office, "name": office.name if office else None},
                "title": acc.title,
                "addresses": list(acc.mail),
                "aliases": list(acc.aliases),
                "state": acc.state.value,
                "state_since": acc.state_since.isoformat() if acc.state_since else None,
                "state_reason": acc.state_reason,
                "managed": acc.managed,
                "must_change_password": acc.must_change_password,
                # what on the wire no longer enforces the recorded state (syncd.plan.drift):
                # shown beside the state it contradicts, which the next run puts back
                "drift": [
                    *on_the_wire(acc, config.effective.lifecycle.locked_receives_mail),
                    *closed_by_hand(acc, config.effective.lifecycle.locked_receives_mail),
                    *(
                        f"old address {m} removed before its alias expires"
                        for m in missing_aliases(acc, now)
                    ),
                    *(primary_missing(acc, config.domain) if acc.managed else ()),
                ],
                "last_activity": {
                    "when": last.isoformat() if last else None,
                    "source": source,
                    "counts": list(lifecycle.activity.sources),
                    "article": lifecycle.activity.article,
                    "directory_login": acc.last_login.isoformat() if acc.last_login else None,
                    "imported": {k: v.isoformat() for k, v in sorted(imported.items())},
                },
                "clocks": [
                    {
                        "action": ev.kind.value,
                        "date": ev.when.isoformat(),
                        "days": _days(ev.when, now),
                        "rule": ev.rule,
                        "reason": ev.reason,
                        "article": ev.article,
                    }
                    for ev, a in events
                    if a.uid == acc.uid
                ],
                "pending_decisions": decisions,
                "requests_done": requests,
                "history": history(config.paths.audit_log, acc.uid),
            }
        )
    return out


def show_text(items: Sequence[dict[str, Any]], zone: tzinfo) -> str:
    """The items as an operator reads them, times in the province's ``zone``."""
    lines: list[str] = []
    for it in items:
        org, office = it["organisation"], it["office"]
        lines += [
            f"{it['uid']}  {it['name']}  ({it['employee_number'] or 'no employee number'})",
            f"  organisation  {org['name'] or org['code']} ({org['code']})"
            + (f", office {office['name'] or office['code']}" if office["code"] else ""),
            f"  addresses     {', '.join(it['addresses'])}",
            f"  state         {it['state']}"
            + (f" since {in_zone(it['state_since'], zone)}" if it["state_since"] else "")
            + (f" — {it['state_reason']}" if it["state_reason"] else "")
            + ("" if it["managed"] else " (unmanaged: syncd never touches it)"),
        ]
        for d in it["drift"]:
            lines.append(f"  changed by hand, not by syncd: {d}")
        if it["must_change_password"]:
            lines.append("  password      one-time password not changed yet")
        for alias in it["aliases"]:
            lines.append(f"  alias         {alias}")
        act = it["last_activity"]
        lines.append(
            f"  last activity {in_zone(act['when'], zone) if act['when'] else 'none'}"
            f" ({act['source'] or '-'}; counts: {'/'.join(act['counts'])} [{act['article']}])"
        )
        if not it["clocks"]:
            lines.append("  clocks        none running")
        for c in it["clocks"]:
            when = "due now" if c["days"] == 0 else f"in {c['days']} days"
            day = in_zone(c["date"], zone, date_only=True)
            lines.append(
                f"  clock         {c['action']} {when} ({day}): {c['reason']} [{c['article']}]"
            )
        for d in it["pending_decisions"]:
            lines.append(f"  decision      {d['id']} {d['kind']}: {d['summary']}")
        for r in it["requests_done"]:
            lines.append(f"  request done  {r}")
        for r in it["history"]:
            name = str(r.get("uid")) + (f" → {r['new_uid']}" if r.get("new_uid") else "")
            lines.append(
                f"  {in_zone(r.get('time'), zone):<19}  {r.get('action', ''):<16} {name} "
                f"{r.get('result', '')}: {r.get('reason', '')} [{r.get('article', '')}]"
            )
        lines.append("")
    return "\n".join(lines)


def show_json(items: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(items), ensure_ascii=False, indent=1, default=str)
