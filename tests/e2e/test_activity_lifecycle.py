"""End to end: what the real mail servers recorded drives the lifecycle clocks.

The accounts are made by ``syncd reconcile`` (``--now`` in the past, so that a sweep a few
weeks ahead falls past the inactivity limit), real Dovecot and Postfix record logins and
mail (tests/integration/test_activity_sources.py), ``syncd.yaml`` names them in
``lifecycle.activity_sources``, and the sweep (``syncd reconcile`` with an empty inbox: the
lifecycle clocks only) locks or spares each mailbox as its province's article says. ``syncd
show`` and ``syncd forecast`` name the source of the last activity.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ldap3 import Connection

from devtools.slapd_sandbox import Sandbox
from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import write_roster
from tests.integration.test_activity_sources import (
    Postfix,
    last_login_conf,
    running,  # noqa: F401 (fixture)
    scratch,  # noqa: F401 (fixture)
    vietnam_time,  # noqa: F401 (fixture)
    written,
)
from tests.integration.test_mail_servers import (
    CHOSEN,
    DOMAIN,
    DOVECOT,
    Dovecot,
    _require,
    change_own_password,
    documented,
    find_dn,
    slip_password,
)

NOW = datetime.now(UTC)


def when(days: int) -> str:
    return (NOW + timedelta(days=days)).isoformat(timespec="seconds")


def ok(cfg: Path, *args: str) -> str:
    done = syncd(cfg, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def show(cfg: Path, uid: str, days: int) -> dict[str, Any]:
    [found] = json.loads(ok(cfg, "show", uid, "--json", "--now", when(days)))
    assert isinstance(found, dict)
    return found


def test_hungyen_counts_only_send_and_receive_from_the_real_mail_log(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    running: list[Dovecot | Postfix],  # noqa: F811
    vietnam_time: None,  # noqa: F811
) -> None:
    """Hưng Yên Đ7.2a: no send/receive for 3 months locks; a login alone does not count."""
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    dovecot = Dovecot(slapd, base_dn, documented("dovecot", "openldap"))
    running.append(dovecot)
    make_config(profile="hungyen-2025")
    cfg = tmp_path / "syncd.yaml"
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"]
    roster = write_roster(tmp_path / "a.csv", rows)
    ok(cfg, "reconcile", "--roster", str(roster), "--now", when(-80))
    login_dn, logs_in = find_dn(admin, base_dn, "E1")
    receive_dn, receives = find_dn(admin, base_dn, "E2")
    postfix = Postfix([f"{logs_in}@{DOMAIN}", f"{receives}@{DOMAIN}"])
    running.append(postfix)
    make_config(
        profile="hungyen-2025",
        extra=f"""lifecycle:
  activity_sources:
    - {{type: mail-log, path: {postfix.maillog}, name: postfix}}
    - {{type: mail-log, path: {dovecot.root}/dovecot.log, activity: [login], name: dovecot}}
safety: {{max_lock_share: 1}}
""",
    )

    # both have chosen their own password (Đ7.2d locks a kept one-time password); E1 logs
    # in (Dovecot binds to slapd: the directory records it too) but never mails; E2 only
    # receives a message from outside
    change_own_password(slapd, login_dn, slip_password(tmp_path, logs_in), CHOSEN)
    change_own_password(slapd, receive_dn, slip_password(tmp_path, receives), CHOSEN)
    assert dovecot.login(logs_in, CHOSEN), dovecot.log()
    postfix.send("vanthu@example.org", f"{receives}@{DOMAIN}")
    assert show(cfg, logs_in, 0)["last_activity"]["directory_login"] is not None

    forecast = json.loads(ok(cfg, "forecast", "--days", "120", "--json", "--now", when(0)))
    [lock] = [e for e in forecast if e["uid"] == receives and e["action"] == "lock"]
    assert "(last receive (postfix))" in lock["reason"], lock

    ok(cfg, "reconcile", "--now", when(20))  # the sweep: no roster, the clocks only
    locked = show(cfg, logs_in, 20)
    assert locked["state"] == "locked", locked
    assert "hungyen-2025 Đ7.2a" in json.dumps(locked["history"], ensure_ascii=False)
    spared = show(cfg, receives, 20)
    assert spared["state"] == "active", spared
    assert spared["last_activity"]["source"] == "last receive (postfix)"
    assert spared["last_activity"]["counts"] == ["send", "receive"]


def test_caobang_counts_a_login_only_dovecot_recorded_in_its_last_login_dict(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    scratch: Path,  # noqa: F811
    running: list[Dovecot | Postfix],  # noqa: F811
    vietnam_time: None,  # noqa: F811
) -> None:
    """Cao Bằng Đ8.2a: 90 days without a login locks. This Dovecot checks the password
    itself (a passwd-file, no bind to the directory), so only its last_login dict knows."""
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    make_config(profile="caobang-2025")
    cfg = tmp_path / "syncd.yaml"
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"]
    ok(
        cfg,
        "reconcile",
        "--roster",
        str(write_roster(tmp_path / "a.csv", rows)),
        "--now",
        when(-85),
    )
    _, active = find_dn(admin, base_dn, "E1")
    _, idle = find_dn(admin, base_dn, "E2")
    (scratch / "users").write_text(f"{active}:{{PLAIN}}Own!pass-4::::::\n", encoding="utf-8")
    passwd_file = f"passdb {{\n  driver = passwd-file\n  args = {scratch}/users\n}}\n"
    dovecot = Dovecot(
        slapd,
        base_dn,
        documented("dovecot", "openldap"),
        last_login_conf(scratch, "file") + passwd_file,
    )
    running.append(dovecot)
    assert dovecot.login(active, "Own!pass-4"), dovecot.log()
    written(scratch, "file", dovecot)
    # the site names the dict Dovecot writes (a missing one is an error, not silence)
    make_config(
        profile="caobang-2025",
        extra="lifecycle:\n  activity_sources:\n"
        f"    - {{type: dovecot-dict, path: {scratch}/lastlogin}}\n"
        "safety: {max_lock_share: 1}\n",
    )

    ok(cfg, "reconcile", "--now", when(10))  # the sweep
    assert show(cfg, idle, 10)["state"] == "locked"
    kept = show(cfg, active, 10)
    assert kept["state"] == "active", kept
    assert kept["last_activity"]["directory_login"] is None  # slapd never saw this login
    assert kept["last_activity"]["source"] == f"last login (dovecot-dict {scratch}/lastlogin)"


def test_an_unreadable_activity_source_stops_the_run_naming_the_file_and_changes_nothing(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A missing mail log is no "nobody mailed": for Hưng Yên that would lock everyone."""
    missing = tmp_path / "logs" / "mail.log"
    make_config(
        profile="hungyen-2025",
        extra=f"lifecycle:\n  activity_sources:\n    - {{type: mail-log, path: {missing}}}\n",
    )
    roster = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    done = syncd(tmp_path / "syncd.yaml", "reconcile", "--roster", str(roster))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{missing}: mail log not found" in done.stderr
    admin.search(base_dn, "(uid=*)", attributes=["uid"])
    assert [e for e in admin.response if e.get("type") == "searchResEntry"] == []


def test_plan_show_and_report_keep_no_reading_progress_a_reconcile_does(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """``syncd plan`` saves nothing (docs/architecture.md), and looking (show, forecast,
    report) changes nothing: only a run that applies moves the mail log's reading position."""
    log = tmp_path / "logs" / "mail.log"
    log.parent.mkdir()
    log.write_text(
        "Nov 20 08:00:01 mx postfix/smtpd[1]: 4A1: client=x[127.0.0.1], sasl_method=PLAIN, "
        "sasl_username=hungdv.skhcn@test.gov.vn\n",
        encoding="utf-8",
    )
    make_config(
        profile="hungyen-2025",
        extra=f"lifecycle:\n  activity_sources:\n    - {{type: mail-log, path: {log}}}\n",
    )
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    progress = tmp_path / "state" / "activity"

    def kept() -> list[str]:
        return sorted(p.name for p in progress.iterdir()) if progress.exists() else []

    assert syncd(cfg, "plan", "--roster", str(roster)).returncode == 0
    assert syncd(cfg, "forecast").returncode == 0
    assert syncd(cfg, "report", "--year", "2026", "--out", str(tmp_path / "r")).returncode == 0
    assert kept() == []
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    assert kept() != []
