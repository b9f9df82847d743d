"""`syncd rules`, `forecast`, `lock` and `unlock` as an operator runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ldap3 import NONE, Connection, Server

from devtools.slapd_sandbox import Sandbox
from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import entries, write_roster


def test_rules_prints_every_rule_with_article_and_source(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config(
        profile="tuyenquang-2025",
        extra="rules:\n  lock_inactive: {after: 4m, article: 'tuyenquang-2025 Đ8.2a'}\n",
    )
    out = syncd(tmp_path / "syncd.yaml", "rules").stdout
    assert "lock_inactive          after 4m" in out and "syncd.yaml" in out
    assert "purge_locked           after 3y" in out and "tuyenquang-2025 Đ8.4" in out
    assert "(profile tuyenquang-2025)" in out
    assert "locked receives mail   no" in out and "lock --reason compromised" in out


def test_bad_rule_override_is_a_config_error(make_config: MakeConfig, tmp_path: Path) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(cfg.read_text() + "rules:\n  lock_inactive: {after: soon}\n  nap: 1\n")
    result = syncd(cfg, "config", "validate")
    assert result.returncode == 2
    assert "'soon' is not a duration" in result.stderr


def test_forecast_lists_coming_locks_by_organisation(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(
        tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,syt,,,,,"]
    )
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    assert "Nothing in the next 30 days" in syncd(cfg, "forecast", "--days", "30").stdout
    soon = syncd(cfg, "forecast", "--days", "95")
    assert "skhcn (1)" in soon.stdout and "syt (1)" in soon.stdout
    assert "lock" in soon.stdout and "caobang-2025 Đ8.2a" in soon.stdout
    future = (datetime.now(UTC) + timedelta(days=100)).date().isoformat()
    planned = syncd(cfg, "plan", "--roster", str(roster), "--now", future)
    assert planned.returncode == 3  # both accounts would lock: 100 % > max_lock_share
    assert "lock" in planned.stdout and "caobang-2025 Đ8.2a" in planned.stdout
    assert "max_lock_share" in planned.stdout
    data = json.loads(syncd(cfg, "forecast", "--days", "400", "--json").stdout)
    assert [e["action"] for e in data if e["uid"] == "hungdv.skhcn"] == ["lock", "revoke"]


def test_manual_lock_then_unlock(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    locked = syncd(cfg, "lock", "hungdv.skhcn", "--reason", "compromised", "--note", "leaked")
    assert locked.returncode == 0, locked.stderr
    got = entries(admin, base_dn)["hungdv.skhcn"]
    assert got["syncdState"] == ["locked"]
    assert "caobang-2025 Đ8.2b" in got["syncdStateReason"][0]
    assert syncd(cfg, "lock", "hungdv.skhcn", "--reason", "spam").returncode == 2  # already
    assert syncd(cfg, "lock", "nobody.skhcn", "--reason", "spam").returncode == 2
    unlocked = syncd(cfg, "unlock", "hungdv.skhcn")
    assert unlocked.returncode == 0
    slips = sorted((tmp_path / "outbox").glob("*/skhcn.csv"))
    password = slips[-1].read_text(encoding="utf-8-sig").splitlines()[1].split(",")[2]
    dn = f"uid=hungdv.skhcn,{base_dn}"
    assert Connection(Server(slapd.url, get_info=NONE), dn, password).bind()
    audit = (tmp_path / "state" / "audit.jsonl").read_text()
    assert password not in audit and '"action":"lock"' in audit
