"""``syncd audit verify`` as an operator runs it, on the log real reconciles wrote against a
real slapd: ok with counts, exact failures with exit 1, a crash between a record and its head
that is not tampering, and a key that cannot be used as one clear line (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ldap3 import Connection

from tests.conftest import MakeConfig
from tests.helpers import entries, write_roster

PEOPLE = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,", "E3,Hoàng Văn Phúc,syt,,,,,"]


def syncd(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**{k: v for k, v in os.environ.items() if k != "SYNCD_CRASH_AT"}, **(env or {})},
    )


def _reconciled(make_config: MakeConfig, tmp_path: Path, env: dict[str, str] | None = None) -> Path:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(tmp_path / "a.csv", PEOPLE)
    done = syncd(cfg, "reconcile", "--roster", str(roster), env=env)
    if env is None:
        assert done.returncode == 0, done.stdout + done.stderr
    return cfg


def test_audit_verify_says_ok_with_counts_and_names_each_failure(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = _reconciled(make_config, tmp_path)
    log = tmp_path / "state" / "audit.jsonl"
    n = len(log.read_text(encoding="utf-8").splitlines())
    ok = syncd(cfg, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert f"audit.jsonl: ok — {n} records (numbers 1–{n}) in 1 file(s)" in ok.stdout
    assert f"head at record {n}" in ok.stdout

    as_json = json.loads(syncd(cfg, "audit", "verify", "--json").stdout)
    assert as_json["ok"] and as_json["records"] == n and as_json["head"] == n

    lines = log.read_text(encoding="utf-8").splitlines()
    log.write_text("".join(x + "\n" for x in lines[:-2]), encoding="utf-8")  # newest 2 gone
    broken = syncd(cfg, "audit", "verify")
    assert broken.returncode == 1
    assert f"audit.jsonl: ends at record {n - 2}, but the head" in broken.stderr
    assert f"records {n - 1}–{n} missing" in broken.stderr
    assert "NOT intact — 1 problem(s)" in broken.stderr

    log.unlink()
    gone = syncd(cfg, "audit", "verify")
    assert gone.returncode == 1 and "audit.jsonl: missing, but the head" in gone.stderr


def test_a_run_killed_between_a_record_and_its_head_verifies_and_the_next_run_mends_it(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = _reconciled(make_config, tmp_path, env={"SYNCD_CRASH_AT": "audit written:2"})
    state = tmp_path / "state"
    head = json.loads((state / "audit.head").read_text())
    # the run's one batch: its records are on disk together, the head is not moved yet
    n = len((state / "audit.jsonl").read_text(encoding="utf-8").splitlines())
    assert head["seq"] == 0 and n >= 2
    after_crash = syncd(cfg, "audit", "verify")
    assert after_crash.returncode == 0, after_crash.stderr
    assert f"note: records 1–{n} past the head" in after_crash.stdout

    roster = write_roster(tmp_path / "a.csv", PEOPLE)
    again = syncd(cfg, "reconcile", "--roster", str(roster))
    assert again.returncode == 0, again.stdout + again.stderr
    mended = syncd(cfg, "audit", "verify")
    assert mended.returncode == 0 and "note:" not in mended.stdout, mended.stdout


def test_a_damaged_audit_key_is_one_clear_line_and_nothing_is_applied(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = _reconciled(make_config, tmp_path)
    key = tmp_path / "state" / "audit.key"
    key.write_text("garbage\n")
    hired = write_roster(tmp_path / "b.csv", [*PEOPLE, "E4,Nông Thị Lan,syt,,,,,"])
    for args in (("audit", "verify"), ("reconcile", "--roster", str(hired))):
        out = syncd(cfg, *args)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = [x for x in out.stderr.splitlines() if x.strip()]
        assert lines == [f"Error: {key}: not an audit key (64 hexadecimal digits expected)"], (
            out.stderr
        )
    assert ["E4"] not in [e.get("employeeNumber") for e in entries(admin, base_dn).values()]
