"""A safety stage over its limit is held back, the rest of the run applies, and the operator
sees it: in the report, in `plan`/`reconcile` output, in `--json`, and in exit code 3."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ldap3 import Connection

from connectors.outcome import EXIT_REFUSED, RunOutcome, report_text, summary_dict
from syncd.applier import Outcome, RunResult
from syncd.model import Action, ActionKind, Plan
from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import entries, write_roster

HELD = (
    "lock: 12 of 12 managed accounts (skhcn: 12) over safety.max_lock_share = 10%; held back "
    "— release with --allow-mass-change"
)


def _outcome(held: tuple[str, ...], failed: bool = False) -> RunOutcome:
    create = Action(ActionKind.CREATE, "maitl.skhcn", "skhcn", "hired", "caobang-2025 Đ7.1")
    plan = Plan(now=datetime(2027, 3, 1, tzinfo=UTC), actions=(create,), held=held)
    result = RunResult("r1")
    result.outcomes.append(Outcome(create, not failed, "busy" if failed else "", None))
    return RunOutcome("r1", plan=plan, result=result, applied=True)


def test_held_lines_are_reported_and_exit_3_though_the_rest_applied() -> None:
    outcome = _outcome((HELD,))
    assert outcome.exit_code == EXIT_REFUSED
    text = report_text(outcome, [])
    assert "TẠM GIỮ / HELD BACK by a safety limit (1); the rest of the run was applied:" in text
    assert f"  {HELD}" in text and "REFUSED" not in text
    assert "Đã thực hiện / applied: 1 ok, 0 failed" in text
    summary = summary_dict(outcome)
    assert summary["held"] == [HELD] and summary["refused"] is None
    assert summary["exit_code"] == 3 and summary["applied"] is True
    # held and failed: still 3, and the failure is in the report
    both = _outcome((HELD,), failed=True)
    assert both.exit_code == 3 and "FAILED create maitl.skhcn: busy" in report_text(both, [])
    assert _outcome(()).exit_code == 0 and summary_dict(_outcome(()))["held"] == []


def test_a_stage_over_its_limit_is_held_back_and_the_rest_applies(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Needs the planner to hold a stage back (Plan.held) instead of refusing the run."""
    make_config()
    cfg = tmp_path / "syncd.yaml"
    rows = [f"E{i},Trần Văn Người{i},skhcn,,,,," for i in range(12)]
    first = write_roster(tmp_path / "a.csv", rows)
    assert syncd(cfg, "reconcile", "--roster", str(first)).returncode == 0
    later = (datetime.now(UTC) + timedelta(days=100)).date().isoformat()
    grown = write_roster(tmp_path / "b.csv", [*rows, "E99,Lê Thị Mai,skhcn,,,,,"])

    planned = syncd(cfg, "plan", "--roster", str(grown), "--now", later)
    assert planned.returncode == 3, planned.stdout + planned.stderr
    assert "TẠM GIỮ / HELD BACK" in planned.stdout and "max_lock_share" in planned.stdout
    assert "REFUSED" not in planned.stdout and "mailt.skhcn" in planned.stdout

    applied = syncd(cfg, "reconcile", "--roster", str(grown), "--now", later, "--json")
    assert applied.returncode == 3, applied.stdout + applied.stderr
    assert "HELD BACK" not in applied.stderr
    data = json.loads(applied.stdout)
    assert data["applied"] is True and data["refused"] is None and data["exit_code"] == 3
    assert data["held"] and any("lock" in h for h in data["held"])
    assert {a["action"] for a in data["plan"]["held_actions"]} == {"lock"}
    assert {a["action"] for a in data["plan"]["actions"]} == {"create"}
    got = entries(admin, base_dn)
    assert got["mailt.skhcn"]["syncdState"] == ["active"]  # the rest of the run applied
    assert not [u for u, e in got.items() if e.get("syncdState") == ["locked"]]


def test_a_stage_held_back_from_a_filed_roster_is_released_with_latest(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: the release command the report gave read only the inbox (the filed
    roster had moved to processed/), so it did nothing and every nightly run held it again."""
    from connectors.inbox import InboxWatcher
    from connectors.loading import load_config

    make_config()
    cfg_path = tmp_path / "syncd.yaml"
    cfg = load_config(cfg_path)
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    rows = [f"E{i},Trần Văn Người{i},skhcn,,,,," for i in range(10)]
    assert InboxWatcher(cfg).process(write_roster(cfg.paths.inbox / "a.csv", rows))[0] == (
        "processed"
    )
    fewer = write_roster(cfg.paths.inbox / "b.csv", rows[:7])  # 3 of 10 leave: over 10 %
    where, outcome = InboxWatcher(cfg).process(fewer)
    assert where == "processed" and outcome is not None and outcome.plan is not None
    assert (
        outcome.plan.held
        and "syncd reconcile --latest --allow-mass-change" in (outcome.plan.held[0])
    )
    plan = syncd(cfg_path, "plan", "--latest")
    assert plan.returncode == 3 and "HELD revoke" in plan.stdout
    released = syncd(cfg_path, "reconcile", "--latest", "--allow-mass-change")
    assert released.returncode == 0, released.stdout + released.stderr
    got = entries(admin, base_dn)
    assert [got[f"nguoi{i}tv.skhcn"]["syncdState"][0] for i in (7, 8, 9)] == ["revoked"] * 3
