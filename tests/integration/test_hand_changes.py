"""Changes made by hand outside syncd, against the real servers (found by an attack on issue 12).

A lock or revoke undone in the server's own tool, the recorded state edited, a kept address
deleted: each must be seen (``syncd show``, ``syncd doctor``, the plan) and put back by the
next run, proven where it matters: Dovecot's login, Postfix's delivery lookup. The contract
suite (test_directory_contract.py) proves the read and the repair for every profile; this file
runs syncd's own commands as an operator would. Zimbra: a person who changed the one-time
password in Zimbra is not taken for one who did not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE, NONE, Connection, Server

from connectors.audit import AuditLog
from connectors.config import DirectoryConfig
from connectors.directory import profile
from connectors.directory.ad import ActiveDirectory
from connectors.directory.doctor import Doctor
from connectors.regulations import PROFILES, get_scheme
from devtools.samba_sandbox import SambaSandbox
from devtools.slapd_sandbox import Sandbox
from syncd.applier import apply_plan
from syncd.model import Action, ActionKind, Field, State
from syncd.orgs import parse_catalogue
from syncd.plan import PlanInput, make_plan
from syncd.ports import Scope
from tests.conftest import MakeConfig
from tests.helpers import write_roster
from tests.integration.test_directory_ad import FIRST, MINE
from tests.integration.test_directory_ad import _bind as _ad_bind
from tests.integration.test_directory_ad import _create as _ad_create
from tests.integration.test_directory_contract import needs_schema
from tests.integration.test_mail_servers import (
    CHOSEN,
    DOVECOT,
    Dovecot,
    change_own_password,
    configure,
    delivery,
    documented,
    find_dn,
    run,
    slip_password,
)
from tests.integration.test_mail_servers import _require as require

DOMAIN = "test.gov.vn"
NOW_AD = datetime(2026, 11, 26, tzinfo=UTC)  # the audit records' clock: not asserted


@pytest.fixture
def servers() -> Iterator[list[Dovecot]]:
    started: list[Dovecot] = []
    yield started
    for dovecot in started:
        dovecot.stop()


ROWS = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,", "E3,Trần Bình,skhcn,,,,,"]


def _compromised(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    servers: list[Dovecot],
) -> tuple[Path, Path, Dovecot, str, str]:
    """openldap with Dovecot: E1 created, its own password chosen, then security-locked by
    ``syncd lock --reason compromised``: (config, roster, dovecot, DN, uid)."""
    require(DOVECOT, "dovecot-imapd dovecot-ldap")
    cfg = configure(make_config, tmp_path, "openldap", "caobang-2025")
    roster = write_roster(tmp_path / "a.csv", ROWS)
    run(cfg, "reconcile", "--roster", str(roster))
    dovecot = Dovecot(slapd, base_dn, documented("dovecot", "openldap"))
    servers.append(dovecot)  # stopped by the fixture, whatever happens next
    dn, uid = find_dn(admin, base_dn, "E1")
    change_own_password(slapd, dn, slip_password(tmp_path, uid), CHOSEN)
    # a hand-set "active" is told from syncd's own by syncdActiveSince = syncdStateSince,
    # stamped to the second: a lock in the creation's own second would look like syncd's
    time.sleep(1.1)
    run(cfg, "lock", uid, "--reason", "compromised")
    return cfg, roster, dovecot, dn, uid


def test_a_compromised_lock_undone_by_hand_is_shown_and_put_back_and_dovecot_refuses_again(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    servers: list[Dovecot],
) -> None:
    """openldap: ``pwdAccountLockedTime`` deleted and ``syncdState: active`` written by hand
    over a compromised lock let the person log in; syncd shows it locked and changed by hand,
    and the next run locks it again with the lock's date and reason."""
    cfg, roster, dovecot, dn, uid = _compromised(
        make_config, tmp_path, slapd, admin, base_dn, servers
    )
    assert not dovecot.login(uid, CHOSEN)
    locked = run(cfg, "show", uid)
    assert "changed by hand" not in locked

    assert admin.modify(
        dn,
        {
            "pwdAccountLockedTime": [(MODIFY_REPLACE, [])],
            "syncdState": [(MODIFY_REPLACE, ["active"])],
        },
    ), admin.result
    assert dovecot.login(uid, CHOSEN), dovecot.log()  # what the attacker found
    shown = run(cfg, "show", uid)
    assert "state         locked" in shown and "manual lock: compromised" in shown
    assert "changed by hand" in shown and "syncdState set to active outside syncd" in shown
    planned = run(cfg, "plan", "--roster", str(roster))
    assert "put back (changed by hand)" in planned and "changed outside syncd" in planned

    run(cfg, "reconcile", "--roster", str(roster))
    assert not dovecot.login(uid, CHOSEN)
    after = run(cfg, "show", uid)
    assert "changed by hand" not in after and "manual lock: compromised" in after
    assert "enforce" in after  # its audit record, in the account's history
    assert "put back (changed by hand)" not in run(cfg, "plan", "--roster", str(roster))


@pytest.mark.parametrize("deleted", ["syncdStateSince", "syncdActiveSince"])
def test_a_compromised_lock_undone_by_hand_with_a_date_deleted_is_still_put_back(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    servers: list[Dovecot],
    deleted: str,
) -> None:
    """Found by an attack: ``syncdState: active`` written over a security lock with one of
    the two dates deleted (instead of left differing) read as a plain active account, so no
    run, ``doctor`` or ``forecast`` noticed the compromised mailbox open again."""
    cfg, roster, dovecot, dn, uid = _compromised(
        make_config, tmp_path, slapd, admin, base_dn, servers
    )
    assert admin.modify(
        dn,
        {
            "pwdAccountLockedTime": [(MODIFY_REPLACE, [])],
            "syncdState": [(MODIFY_REPLACE, ["active"])],
            deleted: [(MODIFY_REPLACE, [])],
        },
    ), admin.result
    assert dovecot.login(uid, CHOSEN), dovecot.log()
    shown = run(cfg, "show", uid)
    assert "state         locked" in shown and f"{deleted} deleted" in shown
    assert "changed by hand" in shown and "manual lock: compromised" in shown
    assert "changed outside syncd" in run(cfg, "plan", "--roster", str(roster))
    run(cfg, "reconcile", "--roster", str(roster))
    assert not dovecot.login(uid, CHOSEN)
    assert "changed by hand" not in run(cfg, "show", uid)


def test_a_revoked_iredmail_mailbox_opened_by_hand_stops_receiving_again_after_the_next_run(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
) -> None:
    """iRedMail: ``accountStatus: active`` on a revoked mailbox makes Postfix's documented
    lookup resolve it again (a revoked mailbox receives mail) until syncd puts it back."""
    needs_schema(slapd, "iredmail")
    cfg = configure(make_config, tmp_path, "iredmail", "caobang-2025")
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", ROWS)))
    rows = [*ROWS]
    rows[1] = "E2,Lê Thị Mai,skhcn,,,,Nghỉ việc,"
    left = write_roster(tmp_path / "b.csv", rows)
    run(cfg, "reconcile", "--roster", str(left))
    postfix = delivery("iredmail", slapd, base_dn, tmp_path)
    dn, uid = find_dn(admin, base_dn, "E2")
    address = f"{uid}@{DOMAIN}"
    assert postfix.lookup(address) is None

    assert admin.modify(dn, {"accountStatus": [(MODIFY_REPLACE, ["active"])]}), admin.result
    assert postfix.lookup(address) is not None  # what the attacker found
    assert "mail is delivered to a revoked mailbox" in run(cfg, "show", uid)

    run(cfg, "reconcile", "--roster", str(left))
    assert postfix.lookup(address) is None
    shown = run(cfg, "show", uid)
    assert "state         revoked" in shown and "changed by hand" not in shown


def test_a_zimbra_user_who_changed_the_one_time_password_in_zimbra_is_not_locked_for_it(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
) -> None:
    """Hưng Yên Đ7.2d locks a mailbox whose one-time password is still in use after a month.
    Zimbra writes the new password as its slapd's rootdn and clears
    ``zimbraPasswordMustChange``; ppolicy (``pwdMustChange``) then sets ``pwdReset`` again, as
    for any password written by someone else: read from ``pwdReset``, the person who did
    change it would be locked."""
    needs_schema(slapd, "zimbra")
    cfg = configure(make_config, tmp_path, "zimbra", "hungyen-2025")
    roster = write_roster(tmp_path / "a.csv", ROWS)
    run(cfg, "reconcile", "--roster", str(roster))
    dn, uid = find_dn(admin, base_dn, "E1")
    _, untouched = find_dn(admin, base_dn, "E2")

    # Zimbra's own password change: one modify of userPassword and its flag, written as
    # Zimbra's slapd rootdn (uid=zimbra,cn=admins,cn=zimbra): here the sandbox's rootdn
    changed = {
        "userPassword": [(MODIFY_REPLACE, [CHOSEN])],
        "zimbraPasswordMustChange": [(MODIFY_REPLACE, ["FALSE"])],
    }
    assert admin.modify(dn, changed), admin.result
    admin.search(dn, "(objectClass=*)", "BASE", attributes=["pwdReset"])
    assert admin.response[0]["attributes"]["pwdReset"] == ["TRUE"]  # ppolicy's doing

    later = (datetime.now(UTC) + timedelta(days=40)).isoformat(timespec="seconds")
    planned = run(cfg, "plan", "--roster", str(roster), "--now", later, "--allow-mass-change")
    lines = [line for line in planned.splitlines() if "lock" in line]
    assert any(untouched in line for line in lines), planned  # the clock does run
    assert not any(uid in line for line in lines), planned
    assert "one-time password not changed yet" not in run(cfg, "show", uid)


def test_the_doctor_reports_accounts_changed_outside_syncd(
    slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    cfg = DirectoryConfig(url=slapd.url, bind_dn=slapd.service_dn, base_dn=base_dn)
    directory = profile("openldap")(cfg, slapd.service_password, DOMAIN)
    attrs: dict[Field, tuple[str, ...]] = {
        Field.UID: ("hungdv.skhcn",),
        Field.MAIL: (f"hungdv.skhcn@{DOMAIN}",),
        Field.NAME: ("Đàm Văn Hùng",),
        Field.SURNAME: ("Đàm",),
        Field.ORG: ("skhcn",),
        Field.EMPLOYEE_NUMBER: ("E1",),
    }
    action = Action(ActionKind.CREATE, "hungdv.skhcn", "skhcn", "t", "t", attrs=attrs)
    dn = directory.create(action, "Xy7!first-one")
    directory.set_state(dn, State.REVOKED, datetime.now(UTC), "left [art]", delivery=False)
    directory.close()

    def hand_edits() -> tuple[str, str]:
        doctor = Doctor(cfg, slapd.service_password, DOMAIN, regulation=PROFILES["caobang-2025"])
        doctor.check_hand_edits()
        [check] = doctor.report.checks
        return check.status, check.detail

    assert hand_edits()[0] == "ok"
    assert admin.modify(dn, {"syncdDelivery": [(MODIFY_REPLACE, ["TRUE"])]}), admin.result
    status, detail = hand_edits()
    assert status == "finding"
    assert "hungdv.skhcn (revoked): mail is delivered to a revoked mailbox" in detail
    assert directory.read(Scope())[0].receives_mail is True


def test_an_ad_account_enabled_in_aduc_over_a_compromised_lock_cannot_log_in_after_the_next_run(
    samba: SambaSandbox, ad_base: str, tmp_path: Path
) -> None:
    """ADUC's "Enable Account" (``userAccountControl: 512``) over ``syncd lock --reason
    compromised``: the person logs in again; the next run disables the account again, its
    lock's date and reason kept, other bits as they were."""
    cfg = DirectoryConfig(
        url=samba.url,
        bind_dn=samba.service_dn,
        base_dn=ad_base,
        profile="ad",
        ca_file=samba.ca_file,
    )
    ad = profile("ad")(cfg, samba.service_password, DOMAIN)
    assert isinstance(ad, ActiveDirectory)
    dn = _ad_create(ad, "hungdv.skhcn")
    samba.change_password(dn, FIRST, MINE)
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    reason = "manual lock: compromised [caobang-2025 Đ9.2]"
    ad.set_state(dn, State.LOCKED, since, reason, delivery=True)
    assert _ad_bind(samba, dn, MINE) == (False, "533")  # AD: account disabled

    admin = samba.admin()
    assert admin.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, ["512"])]}), admin.result
    admin.unbind()
    assert _ad_bind(samba, dn, MINE) == (True, "")  # what the attacker found
    [undone] = ad.read(Scope())
    assert undone.state is State.LOCKED and undone.drift

    reg = PROFILES["caobang-2025"]
    catalogue = parse_catalogue([])
    plan = make_plan(
        PlanInput(
            snapshots=[],
            catalogue=catalogue,
            profile=reg,
            scheme=get_scheme(reg.scheme),
            domain=DOMAIN,
            accounts=ad.read(Scope()),
            now=datetime.now(UTC),
        )
    )
    assert [a.kind for a in plan.actions] == [ActionKind.ENFORCE]
    audit = AuditLog(tmp_path / "audit.jsonl", tmp_path / "state")
    done = apply_plan(plan, ad, audit, reg, catalogue, DOMAIN, "run-1", clock=lambda: NOW_AD)
    assert not done.failed
    assert _ad_bind(samba, dn, MINE) == (False, "533")
    [acc] = ad.read(Scope())
    assert (acc.state, acc.state_since, acc.state_reason, acc.drift) == (
        State.LOCKED,
        since,
        reason,
        (),
    )


def _hand_edits(slapd: Sandbox, base_dn: str) -> tuple[str, str, str]:
    """``syncd doctor``'s hand-edits check on the sandbox: status, detail and fix."""
    cfg = DirectoryConfig(url=slapd.url, bind_dn=slapd.service_dn, base_dn=base_dn)
    doctor = Doctor(cfg, slapd.service_password, DOMAIN, regulation=PROFILES["caobang-2025"])
    doctor.check_hand_edits()
    [check] = doctor.report.checks
    return check.status, check.detail, check.fix


def test_a_primary_address_replaced_by_hand_is_named_by_show_and_doctor_and_not_put_back(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """openldap: ``replace: mail`` by hand takes the official address syncd gave the account
    (``<uid>@<domain>``) off the mail server; show and doctor name it with the fix, and the
    plan does not put it back (docs/mail-server.md: the operator decides)."""
    cfg = configure(make_config, tmp_path, "openldap", "caobang-2025")
    roster = write_roster(tmp_path / "a.csv", ROWS)
    run(cfg, "reconcile", "--roster", str(roster))
    dn, uid = find_dn(admin, base_dn, "E1")
    assert "primary address" not in run(cfg, "show", uid)
    assert _hand_edits(slapd, base_dn)[0] == "ok"

    assert admin.modify(dn, {"mail": [(MODIFY_REPLACE, ["hacker@evil.example"])]}), admin.result
    shown = run(cfg, "show", uid)
    missing = f"primary address {uid}@{DOMAIN} missing (addresses: hacker@evil.example)"
    assert f"changed by hand, not by syncd: {missing}" in shown, shown
    status, detail, fix = _hand_edits(slapd, base_dn)
    assert status == "finding" and f"{uid} (active): {missing}" in detail, detail
    assert "mail: <uid>@<domain>" in fix and "transfer" in fix
    planned = run(cfg, "plan", "--roster", str(roster))
    assert "put back" not in planned, planned  # reported, not put back (the operator's call)
    run(cfg, "reconcile", "--roster", str(roster))
    admin.search(dn, "(objectClass=*)", "BASE", attributes=["mail"])
    assert admin.response[0]["attributes"]["mail"] == ["hacker@evil.example"]


def test_a_lock_set_by_hand_on_an_active_account_is_named_by_show_doctor_and_the_plan(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """openldap: ``pwdAccountLockedTime: 000001010000Z`` by hand on an active account refuses
    every bind while syncd records it active; show, doctor and the plan's notices name it,
    and syncd leaves the lock (it never opens what was closed by hand)."""
    cfg = configure(make_config, tmp_path, "openldap", "caobang-2025")
    roster = write_roster(tmp_path / "a.csv", ROWS)
    run(cfg, "reconcile", "--roster", str(roster))
    dn, uid = find_dn(admin, base_dn, "E2")
    change_own_password(slapd, dn, slip_password(tmp_path, uid), CHOSEN)
    assert Connection(Server(slapd.url, get_info=NONE), dn, CHOSEN).bind()
    assert "changed by hand" not in run(cfg, "show", uid)

    locked = {"pwdAccountLockedTime": [(MODIFY_REPLACE, ["000001010000Z"])]}
    assert admin.modify(dn, locked), admin.result
    assert not Connection(Server(slapd.url, get_info=NONE), dn, CHOSEN).bind()  # the tester's
    shown = run(cfg, "show", uid)
    named = "pwdAccountLockedTime 000001010000Z on an active account: every bind is refused"
    assert "state         active" in shown and named in shown, shown
    status, detail, fix = _hand_edits(slapd, base_dn)
    assert status == "finding" and f"{uid} (active): {named}" in detail, detail
    assert "syncd lock" in fix
    planned = run(cfg, "plan", "--roster", str(roster))
    assert f"{uid}: changed outside syncd ({named})" in planned, planned
    run(cfg, "reconcile", "--roster", str(roster))
    assert not Connection(Server(slapd.url, get_info=NONE), dn, CHOSEN).bind()  # left locked


def test_an_iredmail_mailbox_shut_by_hand_while_active_is_named_by_show_and_the_plan(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """iRedMail: every login service taken out of ``enabledService`` by hand (iRedMail's own
    panel does so) on an account syncd records active; named, and left shut."""
    needs_schema(slapd, "iredmail")
    cfg = configure(make_config, tmp_path, "iredmail", "caobang-2025")
    roster = write_roster(tmp_path / "a.csv", ROWS)
    run(cfg, "reconcile", "--roster", str(roster))
    dn, uid = find_dn(admin, base_dn, "E3")
    assert "changed by hand" not in run(cfg, "show", uid)

    kept = ["mail", "deliver", "lda", "lmtp", "internal", "shadowaddress"]
    assert admin.modify(dn, {"enabledService": [(MODIFY_REPLACE, kept)]}), admin.result
    shown = run(cfg, "show", uid)
    named = "no login service left in enabledService on an active account"
    assert "state         active" in shown and named in shown, shown
    planned = run(cfg, "plan", "--roster", str(roster))
    assert f"{uid}: changed outside syncd ({named})" in planned, planned
    assert "put back" not in planned, planned
    dcfg = DirectoryConfig(
        url=slapd.url, bind_dn=slapd.service_dn, base_dn=base_dn, profile="iredmail"
    )
    doctor = Doctor(dcfg, slapd.service_password, DOMAIN, regulation=PROFILES["caobang-2025"])
    doctor.check_hand_edits()
    [check] = doctor.report.checks
    assert check.status == "finding" and f"{uid} (active): {named}" in check.detail
    assert "primary address" not in check.detail  # mail and shadowAddress read as addresses


def test_an_ad_account_disabled_in_aduc_while_active_is_named_and_left_disabled(
    samba: SambaSandbox, ad_base: str
) -> None:
    """AD: ADUC's "Disable Account" (``ACCOUNTDISABLE``) on an account syncd records active
    refuses the person's login; the read names it, the doctor reports it and the plan only
    says so (syncd never re-enables what was disabled by hand)."""
    cfg = DirectoryConfig(
        url=samba.url,
        bind_dn=samba.service_dn,
        base_dn=ad_base,
        profile="ad",
        ca_file=samba.ca_file,
    )
    ad = profile("ad")(cfg, samba.service_password, DOMAIN)
    assert isinstance(ad, ActiveDirectory)
    dn = _ad_create(ad, "hungdv.skhcn")
    samba.change_password(dn, FIRST, MINE)
    assert _ad_bind(samba, dn, MINE) == (True, "")
    [before] = ad.read(Scope())
    assert (before.state, before.drift) == (State.ACTIVE, ())

    admin = samba.admin()
    assert admin.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, ["514"])]}), admin.result
    admin.unbind()
    assert _ad_bind(samba, dn, MINE) == (False, "533")  # what the tester found
    named = "ACCOUNTDISABLE set (userAccountControl 514) on an active account"
    [acc] = ad.read(Scope())
    assert (acc.state, acc.drift) == (State.ACTIVE, (named,))
    doctor = Doctor(cfg, samba.service_password, DOMAIN, regulation=PROFILES["caobang-2025"])
    doctor.check_hand_edits()
    [check] = doctor.report.checks
    assert check.status == "finding" and f"hungdv.skhcn (active): {named}" in check.detail
    assert "primary address" not in check.detail  # proxyAddresses read as addresses

    reg = PROFILES["caobang-2025"]
    plan = make_plan(
        PlanInput(
            snapshots=[],
            catalogue=parse_catalogue([]),
            profile=reg,
            scheme=get_scheme(reg.scheme),
            domain=DOMAIN,
            accounts=ad.read(Scope()),
            now=datetime.now(UTC),
        )
    )
    assert not plan.actions
    assert any(f"hungdv.skhcn: changed outside syncd ({named})" in n for n in plan.notices)


def test_a_zimbra_account_locked_in_the_console_while_active_is_named_by_show_and_the_plan(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """Zimbra: ``zimbraAccountStatus: locked`` set in Zimbra's console on an account syncd
    records active refuses the login; named by show and the plan, and left locked."""
    needs_schema(slapd, "zimbra")
    cfg = configure(make_config, tmp_path, "zimbra", "hungyen-2025")
    roster = write_roster(tmp_path / "a.csv", ROWS)
    run(cfg, "reconcile", "--roster", str(roster))
    dn, uid = find_dn(admin, base_dn, "E1")
    assert "changed by hand" not in run(cfg, "show", uid)

    assert admin.modify(dn, {"zimbraAccountStatus": [(MODIFY_REPLACE, ["locked"])]}), admin.result
    shown = run(cfg, "show", uid)
    named = "zimbraAccountStatus locked on an active account: Zimbra refuses logins"
    assert "state         active" in shown and named in shown, shown
    assert "primary address" not in shown, shown
    planned = run(cfg, "plan", "--roster", str(roster))
    assert f"{uid}: changed outside syncd ({named})" in planned, planned
    run(cfg, "reconcile", "--roster", str(roster))
    admin.search(dn, "(objectClass=*)", "BASE", attributes=["zimbraAccountStatus"])
    assert admin.response[0]["attributes"]["zimbraAccountStatus"] == ["locked"]
