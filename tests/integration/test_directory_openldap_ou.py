"""What only the openldap-ou profile does, on a real slapd: the organisation is the entry's
place (uid=…,ou=<org>,<base>) and delivery is domainRelatedObject/associatedDomain. The shared
contract runs in test_directory_contract.py; here: transfers as modrdn, the place read back,
hostile organisation names, and trees made by the generic profile read and run through it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE, Connection
from ldap3.utils.dn import escape_rdn

from connectors import runner
from connectors.config import Config, DirectoryConfig
from connectors.directory import profile
from connectors.directory.openldap import OpenLdapDirectory
from connectors.directory.openldap_ou import OpenLdapOuDirectory
from connectors.outcome import RunOutcome, report_text
from devtools.slapd_sandbox import Sandbox
from syncd.model import Action, ActionKind, Field, State
from syncd.ports import DirectoryError, Scope
from tests.conftest import MakeConfig
from tests.helpers import write_roster

DOMAIN = "test.gov.vn"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _ou(slapd: Sandbox, base: str) -> OpenLdapOuDirectory:
    cfg = DirectoryConfig(url=slapd.url, bind_dn=slapd.service_dn, base_dn=base)
    made = profile("openldap-ou")(cfg, slapd.service_password, DOMAIN)
    assert isinstance(made, OpenLdapOuDirectory)
    return made


def _generic(slapd: Sandbox, base: str, layout: str) -> OpenLdapDirectory:
    cfg = DirectoryConfig(url=slapd.url, bind_dn=slapd.service_dn, base_dn=base, layout=layout)
    return OpenLdapDirectory(cfg, slapd.service_password, DOMAIN)


def _create(directory: Any, uid: str, org: str, emp: str = "E1", name: str = "Nông Văn Đạt") -> str:
    attrs = {
        Field.UID: (uid,),
        Field.MAIL: (f"{uid}@{DOMAIN}",),
        Field.NAME: (name,),
        Field.SURNAME: (name.split()[0],),
        Field.ORG: (org,),
        Field.EMPLOYEE_NUMBER: (emp,),
    }
    action = Action(ActionKind.CREATE, uid, org, "test", "test", full_name=name, attrs=attrs)
    dn: str = directory.create(action, "Xy7!first-one")
    return dn


def _entry(admin: Connection, dn: str) -> dict[str, Any] | None:
    admin.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["*", "+"])
    found = [e for e in admin.response or [] if e.get("type") == "searchResEntry"]
    return dict(found[0]["attributes"]) if found else None


# -- the organisation is the place -------------------------------------------------------------


def test_accounts_are_created_in_their_organisations_branch_without_an_ou_attribute(
    slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    directory = _ou(slapd, base_dn)
    dn = _create(directory, "datnv", "skhcn")
    assert dn == f"uid=datnv,ou=skhcn,{base_dn}"
    got = _entry(admin, dn)
    assert got is not None and "ou" not in got
    assert {c.lower() for c in got["objectClass"]} >= {"inetorgperson", "domainrelatedobject"}
    assert got["associatedDomain"] == [DOMAIN] and "syncdDelivery" not in got


def test_a_transfer_with_the_same_uid_is_a_modrdn_to_the_new_branch(
    slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    directory = _ou(slapd, base_dn)
    dn = _create(directory, "datnv", "skhcn")
    before = _entry(admin, dn)
    assert before is not None
    directory.update(dn, {Field.ORG: ("syt",)})
    assert _entry(admin, dn) is None
    after = _entry(admin, f"uid=datnv,ou=syt,{base_dn}")
    assert after is not None and after["entryUUID"] == before["entryUUID"]  # moved, not re-added
    assert "ou" not in after
    [acc] = directory.read(Scope())
    assert (acc.dn, acc.org) == (f"uid=datnv,ou=syt,{base_dn}", "syt")
    # the DN the plan read still reaches it (a transfer's restore in the same run)
    directory.set_state(dn, State.LOCKED, NOW, "t [art]", delivery=True)
    assert directory.read(Scope())[0].state is State.LOCKED


def test_a_rename_and_a_transfer_are_one_modrdn_keeping_the_entry(
    slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    directory = _ou(slapd, base_dn)
    dn = _create(directory, "hungdv.skhcn", "skhcn")
    uuid = (_entry(admin, dn) or {})["entryUUID"]
    new_dn = directory.move(dn, "hungdv.syt", {Field.ORG: ("syt",)})
    assert new_dn == f"uid=hungdv.syt,ou=syt,{base_dn}"
    assert (_entry(admin, new_dn) or {})["entryUUID"] == uuid
    # a move that does not name the organisation keeps the entry in its branch
    again = directory.move(new_dn, "hungdv2.syt", {Field.MAIL: (f"hungdv2.syt@{DOMAIN}",)})
    assert again == f"uid=hungdv2.syt,ou=syt,{base_dn}"


def test_the_place_wins_over_an_ou_attribute_which_only_serves_entries_outside_a_branch(
    slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    # a branch made by hand in capitals is still skhcn's (ou matches ignoring case)
    assert admin.add(f"ou=SKHCN,{base_dn}", ["organizationalUnit"], {"ou": "SKHCN"})
    assert admin.add(f"ou=vp,ou=SKHCN,{base_dn}", ["organizationalUnit"], {"ou": "vp"})
    person = {"cn": "x", "sn": "x"}
    for dn, ou, emp in (
        (f"uid=placed,ou=SKHCN,{base_dn}", "syt", "E1"),  # a stale ou attribute
        (f"uid=flat,{base_dn}", "tgg", "E2"),  # the flat layout, or made before syncd
        (f"uid=deep,ou=vp,ou=SKHCN,{base_dn}", None, "E3"),  # not an organisation's branch
    ):
        extra = {"ou": ou} if ou else {}
        uid = dn.split(",")[0][4:]
        assert admin.add(
            dn, ["inetOrgPerson"], {"uid": uid, "employeeNumber": emp, **person, **extra}
        )
    directory = _ou(slapd, base_dn)
    got = {a.uid: a.org for a in directory.read(Scope())}
    assert got == {"placed": "skhcn", "flat": "tgg", "deep": None}
    by_org = {
        org: {a.uid for a in directory.read(Scope(orgs={org}, employee_numbers=set()))}
        for org in ("skhcn", "tgg", "syt", "vp")
    }
    # the stale ou=syt is read (the filter cannot tell) but the account is skhcn's, not syt's
    assert by_org == {"skhcn": {"placed"}, "tgg": {"flat"}, "syt": {"placed"}, "vp": set()}
    # the org unchanged (the capitals are the same branch): nothing moves
    directory.update(f"uid=placed,ou=SKHCN,{base_dn}", {Field.ORG: ("skhcn",)})
    assert _entry(admin, f"uid=placed,ou=SKHCN,{base_dn}") is not None
    # the flat one transferred to skhcn joins the existing branch
    directory.update(f"uid=flat,{base_dn}", {Field.ORG: ("skhcn",)})
    assert {a.uid: a.org for a in directory.read(Scope())}["flat"] == "skhcn"


@pytest.mark.parametrize(
    "org", ['Sở, "KH+CN" \\ <x>;=#1', "#lead", "trail ", "*", "a*", "Đồng Văn"]
)
def test_hostile_organisation_names_round_trip_through_the_dn_and_do_not_widen_filters(
    slapd: Sandbox, base_dn: str, org: str
) -> None:
    directory = _ou(slapd, base_dn)
    dn = _create(directory, "a.x", org, emp="E1")
    _create(directory, "b.x", "ab", emp="E2")  # what "a*" would match if unescaped
    _create(directory, "c.x", "other", emp="E3")
    assert dn == f"uid=a.x,ou={escape_rdn(org)},{base_dn}"
    got = {a.uid: a.org for a in directory.read(Scope())}
    assert got == {"a.x": org.lower(), "b.x": "ab", "c.x": "other"}
    scoped = directory.read(Scope(orgs={org}, employee_numbers=set()))
    assert [a.uid for a in scoped] == ["a.x"]


def test_a_delivery_attribute_setting_is_refused_not_ignored(slapd: Sandbox, base_dn: str) -> None:
    cfg = DirectoryConfig(
        url=slapd.url, bind_dn=slapd.service_dn, base_dn=base_dn, delivery_attribute="mailOn"
    )
    with pytest.raises(DirectoryError, match="delivery_attribute"):
        profile("openldap-ou")(cfg, "pw", DOMAIN)


def test_delivery_off_removes_the_class_and_on_restores_it(
    slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    directory = _ou(slapd, base_dn)
    dn = _create(directory, "datnv", "skhcn")
    directory.set_state(dn, State.REVOKED, NOW, "left [art]", delivery=False)
    got = _entry(admin, dn) or {}
    assert "domainrelatedobject" not in {c.lower() for c in got["objectClass"]}
    assert "associatedDomain" not in got
    directory.set_state(dn, State.ACTIVE, NOW, "back [art]", delivery=True)
    got = _entry(admin, dn) or {}
    assert "domainrelatedobject" in {c.lower() for c in got["objectClass"]}
    assert got["associatedDomain"] == [DOMAIN]


# -- attacks: trees made by the generic profile, read and run through this one ------------------


def test_a_per_org_tree_made_by_the_generic_profile_reads_the_same(
    slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    generic = _generic(slapd, base_dn, "per-org")
    a = _create(generic, "hungdv.skhcn", "skhcn", emp="E1")
    _create(generic, "mait.syt", "syt", emp="E2", name="Lê Thị Mai")
    generic.set_state(a, State.LOCKED, NOW, "inactive [art]", delivery=True)
    assert admin.add(f"uid=svc,{base_dn}", ["account"], {"uid": "svc"})
    ou = _ou(slapd, base_dn)
    # the same, but delivery: the generic profile's syncdDelivery is not this profile's
    # associatedDomain, so its mail server would deliver to none of them until linked
    mine = sorted(ou.read(Scope()), key=lambda x: x.dn)
    assert {x.receives_mail for x in mine} == {False}
    assert [replace(x, receives_mail=None) for x in mine] == [
        replace(x, receives_mail=None) for x in sorted(generic.read(Scope()), key=lambda x: x.dn)
    ]
    assert sorted(ou.names(), key=lambda x: x.dn) == sorted(generic.names(), key=lambda x: x.dn)
    scoped = ou.read(Scope(orgs={"syt"}, employee_numbers=set()))
    assert [x.uid for x in scoped] == ["mait.syt"]
    # a transfer by this profile moves the entry; the generic profile's ou attribute is left as
    # it was (this profile neither writes nor keeps ou): going back is not a profile switch
    ou.update(a, {Field.ORG: ("syt",)})
    moved = f"uid=hungdv.skhcn,ou=syt,{base_dn}"
    assert {x.dn: x.org for x in ou.read(Scope())}[moved] == "syt"
    assert {x.dn: x.org for x in generic.read(Scope())}[moved] == "skhcn"


def _with_ou(cfg: Config, slapd: Sandbox) -> OpenLdapOuDirectory:
    return _ou(slapd, cfg.directory.base_dn)


def _run(cfg: Config, slapd: Sandbox, roster: Path, **kw: Any) -> RunOutcome:
    outcome = runner.run(
        cfg, rosters=[roster], now=kw.pop("now", NOW), directory=_with_ou(cfg, slapd), **kw
    )
    assert outcome.exit_code == 0, report_text(outcome, [roster])
    return outcome


def _dns(admin: Connection, base: str) -> dict[str, str]:
    admin.search(base, "(uid=*)", attributes=["uid"])
    return {
        str(e["attributes"]["uid"][0]): e["dn"]
        for e in admin.response
        if e.get("type") == "searchResEntry"
    }


def test_a_flat_tree_made_by_the_generic_profile_plans_nothing_through_this_one(
    make_config: MakeConfig, slapd: Sandbox, tmp_path: Path, base_dn: str, admin: Connection
) -> None:
    """Adopting a flat tree renames nobody: outside a branch, the ou attribute says the org."""
    cfg = make_config()
    roster = write_roster(
        tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,syt,,,,,"]
    )
    first = runner.run(cfg, rosters=[roster], now=NOW)  # the generic profile, flat
    assert first.exit_code == 0
    again = _run(cfg, slapd, roster)
    assert again.plan is not None and again.plan.actions == (), again.plan.actions


def test_a_transfer_through_the_runner_moves_the_entry_and_restores_it_in_one_run(
    make_config: MakeConfig, slapd: Sandbox, tmp_path: Path, base_dn: str, admin: Connection
) -> None:
    """caobang-2011: the uid does not carry the organisation. A revoked person transferred in
    is moved to the new branch (an update) and restored (by the DN the plan read) in one run."""
    cfg = make_config(profile="caobang-2011", extra="safety: {max_revoke_share: 0.5}\n")
    rows = ["E1,Nông Văn Đạt,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
    _run(cfg, slapd, write_roster(tmp_path / "a.csv", rows))
    assert _dns(admin, base_dn)["datnv"] == f"uid=datnv,ou=skhcn,{base_dn}"
    rows[0] = "E1,Nông Văn Đạt,skhcn,,,,Nghỉ việc,"
    _run(cfg, slapd, write_roster(tmp_path / "b.csv", rows))
    moved = _run(cfg, slapd, write_roster(tmp_path / "c.csv", ["E1,Nông Văn Đạt,syt,,,,,"]))
    assert moved.result is not None and not moved.result.failed, moved.result.failed
    kinds = [a.kind for a in moved.plan.actions if a.uid == "datnv"]  # type: ignore[union-attr]
    assert kinds == [ActionKind.UPDATE, ActionKind.RESTORE]
    new_dn = f"uid=datnv,ou=syt,{base_dn}"
    assert _dns(admin, base_dn)["datnv"] == new_dn
    got = _entry(admin, new_dn) or {}
    assert got["syncdState"] == ["active"] and got["associatedDomain"] == [DOMAIN]
    [slip] = [x for x in moved.result.slips if x.uid == "datnv"]
    assert Connection(slapd.url, new_dn, slip.password).bind()
    after = _run(cfg, slapd, write_roster(tmp_path / "d.csv", ["E1,Nông Văn Đạt,syt,,,,,"]))
    assert after.plan is not None and after.plan.actions == ()


def test_a_transfer_that_renames_lands_in_the_new_branch(
    make_config: MakeConfig, slapd: Sandbox, tmp_path: Path, base_dn: str, admin: Connection
) -> None:
    cfg = make_config()  # caobang-2025: the uid carries the organisation
    _run(cfg, slapd, write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"]))
    _run(cfg, slapd, write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,syt,,,,,"]))
    dns = _dns(admin, base_dn)
    assert "hungdv.skhcn" not in dns
    assert dns["hungdv.syt"] == f"uid=hungdv.syt,ou=syt,{base_dn}"
    # organisation mailboxes are in their organisation's branch too
    assert dns["sokhcn"] == f"uid=sokhcn,ou=skhcn,{base_dn}"
    again = _run(cfg, slapd, write_roster(tmp_path / "c.csv", ["E1,Đàm Văn Hùng,syt,,,,,"]))
    assert again.plan is not None and again.plan.actions == ()


def test_the_registry_opens_the_configured_profile(slapd: Sandbox, base_dn: str) -> None:
    from connectors.directory import open_directory

    cfg = DirectoryConfig(url=slapd.url, bind_dn=slapd.service_dn, base_dn=base_dn)
    opened = open_directory(cfg, slapd.service_password, DOMAIN)
    assert type(opened) is OpenLdapDirectory
    opened.close()
    ou_cfg = replace(cfg, profile="openldap-ou")
    assert isinstance(open_directory(ou_cfg, slapd.service_password, DOMAIN), OpenLdapOuDirectory)
