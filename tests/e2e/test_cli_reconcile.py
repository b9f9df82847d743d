"""The `syncd` command as an operator runs it, against the test slapd."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from ldap3 import Connection

from tests.conftest import MakeConfig
from tests.e2e.test_daemon import wait_for
from tests.helpers import entries, write_roster


def syncd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_config_validate_accepts_a_good_configuration(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    result = syncd(tmp_path / "syncd.yaml", "config", "validate")
    assert result.returncode == 0, result.stderr
    assert "profile caobang-2025" in result.stdout and "5 organisations" in result.stdout


def test_config_validate_reports_every_error_with_exit_2(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(cfg.read_text().replace("domain: test.gov.vn", "domain: x\ncolour: red"))
    result = syncd(cfg, "config", "validate")
    assert result.returncode == 2
    assert "syncd.yaml:2: domain: 'x' is not a lowercase mail domain" in result.stderr
    assert "syncd.yaml:3: colour: unknown key" in result.stderr


def test_a_secret_file_others_can_read_is_warned_about(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    (tmp_path / "bind.pw").chmod(0o644)
    result = syncd(tmp_path / "syncd.yaml", "config", "validate")
    assert result.returncode == 0 and "readable or writable by others" in result.stderr
    (tmp_path / "bind.pw").chmod(0o640)  # the service group's: a documented way, no warning
    result = syncd(tmp_path / "syncd.yaml", "config", "validate")
    assert result.returncode == 0 and "bind.pw" not in result.stderr


def test_plan_then_reconcile_then_nothing_left(make_config: MakeConfig, tmp_path: Path) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(
        tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Đặng Văn Hùng,skhcn,,,,,"]
    )
    planned = syncd(cfg, "plan", "--roster", str(roster))
    assert planned.returncode == 0, planned.stderr
    assert "hungdv1.skhcn" in planned.stdout and "caobang-2025 Đ5.2" in planned.stdout
    applied = syncd(cfg, "reconcile", "--roster", str(roster), "--json")
    data = json.loads(applied.stdout)
    assert applied.returncode == 0 and data["applied"] is True
    assert data["plan"]["counts"] == {"create": 2, "create-org-mailbox": 2}
    again = json.loads(syncd(cfg, "plan", "--roster", str(roster), "--json").stdout)
    assert again["plan"]["actions"] == []


def test_decisions_and_decide(make_config: MakeConfig, tmp_path: Path) -> None:
    make_config(profile="hungyen-2025")
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(
        tmp_path / "r.csv", ["E1,Nguyễn Hoàng Phúc,khcn,,,,,", "E2,Nguyễn Hồng Phúc,khcn,,,,,"]
    )
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    [pending] = json.loads(syncd(cfg, "decisions", "--json").stdout)
    assert pending["kind"] == "uid-collision" and "nhphuc1.khcn" in pending["candidates"]
    assert syncd(cfg, "decide", "nope", "--ignore").returncode == 2
    assert syncd(cfg, "decide", pending["id"], "--uid", "nhphuc1.khcn").returncode == 0
    assert json.loads(syncd(cfg, "decisions", "--json").stdout) == []
    done = json.loads(syncd(cfg, "reconcile", "--roster", str(roster), "--json").stdout)
    assert [a["uid"] for a in done["plan"]["actions"]] == ["nhphuc1.khcn"]


def test_refused_run_exits_3_and_bad_roster_exits_2(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    rows = [f"E{i},Trần Văn Người{i},skhcn,,,,," for i in range(12)]
    assert (
        syncd(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", rows))).returncode
        == 0
    )
    refused = syncd(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "b.csv", rows[:2])))
    assert refused.returncode == 3 and "REFUSED" in refused.stdout
    bad = syncd(
        cfg, "reconcile", "--roster", str(write_roster(tmp_path / "c.csv", ["E1,,skhcn,,,,,"]))
    )
    assert bad.returncode == 2 and "row 2, column 'Họ và tên'" in bad.stdout
    assert syncd(cfg, "plan", "--now", "yesterday").returncode == 2


def test_unreachable_directory_is_a_clear_error(make_config: MakeConfig, tmp_path: Path) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    text = cfg.read_text()
    cfg.write_text(text.replace(text.split("url: ")[1].split("\n")[0], "ldap://127.0.0.1:1"))
    result = syncd(
        cfg, "plan", "--roster", str(write_roster(tmp_path / "r.csv", ["E1,Lê Văn A,skhcn,,,,,"]))
    )
    assert result.returncode == 1 and "cannot reach ldap://127.0.0.1:1" in result.stderr
    # --json: the same error as a JSON document on stdout, not an empty one
    as_json = syncd(cfg, "reconcile", "--json", "--roster", str(tmp_path / "r.csv"))
    assert as_json.returncode == 1 and "cannot reach" in as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["plan"] is None and answer["error"]["exit"] == 1
    assert answer["error"]["kind"] == "DirectoryError"
    assert "cannot reach ldap://127.0.0.1:1" in answer["error"]["message"]
    # an error before the run starts is a JSON document too (an attack found stdout empty)
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("profile: caobang-2025", "profile: no-such"))
    early = syncd(bad, "plan", "--json", "--roster", str(tmp_path / "r.csv"))
    assert early.returncode == 2 and json.loads(early.stdout)["error"]["exit"] == 2
    assert "no-such" in json.loads(early.stdout)["error"]["message"]
    both = syncd(cfg, "plan", "--json", "--latest", "--roster", str(tmp_path / "r.csv"))
    assert both.returncode == 2 and json.loads(both.stdout)["error"]["kind"] == "BadInput"


def created_then_moved(make_config: MakeConfig, tmp_path: Path) -> tuple[Path, Path]:
    """E1 Đàm Văn Hùng created in skhcn, then moved to syt, by two real runs of the CLI: the
    configuration file, and the roster of the move."""
    make_config()
    cfg = tmp_path / "syncd.yaml"
    first = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    moved = write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,syt,,,,,"])
    assert syncd(cfg, "reconcile", "--roster", str(first)).returncode == 0
    assert syncd(cfg, "reconcile", "--roster", str(moved)).returncode == 0
    return cfg, moved


def test_audit_verify_and_history_after_real_runs(make_config: MakeConfig, tmp_path: Path) -> None:
    cfg, _ = created_then_moved(make_config, tmp_path)
    ok = syncd(cfg, "audit", "verify")
    assert ok.returncode == 0 and ": ok — 5 records" in ok.stdout
    story = syncd(cfg, "history", "hungdv.syt").stdout
    assert "create" in story and "hungdv.skhcn → hungdv.syt" in story
    log = tmp_path / "state" / "audit.jsonl"
    log.write_text(log.read_text().replace("Đàm Văn Hùng", "Đàm Văn Hưng", 1))
    bad = syncd(cfg, "audit", "verify")
    assert bad.returncode == 1 and "edited" in bad.stderr


def test_history_and_show_print_times_on_the_provinces_clock(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """The audit keeps UTC; an operator in Cao Bằng reads local time (found by an attack:
    "2026-12-31T17:30" printed for a change made at 00:30 on 1 January)."""
    make_config()
    cfg = tmp_path / "syncd.yaml"
    first = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    done = syncd(cfg, "reconcile", "--roster", str(first), "--now", "2026-12-31T17:30:00+00:00")
    assert done.returncode == 0, done.stdout + done.stderr
    [record] = json.loads(syncd(cfg, "history", "hungdv.skhcn", "--json").stdout)
    utc = datetime.fromisoformat(record["time"])
    shown = utc.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d %H:%M:%S")
    story = syncd(cfg, "history", "hungdv.skhcn").stdout
    assert story.startswith(shown), (story, shown)
    assert record["time"][:19].replace("T", " ") not in story
    card = syncd(cfg, "show", "hungdv.skhcn").stdout
    assert f"  {shown}  create" in card, card
    # the clocks' reasons name the same day: the day it was in Cao Bằng, not UTC's
    assert "no activity since 2027-01-01 (made active by syncd)" in card, card
    assert "2026-12-31" not in card, card


def test_bad_configuration_or_catalogue_stops_before_the_directory_is_touched(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    good = cfg.read_text()
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    for broken in (
        good.replace("base_dn:", "base_dnn:"),
        good.replace("bind_password_file: bind.pw", "bind_password: hunter2"),
        good + "safety: {max_revoke_share: 3}\n",
    ):
        cfg.write_text(broken)
        result = syncd(cfg, "reconcile", "--roster", str(roster))
        assert result.returncode == 2 and "syncd.yaml:" in result.stderr
        assert entries(admin, base_dn) == {}
    cfg.write_text(good)
    orgs = tmp_path / "orgs.yaml"
    orgs.write_text(orgs.read_text() + "  - {code: dup, name: Dup, mailbox: sokhcn}\n")
    result = syncd(cfg, "reconcile", "--roster", str(roster))
    assert result.returncode == 2 and "'sokhcn' is already used" in result.stderr
    assert entries(admin, base_dn) == {}


def test_a_plan_piped_into_head_ends_quietly_not_as_an_internal_error(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: `syncd plan | head` ended in "internal error (BrokenPipeError)"
    and a crash file. The plan's table must outgrow the pipe's buffer for the write to fail."""
    make_config()
    rows = [f"E{i},Trần Văn Người Số{i},skhcn,,,,," for i in range(700)]
    roster = write_roster(tmp_path / "r.csv", rows)
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.cli", "-c", str(tmp_path / "syncd.yaml"), "plan",
         "--roster", str(roster), "--allow-mass-change"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("ACTION")
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read()
    assert proc.wait() == 141, err
    assert "internal error" not in err
    assert not (tmp_path / "state" / "crashes").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_stops_a_reconcile_after_the_actions_in_flight_with_a_report(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str, sig: int
) -> None:
    """Found by an attack: ``syncd reconcile`` (not the daemon) died at once on SIGTERM, with
    no report. Now it stops as the daemon does: what started finishes and is audited, the
    rest is skipped (the report says so), the journal is closed, and the next run finishes."""
    make_config(extra="safety: {max_revoke_share: 1}\n")
    cfg = tmp_path / "syncd.yaml"
    people = 8000  # enough that the signal lands mid-run
    rows = [f"E{i:04d},Trần Văn Người{i:04d},skhcn,,,,," for i in range(people)]
    roster = write_roster(tmp_path / "big.csv", rows)
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.cli", "-c", str(cfg), "reconcile", "--roster",
         str(roster)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert wait_for(lambda: len(entries(admin, base_dn)) > 10, timeout=60)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    # not killed by the signal, and not "done" either: actions were left for the next run
    assert proc.returncode == 1, err
    assert "stopping after the actions in flight" in err
    made = len(entries(admin, base_dn))
    assert made < people, "the signal came after the run: nothing was tested"
    assert "NOT ATTEMPTED" in out or "CHƯA THỰC HIỆN" in out, out[-2000:]
    assert not list((tmp_path / "state" / "journal").glob("*.jsonl"))  # ended, not dead
    audit = [json.loads(x) for x in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    assert all(r["result"] == "ok" for r in audit)
    assert len([r for r in audit if r["action"] in ("create", "create-org-mailbox")]) == made
    again = syncd(cfg, "reconcile", "--roster", str(roster))
    assert again.returncode == 0, again.stderr
    people_made = [e for e in entries(admin, base_dn).values() if e.get("employeeNumber")]
    assert len({e["employeeNumber"][0] for e in people_made}) == len(people_made) == people


def test_a_reconcile_of_the_inbox_makes_its_files_the_latest_roster_for_the_nightly_run(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: `syncd reconcile` without --roster (the inbox's files, no daemon)
    created a new person's mailbox but left an older roster the organisation's latest, so the
    next `--latest` (the nightly run) revoked the mailbox it had just made."""
    make_config()
    cfg = tmp_path / "syncd.yaml"
    first = write_roster(tmp_path / "r1.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    assert syncd(cfg, "reconcile", "--roster", str(first)).returncode == 0
    (tmp_path / "inbox").mkdir(exist_ok=True)
    write_roster(
        tmp_path / "inbox" / "r2.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Trần Thị Bình,skhcn,,,,,"]
    )
    applied = syncd(cfg, "reconcile", "--json")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["plan"]["counts"]["create"] == 1
    nightly = json.loads(syncd(cfg, "reconcile", "--latest", "--json").stdout)
    assert nightly["plan"]["actions"] == [], nightly["plan"]["actions"]
    made = entries(admin, base_dn)
    assert made["binhtt.skhcn"]["syncdState"] == ["active"]
