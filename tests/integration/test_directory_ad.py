"""The ``ad`` profile on a real Samba AD DC (devtools/samba_sandbox.py): what only AD does, and
the contract's promises in AD's own terms where the contract's wording is OpenLDAP's (a one-time
password that refuses the bind, ``userAccountControl``, entries made the AD way).

Every account is written by the profile bound as syncd's service account (full control of
OU=people only) and checked by real binds: ``data 773`` (must change the password), ``data 533``
(account disabled), and a person changing their password with Kerberos kpasswd.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE, MODIFY_ADD, MODIFY_REPLACE, NONE, Connection, Server, Tls

from connectors.config import DirectoryConfig
from connectors.directory import profile
from connectors.directory.ad import ActiveDirectory, sam_account_name
from devtools.samba_sandbox import SambaSandbox
from syncd.model import Account, Action, ActionKind, Field, Kind, State
from syncd.ports import DirectoryError, Scope
from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd

DOMAIN = "test.gov.vn"
FIRST = "Xy7!first-one"
MINE = "Mine!4ever-ok"


@pytest.fixture
def ad(samba: SambaSandbox, ad_base: str) -> ActiveDirectory:
    cfg = DirectoryConfig(
        url=samba.url,
        bind_dn=samba.service_dn,
        base_dn=ad_base,
        profile="ad",
        ca_file=samba.ca_file,
    )
    made = profile("ad")(cfg, samba.service_password, DOMAIN)
    assert isinstance(made, ActiveDirectory)
    return made


def _create(
    ad: ActiveDirectory,
    uid: str,
    org: str = "skhcn",
    password: str = FIRST,
    emp: str = "E1",
    kind: ActionKind = ActionKind.CREATE,
    extra: dict[Field, tuple[str, ...]] | None = None,
) -> str:
    attrs = {
        Field.UID: (uid,),
        Field.MAIL: (f"{uid}@{DOMAIN}",),
        Field.NAME: ("Đàm Văn Hùng",),
        Field.SURNAME: ("Đàm",),
        Field.ORG: (org,),
        Field.EMPLOYEE_NUMBER: (emp,),
        **(extra or {}),
    }
    return ad.create(Action(kind, uid, org, "test", "test", attrs=attrs), password)


def _bind(samba: SambaSandbox, who: str, password: str) -> tuple[bool, str]:
    """A person's simple bind over LDAPS: whether it worked, and AD's reason (``data NNN``)."""
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(samba.ca_file))
    conn = Connection(Server(samba.url, get_info=NONE, tls=tls), who, password)
    ok = conn.bind()
    found = re.search(r"data ([0-9a-f]+)", conn.result.get("message") or "")
    conn.unbind()
    return ok, found.group(1) if found else ""


def _entry(samba: SambaSandbox, dn: str, *attributes: str) -> dict[str, Any]:
    conn = samba.admin()
    assert conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=list(attributes))
    attrs = dict(conn.response[0]["attributes"])
    conn.unbind()
    return attrs


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_a_person_created_by_syncd_must_change_the_password_before_any_bind(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    dn = _create(ad, "hungdv.skhcn")
    assert _bind(samba, dn, FIRST) == (False, "773")  # AD: must change password at next logon
    assert _bind(samba, f"hungdv.skhcn@{DOMAIN}", FIRST) == (False, "773")  # by the UPN too
    got = _entry(samba, dn, "sAMAccountName", "userPrincipalName", "mail", "proxyAddresses")
    assert got["sAMAccountName"] == ["hungdv.skhcn"]
    assert got["userPrincipalName"] == [f"hungdv.skhcn@{DOMAIN}"]
    assert got["mail"] == [f"hungdv.skhcn@{DOMAIN}"]
    assert got["proxyAddresses"] == [f"SMTP:hungdv.skhcn@{DOMAIN}"]
    [acc] = ad.read(Scope())
    assert acc.must_change_password and acc.state is State.ACTIVE and acc.last_login is None
    samba.change_password(dn, FIRST, MINE)  # the person, at first login (Kerberos kpasswd)
    assert _bind(samba, dn, MINE) == (True, "")
    assert _bind(samba, dn, FIRST)[0] is False
    [acc] = ad.read(Scope())
    assert not acc.must_change_password and acc.last_login is not None


def test_a_locked_account_is_disabled_and_a_restored_one_binds_with_its_new_password(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    dn = _create(ad, "hungdv.skhcn")
    samba.change_password(dn, FIRST, MINE)
    assert _bind(samba, dn, MINE) == (True, "")
    since = _now() - timedelta(days=2)
    ad.set_state(dn, State.LOCKED, since, "inactive [caobang-2025 Đ8.2a]", delivery=True)
    assert _bind(samba, dn, MINE) == (False, "533")  # AD: account disabled
    assert int(_entry(samba, dn, "userAccountControl")["userAccountControl"][0]) & 0x2
    [acc] = ad.read(Scope())
    assert (acc.state, acc.state_since) == (State.LOCKED, since)
    ad.set_state(dn, State.REVOKED, _now(), "left [caobang-2025 Đ8.1]", delivery=False)
    assert _bind(samba, dn, MINE) == (False, "533")
    ad.set_state(dn, State.ACTIVE, _now(), "restore [caobang-2025 Đ8.1]", delivery=True)
    ad.set_password(dn, "New!pass-42")
    assert _bind(samba, dn, "New!pass-42") == (False, "773")  # enabled, the new one-time password
    assert _bind(samba, dn, MINE)[0] is False
    samba.change_password(dn, "New!pass-42", "Back!again-77")
    assert _bind(samba, dn, "Back!again-77") == (True, "")
    [acc] = ad.read(Scope())
    assert acc.state is State.ACTIVE and not acc.must_change_password


def test_other_user_account_control_bits_survive_a_lock_and_a_restore(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    dn = _create(ad, "hungdv.skhcn")
    admin = samba.admin()
    dont_expire = 0x10000
    assert admin.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, [str(0x200 | dont_expire)])]})
    ad.set_state(dn, State.LOCKED, _now(), "x [a]", delivery=True)
    ad.set_state(dn, State.ACTIVE, _now(), "y [a]", delivery=True)
    assert int(_entry(samba, dn, "userAccountControl")["userAccountControl"][0]) == (
        0x200 | dont_expire
    )


def test_a_uid_longer_than_20_characters_gets_a_derived_unique_sam_account_name(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    long_a = "nguyenthiminhkhai.sokhoahoc"
    long_b = "nguyenthiminhkhai.soyte.caobang"  # the same first 13 characters
    dn_a = _create(ad, long_a, emp="E1")
    dn_b = _create(ad, long_b, emp="E2")
    a = _entry(samba, dn_a, "sAMAccountName", "userPrincipalName", "mail", "uid")
    b = _entry(samba, dn_b, "sAMAccountName")
    sam_a, sam_b = a["sAMAccountName"][0], b["sAMAccountName"][0]
    assert len(sam_a) <= 20 and len(sam_b) <= 20 and sam_a != sam_b
    assert sam_a == sam_account_name(long_a)  # stable: a re-run derives the same name
    assert a["userPrincipalName"] == [f"{long_a}@{DOMAIN}"] and a["mail"] == [f"{long_a}@{DOMAIN}"]
    assert {x.uid for x in ad.read(Scope())} == {long_a, long_b}  # the whole uid is read back
    # the person logs in with the whole address (UPN) once the password is theirs
    samba.change_password(dn_a, FIRST, MINE)
    assert _bind(samba, f"{long_a}@{DOMAIN}", MINE) == (True, "")


def test_a_derived_sam_account_name_taken_elsewhere_in_the_domain_is_not_reused(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    uid = "tranthithuhuong.sokhoahoc"
    taken = sam_account_name(uid)
    admin = samba.admin()
    # someone else's account outside syncd's base, holding that very name
    assert admin.add(f"CN=other,CN=Users,{samba.suffix}", ["user"], {"sAMAccountName": taken}), (
        admin.result
    )
    dn = _create(ad, uid)
    assert _entry(samba, dn, "sAMAccountName")["sAMAccountName"] == [sam_account_name(uid, 1)]
    assert admin.delete(f"CN=other,CN=Users,{samba.suffix}")


def test_a_transfer_keeps_the_old_address_as_a_lower_case_smtp_proxy_address(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    dn = _create(ad, "hungdv.skhcn")
    admin = samba.admin()
    x500 = "X500:/o=Caobang/ou=Exchange/cn=Recipients/cn=hungdv"
    assert admin.modify(dn, {"proxyAddresses": [(MODIFY_ADD, [x500])]}), admin.result
    new_dn = ad.move(
        dn,
        "hungdv.syt",
        {
            Field.MAIL: (f"hungdv.syt@{DOMAIN}", f"hungdv.skhcn@{DOMAIN}"),
            Field.ORG: ("syt",),
            Field.ALIASES: (f"hungdv.skhcn@{DOMAIN} 20270101000000Z",),
        },
    )
    got = _entry(
        samba, new_dn, "proxyAddresses", "mail", "sAMAccountName", "userPrincipalName", "cn"
    )
    assert set(got["proxyAddresses"]) == {
        f"SMTP:hungdv.syt@{DOMAIN}",
        f"smtp:hungdv.skhcn@{DOMAIN}",
        x500,  # another proxy type an administrator set stays
    }
    assert got["mail"] == [f"hungdv.syt@{DOMAIN}"] and got["cn"] == ["hungdv.syt"]
    assert got["sAMAccountName"] == ["hungdv.syt"]
    assert got["userPrincipalName"] == [f"hungdv.syt@{DOMAIN}"]
    [acc] = ad.read(Scope())
    assert acc.mail == (f"hungdv.syt@{DOMAIN}", f"hungdv.skhcn@{DOMAIN}")  # primary first
    assert acc.org == "syt" and acc.aliases == (f"hungdv.skhcn@{DOMAIN} 20270101000000Z",)
    # the mail server's lookup finds the mailbox by its old address while the alias lives
    admin.search(ad.base, ad.delivery_filter(f"hungdv.skhcn@{DOMAIN}"), attributes=["cn"])
    assert [e["dn"] for e in admin.response if e.get("type") == "searchResEntry"] == [new_dn]


def test_the_mail_servers_delivery_lookup_follows_the_state_on_ad(
    ad: ActiveDirectory, samba: SambaSandbox, ad_base: str
) -> None:
    address = f"hungdv.skhcn@{DOMAIN}"
    admin = samba.admin()

    def found() -> set[str]:
        admin.search(ad_base, ad.delivery_filter(address), attributes=["cn"])
        assert admin.result["result"] == 0, admin.result
        return {e["dn"] for e in admin.response if e.get("type") == "searchResEntry"}

    dn = _create(ad, "hungdv.skhcn")
    assert found() == {dn}
    ad.set_state(dn, State.LOCKED, _now(), "inactive [art]", delivery=True)
    assert found() == {dn}  # Cao Bằng Đ8.1: a locked mailbox still receives
    ad.set_state(dn, State.LOCKED, _now(), "inactive [art]", delivery=False)
    assert found() == set()  # Tuyên Quang Đ8.1: it does not
    ad.set_state(dn, State.ACTIVE, _now(), "restore [art]", delivery=True)
    assert found() == {dn}
    # a mailbox made in AD before syncd (mail only, no proxyAddresses) receives once linked
    legacy = f"CN=Nông Văn Đạt,{ad_base}"
    assert admin.add(legacy, ["user"], {"sAMAccountName": "datnv", "mail": address})
    ad.update(legacy, {Field.EMPLOYEE_NUMBER: ("E9",)}, link=True)
    assert found() == {dn, legacy}


def test_linking_an_ad_account_made_before_syncd_adds_the_class_and_reads_its_sam_name(
    ad: ActiveDirectory, samba: SambaSandbox, ad_base: str
) -> None:
    legacy = f"CN=Nông Văn Đạt,{ad_base}"
    admin = samba.admin()
    assert admin.add(
        legacy, ["user"], {"sAMAccountName": "datnv", "displayName": "Nông Văn Đạt", "ou": "tgg"}
    )
    [before] = ad.read(Scope())
    assert (before.uid, before.cn, before.has_syncd_class) == ("datnv", "Nông Văn Đạt", False)
    simulated = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    ad.update(legacy, {Field.EMPLOYEE_NUMBER: ("E9",)}, link=True, since=simulated)
    [after] = ad.read(Scope())
    assert after.has_syncd_class and after.employee_number == "E9"
    assert after.state is State.ACTIVE and after.state_since == simulated
    # adopting never enables what an administrator disabled (an AD-made user starts disabled)
    assert int(_entry(samba, legacy, "userAccountControl")["userAccountControl"][0]) & 0x2


def test_names_sees_ad_entries_of_other_classes_under_the_base(
    ad: ActiveDirectory, samba: SambaSandbox, ad_base: str
) -> None:
    dn = _create(ad, "a.skhcn")
    admin = samba.admin()
    contact = f"CN=postmaster,{ad_base}"
    assert admin.add(contact, ["contact"], {"mail": f"postmaster@{DOMAIN}"}), admin.result
    svc = f"CN=svc,{ad_base}"
    assert admin.add(svc, ["user"], {"sAMAccountName": "svc-backup"}), admin.result
    assert admin.add(f"CN=printer,{ad_base}", ["organizationalRole"]), admin.result
    got = {x.dn.lower(): x for x in ad.names()}
    assert set(got) == {dn.lower(), contact.lower(), svc.lower()}
    assert got[contact.lower()].mail == (f"postmaster@{DOMAIN}",)
    assert got[svc.lower()].uid == "svc-backup"
    assert {x.dn for x in ad.read(Scope())} == {dn, svc}  # persons only; a contact is no account


def test_a_password_the_domain_policy_refuses_leaves_no_entry_and_is_never_shown(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    with pytest.raises(DirectoryError) as refused:
        _create(ad, "hungdv.skhcn", password="aaaaaaaa1")  # no complexity
    assert "hungdv.skhcn" in str(refused.value) and "aaaaaaaa1" not in str(refused.value)
    assert ad.read(Scope()) == []  # the half-made user was deleted again


def test_every_account_field_round_trips_through_samba(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    """The contract's round trip in AD's order: a login needs the person's own password first,
    then syncd issues a new one-time password (must change again), then the lock."""
    before = _now()
    dn = _create(
        ad,
        "sokhcn",
        emp="E7",
        kind=ActionKind.CREATE_ORG_MAILBOX,
        extra={
            Field.NAME: ("Sở Khoa học và Công nghệ",),
            Field.SURNAME: ("Sở",),
            Field.GIVEN_NAME: ("Công nghệ",),
            Field.TITLE: ("Văn thư",),
            Field.OFFICE: ("vp",),
            Field.MAIL: (f"sokhcn@{DOMAIN}", f"khcn@{DOMAIN}"),
        },
    )
    samba.change_password(dn, FIRST, MINE)
    assert _bind(samba, dn, MINE) == (True, "")
    ad.set_password(dn, "Reset!pw-2027")
    alias = f"khcn@{DOMAIN} 20270101000000Z"
    ad.update(dn, {Field.ALIASES: (alias,)})
    admin = samba.admin()
    assert admin.modify(dn, {"syncdManaged": [(MODIFY_REPLACE, ["FALSE"])]}), admin.result
    since = _now() - timedelta(days=1)
    ad.set_state(dn, State.LOCKED, since, "compromised [art]", delivery=False)
    after = _now()
    [acc] = ad.read(Scope())

    def within(t: datetime | None) -> bool:
        return t is not None and before <= t <= after

    checks: dict[str, bool] = {
        "dn": acc.dn == dn,
        "uid": acc.uid == "sokhcn",
        "cn": acc.cn == "Sở Khoa học và Công nghệ",
        "sn": acc.sn == "Sở",
        "given_name": acc.given_name == "Công nghệ",
        "mail": acc.mail == (f"sokhcn@{DOMAIN}", f"khcn@{DOMAIN}"),
        "employee_number": acc.employee_number == "E7",
        "org": acc.org == "skhcn",
        "office": acc.office == "vp",
        "title": acc.title == "Văn thư",
        "state": acc.state is State.LOCKED,
        "state_since": acc.state_since == since,
        "active_since": within(acc.active_since),
        "state_reason": acc.state_reason == "compromised [art]",
        "managed": acc.managed is False,
        "kind": acc.kind is Kind.ORGANISATION,
        "aliases": acc.aliases == (alias,),
        "has_syncd_class": acc.has_syncd_class is True,
        "last_login": within(acc.last_login),
        "password_changed": within(acc.password_changed),
        "created": within(acc.created),
        "must_change_password": acc.must_change_password is True,
        "drift": acc.drift == (),  # ACCOUNTDISABLE set, as the lock left it
        "receives_mail": acc.receives_mail is False,
        # AD keeps no forwarding syncd reads (Exchange's altRecipient is not mapped): None,
        # which the Hưng Yên Đ4.5 check takes as nothing to check (`syncd rules`: NOT CHECKED)
        "forwarding": acc.forwarding is None,
    }
    assert set(checks) == {f.name for f in fields(Account)}
    failed = sorted(k for k, ok in checks.items() if not ok)
    assert not failed, f"not read back: {failed} from {acc}"
    # the reset is newer than the person's own change: the password time follows the DC's write
    assert acc.password_changed is not None and acc.last_login is not None
    assert acc.password_changed >= acc.last_login


def test_the_export_is_the_whole_entry_without_the_password(
    ad: ActiveDirectory, samba: SambaSandbox
) -> None:
    dn = _create(ad, "hungdv.skhcn")
    ldif = ad.export(dn)
    assert ldif.startswith("version: 1\n")
    for kept in ("sAMAccountName:", "objectGUID::", "whenCreated:", "syncdState:", "employeeID:"):
        assert kept in ldif, kept
    assert "unicodePwd" not in ldif and FIRST not in ldif  # AD never returns a password
    ad.delete(dn)
    assert ad.read(Scope()) == []


def test_syncd_rules_states_the_last_logon_timestamp_lag_of_the_ad_profile(
    make_config: MakeConfig, tmp_path: Path, samba: SambaSandbox
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace("directory:\n", "directory:\n  profile: ad\n", 1), "utf-8")
    out = syncd(cfg, "rules")
    assert out.returncode == 0, out.stderr
    assert "lastLogonTimestamp" in out.stdout and "9-14 days" in out.stdout
    cfg.write_text(text, "utf-8")  # the generic profile has no such lag
    assert "lastLogonTimestamp" not in syncd(cfg, "rules").stdout


def test_plain_ldap_is_refused_before_any_password_crosses_it(samba: SambaSandbox) -> None:
    plain = DirectoryConfig(
        url=f"ldap://{samba.host}", bind_dn=samba.service_dn, base_dn=samba.people_dn
    )
    with pytest.raises(DirectoryError, match=r"ldaps:// or directory\.start_tls"):
        profile("ad")(plain, samba.service_password, DOMAIN)


def test_create_stamps_the_plans_time_when_given(ad: ActiveDirectory) -> None:
    simulated = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    attrs: dict[Field, tuple[str, ...]] = {Field.UID: ("a.skhcn",), Field.NAME: ("An",)}
    ad.create(
        Action(ActionKind.CREATE, "a.skhcn", "skhcn", "t", "t", attrs=attrs), FIRST, since=simulated
    )
    [acc] = ad.read(Scope())
    assert acc.state_since == simulated and acc.active_since == simulated


def test_an_employee_number_longer_than_ads_16_characters_is_refused_naming_the_entry(
    ad: ActiveDirectory,
) -> None:
    with pytest.raises(DirectoryError, match=r"CN=hungdv\.skhcn,.*employeeID") as refused:
        _create(ad, "hungdv.skhcn", emp="E" * 17)
    assert f"'{'E' * 17}' has 17 characters" in str(refused.value)
    assert "at most 16" in str(refused.value)
    assert ad.read(Scope()) == []
    dn = _create(ad, "hungdv.skhcn", emp="E" * 16)  # the limit itself fits
    with pytest.raises(DirectoryError, match="at most 128"):
        ad.update(dn, {Field.TITLE: ("x" * 129,)})
    [acc] = ad.read(Scope())
    assert acc.employee_number == "E" * 16 and acc.title is None
