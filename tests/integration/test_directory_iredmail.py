"""What only the iredmail profile does, on a real slapd with iRedMail's schema: entries as
iRedMail makes them, addresses spread over mail and shadowAddress, and what a lock, revoke and
restore leave of the services iRedMail's filters check — put there by real syncd actions (the
runner, with each province's regulation), read back as the admin. The shared contract runs in
test_directory_contract.py; the mail server's view of it in test_mail_servers.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE, Connection

from connectors import runner
from connectors.config import Config, DirectoryConfig
from connectors.directory import profile
from connectors.directory.iredmail import KEPT_SERVICES, LOGIN_SERVICES
from connectors.outcome import RunOutcome, report_text
from devtools.slapd_sandbox import Sandbox
from syncd.model import Action, ActionKind, Field
from syncd.ports import DirectoryError, Scope
from tests.conftest import MakeConfig
from tests.helpers import write_roster
from tests.integration.test_directory_contract import needs_schema

DOMAIN = "test.gov.vn"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _schema(slapd: Sandbox) -> None:
    needs_schema(slapd, "iredmail")


def iredmail(cfg: Config, **settings: Any) -> Config:
    """``cfg`` with the iredmail directory profile (and these directory settings)."""
    return cfg.model_copy(
        update={"directory": replace(cfg.directory, profile="iredmail", **settings)}
    )


def users(base: str) -> str:
    return f"ou=Users,domainName={DOMAIN},o=domains,{base}"


def entry(admin: Connection, dn: str) -> dict[str, Any]:
    assert admin.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["*", "+"])
    return dict(admin.response[0]["attributes"])


def run(cfg: Config, rows: list[str], tmp_path: Path, name: str) -> RunOutcome:
    roster = write_roster(tmp_path / name, rows)
    outcome = runner.run(cfg, rosters=[roster], now=NOW)
    assert outcome.exit_code == 0, report_text(outcome, [roster])
    return outcome


def services(got: dict[str, Any]) -> set[str]:
    return {s.lower() for s in got.get("enabledService", [])}


LOGIN = {s.lower() for s in LOGIN_SERVICES}
KEPT = {s.lower() for s in KEPT_SERVICES}


def test_a_new_mailbox_is_an_iredmail_mail_user_with_the_profiles_quotas(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Hưng Yên Đ8.1b: 2 GB a personal mailbox, 10 GB an organisation's."""
    cfg = iredmail(make_config(profile="hungyen-2025"), quota_mb=2048, org_quota_mb=10240)
    run(cfg, ["E1,Nguyễn Hoàng Phúc,khcn,,,,,"], tmp_path, "a.csv")
    person = entry(admin, f"mail=nhphuc.khcn@{DOMAIN},{users(base_dn)}")
    assert {c.lower() for c in person["objectClass"]} >= {
        "inetorgperson",
        "mailuser",
        "shadowaccount",
        "syncdaccount",
    }
    assert (person["uid"], person["mail"], person["ou"]) == (
        ["nhphuc.khcn"],
        [f"nhphuc.khcn@{DOMAIN}"],
        ["khcn"],
    )
    assert person["accountStatus"] == ["active"]
    assert services(person) == LOGIN | KEPT
    assert person["mailQuota"] == [str(2048 * MIB)]
    assert person["homeDirectory"] == [f"/var/vmail/vmail1/{DOMAIN}/nhphuc.khcn/"]
    org = entry(admin, f"mail=sokhcnhy@{DOMAIN},{users(base_dn)}")
    assert org["mailQuota"] == [str(10240 * MIB)]
    # the domain's branch was made as iRedMail has it
    assert entry(admin, f"domainName={DOMAIN},o=domains,{base_dn}")["objectClass"] == ["mailDomain"]


def test_without_a_quota_setting_the_mail_servers_default_applies(
    slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    cfg = DirectoryConfig(
        url=slapd.url, bind_dn=slapd.service_dn, base_dn=base_dn, profile="iredmail"
    )
    directory = profile("iredmail")(cfg, slapd.service_password, DOMAIN)
    attrs = {Field.UID: ("an.skhcn",), Field.NAME: ("An",), Field.SURNAME: ("An",)}
    dn = directory.create(
        Action(ActionKind.CREATE, "an.skhcn", "skhcn", "t", "t", attrs=attrs), "Aa1!aaaa-x"
    )
    assert "mailQuota" not in entry(admin, dn)


def test_a_transfer_keeps_the_old_address_as_a_shadow_address_and_the_same_mail_store(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = iredmail(make_config())  # caobang-2025: the uid carries the organisation
    run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,"], tmp_path, "a.csv")
    run(cfg, ["E1,Đàm Văn Hùng,syt,,,,,"], tmp_path, "b.csv")
    got = entry(admin, f"mail=hungdv.syt@{DOMAIN},{users(base_dn)}")
    assert (got["uid"], got["mail"], got["ou"]) == (
        ["hungdv.syt"],
        [f"hungdv.syt@{DOMAIN}"],
        ["syt"],
    )
    assert got["shadowAddress"] == [f"hungdv.skhcn@{DOMAIN}"]
    assert got["homeDirectory"] == [f"/var/vmail/vmail1/{DOMAIN}/hungdv.skhcn/"]  # mail kept
    again = run(cfg, ["E1,Đàm Văn Hùng,syt,,,,,"], tmp_path, "c.csv")
    assert again.plan is not None and again.plan.actions == ()
    [acc] = [a for a in runner.open_directory(cfg, []).read(Scope()) if a.uid == "hungdv.syt"]
    assert acc.mail == (f"hungdv.syt@{DOMAIN}", f"hungdv.skhcn@{DOMAIN}")  # primary first


@pytest.mark.parametrize(
    ("regulation", "receives"), [("caobang-2025", True), ("tuyenquang-2025", False)]
)
def test_a_lock_removes_the_login_services_and_delivery_follows_the_regulation(
    make_config: MakeConfig,
    tmp_path: Path,
    admin: Connection,
    base_dn: str,
    regulation: str,
    receives: bool,
) -> None:
    """Cao Bằng Đ8.1: a locked mailbox still receives; Tuyên Quang Đ8.1: it does not. The
    profile is told by the regulation file (lifecycle.locked_receives_mail), not by itself."""
    cfg = iredmail(make_config(profile=regulation))
    run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"], tmp_path, "a.csv")
    [dn] = [
        e["dn"]
        for e in (admin.search(base_dn, "(employeeNumber=E1)") and admin.response)
        if e.get("type") == "searchResEntry"
    ]
    locked = runner.operator_action(cfg, entry(admin, dn)["uid"][0], ActionKind.LOCK, "x", "a")
    assert locked.result is not None and not locked.result.failed
    got = entry(admin, dn)
    assert got["accountStatus"] == ["active" if receives else "disabled"]
    assert not services(got) & LOGIN and services(got) == KEPT
    assert got["syncdState"] == ["locked"]
    restored = runner.operator_action(cfg, got["uid"][0], ActionKind.RESTORE, "back", "a")
    assert restored.result is not None and not restored.result.failed
    back = entry(admin, dn)
    assert back["accountStatus"] == ["active"] and services(back) == LOGIN | KEPT


def test_a_revoke_disables_the_account_whatever_a_lock_would_do(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = iredmail(make_config(extra="safety: {max_revoke_share: 1.0}\n"))  # caobang-2025
    run(cfg, ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,"], tmp_path, "a.csv")
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,Nghỉ việc,", "E2,Lê Thị Mai,skhcn,,,,,"]
    run(cfg, rows, tmp_path, "b.csv")
    got = entry(admin, f"mail=hungdv.skhcn@{DOMAIN},{users(base_dn)}")
    assert got["syncdState"] == ["revoked"] and got["accountStatus"] == ["disabled"]
    assert not services(got) & LOGIN


def test_a_mailbox_iredmail_made_before_syncd_is_linked_keeping_its_services(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """Adopted where iRedAdmin put it: no second mailbox, its services as the site chose."""
    cfg = iredmail(make_config())
    place = users(base_dn)
    for dn, classes, attrs in (
        (f"o=domains,{base_dn}", ["organization"], {"o": "domains"}),
        (f"domainName={DOMAIN},o=domains,{base_dn}", ["mailDomain"], {"domainName": DOMAIN}),
        (place, ["organizationalUnit"], {"ou": "Users"}),
    ):
        assert admin.add(dn, classes, attrs), admin.result
    legacy = f"mail=datnv@{DOMAIN},{place}"
    assert admin.add(
        legacy,
        ["inetOrgPerson", "mailUser", "shadowAccount"],
        {
            "uid": "datnv",
            "mail": f"datnv@{DOMAIN}",
            "cn": "Nông Văn Đạt",
            "sn": "Nông",
            "ou": "skhcn",
            "accountStatus": "active",
            "enabledService": ["mail", "deliver", "imap", "imapsecured"],
        },
    ), admin.result
    outcome = run(cfg, ["E1,Nông Văn Đạt,skhcn,,,,,"], tmp_path, "a.csv")
    assert [a.kind for a in outcome.plan.actions if a.uid == "datnv"] == [  # type: ignore[union-attr]
        ActionKind.LINK
    ]
    got = entry(admin, legacy)
    assert got["employeeNumber"] == ["E1"] and got["syncdState"] == ["active"]
    assert services(got) == {"mail", "deliver", "imap", "imapsecured"}


@pytest.mark.parametrize(
    ("setting", "value"), [("delivery_attribute", "mailEnabled"), ("layout", "per-org")]
)
def test_a_setting_the_profile_does_not_use_is_refused_not_ignored(
    slapd: Sandbox, base_dn: str, setting: str, value: str
) -> None:
    cfg = DirectoryConfig(
        url=slapd.url, bind_dn=slapd.service_dn, base_dn=base_dn, **{setting: value}
    )
    with pytest.raises(DirectoryError, match=setting):
        profile("iredmail")(cfg, slapd.service_password, DOMAIN)
