"""The Directory interface's contract, run against every directory profile on a real slapd.

Every profile of the registry (connectors.directory.PROFILES) runs here, each of its layouts a
maker in MAKERS; a new profile joins with its registry line and a maker, and the same suite
must pass unchanged (tests/integration/test_directory_<profile>.py holds what only it does).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE, MODIFY_DELETE, MODIFY_REPLACE, NONE, Connection, Server

from connectors.audit import AuditLog, history
from connectors.config import DirectoryConfig
from connectors.directory import PROFILES, OpenedDirectory, profile
from connectors.regulations import PROFILES as PROFILES_BY_ID
from connectors.regulations import get_scheme
from devtools.samba_sandbox import SambaSandbox
from devtools.slapd_sandbox import LASTBIND_PRECISION, SCHEMA_DIR_VARIABLE, Sandbox
from syncd.applier import apply_plan
from syncd.model import Account, Action, ActionKind, Field, Kind, Name, Plan, State
from syncd.orgs import parse_catalogue
from syncd.plan import PlanInput, make_plan
from syncd.ports import Directory, DirectoryError, ReadIncomplete, Scope

DOMAIN = "test.gov.vn"


Maker = Callable[..., OpenedDirectory]


def needs_schema(slapd: Sandbox, profile_name: str) -> None:
    """The mail server's schema of ``profile_name`` must be loaded in ``slapd``: skipped where
    it cannot be found, a failure in CI (which has the shared folder beside the checkout)."""
    if profile_name in slapd.profile_schemas:
        return
    why = (
        f"the {profile_name} schema is not loaded: it is read from the shared folder beside the "
        f"checkout (../shared/schemas) or ${SCHEMA_DIR_VARIABLE}"
    )
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def _maker(name: str, schema: str | None = None, **settings: Any) -> Maker:
    """A directory of the registry's profile ``name`` on ``base``, bound as ``bind_dn`` (the
    service account unless given); ``schema``: the mail server's schema it needs."""

    def make(slapd: Sandbox, base: str, bind_dn: str | None = None) -> OpenedDirectory:
        if schema is not None:
            needs_schema(slapd, schema)
        cfg = DirectoryConfig(
            url=slapd.url, bind_dn=bind_dn or slapd.service_dn, base_dn=base, **settings
        )
        return profile(name)(cfg, slapd.service_password, DOMAIN)

    return make


# each registry profile, with each layout it offers
MAKERS: dict[str, Maker] = {
    "openldap-flat": _maker("openldap", layout="flat"),
    "openldap-per-org": _maker("openldap", layout="per-org"),
    "openldap-ou": _maker("openldap-ou"),
    "iredmail": _maker("iredmail", schema="iredmail"),
    "zimbra-flat": _maker("zimbra", schema="zimbra", layout="flat"),
    "zimbra-per-org": _maker("zimbra", schema="zimbra", layout="per-org"),
}


def _ad_maker(**settings: Any) -> Maker:
    """The ``ad`` profile on the session's Samba AD DC, its certificate verified."""

    def make(samba: SambaSandbox, base: str, bind_dn: str | None = None) -> OpenedDirectory:
        cfg = DirectoryConfig(
            url=samba.url,
            bind_dn=bind_dn or samba.service_dn,
            base_dn=base,
            profile="ad",
            ca_file=samba.ca_file,
            **settings,
        )
        return profile("ad")(cfg, samba.service_password, DOMAIN)

    return make


MAKERS["ad-flat"] = _ad_maker(layout="flat")
MAKERS["ad-per-org"] = _ad_maker(layout="per-org")
# makers whose server is not the session's slapd: (its fixture, its per-test base fixture)
SERVERS: dict[str, tuple[str, str]] = {
    "ad-flat": ("samba", "ad_base"),
    "ad-per-org": ("samba", "ad_base"),
}
# contract tests whose wording cannot hold on a server, and why; each promise is proven in that
# server's own terms in tests/integration/test_directory_<profile>.py
_ONE_TIME = "a one-time password (pwdLastSet 0) refuses every bind until changed (data 773)"
_RDN = "AD names a user CN=…, never uid=… (namingViolation), and has no extensibleObject"
CANNOT_HOLD: dict[str, dict[str, str]] = {
    "ad": {
        "test_one_time_password_binds_and_must_be_changed": f"{_ONE_TIME}; no pwdReset, "
        "and unicodePwd is never readable",
        "test_revoked_account_cannot_bind_and_restored_one_can": f"{_ONE_TIME}, also after a "
        "restore: the restored person binds once they changed it",
        "test_a_real_bind_is_read_back_as_the_last_login": _ONE_TIME,
        "test_every_account_field_round_trips_through_the_server": f"{_ONE_TIME}: a login, "
        "then a new one-time password, in that order",
        "test_the_mail_servers_delivery_lookup_follows_the_state": _RDN,
        "test_link_adds_syncd_class_to_an_entry_made_before_syncd": _RDN,
        "test_create_and_link_stamp_the_plans_time_when_given": _RDN,
        "test_names_sees_the_whole_namespace_that_a_scoped_read_misses": _RDN,
        "test_a_size_limited_read_aborts_instead_of_returning_a_partial_list": f"{_RDN}; no "
        "size limit applies to a paged read (MaxPageSize bounds a page, not the read)",
        "test_names_of_a_size_limited_bind_abort_instead_of_returning_a_partial_list": f"{_RDN}"
        "; no size limit applies to a paged read (MaxPageSize bounds a page, not the read)",
        "test_the_exported_archive_is_ldif_that_ldapadd_restores": "AD computes objectGUID, "
        "whenCreated, uSN… and refuses them on an add (no Relax control); a deleted object "
        "returns from the Recycle Bin, not from an LDIF",
    },
}
_bases = itertools.count(1)


def _maker_name(request: pytest.FixtureRequest) -> str | None:
    callspec = getattr(request.node, "callspec", None)
    return callspec.params.get("maker") if callspec is not None else None


@pytest.fixture
def slapd(request: pytest.FixtureRequest, slapd: Sandbox) -> Sandbox | SambaSandbox:
    """The server of this test's maker: the session's slapd, or the one ``SERVERS`` names;
    a test ``CANNOT_HOLD`` lists for it is skipped with its reason."""
    name = _maker_name(request)
    if name is None or name not in SERVERS:
        return slapd
    why = CANNOT_HOLD.get(name.split("-")[0], {}).get(request.node.originalname)
    if why:
        pytest.skip(f"cannot hold on {name}: {why}")
    server: SambaSandbox = request.getfixturevalue(SERVERS[name][0])
    return server


@pytest.fixture
def base_dn(request: pytest.FixtureRequest, slapd: Sandbox | SambaSandbox) -> str:
    """A fresh, empty subtree for one test, on the maker's server."""
    name = _maker_name(request)
    if name is not None and name in SERVERS:
        base: str = request.getfixturevalue(SERVERS[name][1])
        return base
    dn = f"ou=c{next(_bases)},{slapd.people_dn}"
    conn = slapd.admin()
    assert conn.add(dn, ["organizationalUnit"], {"ou": dn.split(",")[0][3:]}), conn.result
    conn.unbind()
    return dn


def test_every_registered_profile_runs_the_contract() -> None:
    covered = {name.split("-flat")[0].split("-per-org")[0] for name in MAKERS}
    assert covered == set(PROFILES)


@pytest.fixture(params=sorted(MAKERS))
def maker(request: pytest.FixtureRequest) -> Maker:
    return MAKERS[request.param]


@pytest.fixture
def directory(maker: Maker, slapd: Sandbox, base_dn: str) -> Iterator[OpenedDirectory]:
    made = maker(slapd, base_dn)
    yield made
    made.close()


def _create(
    directory: Directory,
    uid: str,
    org: str = "skhcn",
    name: str = "Đàm Văn Hùng",
    emp: str | None = "E1",
    password: str = "Aa1!aaaa-x",
    kind: ActionKind = ActionKind.CREATE,
    extra: dict[Field, tuple[str, ...]] | None = None,
) -> str:
    attrs = {
        Field.UID: (uid,),
        Field.MAIL: (f"{uid}@{DOMAIN}",),
        Field.NAME: (name,),
        Field.SURNAME: (name.split()[0],),
        Field.ORG: (org,),
        Field.EMPLOYEE_NUMBER: (emp,) if emp else (),
        **(extra or {}),
    }
    action = Action(kind, uid, org, "test", "test", full_name=name, attrs=attrs)
    return directory.create(action, password)


def _bind(slapd: Sandbox, dn: str, password: str) -> Connection:
    conn = Connection(Server(slapd.url, get_info=NONE), dn, password)
    conn.bind()
    return conn


def _now() -> datetime:
    """The wall clock at the directory's precision (generalized time keeps whole seconds)."""
    return datetime.now(UTC).replace(microsecond=0)


def _next_second() -> None:
    """Wait for the wall clock's next second, so a later server timestamp is a later value.

    And 30 ms into it: slapd stamps whole seconds from ``time()``, the kernel's coarse clock,
    which lags the precise one by up to a tick. A password change 3 ms into a second was
    stamped with the second before (``pwdChangedTime`` equal to the creation's), and this
    test failed about one run in three on a quiet machine.
    """
    start = _now()
    while True:
        now = datetime.now(UTC)
        if now.replace(microsecond=0) != start and now.microsecond >= 30_000:
            return
        time.sleep(0.005)


def _change_own_password(slapd: Sandbox, dn: str, old: str, new: str) -> None:
    """What a person does at first login: bind as themselves, RFC 3062 with the old password
    (AD refuses that bind until the change, data 773: its sandbox changes it with kpasswd)."""
    if isinstance(slapd, SambaSandbox):
        slapd.change_password(dn, old, new)
        return
    conn = _bind(slapd, dn, old)
    assert conn.bound, conn.result
    assert conn.extend.standard.modify_password(dn, old, new), conn.result
    conn.unbind()


def _one(directory: Directory) -> Account:
    [acc] = directory.read(Scope())
    return acc


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
    directory.update(dn, {Field.TITLE: ("Trưởng phòng",), Field.EMPLOYEE_NUMBER: ()})
    [acc] = directory.read(Scope())
    assert acc.title == "Trưởng phòng"
    assert acc.employee_number is None


def test_move_renames_and_keeps_the_old_address(directory: Directory) -> None:
    dn = _create(directory, "hungdv.skhcn")
    new_dn = directory.move(
        dn,
        "hungdv.syt",
        {
            Field.MAIL: (f"hungdv.syt@{DOMAIN}", f"hungdv.skhcn@{DOMAIN}"),
            Field.ORG: ("syt",),
            Field.ALIASES: (f"hungdv.skhcn@{DOMAIN} 20270101000000Z",),
        },
    )
    [acc] = directory.read(Scope())
    assert acc.dn == new_dn and acc.uid == "hungdv.syt" and acc.org == "syt"
    assert set(acc.mail) == {f"hungdv.syt@{DOMAIN}", f"hungdv.skhcn@{DOMAIN}"}
    assert acc.aliases == (f"hungdv.skhcn@{DOMAIN} 20270101000000Z",)


def test_a_transfer_with_the_uid_unchanged_reads_back_the_new_org_at_the_same_address(
    directory: Directory,
) -> None:
    """A scheme whose uid does not carry the organisation: the planner updates the org, then
    (a revoked person transferred in) restores the account by the DN it read."""
    dn = _create(directory, "datnv", org="skhcn", password="Xy7!first-one")
    directory.set_state(dn, State.REVOKED, _now(), "left [art]", delivery=False)
    directory.update(dn, {Field.ORG: ("syt",), Field.TITLE: ("Chuyên viên",)})
    directory.set_state(dn, State.ACTIVE, _now(), "transfer in [art]", delivery=True)
    directory.set_password(dn, "New!pass-42")
    acc = _one(directory)
    assert (acc.uid, acc.org, acc.title, acc.state) == ("datnv", "syt", "Chuyên viên", State.ACTIVE)
    assert acc.mail == (f"datnv@{DOMAIN}",)
    scoped = directory.read(Scope(orgs={"syt"}, employee_numbers=set()))
    assert [a.uid for a in scoped] == ["datnv"]
    assert directory.read(Scope(orgs={"skhcn"}, employee_numbers=set())) == []


def test_the_mail_servers_delivery_lookup_follows_the_state(
    directory: OpenedDirectory, admin: Connection, base_dn: str
) -> None:
    """What each state means on the wire for delivery, seen through the filter the profile
    gives the mail server (docs/mail-server.md), run as the mail server would."""
    address = f"hungdv.skhcn@{DOMAIN}"

    def found() -> set[str]:
        admin.search(base_dn, directory.delivery_filter(address), attributes=["uid"])
        assert admin.result["result"] == 0, admin.result  # no entry found is still success
        return {e["dn"] for e in admin.response if e.get("type") == "searchResEntry"}

    def delivers() -> bool:
        return found() == {dn}

    dn = _create(directory, "hungdv.skhcn")
    assert delivers()
    directory.set_state(dn, State.LOCKED, _now(), "inactive [art]", delivery=True)
    assert delivers()  # Cao Bằng Đ8.1: a locked mailbox still receives
    directory.set_state(dn, State.LOCKED, _now(), "inactive [art]", delivery=False)
    assert not delivers()  # Tuyên Quang: it does not
    directory.set_state(dn, State.REVOKED, _now(), "left [art]", delivery=False)
    directory.set_state(dn, State.REVOKED, _now(), "left [art]", delivery=False)  # again: no-op
    assert not delivers()
    directory.set_state(dn, State.ACTIVE, _now(), "restore [art]", delivery=True)
    directory.set_state(dn, State.ACTIVE, _now(), "restore [art]", delivery=True)
    assert delivers()
    # an entry made before syncd receives once linked
    legacy = f"uid=datnv,{base_dn}"
    assert admin.add(
        legacy, ["inetOrgPerson"], {"uid": "datnv", "cn": "Đạt", "sn": "Nông", "mail": address}
    )
    directory.update(legacy, {Field.EMPLOYEE_NUMBER: ("E9",)}, link=True)
    assert found() == {dn, legacy}


def test_link_adds_syncd_class_to_an_entry_made_before_syncd(
    directory: Directory, admin: Connection, base_dn: str
) -> None:
    dn = f"uid=datnv,{base_dn}"
    assert admin.add(
        dn, ["inetOrgPerson"], {"uid": "datnv", "cn": "Nông Văn Đạt", "sn": "Nông", "ou": "skhcn"}
    )
    [before] = directory.read(Scope())
    assert not before.has_syncd_class and before.employee_number is None
    directory.update(dn, {Field.EMPLOYEE_NUMBER: ("E9",)}, link=True)
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
    maker: Maker, slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    for i in range(510):  # slapd's default size limit is 500 for a bind without olcLimits
        admin.add(f"uid=u{i},{base_dn}", ["inetOrgPerson"], {"uid": f"u{i}", "cn": "x", "sn": "x"})
    full = maker(slapd, base_dn)
    assert len(full.read(Scope())) == 510
    limited = maker(slapd, base_dn, bind_dn=slapd.reader_dn)
    with pytest.raises(ReadIncomplete):
        limited.read(Scope())


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_plain_ldap_to_a_remote_host_is_refused_without_allow_insecure(name: str) -> None:
    cfg = DirectoryConfig(url="ldap://192.0.2.10", bind_dn="cn=x", base_dn="dc=x")
    with pytest.raises(DirectoryError, match="allow_insecure"):
        profile(name)(cfg, "pw", DOMAIN)
    profile(name)(replace(cfg, allow_insecure=True), "pw", DOMAIN)  # no traffic is sent


def test_an_unknown_profile_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(DirectoryError, match=r"'exchange'.*openldap, openldap-ou"):
        profile("exchange")


# -- the read is a contract: every field comes from the server, produced the real way ------------

# authTimestamp (lastbind) is rewritten only when older than the precision; pwdLastSuccess is
# exact but a password change deletes it. A login is therefore known to within the precision.
PRECISION = timedelta(seconds=LASTBIND_PRECISION)


def test_a_new_account_must_change_its_one_time_password_and_has_its_clocks(
    directory: Directory,
) -> None:
    before = _now()
    _create(directory, "hungdv.skhcn", password="Xy7!first-one")
    after = _now()
    acc = _one(directory)
    assert acc.must_change_password is True  # pwdReset, set by create
    assert acc.password_changed is not None and before <= acc.password_changed <= after
    assert acc.created is not None and before <= acc.created <= after
    assert acc.last_login is None  # nobody logged in yet


def test_a_real_bind_is_read_back_as_the_last_login(directory: Directory, slapd: Sandbox) -> None:
    dn = _create(directory, "hungdv.skhcn", password="Xy7!first-one")
    before = _now()
    assert _bind(slapd, dn, "Xy7!first-one").bound
    after = _now()
    acc = _one(directory)
    assert acc.last_login is not None
    assert before - PRECISION <= acc.last_login <= after


def test_changing_ones_own_password_clears_the_reset_and_keeps_the_login(
    directory: Directory, slapd: Sandbox
) -> None:
    dn = _create(directory, "hungdv.skhcn", password="Xy7!first-one")
    first = _one(directory)
    assert first.must_change_password and first.password_changed is not None
    _next_second()
    before = _now()
    _change_own_password(slapd, dn, "Xy7!first-one", "Mine!4ever-ok")
    after = _now()
    acc = _one(directory)
    assert acc.must_change_password is False
    assert acc.password_changed is not None and acc.password_changed > first.password_changed
    assert before <= acc.password_changed <= after
    # the change deleted pwdLastSuccess; lastbind's authTimestamp still tells the login
    assert acc.last_login is not None and before - PRECISION <= acc.last_login <= after
    assert acc.created == first.created
    assert _bind(slapd, dn, "Mine!4ever-ok").bound
    assert not _bind(slapd, dn, "Xy7!first-one").bound


def test_a_runs_read_carries_the_reason_of_a_lock_and_an_active_ones_only_when_asked(
    directory: OpenedDirectory,
) -> None:
    """No rule reads how an active account was made, and at 100,000 accounts those reasons
    were ~40 MiB of a run; ``syncd show`` asks for them (``every_reason``)."""
    dn = _create(directory, "hungdv.skhcn")
    assert _one(directory).state_reason is None
    directory.every_reason = True
    assert _one(directory).state_reason == "test [test]"
    directory.every_reason = False
    directory.set_state(dn, State.LOCKED, _now(), "inactive [art]", delivery=True)
    assert _one(directory).state_reason == "inactive [art]"


def test_a_locked_account_cannot_bind_and_reads_back_locked(
    directory: Directory, slapd: Sandbox
) -> None:
    dn = _create(directory, "hungdv.skhcn", password="Xy7!first-one")
    since = _now() - timedelta(days=3)
    directory.set_state(dn, State.LOCKED, since, "inactive [art]", delivery=True)
    assert not _bind(slapd, dn, "Xy7!first-one").bound
    acc = _one(directory)
    assert (acc.state, acc.state_since, acc.state_reason) == (
        State.LOCKED,
        since,
        "inactive [art]",
    )
    assert acc.last_login is None  # a refused bind is no login


# Account fields a profile cannot fill from the directory, with the reason. A new Account
# field fails the test below until it is asserted or listed here.
NOT_READ: dict[str, str] = {
    "forwarding": "only iredmail keeps forwarding (mailForwardingAddress; None elsewhere): "
    "read and written back in tests/integration/test_iredmail_forwarding.py",
}


def test_every_account_field_round_trips_through_the_server(
    directory: Directory, slapd: Sandbox, admin: Connection
) -> None:
    """Non-default values everywhere, so a field the reader forgets cannot pass as a default."""
    before = _now()
    dn = _create(
        directory,
        "sokhcn",
        name="Sở Khoa học và Công nghệ",
        emp="E7",
        password="Xy7!first-one",
        kind=ActionKind.CREATE_ORG_MAILBOX,
        extra={
            Field.GIVEN_NAME: ("Công nghệ",),
            Field.TITLE: ("Văn thư",),
            Field.OFFICE: ("vp",),
            Field.MAIL: (f"sokhcn@{DOMAIN}", f"khcn@{DOMAIN}"),
        },
    )
    assert _bind(slapd, dn, "Xy7!first-one").bound
    alias = f"khcn@{DOMAIN} 20270101000000Z"
    directory.update(dn, {Field.ALIASES: (alias,)})
    # not a field syncd ever writes: an operator marks the entry unmanaged by hand
    assert admin.modify(dn, {"syncdManaged": [(MODIFY_REPLACE, ["FALSE"])]}), admin.result
    since = _now() - timedelta(days=1)
    directory.set_state(dn, State.LOCKED, since, "compromised [art]", delivery=False)
    after = _now()
    acc = _one(directory)

    def within(t: datetime | None, low: datetime = before) -> bool:
        return t is not None and low <= t <= after

    checks: dict[str, Any] = {
        "dn": acc.dn == dn,
        "uid": acc.uid == "sokhcn",
        "cn": acc.cn == "Sở Khoa học và Công nghệ",
        "sn": acc.sn == "Sở",
        "given_name": acc.given_name == "Công nghệ",
        "mail": set(acc.mail) == {f"sokhcn@{DOMAIN}", f"khcn@{DOMAIN}"},
        "employee_number": acc.employee_number == "E7",
        "org": acc.org == "skhcn",
        "office": acc.office == "vp",
        "title": acc.title == "Văn thư",
        "state": acc.state is State.LOCKED,
        "state_since": acc.state_since == since,
        "active_since": within(acc.active_since),  # made active at creation, kept by the lock
        "state_reason": acc.state_reason == "compromised [art]",
        "managed": acc.managed is False,
        "kind": acc.kind is Kind.ORGANISATION,
        "aliases": acc.aliases == (alias,),
        "has_syncd_class": acc.has_syncd_class is True,
        "last_login": within(acc.last_login, before - PRECISION),
        "password_changed": within(acc.password_changed),
        "created": within(acc.created),
        "must_change_password": acc.must_change_password is True,
        # as syncd left it (the drift test below undoes it by hand)
        "drift": acc.drift == (),
        "receives_mail": acc.receives_mail is False,
    }
    names = {f.name for f in fields(Account)}
    unaccounted = names - set(checks) - set(NOT_READ)
    assert not unaccounted, f"Account fields neither checked nor listed in NOT_READ: {unaccounted}"
    assert not set(checks) & set(NOT_READ)
    failed = sorted(k for k, ok in checks.items() if not ok)
    assert not failed, f"not read back: {failed} from {acc}"


# -- names(): the whole namespace, whatever the scope -------------------------------------------


def test_names_sees_the_whole_namespace_that_a_scoped_read_misses(
    directory: Directory, admin: Connection, base_dn: str
) -> None:
    a = _create(directory, "a.skhcn", emp="E1")
    b = _create(directory, "b.syt", org="syt", name="Trần Bình", emp="E2")
    directory.set_state(b, State.REVOKED, _now(), "left [art]", delivery=False)
    directory.update(b, {Field.ALIASES: (f"binh.syt@{DOMAIN} 20270101000000Z",)})
    # entries syncd never made, of other classes: a uid only, a mail only, and neither
    assert admin.add(f"uid=svc,{base_dn}", ["account"], {"uid": "svc"}), admin.result
    assert admin.add(
        f"cn=postmaster,{base_dn}",
        ["organizationalRole", "extensibleObject"],
        {"cn": "postmaster", "mail": f"postmaster@{DOMAIN}"},
    ), admin.result
    assert admin.add(f"cn=printer,{base_dn}", ["device"], {"cn": "printer"}), admin.result

    scoped = {x.uid for x in directory.read(Scope(orgs={"skhcn"}, employee_numbers=set()))}
    assert scoped == {"a.skhcn"}
    got = {x.dn.lower(): x for x in directory.names()}
    assert set(got) == {
        a.lower(),
        b.lower(),
        f"uid=svc,{base_dn}".lower(),
        f"cn=postmaster,{base_dn}".lower(),
    }
    # reduced to the names (syncd.model.Name): dn, uid, cn, mail, aliases, kind, managed,
    # employee number; no state, no clocks
    assert got[b.lower()] == Name(
        dn=b,
        uid="b.syt",
        cn="Trần Bình",
        mail=(f"b.syt@{DOMAIN}",),
        aliases=(f"binh.syt@{DOMAIN} 20270101000000Z",),
        kind=Kind.PERSON,
        managed=True,
        employee_number="E2",
    )
    post = got[f"cn=postmaster,{base_dn}".lower()]
    assert (post.uid, post.mail, post.employee_number) == ("", (f"postmaster@{DOMAIN}",), None)
    assert got[f"uid=svc,{base_dn}".lower()].uid == "svc"


def test_names_of_a_size_limited_bind_abort_instead_of_returning_a_partial_list(
    maker: Maker, slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    for i in range(510):  # slapd's default size limit is 500 for a bind without olcLimits
        admin.add(f"uid=u{i},{base_dn}", ["account"], {"uid": f"u{i}"})
    full = maker(slapd, base_dn)
    assert len(full.names()) == 510
    limited = maker(slapd, base_dn, bind_dn=slapd.reader_dn)
    with pytest.raises(ReadIncomplete):
        limited.names()


# -- state timestamps come from the plan's `now` --------------------------------------------------


def test_create_and_link_stamp_the_plans_time_when_given(
    directory: Directory, admin: Connection, base_dn: str
) -> None:
    simulated = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    attrs: dict[Field, tuple[str, ...]] = {
        Field.UID: ("a.skhcn",),
        Field.NAME: ("An",),
        Field.SURNAME: ("An",),
        Field.ORG: ("skhcn",),
    }
    action = Action(ActionKind.CREATE, "a.skhcn", "skhcn", "t", "t", attrs=attrs)
    directory.create(action, "Xy7!first-one", since=simulated)
    assert admin.add(
        f"uid=datnv,{base_dn}", ["inetOrgPerson"], {"uid": "datnv", "cn": "Đạt", "sn": "Nông"}
    )
    directory.update(
        f"uid=datnv,{base_dn}", {Field.EMPLOYEE_NUMBER: ("E9",)}, link=True, since=simulated
    )
    got = {x.uid: x for x in directory.read(Scope())}
    assert got["a.skhcn"].state_since == simulated
    assert got["datnv"].state_since == simulated and got["datnv"].state is State.ACTIVE
    before = _now()
    b = _create(directory, "b.skhcn", emp="E2")  # no `since`: the wall clock, as before
    [acc] = [x for x in directory.read(Scope()) if x.dn == b]
    assert acc.state_since is not None and before <= acc.state_since <= _now()


# -- the purge archive is LDIF that a real ldapadd takes back --------------------------------------

# Kept in the archive, but slapd computes them and refuses them on an add, even with Relax.
COMPUTED = {
    "entryCSN",
    "entryDN",
    "hasSubordinates",
    "structuralObjectClass",
    "subschemaSubentry",
    "pwdLastSuccess",
}


def _unfold(ldif: str) -> list[str]:
    lines: list[str] = []
    for line in ldif.splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


def _raw(admin: Connection, dn: str) -> dict[str, list[bytes]]:
    assert admin.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["*", "+"])
    raw = admin.response[0]["raw_attributes"]
    return {k.lower(): sorted(bytes(v) for v in vs) for k, vs in raw.items()}


def test_the_exported_archive_is_ldif_that_ldapadd_restores(
    directory: Directory, slapd: Sandbox, admin: Connection, tmp_path: Path
) -> None:
    long_reason = "Khoá vì không đăng nhập quá 90 ngày " * 6 + "[caobang-2025 Đ8.2a]"
    dn = _create(
        directory,
        "hungdv.skhcn",
        password="Xy7!first-one",
        extra={Field.TITLE: (" leading space",)},
    )
    # a value LDIF must encode: written by hand, as an operator's note would be
    assert admin.modify(dn, {"description": [(MODIFY_REPLACE, ["a\nb: <c"])]}), admin.result
    assert _bind(slapd, dn, "Xy7!first-one").bound
    directory.set_state(dn, State.LOCKED, _now(), long_reason, delivery=True)
    before = _raw(admin, dn)

    ldif = directory.export(dn)

    names = {line.split(":", 1)[0].lower() for line in _unfold(ldif) if ":" in line}
    for kept in ("entryUUID", "createTimestamp", "authTimestamp", "pwdReset"):
        assert kept.lower() in names, kept  # the archive keeps the operational attributes
    # every attribute the entry had (pwdChangedTime too where the server keeps one: a
    # password given in the add gets it only from a policy that ages passwords)
    assert set(before) <= names, set(before) - names
    assert "pwdaccountlockedtime" in names and "userpassword" in names
    directory.delete(dn)
    assert not admin.search(dn, "(objectClass=*)", search_scope=BASE)

    addable = [
        line
        for line in _unfold(ldif)
        if not line.startswith("#") and line.split(":", 1)[0] not in COMPUTED
    ]
    path = tmp_path / "restore.ldif"
    path.write_text("\n".join(addable) + "\n", encoding="utf-8")
    # Relax lets the rootdn load entryUUID, createTimestamp, pwdChangedTime, … as archived
    done = subprocess.run(
        [
            *("ldapadd", "-x", "-H", slapd.url, "-D", slapd.admin_dn, "-w", slapd.admin_password),
            *("-e", "relax", "-f", str(path)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    after = _raw(admin, dn)
    computed = {c.lower() for c in COMPUTED}
    assert {k: v for k, v in after.items() if k not in computed} == {
        k: v for k, v in before.items() if k not in computed
    }
    assert after["entryuuid"] == before["entryuuid"]


# -- changes made by hand outside syncd: read as drift, put back by the next run ---------------

LOCK_REASON = "manual lock: compromised [tuyenquang-2025 Đ8.1]"


def _hand_undo_lock(maker_name: str, admin: Connection, dn: str) -> None:
    """What an administrator does in each server's own tool to open a locked mailbox: ADUC's
    "Enable Account", iRedAdmin's status and services, Zimbra's status, ldapmodify on ppolicy
    (and, on OpenLDAP, ``syncdState: active`` too: the recorded state edited by hand)."""
    name = maker_name.split("-flat")[0].split("-per-org")[0]
    changes: dict[str, list[tuple[str, list[str]]]]
    if name == "ad":
        changes = {"userAccountControl": [(MODIFY_REPLACE, ["512"])]}
    else:
        changes = {"pwdAccountLockedTime": [(MODIFY_REPLACE, [])]}
    if name == "openldap":
        changes["syncdState"] = [(MODIFY_REPLACE, ["active"])]
        changes["syncdDelivery"] = [(MODIFY_REPLACE, ["TRUE"])]
    if name == "openldap-ou":
        changes["syncdState"] = [(MODIFY_REPLACE, ["active"])]
    if name == "iredmail":
        admin.search(dn, "(objectClass=*)", BASE, attributes=["enabledService"])
        services = [str(s) for s in admin.response[0]["attributes"]["enabledService"]]
        changes["accountStatus"] = [(MODIFY_REPLACE, ["active"])]
        changes["enabledService"] = [(MODIFY_REPLACE, [*services, "imap", "imapsecured"])]
    if name == "zimbra":
        changes["zimbraAccountStatus"] = [(MODIFY_REPLACE, ["active"])]
        changes["zimbraMailStatus"] = [(MODIFY_REPLACE, ["enabled"])]
    assert admin.modify(dn, changes), admin.result


def _next_run(
    directory: OpenedDirectory, tmp_path: Path, uid: str = "hungdv.skhcn"
) -> tuple[Plan, list[dict[str, Any]]]:
    """A run as the daemon makes it (no roster: nothing else to do), under Tuyên Quang's
    regulation (a locked mailbox receives nothing), applied and audited for real; the audit
    records of ``uid``."""
    reg = PROFILES_BY_ID["tuyenquang-2025"]
    catalogue = parse_catalogue([])
    plan = make_plan(
        PlanInput(
            snapshots=[],
            catalogue=catalogue,
            profile=reg,
            scheme=get_scheme(reg.scheme),
            domain=DOMAIN,
            accounts=directory.read(Scope()),
            now=_now(),
        )
    )
    audit = tmp_path / "audit.jsonl"
    log = AuditLog(audit, tmp_path / "state")
    result = apply_plan(plan, directory, log, reg, catalogue, DOMAIN, "run-1", clock=_now)
    assert not result.failed, result.failed
    return plan, history(audit, uid)


def test_an_enforcement_undone_by_hand_is_read_as_drift_and_repaired_by_the_next_run(
    directory: OpenedDirectory,
    slapd: Sandbox,
    admin: Connection,
    maker: Maker,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    maker_name = request.node.callspec.params["maker"]
    dn = _create(directory, "hungdv.skhcn", password="Xy7!first-one")
    since = _now() - timedelta(days=2)
    directory.set_state(dn, State.LOCKED, since, LOCK_REASON, delivery=False)
    locked = _one(directory)
    assert locked.drift == () and locked.receives_mail is False
    first, _ = _next_run(directory, tmp_path)
    assert first.actions == ()  # as syncd left it: nothing to put back

    _hand_undo_lock(maker_name, admin, dn)
    if not isinstance(slapd, SambaSandbox):  # AD: a one-time password never binds (data 773)
        assert _bind(slapd, dn, "Xy7!first-one").bound  # the hand edit opened it
    undone = _one(directory)
    assert undone.drift, undone
    assert (undone.state, undone.state_since, undone.state_reason) == (
        State.LOCKED,
        since,
        LOCK_REASON,
    )

    plan, records = _next_run(directory, tmp_path)
    [action] = plan.actions
    assert action.kind is ActionKind.ENFORCE
    assert action.reason.startswith("changed outside syncd: ") and action.reason.endswith(
        "; put back"
    )
    assert action.article == "tuyenquang-2025 Đ8.1"  # the lock's article
    assert any("changed outside syncd" in n for n in plan.notices)
    [record] = [r for r in records if r["action"] == "enforce"]
    assert (record["result"], record["article"]) == ("ok", "tuyenquang-2025 Đ8.1")

    repaired = _one(directory)
    assert repaired.drift == () and repaired.receives_mail is False
    assert (repaired.state, repaired.state_since, repaired.state_reason) == (
        State.LOCKED,
        since,
        LOCK_REASON,
    )
    if not isinstance(slapd, SambaSandbox):
        assert not _bind(slapd, dn, "Xy7!first-one").bound
    again, _ = _next_run(directory, tmp_path)
    assert again.actions == ()


def _hand_delete_address(maker_name: str, admin: Connection, dn: str, address: str) -> None:
    """The old address deleted where each server keeps it."""
    name = maker_name.split("-flat")[0].split("-per-org")[0]
    if name == "ad":
        changes = {"proxyAddresses": [(MODIFY_DELETE, [f"smtp:{address}"])]}
    elif name == "iredmail":
        changes = {"shadowAddress": [(MODIFY_DELETE, [address])]}
    elif name == "zimbra":
        changes = {
            "mail": [(MODIFY_DELETE, [address])],
            "zimbraMailAlias": [(MODIFY_DELETE, [address])],
        }
    else:
        changes = {"mail": [(MODIFY_DELETE, [address])]}
    assert admin.modify(dn, changes), admin.result


def test_a_transfer_alias_deleted_by_hand_is_restored_by_the_next_run(
    directory: OpenedDirectory,
    admin: Connection,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    old = f"hungdv.skhcn@{DOMAIN}"
    dn = _create(
        directory,
        "hungdv.syt",
        org="syt",
        extra={Field.MAIL: (f"hungdv.syt@{DOMAIN}", old)},
    )
    expiry = (_now() + timedelta(days=90)).strftime("%Y%m%d%H%M%SZ")
    directory.update(dn, {Field.ALIASES: (f"{old} {expiry}",)})
    _hand_delete_address(request.node.callspec.params["maker"], admin, dn, old)
    assert old not in _one(directory).mail

    plan, records = _next_run(directory, tmp_path, "hungdv.syt")
    [action] = plan.actions
    assert action.kind is ActionKind.ENFORCE and old in action.reason
    assert [r["action"] for r in records] == ["enforce"]
    acc = _one(directory)
    assert acc.mail == (f"hungdv.syt@{DOMAIN}", old)
    assert acc.state is State.ACTIVE
    again, _ = _next_run(directory, tmp_path)
    assert again.actions == ()
