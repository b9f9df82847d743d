"""The Directory interface's contract, run against every directory profile on a real slapd.

A new profile (iRedMail, Zimbra, AD) joins by adding a factory to PROFILES; the same suite must
pass unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from ldap3 import NONE, Connection, Server

from connectors.directory.openldap import OpenLdapDirectory
from connectors.slapd_sandbox import Sandbox
from syncd.config import DirectoryConfig
from syncd.model import Action, ActionKind, State
from syncd.ports import Directory, DirectoryError, ReadIncomplete, Scope

DOMAIN = "test.gov.vn"


def _openldap(layout: str) -> Callable[[Sandbox, str], OpenLdapDirectory]:
    def make(slapd: Sandbox, base: str) -> OpenLdapDirectory:
        cfg = DirectoryConfig(url=slapd.url, bind_dn=slapd.service_dn, base_dn=base, layout=layout)
        return OpenLdapDirectory(cfg, slapd.service_password, DOMAIN)

    return make


PROFILES = {"openldap-flat": _openldap("flat"), "openldap-per-org": _openldap("per-org")}


@pytest.fixture(params=sorted(PROFILES))
def directory(request: pytest.FixtureRequest, slapd: Sandbox, base_dn: str) -> Directory:
    return PROFILES[request.param](slapd, base_dn)


def _create(
    directory: Directory,
    uid: str,
    org: str = "skhcn",
    name: str = "Đàm Văn Hùng",
    emp: str | None = "E1",
    password: str = "Aa1!aaaa-x",
) -> str:
    attrs = {
        "uid": (uid,),
        "mail": (f"{uid}@{DOMAIN}",),
        "cn": (name,),
        "displayName": (name,),
        "sn": (name.split()[0],),
        "ou": (org,),
        "employeeNumber": (emp,) if emp else (),
    }
    action = Action(ActionKind.CREATE, uid, org, "test", "test", full_name=name, attrs=attrs)
    return directory.create(action, password)


def _bind(slapd: Sandbox, dn: str, password: str) -> Connection:
    conn = Connection(Server(slapd.url, get_info=NONE), dn, password)
    conn.bind()
    return conn


def test_created_account_reads_back_with_its_attributes(directory: Directory) -> None:
    dn = _create(directory, "hungdv.skhcn")
    [acc] = directory.read(Scope())
    assert (acc.dn, acc.uid, acc.cn, acc.org) == (dn, "hungdv.skhcn", "Đàm Văn Hùng", "skhcn")
    assert acc.employee_number == "E1"
    assert acc.state is State.ACTIVE and acc.has_syncd_class and acc.managed


def test_one_time_password_binds_and_must_be_changed(
    directory: Directory, slapd: Sandbox, admin: Connection
) -> None:
    dn = _create(directory, "hungdv.skhcn", password="Xy7!first-one")
    assert _bind(slapd, dn, "Xy7!first-one").bound
    admin.search(
        dn, "(objectClass=*)", search_scope="BASE", attributes=["pwdReset", "userPassword"]
    )
    attrs = admin.response[0]["attributes"]
    assert attrs["pwdReset"] == ["TRUE"]
    assert str(attrs["userPassword"][0]).startswith("{SSHA}")  # hashed by the server


def test_revoked_account_cannot_bind_and_restored_one_can(
    directory: Directory, slapd: Sandbox
) -> None:
    dn = _create(directory, "hungdv.skhcn", password="Xy7!first-one")
    directory.set_state(
        dn, State.REVOKED, datetime(2026, 1, 2, tzinfo=UTC), "left [art]", delivery=False
    )
    assert not _bind(slapd, dn, "Xy7!first-one").bound
    [acc] = directory.read(Scope())
    assert acc.state is State.REVOKED
    assert acc.state_since == datetime(2026, 1, 2, tzinfo=UTC)
    assert acc.state_reason == "left [art]"
    directory.set_state(
        dn, State.ACTIVE, datetime(2026, 2, 1, tzinfo=UTC), "restore [art]", delivery=True
    )
    directory.set_password(dn, "New!pass-42")
    assert _bind(slapd, dn, "New!pass-42").bound


def test_update_replaces_and_deletes_attributes(directory: Directory) -> None:
    dn = _create(directory, "hungdv.skhcn")
    directory.update(dn, {"title": ("Trưởng phòng",), "employeeNumber": ()})
    [acc] = directory.read(Scope())
    assert acc.title == "Trưởng phòng"
    assert acc.employee_number is None


def test_move_renames_and_keeps_the_old_address(directory: Directory) -> None:
    dn = _create(directory, "hungdv.skhcn")
    new_dn = directory.move(
        dn,
        "hungdv.syt",
        {
            "mail": (f"hungdv.syt@{DOMAIN}", f"hungdv.skhcn@{DOMAIN}"),
            "ou": ("syt",),
            "syncdAlias": (f"hungdv.skhcn@{DOMAIN} 20270101000000Z",),
        },
    )
    [acc] = directory.read(Scope())
    assert acc.dn == new_dn and acc.uid == "hungdv.syt" and acc.org == "syt"
    assert set(acc.mail) == {f"hungdv.syt@{DOMAIN}", f"hungdv.skhcn@{DOMAIN}"}
    assert acc.aliases == (f"hungdv.skhcn@{DOMAIN} 20270101000000Z",)


def test_link_adds_syncd_class_to_an_entry_made_before_syncd(
    directory: Directory, admin: Connection, base_dn: str
) -> None:
    dn = f"uid=datnv,{base_dn}"
    assert admin.add(
        dn, ["inetOrgPerson"], {"uid": "datnv", "cn": "Nông Văn Đạt", "sn": "Nông", "ou": "skhcn"}
    )
    [before] = directory.read(Scope())
    assert not before.has_syncd_class and before.employee_number is None
    directory.update(dn, {"employeeNumber": ("E9",)}, link=True)
    [after] = directory.read(Scope())
    assert after.has_syncd_class and after.employee_number == "E9"


def test_hostile_names_are_escaped_in_dns_and_filters(directory: Directory) -> None:
    name = 'Nguyễn *)(uid=*) \\ , + " < > ; = # Văn'
    _create(directory, "an.skhcn", name=name, emp="E*)(|(uid=*")
    _create(directory, "binh.syt", org="syt", name="Trần Bình", emp="E2")
    scoped = directory.read(Scope(orgs={"skhcn"}, employee_numbers={"E*)(|(uid=*"}))
    assert [a.cn for a in scoped if a.employee_number] == [name]  # no filter widening


def test_scoped_read_sees_only_the_orgs_and_people_asked_for(directory: Directory) -> None:
    _create(directory, "a.skhcn", emp="E1")
    _create(directory, "b.syt", org="syt", emp="E2")
    _create(directory, "c.tgg", org="tgg", emp="E3")
    _create(directory, "legacy", org="tgg", emp=None)
    got = {a.uid for a in directory.read(Scope(orgs={"skhcn"}, employee_numbers={"E3"}))}
    assert got == {"a.skhcn", "c.tgg", "legacy"}


def test_failed_operation_raises_directory_error_naming_the_entry(directory: Directory) -> None:
    _create(directory, "dup.skhcn")
    with pytest.raises(DirectoryError, match=r"dup\.skhcn"):
        _create(directory, "dup.skhcn")


def test_a_size_limited_read_aborts_instead_of_returning_a_partial_list(
    slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    for i in range(510):  # slapd's default size limit is 500 for a bind without olcLimits
        admin.add(f"uid=u{i},{base_dn}", ["inetOrgPerson"], {"uid": f"u{i}", "cn": "x", "sn": "x"})
    full = PROFILES["openldap-flat"](slapd, base_dn)
    assert len(full.read(Scope())) == 510
    cfg = DirectoryConfig(url=slapd.url, bind_dn=slapd.reader_dn, base_dn=base_dn)
    limited = OpenLdapDirectory(cfg, slapd.service_password, DOMAIN)
    with pytest.raises(ReadIncomplete):
        limited.read(Scope())


def test_plain_ldap_to_a_remote_host_is_refused_without_allow_insecure() -> None:
    cfg = DirectoryConfig(url="ldap://192.0.2.10", bind_dn="cn=x", base_dn="dc=x")
    with pytest.raises(DirectoryError, match="allow_insecure"):
        OpenLdapDirectory(cfg, "pw", DOMAIN)
    OpenLdapDirectory(replace(cfg, allow_insecure=True), "pw", DOMAIN)  # no traffic is sent
