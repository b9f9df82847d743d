"""Operator commands as an operator runs them: the state machine decides, errors map to one set
of exit codes, and every manual action names who ran it."""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from ldap3 import Connection

from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import created_then_moved
from tests.helpers import entries, write_roster


def syncd(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def audit_records(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "state" / "audit.jsonl"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def login_user() -> str:
    """Who the audit log should name: the login uid when the kernel has one, else us."""
    try:
        raw = int(Path("/proc/self/loginuid").read_text(encoding="ascii"))
    except (OSError, ValueError):
        raw = 4294967295
    return pwd.getpwuid(os.geteuid() if raw == 4294967295 else raw).pw_name


def one_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_lock_of_a_revoked_mailbox_is_refused_and_changes_nothing(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    hired = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"]
    assert (
        syncd(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", hired))).returncode
        == 0
    )
    assert syncd(cfg, "lock", "hungdv.skhcn", "--reason", "compromised").returncode == 0
    retired = write_roster(
        tmp_path / "b.csv", ["E1,Đàm Văn Hùng,skhcn,,,,nghỉ hưu,", "E2,Lê Thị Mai,skhcn,,,,,"]
    )
    revoked = syncd(cfg, "reconcile", "--roster", str(retired))
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    before = entries(admin, base_dn)["hungdv.skhcn"]
    assert before["syncdState"] == ["revoked"]
    log = tmp_path / "state" / "audit.jsonl"
    audit_before = log.read_bytes()

    refused = syncd(cfg, "lock", "hungdv.skhcn", "--reason", "compromised")
    assert refused.returncode == 2
    line = one_line(refused.stderr)
    assert "lock refused: hungdv.skhcn is revoked" in line and "purge clock" in line
    assert entries(admin, base_dn)["hungdv.skhcn"] == before  # modifyTimestamp included
    assert log.read_bytes() == audit_before  # no record of a change, nor of an attempt


def test_restore_of_an_active_and_lock_of_a_locked_mailbox_are_refused(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    log = tmp_path / "state" / "audit.jsonl"
    active = entries(admin, base_dn)["hungdv.skhcn"]
    size = log.stat().st_size

    restore = syncd(cfg, "restore", "hungdv.skhcn")
    assert restore.returncode == 2
    assert "restore refused: hungdv.skhcn is already active" in one_line(restore.stderr)
    assert entries(admin, base_dn)["hungdv.skhcn"] == active and log.stat().st_size == size
    assert not list((tmp_path / "outbox").glob("*/skhcn.csv"))[1:]  # no new password slip

    assert syncd(cfg, "lock", "hungdv.skhcn", "--reason", "spam").returncode == 0
    locked = entries(admin, base_dn)["hungdv.skhcn"]
    size = log.stat().st_size
    again = syncd(cfg, "lock", "hungdv.skhcn", "--reason", "malware")
    assert again.returncode == 2
    assert "lock refused: hungdv.skhcn is already locked by an operator" in one_line(again.stderr)
    assert entries(admin, base_dn)["hungdv.skhcn"] == locked and log.stat().st_size == size


def test_lock_and_restore_record_the_operator(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    sudo = {"SUDO_USER": "ops-alice"}
    assert syncd(cfg, "lock", "hungdv.skhcn", "--reason", "spam", env=sudo).returncode == 0
    assert syncd(cfg, "restore", "hungdv.skhcn", env=sudo).returncode == 0
    me = login_user()
    records = audit_records(tmp_path)
    for command in ("lock", "restore"):
        [done] = [r for r in records if r["action"] == command and "operator" in r]
        assert done["uid"] == "hungdv.skhcn" and done["result"] == "ok"
        assert done["operator"]["user"] == me and done["operator"]["sudo_user"] == "ops-alice"
        assert f"by {me} (sudo from ops-alice)" in done["reason"]
    # the directory's own record of the state says who, too
    got = entries(admin, base_dn)["hungdv.skhcn"]
    assert f"by {me}" in got["syncdStateReason"][0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_directory_exits_1_from_every_command(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    text = cfg.read_text()
    url = f"ldap://127.0.0.1:{_closed_port()}"
    cfg.write_text(text.replace(text.split("url: ")[1].split("\n")[0], url))
    roster = str(write_roster(tmp_path / "r.csv", ["E1,Lê Văn A,skhcn,,,,,"]))
    for args in (
        ("reconcile", "--roster", roster),
        ("plan", "--roster", roster),
        ("lock", "ala.skhcn", "--reason", "spam"),
        ("restore", "ala.skhcn"),
        ("unlock", "ala.skhcn"),
        ("forecast",),
    ):
        result = syncd(cfg, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert f"cannot reach {url}" in one_line(result.stderr), args


def _forecast_raising(cfg: Path, error: str) -> subprocess.CompletedProcess[str]:
    """``syncd -c cfg forecast`` in a process of its own whose forecast raises ``error`` (a
    Python expression; ``errno`` is imported)."""
    script = (
        "import errno, sys\n"
        "from connectors import cli, runner\n"
        "def forecast(*args, **kwargs):\n"
        f"    raise {error}\n"
        "runner.forecast = forecast\n"
        "sys.argv = ['syncd', '-c', sys.argv[1], 'forecast']\n"
        "cli.main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(cfg)], capture_output=True, text=True, check=False
    )


def test_an_unexpected_error_is_one_line_exit_70_and_the_traceback_is_kept(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    result = _forecast_raising(tmp_path / "syncd.yaml", "RuntimeError('boom\\nin two lines')")
    assert result.returncode == 70
    line = one_line(result.stderr)
    assert "internal error (RuntimeError: boom in two lines)" in line
    [kept] = (tmp_path / "state" / "crashes").iterdir()
    assert str(kept) in line
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert "Traceback" in kept.read_text() and "boom" in kept.read_text()


def test_a_full_disk_is_a_clear_error_exit_1_not_an_internal_one(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: the outbox's disk full ended in "internal error (OSError …)",
    exit 70, and a traceback file (itself on the full disk). It is the host's to mend."""
    make_config()
    result = _forecast_raising(
        tmp_path / "syncd.yaml",
        "OSError(errno.ENOSPC, 'No space left on device', '/srv/outbox/r/skhcn.csv')",
    )
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert "No space left on device (/srv/outbox/r/skhcn.csv)" in line and "run again" in line
    assert "internal error" not in line
    assert not (tmp_path / "state" / "crashes").exists() or not any(
        (tmp_path / "state" / "crashes").iterdir()
    )


def _legacy(admin: Connection, base_dn: str) -> None:
    assert admin.add(
        f"uid=datnv,{base_dn}",
        ["inetOrgPerson"],
        {"uid": "datnv", "cn": "Nông Văn Đạt", "sn": "Nông", "ou": "skhcn"},
    ), admin.result


def _unlinked(cfg: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    roster = write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    pending = json.loads(syncd(cfg, "decisions", "--json").stdout)
    [decision] = [d for d in pending if d["kind"] == "unlinked-account"]
    assert "datnv" in decision["summary"]
    return roster, decision


def test_decide_revoke_records_the_resolution_and_the_operator(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    _legacy(admin, base_dn)
    make_config()
    cfg = tmp_path / "syncd.yaml"
    _, decision = _unlinked(cfg, tmp_path)
    link = syncd(cfg, "decide", decision["id"], "--link", "datnv")
    assert link.returncode == 2 and "--revoke or --ignore" in one_line(link.stderr)
    done = syncd(cfg, "decide", decision["id"], "--revoke", env={"SUDO_USER": "ops-bob"})
    assert done.returncode == 0, done.stderr
    assert json.loads(syncd(cfg, "decisions", "--json").stdout) == []
    state = json.loads((tmp_path / "state" / "state.json").read_text(encoding="utf-8"))
    me = login_user()
    res = state["resolutions"][decision["id"]]
    assert res["how"] == "revoke" and res["by"] == f"{me} (sudo from ops-bob)" and res["at"]
    [record] = [r for r in audit_records(tmp_path) if r["action"] == "decide"]
    assert record["decision"] == decision["id"] and record["resolution"] == "revoke"
    assert record["decision_kind"] == "unlinked-account" and record["org"] == "skhcn"
    assert record["operator"]["user"] == me and record["operator"]["sudo_user"] == "ops-bob"
    assert syncd(cfg, "audit", "verify").returncode == 0


def test_decide_revoke_then_reconcile_revokes_the_unlinked_account(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Needs the planner to emit the REVOKE from ``Resolve.REVOKE``."""
    _legacy(admin, base_dn)
    make_config()
    cfg = tmp_path / "syncd.yaml"
    roster, decision = _unlinked(cfg, tmp_path)
    assert syncd(cfg, "decide", decision["id"], "--revoke").returncode == 0
    applied = syncd(cfg, "reconcile", "--roster", str(roster), "--json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    actions = json.loads(applied.stdout)["plan"]["actions"]
    assert [(a["action"], a["uid"]) for a in actions] == [("revoke", "datnv")]
    got = entries(admin, base_dn)
    assert got["datnv"]["syncdState"] == ["revoked"]
    assert got["hungdv.skhcn"]["syncdState"] == ["active"]
    assert json.loads(syncd(cfg, "decisions", "--json").stdout) == []


def _hungyen_collision(make_config: MakeConfig, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Hưng Yên Đ5.3: a second Nguyễn H. Phúc at khcn waits for an operator; its decision."""
    make_config(profile="hungyen-2025")
    cfg = tmp_path / "syncd.yaml"
    roster = write_roster(
        tmp_path / "r.csv", ["E1,Nguyễn Hoàng Phúc,khcn,,,,,", "E2,Nguyễn Hồng Phúc,khcn,,,,,"]
    )
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    [pending] = json.loads(syncd(cfg, "decisions", "--json").stdout)
    return cfg, pending


def test_decide_revoke_is_refused_for_other_kinds_of_decision(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg, pending = _hungyen_collision(make_config, tmp_path)
    refused = syncd(cfg, "decide", pending["id"], "--revoke")
    assert refused.returncode == 2
    line = one_line(refused.stderr)
    assert "is a uid-collision decision: --revoke is only for an unlinked account" in line
    assert json.loads(syncd(cfg, "decisions", "--json").stdout) == [pending]
    assert not [r for r in audit_records(tmp_path) if r["action"] == "decide"]
    assert syncd(cfg, "decide", pending["id"], "--ignore", "--revoke").returncode == 2


def test_decide_uid_refuses_a_name_an_entry_already_holds(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: a uid that a hand-made entry held was recorded with exit 0; the
    next plan only noted it and never gave it. Held as a uid, as an address, or as an old
    address kept after a transfer: refused now, naming the entry."""
    cfg, pending = _hungyen_collision(make_config, tmp_path)
    assert admin.add(f"uid=nhphuc3.khcn,{base_dn}", ["account"], {"uid": "nhphuc3.khcn"})
    assert admin.add(
        f"cn=hopthu,{base_dn}",
        ["organizationalRole", "extensibleObject"],
        {"cn": "hopthu", "mail": ["nhphuc4.khcn@test.gov.vn"]},
    ), admin.result
    [first] = [uid for uid, e in entries(admin, base_dn).items() if e.get("employeeNumber")]
    for taken, holder in (
        ("nhphuc3.khcn", f"uid=nhphuc3.khcn,{base_dn}"),
        ("nhphuc4.khcn", f"cn=hopthu,{base_dn}"),
        (first, f"uid={first},"),  # the first Phúc's own
    ):
        refused = syncd(cfg, "decide", pending["id"], "--uid", taken)
        assert refused.returncode == 2, refused.stderr
        assert f"--uid {taken}: already taken in the directory by" in one_line(refused.stderr)
        assert holder.split(",")[0] in one_line(refused.stderr)
    assert json.loads(syncd(cfg, "decisions", "--json").stdout) == [pending]
    assert syncd(cfg, "decide", pending["id"], "--uid", "nhphuc5.khcn").returncode == 0


def test_decide_uid_refuses_what_can_never_be_a_mailbox_here(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: any --uid was 'recorded' with exit 0 and refused only later."""
    cfg, pending = _hungyen_collision(make_config, tmp_path)
    for bad, why in (
        ("x,y=z", "is not lowercase"),
        ("postmaster", "reserved"),
        ("sokhcnhy", "reserved"),
        ("nhphuc1.skhcn", "must end with .khcn"),
        ("a@test.gov.vn", "is not lowercase"),
    ):
        refused = syncd(cfg, "decide", pending["id"], "--uid", bad)
        assert refused.returncode == 2 and why in one_line(refused.stderr), (bad, refused.stderr)
    assert json.loads(syncd(cfg, "decisions", "--json").stdout) == [pending]
    ok = syncd(cfg, "decide", pending["id"], "--uid", "nhphuc2.khcn")
    assert ok.returncode == 0


def test_decide_uid_refuses_a_name_that_belonged_to_another_person(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: a name kept for the person whose mailbox was deleted by hand
    (``former``) was recorded with exit 0; every plan then refused it, and the decision
    vanished from `syncd decisions` while its person waited for a mailbox."""
    cfg, pending = _hungyen_collision(make_config, tmp_path)
    dn = f"uid=nhphuc7.khcn,{base_dn}"
    held = {"uid": "nhphuc7.khcn", "cn": "Nông Hữu Phúc", "sn": "Nông", "employeeNumber": "E9"}
    assert admin.add(dn, ["inetOrgPerson"], {**held, "mail": "nhphuc7.khcn@test.gov.vn"})
    assert syncd(cfg, "reconcile", "--latest").returncode == 0  # the snapshot holds it
    assert admin.delete(dn), admin.result
    assert syncd(cfg, "reconcile", "--latest").returncode == 0  # sees it gone: E9's name
    refused = syncd(cfg, "decide", pending["id"], "--uid", "nhphuc7.khcn")
    assert refused.returncode == 2, refused.stderr
    assert "belonged to another person (E9)" in one_line(refused.stderr)
    still = json.loads(syncd(cfg, "decisions", "--json").stdout)
    assert [d["id"] for d in still] == [pending["id"]]
    shown = syncd(cfg, "show", "nhphuc7.khcn@test.gov.vn")  # and `show` says why
    assert shown.returncode != 0 and "the name is kept for the person E9" in one_line(shown.stderr)


def test_release_name_lets_a_kept_name_go_audited_and_it_stays_released(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Before, an operator who knew a kept name could go to someone else edited state.json
    by hand (no audit record, a JSON typo away from a state no run loads). Now `syncd
    release-name`: refused without a reason, for a name kept for nobody and for a tombstone;
    done, it is one audit record naming whose the name was, `syncd decide --uid` takes it, the
    next whole run leaves it released and creates the mailbox with it."""
    cfg, pending = _hungyen_collision(make_config, tmp_path)
    dn = f"uid=nhphuc7.khcn,{base_dn}"
    held = {"uid": "nhphuc7.khcn", "cn": "Nông Hữu Phúc", "sn": "Nông", "employeeNumber": "E9"}
    assert admin.add(dn, ["inetOrgPerson"], {**held, "mail": "nhphuc7.khcn@test.gov.vn"})
    assert syncd(cfg, "reconcile", "--latest").returncode == 0
    assert admin.delete(dn), admin.result
    assert syncd(cfg, "reconcile", "--latest").returncode == 0  # kept for E9
    assert syncd(cfg, "decide", pending["id"], "--uid", "nhphuc7.khcn").returncode == 2

    no_reason = syncd(cfg, "release-name", "nhphuc7.khcn", "--reason", "  ")
    assert no_reason.returncode == 2 and "--reason" in one_line(no_reason.stderr)
    nobody = syncd(cfg, "release-name", "nhphuc7.khcn", "nobody9.khcn", "--reason", "x")
    assert nobody.returncode == 2, nobody.stderr
    assert "'nobody9.khcn': not kept for anyone" in one_line(nobody.stderr)
    assert "run `syncd reconcile --latest` first" in nobody.stderr  # a deletion not seen yet
    elsewhere = syncd(cfg, "release-name", "nhphuc7.khcn@other.gov.vn", "--reason", "x")
    assert elsewhere.returncode == 2 and "not a name or an address in" in elsewhere.stderr
    path = tmp_path / "state" / "state.json"
    state = json.loads(path.read_text("utf-8"))
    state["tombstones"] = [*state.get("tombstones", []), "purged1.khcn"]  # purged by syncd
    state["former"]["purged1.khcn"] = "E5"
    path.write_text(json.dumps(state), "utf-8")
    purged = syncd(cfg, "release-name", "purged1.khcn", "--reason", "x")
    assert purged.returncode == 2 and "a tombstone" in one_line(purged.stderr)
    state = json.loads(path.read_text("utf-8"))
    assert state["former"]["nhphuc7.khcn"] == "E9"  # nothing released by a refused call
    assert not [r for r in audit_records(tmp_path) if r["action"] == "release-name"]

    done = syncd(
        cfg, "release-name", "nhphuc7.khcn@test.gov.vn",
        "--reason", "E9 retired (letter 12/SNV)", "--by", "Trưởng phòng CNTT",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "nhphuc7.khcn: released (kept for the person E9)" in done.stdout
    [record] = [r for r in audit_records(tmp_path) if r["action"] == "release-name"]
    assert record["uid"] == "nhphuc7.khcn" and record["employee_number"] == "E9"
    assert record["reason"] == "operator release: E9 retired (letter 12/SNV)"
    assert record["by"] == "Trưởng phòng CNTT" and record["operator"]["user"] == login_user()
    told = syncd(cfg, "history", "nhphuc7.khcn@test.gov.vn")  # by its address too
    assert told.returncode == 0 and "release-name" in told.stdout, told.stderr
    assert syncd(cfg, "audit", "verify").returncode == 0
    state = json.loads((tmp_path / "state" / "state.json").read_text("utf-8"))
    assert "nhphuc7.khcn" not in state.get("former", {})

    assert syncd(cfg, "decide", pending["id"], "--uid", "nhphuc7.khcn").returncode == 0
    assert syncd(cfg, "reconcile", "--latest").returncode == 0  # whole: the name stays free
    made = entries(admin, base_dn)
    assert made["nhphuc7.khcn"]["employeeNumber"] == ["E2"]
    state = json.loads((tmp_path / "state" / "state.json").read_text("utf-8"))
    assert "nhphuc7.khcn" not in state.get("former", {})
    again = syncd(cfg, "release-name", "nhphuc7.khcn", "--reason", "x")
    assert again.returncode == 2 and "not kept for anyone" in again.stderr


def test_release_name_refuses_a_name_a_live_entry_holds_and_audits_before_it_releases(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack on `syncd release-name`: (1) a name kept for a person whose
    mailbox still holds it (an old address after a transfer) was "released" with a message
    saying the next plan may give it to anyone; (2) with the audit key broken the command
    failed after saving the state: the name was released with no audit record; (3) a kept
    name edited by hand in mixed case could never be released, though the uid pool honoured
    it; (4) control characters in the reason reached the audit record raw, and a name with
    a newline forged a second line of the error."""
    cfg, _ = _hungyen_collision(make_config, tmp_path)
    path = tmp_path / "state" / "state.json"
    state = json.loads(path.read_text("utf-8"))
    # E1's mailbox holds nhphuc.khcn; a stale kept entry for it, and one edited in mixed case
    state["former"] = {"nhphuc.khcn": "E1", "Lanpt.khcn": "E7"}
    path.write_text(json.dumps(state), "utf-8")
    live = syncd(cfg, "release-name", "nhphuc.khcn", "--reason", "x")
    assert live.returncode == 2, live.stderr
    assert f"'nhphuc.khcn' is held now by uid=nhphuc.khcn,{base_dn}" in one_line(live.stderr)
    forged = syncd(cfg, "release-name", "x\nforged: released", "--reason", "x")
    assert forged.returncode == 2 and "not a name" in one_line(forged.stderr)

    key = tmp_path / "state" / "audit.key"
    good = key.read_bytes()
    key.write_text("garbage")
    broken = syncd(cfg, "release-name", "lanpt.khcn", "--reason", "x")
    assert broken.returncode != 0
    assert json.loads(path.read_text("utf-8"))["former"] == {
        "nhphuc.khcn": "E1",
        "Lanpt.khcn": "E7",
    }
    key.write_bytes(good)

    done = syncd(cfg, "release-name", "LANPT.khcn", "--reason", "left\x1b[2Jthe\aprovince")
    assert done.returncode == 0, done.stderr
    assert "lanpt.khcn: released (kept for the person E7)" in done.stdout
    assert json.loads(path.read_text("utf-8"))["former"] == {"nhphuc.khcn": "E1"}
    [record] = [r for r in audit_records(tmp_path) if r["action"] == "release-name"]
    assert record["reason"] == "operator release: left [2Jthe province"


def test_a_decision_the_audit_log_cannot_hold_is_not_recorded(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """As release-name (found by an attack): the state was saved before the audit record,
    so a broken audit key left a decision the next run carried out with no trace."""
    cfg, pending = _hungyen_collision(make_config, tmp_path)
    key = tmp_path / "state" / "audit.key"
    good = key.read_bytes()
    key.write_text("garbage")
    assert syncd(cfg, "decide", pending["id"], "--uid", "nhphuc2.khcn").returncode != 0
    key.write_bytes(good)
    assert [d["id"] for d in json.loads(syncd(cfg, "decisions", "--json").stdout)] == [
        pending["id"]
    ]
    state = json.loads((tmp_path / "state" / "state.json").read_text("utf-8"))
    assert pending["id"] not in state.get("resolutions", {})


def test_release_name_refuses_the_old_address_of_a_person_who_still_works_here(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Found by an attack: a transfer's old address, its alias ended, is kept for its person
    (they get it back if they move back); `release-name` let it go, and the next run gave it
    to another person of the same name while its owner still worked in the province."""
    cfg, moved = created_then_moved(make_config, tmp_path)
    later = syncd(cfg, "reconcile", "--roster", str(moved), "--now", "2027-12-01T00:00:00+00:00")
    assert later.returncode == 0, later.stderr
    state = json.loads((tmp_path / "state" / "state.json").read_text("utf-8"))
    assert state["former"]["hungdv.skhcn"] == "E1"
    kept = syncd(cfg, "release-name", "hungdv.skhcn", "--reason", "x")
    assert kept.returncode == 2, kept.stdout
    assert "'hungdv.skhcn' is kept for E1, who still has a mailbox (hungdv.syt)" in one_line(
        kept.stderr
    )
    # the directory down: whether E1 still works here is not known; nothing released (found
    # by an attack: released with a warning, and the next run gave the name to E9)
    text = cfg.read_text(encoding="utf-8")
    down = re.sub(r"url: ldap://[^\n]*", "url: ldap://127.0.0.1:9", text)
    assert down != text
    cfg.write_text(down, encoding="utf-8")
    unknown = syncd(cfg, "release-name", "hungdv.skhcn", "--reason", "x")
    cfg.write_text(text, encoding="utf-8")
    assert unknown.returncode == 1, unknown.stdout
    assert "nothing released" in one_line(unknown.stderr)
    state = json.loads((tmp_path / "state" / "state.json").read_text("utf-8"))
    assert state["former"]["hungdv.skhcn"] == "E1"
    assert not [r for r in audit_records(tmp_path) if r["action"] == "release-name"]
    newcomer = write_roster(tmp_path / "c.csv", ["E9,Đào Văn Hưng,skhcn,,,,,"])
    after = syncd(cfg, "reconcile", "--roster", str(newcomer), "--now", "2027-12-02T00:00:00Z")
    assert after.returncode == 0, after.stderr
    assert entries(admin, base_dn)["hungdv1.skhcn"]["employeeNumber"] == ["E9"]
