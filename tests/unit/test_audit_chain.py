"""The audit log's hash chain, rotation and history."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.audit import AuditLog, history, verify_audit


def _log(path: Path, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.record(run_id="r1", action="create", uid=f"u{i}.skhcn", result="ok")
    log.close()


def test_an_untouched_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 3)
    _log(path, 2)  # a second run continues the chain
    assert verify_audit(path) == (5, None)


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert", "swap"])
def test_any_tampering_is_found(tmp_path: Path, tamper: str) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 5)
    lines = path.read_text().splitlines()
    if tamper == "edit":
        lines[2] = lines[2].replace("u2.skhcn", "u9.skhcn")
    elif tamper == "delete":
        del lines[2]
    elif tamper == "insert":
        fake = json.loads(lines[1])
        fake["uid"] = "intruder"
        lines.insert(2, json.dumps(fake))
    else:
        lines[1], lines[2] = lines[2], lines[1]
    path.write_text("\n".join(lines) + "\n")
    count, problem = verify_audit(path)
    line = 2 if tamper == "swap" else 3
    assert problem is not None and count == line - 1 and f"audit.jsonl:{line}:" in problem


def test_the_chain_continues_across_a_monthly_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    last_month = AuditLog(path, clock=lambda: datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    last_month.record(action="create", uid="a.skhcn", result="ok")
    last_month.close()
    this_month = AuditLog(path, clock=lambda: datetime(2026, 11, 1, 0, 1, tzinfo=UTC))
    this_month.record(action="lock", uid="a.skhcn", result="ok")
    this_month.close()
    assert (tmp_path / "audit.jsonl.2026-10").exists()
    assert verify_audit(path) == (2, None)
    (tmp_path / "audit.jsonl.2026-10").unlink()  # losing an old month is found too
    assert "chain broken" in (verify_audit(path)[1] or "")


def test_history_follows_a_transfer(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record(action="create", uid="hungdv.skhcn", result="ok")
    log.record(action="create", uid="other.skhcn", result="ok")
    log.record(action="move", uid="hungdv.skhcn", new_uid="hungdv.syt", result="ok")
    log.record(action="lock", uid="hungdv.syt", result="ok")
    log.close()
    assert [r["action"] for r in history(path, "hungdv.syt")] == ["create", "move", "lock"]
    assert [r["action"] for r in history(path, "hungdv.skhcn")] == ["create", "move", "lock"]
