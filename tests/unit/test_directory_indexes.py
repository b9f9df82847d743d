"""The equality indexes syncd asks of a directory (``setup.required_indexes``), per profile, and
the ``olcDbIndex`` changes that add them (``setup.index_mods``): pure functions of the profile's
mapping and of what cn=config holds. Their effect on a real slapd (init adds them, the doctor
finds each missing one) is proven in tests/integration/test_doctor.py."""

from __future__ import annotations

import pytest

from connectors.config import DirectoryConfig
from connectors.directory import PROFILES
from connectors.directory.setup import index_mods, required_indexes

SYNCD_SEARCHES = ["objectClass", "uid", "mail", "employeeNumber", "ou", "entryCSN"]


def config(profile: str) -> DirectoryConfig:
    return DirectoryConfig(
        url="ldap://127.0.0.1",
        bind_dn="cn=syncd,dc=test",
        base_dn="ou=people,dc=test",
        profile=profile,
        bind_password_env="SYNCD_BIND_PASSWORD",
    )


@pytest.mark.parametrize("profile", sorted(set(PROFILES) - {"ad"}))
def test_every_openldap_profile_needs_the_indexes_docs_architecture_lists(profile: str) -> None:
    """iredmail and zimbra search on no attribute of their own: their extra address
    attributes (shadowAddress) appear only in the whole-namespace read, which no index helps."""
    assert list(required_indexes(config(profile))) == SYNCD_SEARCHES


def test_active_directory_needs_no_index_of_syncds() -> None:
    assert required_indexes(config("ad")) == {}


def test_only_the_missing_indexes_are_added_in_one_value_each() -> None:
    have = ["objectClass eq", "cn,uid eq", "uidNumber,gidNumber eq"]
    assert index_mods(have, SYNCD_SEARCHES) == [
        ("add", "olcDbIndex", ["mail eq", "employeeNumber eq", "ou eq", "entryCSN eq"])
    ]
    assert index_mods([*have, "mail,employeeNumber,ou,entryCSN eq"], SYNCD_SEARCHES) == []


def test_an_attribute_indexed_another_way_gets_eq_added_to_its_own_definition() -> None:
    """slapd refuses a second olcDbIndex value naming an attribute already indexed."""
    have = ["objectClass eq", "uid", "mail,cn pres,sub", "employeeNumber,ou,entryCSN eq"]
    assert index_mods(have, SYNCD_SEARCHES) == [
        ("delete", "olcDbIndex", ["mail,cn pres,sub"]),
        ("add", "olcDbIndex", ["mail,cn pres,sub,eq"]),
    ]  # "uid" alone: the database's default index types, equality by slapd's default


def test_an_attribute_named_alone_gets_the_default_lines_kinds() -> None:
    """slapd-mdb(5): "if only an attr is given, the indices specified for default are
    maintained": beside ``default pres`` a bare ``uid`` has no equality index (found by an
    attack: the doctor said ok)."""
    have = ["default pres", "objectClass eq", "uid", "mail,employeeNumber,ou,entryCSN eq"]
    assert index_mods(have, SYNCD_SEARCHES) == [
        ("delete", "olcDbIndex", ["uid"]),
        ("add", "olcDbIndex", ["uid pres,eq"]),
    ]
    assert index_mods(["default pres,eq", *have[1:]], SYNCD_SEARCHES) == []
