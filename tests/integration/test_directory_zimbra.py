"""What only the zimbra profile does, on a real slapd with Zimbra's schema: accounts as
``zmprov createAccount`` leaves them, the account and mail status for each state (from each
province's regulation, through the runner), Zimbra's login time as activity, and the
post-change hook that flushes Zimbra's account cache — a real script that records its calls.
The shared contract runs in test_directory_contract.py."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE, MODIFY_REPLACE, Connection
from structlog.testing import capture_logs

from connectors import runner
from connectors.config import Config, ZimbraSettings
from connectors.directory.doctor import Doctor
from connectors.loading import load_config
from connectors.outcome import RunOutcome, report_text
from connectors.store import write_private
from devtools.slapd_sandbox import Sandbox
from devtools.zimbra_sandbox import DEFAULT_COS, ZimbraSandbox
from syncd.model import ActionKind
from syncd.ports import Scope
from tests.conftest import ORGS_YAML, MakeConfig
from tests.helpers import write_roster
from tests.integration import mail_docs
from tests.integration.test_directory_contract import needs_schema
from tests.integration.test_mail_servers import POSTMAP, Postfix, _require

DOMAIN = "test.gov.vn"
MAILSTORE = "mail.test.gov.vn"
ROUTED = ZimbraSettings(mail_host=MAILSTORE)
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _schema(slapd: Sandbox) -> None:
    needs_schema(slapd, "zimbra")


def zimbra(cfg: Config, **settings: Any) -> Config:
    return cfg.model_copy(
        update={"directory": replace(cfg.directory, profile="zimbra", **settings)}
    )


def entry(admin: Connection, base: str, uid: str) -> dict[str, Any]:
    assert admin.search(base, f"(uid={uid})", attributes=["*", "+"])
    [hit] = [e for e in admin.response if e.get("type") == "searchResEntry"]
    return dict(hit["attributes"], dn=hit["dn"])


def run(cfg: Config, rows: list[str], tmp_path: Path, name: str) -> RunOutcome:
    roster = write_roster(tmp_path / name, rows)
    outcome = runner.run(cfg, rosters=[roster], now=NOW)
    assert outcome.exit_code == 0, report_text(outcome, [roster])
    return outcome


def recorder(tmp_path: Path, exit_status: int = 0) -> tuple[Path, Path]:
    """A hook script that appends its arguments (one call a line, tab-separated) to a file."""
    calls = tmp_path / "calls.txt"
    script = tmp_path / "zmprov"
    script.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do printf \'%s\\t\' "$a"; done >> {calls}\n'
        f"echo >> {calls}\n"
        "echo 'flush refused' >&2\n"
        f"exit {exit_status}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script, calls


def test_a_new_account_is_a_zimbra_account_with_the_profiles_quotas(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Hưng Yên Đ8.1b: 2 GB a personal mailbox, 10 GB an organisation's."""
    cfg = zimbra(make_config(profile="hungyen-2025"), quota_mb=2048, org_quota_mb=10240)
    run(cfg, ["E1,Nguyễn Hoàng Phúc,khcn,,,,,"], tmp_path, "a.csv")
    got = entry(admin, base_dn, "nhphuc.khcn")
    assert got["dn"] == f"uid=nhphuc.khcn,{base_dn}"
    assert {c.lower() for c in got["objectClass"]} >= {"zimbraaccount", "syncdaccount"}
    assert uuid.UUID(got["zimbraId"][0])  # as zmprov createAccount gives
    assert got["zimbraAccountStatus"] == ["active"] and got["zimbraMailStatus"] == ["enabled"]
    assert got["zimbraMailDeliveryAddress"] == [f"nhphuc.khcn@{DOMAIN}"]
    assert got["zimbraMailQuota"] == [str(2048 * MIB)]
    assert got["zimbraPasswordMustChange"] == ["TRUE"]  # Zimbra asks at the first login
    assert entry(admin, base_dn, "sokhcnhy")["zimbraMailQuota"] == [str(10240 * MIB)]


@pytest.mark.parametrize(
    ("regulation", "locked_status", "mail_status"),
    [("caobang-2025", "locked", "enabled"), ("tuyenquang-2025", "closed", "disabled")],
)
def test_a_lock_is_locked_or_closed_as_the_regulation_says_and_a_restore_reopens_it(
    make_config: MakeConfig,
    tmp_path: Path,
    admin: Connection,
    base_dn: str,
    regulation: str,
    locked_status: str,
    mail_status: str,
) -> None:
    """Zimbra's 'locked' refuses the login and still delivers (Cao Bằng Đ8.1); 'closed'
    delivers nothing (Tuyên Quang Đ8.1) — chosen by the regulation file, not the profile."""
    cfg = zimbra(make_config(profile=regulation))
    run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"], tmp_path, "a.csv")
    admin.search(base_dn, "(employeeNumber=E1)", attributes=["uid"])
    uid = str(admin.response[0]["attributes"]["uid"][0])
    locked = runner.operator_action(cfg, uid, ActionKind.LOCK, "spam", "a")
    assert locked.result is not None and not locked.result.failed
    got = entry(admin, base_dn, uid)
    assert (got["zimbraAccountStatus"], got["zimbraMailStatus"]) == (
        [locked_status],
        [mail_status],
    )
    restored = runner.operator_action(cfg, uid, ActionKind.RESTORE, "back", "a")
    assert restored.result is not None and not restored.result.failed
    back = entry(admin, base_dn, uid)
    assert (back["zimbraAccountStatus"], back["zimbraMailStatus"]) == (["active"], ["enabled"])
    assert back["zimbraPasswordMustChange"] == ["TRUE"]  # the restore's new one-time password


def test_a_revoke_closes_the_account_and_a_transfer_keeps_the_old_address_as_an_alias(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = zimbra(make_config(extra="safety: {max_revoke_share: 1.0}\n"))  # caobang-2025
    run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"], tmp_path, "a.csv")
    run(cfg, ["E1,Đàm Văn Hùng,syt,,,,,", "E2,Lê Thị Mai,skhcn,,,,Nghỉ việc,"], tmp_path, "b.csv")
    moved = entry(admin, base_dn, "hungdv.syt")
    assert moved["zimbraMailDeliveryAddress"] == [f"hungdv.syt@{DOMAIN}"]
    assert moved["zimbraMailAlias"] == [f"hungdv.skhcn@{DOMAIN}"]
    gone = entry(admin, base_dn, "mailt.skhcn")
    assert (gone["zimbraAccountStatus"], gone["zimbraMailStatus"]) == (["closed"], ["disabled"])


def test_zimbras_last_logon_timestamp_counts_as_a_login(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Zimbra writes zimbraLastLogonTimestamp itself (an LDAP modify by its mailbox server,
    as here); a person who only ever logs in through Zimbra never binds to the directory."""
    cfg = zimbra(make_config())
    run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,"], tmp_path, "a.csv")
    dn = entry(admin, base_dn, "hungdv.skhcn")["dn"]
    assert admin.modify(
        dn, {"zimbraLastLogonTimestamp": [(MODIFY_REPLACE, ["20260301101500Z"])]}
    ), admin.result
    [acc] = [a for a in runner.open_directory(cfg, []).read(Scope()) if a.uid == "hungdv.skhcn"]
    assert acc.last_login == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def test_the_post_change_hook_runs_after_each_change_without_a_shell(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    script, calls = recorder(tmp_path)
    make_config()
    path = tmp_path / "syncd.yaml"
    hook = f'["{script}", "flushCache", "account", "{{address}}", "$(touch {tmp_path}/pwned);x"]'
    text = path.read_text(encoding="utf-8").replace(
        "directory:\n",
        f"directory:\n  profile: zimbra\n  zimbra: {{mail_host: {MAILSTORE}}}\n"
        f"  post_change_hook: {hook}\n",
        1,
    )
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)  # the setting as an operator writes it
    run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,"], tmp_path, "a.csv")
    runner.operator_action(cfg, "hungdv.skhcn", ActionKind.LOCK, "spam", "a")
    lines = calls.read_text(encoding="utf-8").splitlines()
    literal = f"$(touch {tmp_path}/pwned);x"
    flushed = [line.split("\t")[:4] for line in lines]
    address = f"hungdv.skhcn@{DOMAIN}"
    # created (its password set), then locked: each change flushed that account
    assert flushed.count(["flushCache", "account", address, literal]) == 2, lines
    assert not (tmp_path / "pwned").exists()  # no shell ever saw the arguments
    slips = [p.read_text(encoding="utf-8-sig") for p in (tmp_path / "outbox").glob("*/*.csv")]
    passwords = {line.split(",")[2] for text in slips for line in text.splitlines()[1:]}
    assert passwords and not any(pw in "\n".join(lines) for pw in passwords)  # never a secret


def test_a_failing_hook_is_logged_and_the_change_stands(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    script, calls = recorder(tmp_path, exit_status=3)
    cfg = zimbra(make_config(), post_change_hook=(str(script), "{address}"))
    with capture_logs() as logs:
        outcome = run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,"], tmp_path, "a.csv")
    assert outcome.result is not None and not outcome.result.failed
    assert entry(admin, base_dn, "hungdv.skhcn")["zimbraAccountStatus"] == ["active"]
    [failed] = [
        e
        for e in logs
        if e["event"].startswith("post-change hook failed")
        and f"hungdv.skhcn@{DOMAIN}" in e["command"]
    ]
    assert (failed["log_level"], failed["exit_status"]) == ("warning", 3)
    assert "flush refused" in failed["stderr"]
    assert f"hungdv.skhcn@{DOMAIN}" in calls.read_text(encoding="utf-8")


def test_an_account_zimbra_made_before_syncd_is_linked_as_it_is(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = zimbra(make_config())
    zid = str(uuid.uuid4())
    dn = f"uid=datnv,{base_dn}"
    assert admin.add(
        dn,
        ["inetOrgPerson", "zimbraAccount"],
        {
            "uid": "datnv",
            "cn": "Nông Văn Đạt",
            "sn": "Nông",
            "ou": "skhcn",
            "mail": f"datnv@{DOMAIN}",
            "zimbraId": zid,
            "zimbraAccountStatus": "active",
            "zimbraMailStatus": "enabled",
            "zimbraMailDeliveryAddress": f"datnv@{DOMAIN}",
        },
    ), admin.result
    outcome = run(cfg, ["E1,Nông Văn Đạt,skhcn,,,,,"], tmp_path, "a.csv")
    assert [a.kind for a in outcome.plan.actions if a.uid == "datnv"] == [  # type: ignore[union-attr]
        ActionKind.LINK
    ]
    got = entry(admin, base_dn, "datnv")
    assert got["zimbraId"] == [zid] and got["employeeNumber"] == ["E1"]
    assert admin.search(dn, "(objectClass=*)", search_scope=BASE)


def test_a_new_account_is_routed_to_its_mailbox_server_and_keeps_the_route_when_transferred(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """zmprov createAccount sets zimbraMailHost and zimbraMailTransport (lmtp:<host>:<port>);
    without them Zimbra's MTA has no route to the mailbox and its proxy serves no login."""
    cfg = zimbra(make_config(), zimbra=ROUTED)
    run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,"], tmp_path, "a.csv")
    got = entry(admin, base_dn, "hungdv.skhcn")
    assert got["zimbraMailHost"] == [MAILSTORE]
    assert got["zimbraMailTransport"] == [f"lmtp:{MAILSTORE}:7025"]
    assert "zimbraCOSId" not in got  # none configured: Zimbra's domain default applies
    run(cfg, ["E1,Đàm Văn Hùng,syt,,,,,"], tmp_path, "b.csv")
    moved = entry(admin, base_dn, "hungdv.syt")
    assert moved["zimbraId"] == got["zimbraId"]  # the same account, renamed
    assert moved["zimbraMailHost"] == [MAILSTORE]
    assert moved["zimbraMailTransport"] == [f"lmtp:{MAILSTORE}:7025"]


def test_an_entry_made_before_syncd_becomes_a_routed_zimbra_account_when_linked(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = zimbra(make_config(), zimbra=ZimbraSettings(mail_host=MAILSTORE, lmtp_port=7026))
    dn = f"uid=datnv,{base_dn}"
    assert admin.add(
        dn,
        ["inetOrgPerson"],
        {
            "uid": "datnv",
            "cn": "Nông Văn Đạt",
            "sn": "Nông",
            "ou": "skhcn",
            "mail": "datnv@" + DOMAIN,
        },
    ), admin.result
    run(cfg, ["E1,Nông Văn Đạt,skhcn,,,,,"], tmp_path, "a.csv")
    got = entry(admin, base_dn, "datnv")
    assert "zimbraaccount" in {c.lower() for c in got["objectClass"]}
    assert got["zimbraMailHost"] == [MAILSTORE]
    assert got["zimbraMailTransport"] == [f"lmtp:{MAILSTORE}:7026"]


def test_zimbras_postfix_transport_query_routes_an_account_syncd_made_to_its_mailbox_server(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """Zimbra's own ldap-transport.cf (docs/mail-server.md), asked through Postfix's LDAP
    table: the LMTP route of a live account; nothing for a revoked (closed) one."""
    _require(POSTMAP, "postfix postfix-ldap")
    cfg = zimbra(make_config(extra="safety: {max_revoke_share: 1.0}\n"), zimbra=ROUTED)
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"]
    run(cfg, rows, tmp_path, "a.csv")
    root = tmp_path / "postfix"
    root.mkdir()
    query = mail_docs.settings("tested: postfix-transport zimbra -->", mail_docs.POSTFIX)
    transport = Postfix(slapd, base_dn, query, root)
    assert transport.lookup(f"hungdv.skhcn@{DOMAIN}") == f"lmtp:{MAILSTORE}:7025"
    assert transport.lookup(f"mailt.skhcn@{DOMAIN}") == f"lmtp:{MAILSTORE}:7025"
    assert transport.lookup(f"nobody.skhcn@{DOMAIN}") is None
    run(cfg, [rows[0], "E2,Lê Thị Mai,skhcn,,,,Nghỉ việc,"], tmp_path, "b.csv")
    assert transport.lookup(f"mailt.skhcn@{DOMAIN}") is None
    assert transport.lookup(f"hungdv.skhcn@{DOMAIN}") == f"lmtp:{MAILSTORE}:7025"


def test_the_doctor_finds_zimbra_accounts_without_a_route_and_a_missing_mail_host(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    unrouted = zimbra(make_config())
    with capture_logs() as logs:
        run(unrouted, ["E1,Đàm Văn Hùng,skhcn,,,,,"], tmp_path, "a.csv")
    assert any(e["event"].startswith("directory.zimbra.mail_host is not set") for e in logs)
    report = Doctor(unrouted.directory, slapd.service_password, DOMAIN, write=False).run()
    [check] = [c for c in report.checks if c.name == "zimbra"]
    assert check.status == "finding"
    assert "directory.zimbra.mail_host is not set" in check.detail
    # the person and the organisation's two mailboxes the run made
    assert "3 account(s) syncd manages lack zimbraMailHost" in check.detail
    assert f"hungdv.skhcn@{DOMAIN} (active)" in check.detail
    assert "zmprov ma <address> zimbraMailHost <mailbox server>" in check.fix

    routed = zimbra(make_config(), zimbra=ROUTED)
    run(routed, ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"], tmp_path, "b.csv")
    report = Doctor(routed.directory, slapd.service_password, DOMAIN, write=False).run()
    [check] = [c for c in report.checks if c.name == "zimbra"]
    assert check.status == "finding"  # the account made before the setting
    assert "mail_host is not set" not in check.detail
    assert f"hungdv.skhcn@{DOMAIN}" in check.detail and "mailt.skhcn" not in check.detail
    assert f"zmprov ma <address> zimbraMailHost {MAILSTORE}" in check.fix
    # what zmprov ma does (its zimbraMailHost callback writes the transport too)
    assert admin.search(base_dn, "(&(objectClass=zimbraAccount)(!(zimbraMailHost=*)))")
    unrouted_dns = [e.entry_dn for e in admin.entries]
    assert len(unrouted_dns) == 3
    for dn in unrouted_dns:
        assert admin.modify(
            dn,
            {
                "zimbraMailHost": [(MODIFY_REPLACE, [MAILSTORE])],
                "zimbraMailTransport": [(MODIFY_REPLACE, [f"lmtp:{MAILSTORE}:7025"])],
            },
        ), admin.result
    report = Doctor(routed.directory, slapd.service_password, DOMAIN, write=False).run()
    [check] = [c for c in report.checks if c.name == "zimbra"]
    assert check.status == "ok", check
    assert f"zimbraMailTransport lmtp:{MAILSTORE}:7025" in check.detail


def test_a_class_of_service_named_in_the_config_is_written_as_its_zimbra_id(
    tmp_path: Path,
) -> None:
    """Zimbra looks an account's class up by zimbraCOSId only, and zmprov resolves a name to
    that id: so does syncd, from cn=cos,cn=zimbra (a slapd laid out as Zimbra's). A name that
    is no class of service fails the create, saying so, and the doctor names it."""
    server = ZimbraSandbox(tmp_path / "slapd").start()
    try:
        zadmin = server.zimbra_admin()
        assert zadmin.search(DEFAULT_COS, "(objectClass=*)", BASE, attributes=["zimbraId"])
        cos_id = str(zadmin.response[0]["attributes"]["zimbraId"][0])
        zadmin.unbind()
        folder = tmp_path / "site"
        folder.mkdir()
        (folder / "orgs.yaml").write_text(ORGS_YAML, encoding="utf-8")
        write_private(folder / "bind.pw", server.service_password + "\n")
        text = f"""profile: caobang-2025
domain: {DOMAIN}
directory:
  url: {server.url}
  bind_dn: {server.service_dn}
  bind_password_file: bind.pw
  base_dn: {server.people_dn}
  profile: zimbra
  zimbra: {{mail_host: {MAILSTORE}, cos: COSNAME}}
paths: {{inbox: inbox, state: state, outbox: outbox, audit_log: state/audit.jsonl}}
orgs: orgs.yaml
"""
        (folder / "syncd.yaml").write_text(text.replace("COSNAME", "default"), encoding="utf-8")
        cfg = load_config(folder / "syncd.yaml")  # as an operator writes it
        run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,"], folder, "a.csv")
        admin = server.admin()
        assert entry(admin, server.people_dn, "hungdv.skhcn")["zimbraCOSId"] == [cos_id]
        report = Doctor(cfg.directory, server.service_password, DOMAIN, write=False).run()
        assert [c.status for c in report.checks if c.name == "zimbra"] == ["ok"]

        (folder / "syncd.yaml").write_text(text.replace("COSNAME", "gold"), encoding="utf-8")
        wrong = load_config(folder / "syncd.yaml")
        rows = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"]
        roster = write_roster(folder / "b.csv", rows)
        outcome = runner.run(wrong, rosters=[roster], now=NOW)
        assert outcome.exit_code == 1
        assert "directory.zimbra.cos 'gold': no class of service" in report_text(outcome, [roster])
        admin.search(server.people_dn, "(uid=mailt.skhcn)")
        assert admin.entries == []  # refused before anything was written
        report = Doctor(wrong.directory, server.service_password, DOMAIN, write=False).run()
        [check] = [c for c in report.checks if c.name == "zimbra"]
        assert check.status == "finding" and "'gold': no class of service" in check.detail
        admin.unbind()
    finally:
        server.stop()
