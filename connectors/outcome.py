"""What a run came to: its outcome, the exit code it means, and the run report (Vietnamese
and English headings) written beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.loading import Rejected
from syncd.applier import RunResult
from syncd.model import Account, Plan
from syncd.report import counts_line, decisions_text
from syncd.roster import Snapshot

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3


@dataclass
class RunOutcome:
    run_id: str
    plan: Plan | None = None
    result: RunResult | None = None
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    slip_files: list[Path] = field(default_factory=list)
    report_path: Path | None = None
    applied: bool = False
    warned: int = 0  # lock warnings mailed this run
    accounts_by_state: dict[str, int] = field(default_factory=dict)  # managed persons read
    snapshots: list[Snapshot] = field(default_factory=list)
    # the accounts the run read: the HR result gives an unchanged person's address from them
    accounts: list[Account] = field(default_factory=list)
    # the quiet run this one repeated (connectors/quiet.py): its inputs were exactly those
    # of that run, so it planned nothing anew
    repeats: str | None = None
    repeat_ends: str = ""  # when a run is planned again at the latest, in local time
    # accounts a dead run may have set a password for without a slip: this run issues new
    # ones (the warning names ten; each is named again on the slip that pays it)
    owed: set[str] = field(default_factory=set)

    @property
    def exit_code(self) -> int:
        """README "Exit codes"; when several apply, the first of: 3 a safety limit refused the
        run or held a stage back (the rest applied), 1 actions failed, 2 input rejected."""
        if self.plan is not None and (self.plan.refused or self.plan.held):
            return EXIT_REFUSED
        if self.result is not None and self.result.failed:
            return EXIT_FAILED
        if not_attempted(self):  # stopped (SIGTERM) with actions left for the next run
            return EXIT_FAILED
        if self.rejected:
            return EXIT_BAD_INPUT
        return EXIT_OK


def report_text(outcome: RunOutcome, files: Sequence[Path]) -> str:
    """The run report: Vietnamese and English headings, what was done, what was not and why."""
    plan = outcome.plan
    lines = [f"syncd — báo cáo lần chạy / run report {outcome.run_id}"]
    lines.append(f"Tệp / files: {', '.join(p.name for p in files) or '(none)'}")
    for w in outcome.warnings:
        lines.append(f"Cảnh báo / warning: {w}")
    for r in outcome.rejected:
        lines.append(f"Lỗi dữ liệu / input errors in {r.source}:")
        lines += [f"  {e}" for e in r.errors]
    if plan is not None:
        if plan.refused:
            lines.append(f"TỪ CHỐI / REFUSED by a safety limit: {plan.refused}")
            lines.append("Nothing was changed. Re-run with --allow-mass-change if this is meant.")
        if plan.held:
            rest = "was applied" if outcome.applied else "would apply"
            lines.append(
                f"TẠM GIỮ / HELD BACK by a safety limit ({len(plan.held)}); "
                f"the rest of the run {rest}:"
            )
            lines += [f"  {h}" for h in plan.held]
        lines.append(f"Kế hoạch / plan: {counts_line(plan.counts())}")
        for n in plan.notices:
            lines.append(f"Ghi chú / notice: {n}")
        if plan.decisions:
            lines.append(f"Chờ quyết định / pending decisions ({len(plan.decisions)}):")
            lines += ["  " + x for x in decisions_text(plan.decisions).splitlines()]
    res = outcome.result
    if res is not None:
        done = len(res.outcomes) - len(res.failed)
        lines.append(f"Đã thực hiện / applied: {done} ok, {len(res.failed)} failed")
        if skipped := not_attempted(outcome):
            # a run that stopped early (the directory lost, or SIGTERM) must not read as if
            # the failures listed were all that is missing (found by an attack: "180 ok, 12
            # failed" with 2,811 creates never tried)
            lines.append(
                f"CHƯA THỰC HIỆN / NOT ATTEMPTED: {skipped} planned action(s): the run stopped "
                "early (the directory was lost, or a stop was asked); the next run plans them "
                "again"
            )
        for o in res.failed:
            lines.append(f"  FAILED {o.action.kind.value} {o.action.uid}: {o.error}")
    elif plan is not None and not plan.refused:
        if plan.actions:
            lines.append("Chưa áp dụng / not applied (plan only)")
        elif plan.held_actions:
            lines.append(
                "Không có gì khác / nothing else to do: the stage held back above waits for "
                "the operator"
            )
        elif outcome.rejected:
            lines.append("Không áp dụng gì / nothing applied: see the input errors above")
        else:
            lines.append("Không có gì để làm / nothing to do.")
        if outcome.repeats:
            lines.append(
                f"Không có gì thay đổi kể từ lần chạy {outcome.repeats}: cùng danh sách nhân "
                "sự, cấu hình, trạng thái và dữ liệu thư mục; không lập lại kế hoạch (lập lại "
                f"chậm nhất lúc {outcome.repeat_ends}, hoặc ngay khi có thay đổi) / nothing "
                f"changed since run {outcome.repeats}: the same rosters, configuration, state "
                "and directory entries; not planned again (planned anew at "
                f"{outcome.repeat_ends} at the latest, or as soon as any of them changes)"
            )
    if outcome.warned:
        lines.append(f"Cảnh báo sắp khóa / lock warnings mailed: {outcome.warned}")
    if outcome.slip_files:
        folder = outcome.slip_files[0].parent
        own = [p for p in outcome.slip_files if p.parent == folder]  # the outbox's copies
        orgs = sorted({p.stem for p in own})
        delivered = len(outcome.slip_files) - len(own)  # one page file per organisation
        lines.append(
            f"Phiếu mật khẩu / credential slips (CSV + HTML, mode 0600): {folder}/ "
            f"for {', '.join(orgs)}"
            + (
                f"; delivered to {delivered} organisation folder(s) (slips.hr_area)"
                if delivered
                else ""
            )
        )
    return "\n".join(lines) + "\n"


def not_attempted(outcome: RunOutcome) -> int:
    """How many of the plan's actions a run that stopped early never tried (0 otherwise)."""
    res, plan = outcome.result, outcome.plan
    if res is None or plan is None or not res.stopped:
        return 0
    return max(len(plan.actions) - len(res.outcomes), 0)


def summary_dict(outcome: RunOutcome) -> dict[str, Any]:
    res = outcome.result
    return {
        "run_id": outcome.run_id,
        "applied": outcome.applied,
        "exit_code": outcome.exit_code,
        "refused": outcome.plan.refused if outcome.plan else None,
        "held": list(outcome.plan.held) if outcome.plan else [],
        "rejected": [{"source": r.source, "errors": r.errors} for r in outcome.rejected],
        "failed": [
            {"action": o.action.kind.value, "uid": o.action.uid, "error": o.error}
            for o in (res.failed if res else [])
        ],
        "not_attempted": not_attempted(outcome),
        "repeats": outcome.repeats,
        "warnings": list(outcome.warnings),  # as the report's "Cảnh báo / warnings" lines
        "slips": [str(p) for p in outcome.slip_files],
        "report": str(outcome.report_path) if outcome.report_path else None,
    }
