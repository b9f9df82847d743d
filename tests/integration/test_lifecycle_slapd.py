"""The lifecycle clocks against a real slapd: lock blocks the bind, restore lets the new
password in (flagged to change), purge archives then deletes and tombstones the uid."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ldap3 import NONE, Connection, Server

from connectors import runner
from connectors.lifecycle_files import InputFileError
from connectors.outcome import EXIT_REFUSED
from devtools.slapd_sandbox import Sandbox
from syncd.model import ActionKind
from tests.conftest import MakeConfig
from tests.helpers import entries, write_roster

NOW = datetime.now(UTC)


def _bind(slapd: Sandbox, dn: str, password: str) -> bool:
    return bool(Connection(Server(slapd.url, get_info=NONE), dn, password).bind())


def test_an_inactive_account_is_locked_cannot_log_in_and_a_restore_lets_it_back(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    roster = write_roster(
        tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
    )
    first = runner.run(cfg, rosters=[roster], now=NOW)
    pw = next(s.password for s in first.result.slips if s.uid == "hungdv.skhcn")  # type: ignore[union-attr]
    dn = f"uid=hungdv.skhcn,{base_dn}"
    assert _bind(slapd, dn, pw)
    later = runner.run(cfg, rosters=[roster], now=NOW + timedelta(days=91), allow_mass_change=True)
    locks = [a for a in later.plan.actions if a.kind is ActionKind.LOCK]  # type: ignore[union-attr]
    assert {a.uid for a in locks} == {"hungdv.skhcn", "tamlv.skhcn"}
    assert all(a.article == "caobang-2025 Đ8.2a" for a in locks)
    got = entries(admin, base_dn)["hungdv.skhcn"]
    assert got["syncdState"] == ["locked"] and got["syncdDelivery"] == ["TRUE"]  # Đ8.1
    assert got["pwdAccountLockedTime"]
    assert not _bind(slapd, dn, pw)
    restored = runner.operator_action(
        cfg,
        "hungdv.skhcn",
        ActionKind.RESTORE,
        "request 12/UBND",
        "caobang-2025 Đ7.2",
        now=NOW + timedelta(days=91),
    )
    [slip] = restored.result.slips  # type: ignore[union-attr]
    assert slip.password != pw
    assert _bind(slapd, dn, slip.password)
    got = entries(admin, base_dn)["hungdv.skhcn"]
    assert got["pwdReset"] == ["TRUE"] and got["syncdState"] == ["active"]
    # the clock restarted at the restore: 59 days later nothing is due, although the last
    # login (the bind above, today) is 150 days back
    again = runner.run(cfg, rosters=[roster], now=NOW + timedelta(days=150), dry_run=True)
    assert "hungdv.skhcn" not in {a.uid for a in again.plan.actions}  # type: ignore[union-attr]


def test_tuyenquang_purge_archives_deletes_and_never_reissues_the_uid(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    hook_out = tmp_path / "hook.out"
    cfg = make_config(
        profile="tuyenquang-2025",
        extra="safety: {max_lock_share: 1, max_purge_share: 1, max_revoke_share: 1}\n"
        f"lifecycle: {{purge_hook: \"sh -c 'echo {{uid}} {{archive}} > {hook_out}'\"}}\n",
    )
    roster = write_roster(tmp_path / "r.csv", ["E1,Ngô Văn An,skhcn,,,,,"])
    runner.run(cfg, rosters=[roster], now=NOW)
    locked = runner.run(cfg, rosters=[roster], now=NOW + timedelta(days=190))
    assert [a.kind for a in locked.plan.actions] == [ActionKind.LOCK]  # type: ignore[union-attr]
    assert entries(admin, base_dn)["nvan.skhcn"]["syncdDelivery"] == ["FALSE"]  # Đ8.1
    purge_at = NOW + timedelta(days=190 + 365 * 3 + 2)  # locked at day 190, for 3 years
    purged = runner.run(cfg, rosters=[roster], now=purge_at)
    assert [(a.kind, a.article) for a in purged.plan.actions] == [  # type: ignore[union-attr]
        (ActionKind.PURGE, "tuyenquang-2025 Đ8.4")
    ]
    assert "nvan.skhcn" not in entries(admin, base_dn)
    archive = cfg.archive_dir / "nvan.skhcn.ldif"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    text = archive.read_text()
    for line in (
        "dn: uid=nvan.skhcn,",
        "uid: nvan.skhcn",
        "employeeNumber: E1",
        "syncdState: locked",
        "mail: nvan.skhcn@test.gov.vn",
        "createTimestamp:",
        "userPassword: {SSHA}",
    ):
        assert line in text, line
    audit = cfg.paths.audit_log.read_text()
    assert str(archive) in audit
    assert hook_out.read_text().split() == ["nvan.skhcn", str(archive)]  # the site's hook ran
    newcomer = write_roster(
        tmp_path / "s.csv", ["E1,Ngô Văn An,skhcn,,,,Nghỉ việc,", "E2,Ngô Văn An,skhcn,,,,,"]
    )
    fresh = runner.run(cfg, rosters=[newcomer], now=purge_at)
    created = [a.uid for a in fresh.plan.actions if a.kind is ActionKind.CREATE]  # type: ignore[union-attr]
    assert created and created[0] != "nvan.skhcn"


def test_a_mass_lock_is_held_back_while_new_hires_and_requests_still_apply(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    rows = [f"E{i},Trần Văn Người{i},skhcn,,,,," for i in range(12)]
    runner.run(cfg, rosters=[write_roster(tmp_path / "r.csv", rows)], now=NOW)
    before = entries(admin, base_dn)
    # 100 days later everyone is due for the 90-day lock; the same file brings a new hire
    # and a password reset request
    rows[3] = "E3,Trần Văn Người3,skhcn,,,,,cấp lại mật khẩu"
    later = write_roster(tmp_path / "r2.csv", [*rows, "E99,Hoàng Văn Phúc,skhcn,,,,,"])
    held = runner.run(cfg, rosters=[later], now=NOW + timedelta(days=100))
    assert held.exit_code == EXIT_REFUSED  # something needs the operator
    assert held.plan is not None and held.plan.refused is None
    assert len(held.plan.held) == 1 and "max_lock_share" in held.plan.held[0]
    after = entries(admin, base_dn)
    assert "phuchv.skhcn" in after  # the new hire got a mailbox
    assert str(after["nguoi3tv.skhcn"].get("pwdReset", [""])[0]).upper() == "TRUE"
    for uid, entry in before.items():  # nobody was locked
        assert after[uid].get("syncdState") == entry.get("syncdState")


def test_an_exemption_file_protects_and_a_bad_one_stops_the_run(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    (tmp_path / "exempt.csv").write_text(
        "employee_number,reason,from,until\nE1,học tập,01/01/2026,31/12/2030\n", "utf-8"
    )
    cfg = make_config(
        extra="lifecycle: {exemptions_file: exempt.csv}\nsafety: {max_lock_share: 1}\n"
    )
    roster = write_roster(
        tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
    )
    runner.run(cfg, rosters=[roster], now=NOW)
    later = runner.run(cfg, rosters=[roster], now=NOW + timedelta(days=100), dry_run=True)
    assert [a.uid for a in later.plan.actions] == ["tamlv.skhcn"]  # type: ignore[union-attr]
    (tmp_path / "exempt.csv").write_text("employee_number,reason,from,until\nE1,x,hôm nay,\n")
    try:
        runner.run(cfg, rosters=[roster], now=NOW, dry_run=True)
    except InputFileError as exc:
        assert "row 2, column 'from', value 'hôm nay'" in str(exc)
    else:
        raise AssertionError("a bad exemptions file must stop the run")
