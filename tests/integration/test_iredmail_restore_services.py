"""iRedMail: a restore gives back the login services the lock took, not iRedMail's defaults
(issue 12). Proven on the real slapd with iRedMail's schema (states put there by syncd's own
lock and restore), at a real Dovecot with the documented filter, and for the schema: ``syncd
directory init`` brings an older syncd schema up to date and ``syncd doctor`` notices it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ldap3 import BASE, MODIFY_DELETE, MODIFY_REPLACE, Connection

from connectors import runner
from connectors.directory.iredmail import KEPT_SERVICES, LOGIN_SERVICES, RECORD, SERVICES
from connectors.directory.setup import class_may, schema_entry
from connectors.loading import load_config
from devtools.slapd_sandbox import Sandbox
from syncd.model import ActionKind
from tests.conftest import MakeConfig
from tests.helpers import write_roster
from tests.integration.debian_slapd import DebianSlapd, syncd, write_config
from tests.integration.test_directory_contract import needs_schema
from tests.integration.test_directory_init import _need_debian_slapd
from tests.integration.test_mail_servers import (
    CHOSEN,
    DOVECOT,
    Dovecot,
    _require,
    change_own_password,
    configure,
    documented,
    find_dn,
    run,
    slip_password,
)

DOMAIN = "test.gov.vn"
POP3 = {"pop3", "pop3secured", "pop3tls"}
IMAP = {"imap", "imapsecured", "imaptls"}
LOGIN = {s.lower() for s in LOGIN_SERVICES}


def entry(admin: Connection, dn: str) -> dict[str, Any]:
    assert admin.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["*"])
    return dict(admin.response[0]["attributes"])


def services(got: dict[str, Any]) -> set[str]:
    return {s.lower() for s in got.get("enabledService", [])}


def without(admin: Connection, dn: str, gone: set[str]) -> None:
    """What an operator does in iRedAdmin: turn services off for one person."""
    assert admin.modify(dn, {"enabledService": [(MODIFY_DELETE, sorted(gone))]}), admin.result


def iredmail_site(make_config: MakeConfig, tmp_path: Path, slapd: Sandbox) -> Path:
    needs_schema(slapd, "iredmail")
    cfg = configure(make_config, tmp_path, "iredmail", "caobang-2025")
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,", "E3,Trần Bình,skhcn,,,,,"]
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", rows)))
    return cfg


def test_a_restore_gives_back_the_login_services_the_lock_took_not_pop3_turned_off_before(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    cfg = iredmail_site(make_config, tmp_path, slapd)
    dn, uid = find_dn(admin, base_dn, "E1")
    without(admin, dn, POP3)
    before = services(entry(admin, dn))

    run(cfg, "lock", uid, "--reason", "compromised")
    locked = entry(admin, dn)
    assert not services(locked) & LOGIN
    # the record: what this lock took, as iRedMail spells it (a compromised mailbox's
    # forwarding too: tests/integration/test_iredmail_forwarding.py)
    assert {s.lower() for s in locked[RECORD]} == (LOGIN - POP3) | {"forward"}

    run(cfg, "restore", uid)
    back = entry(admin, dn)
    assert services(back) == before  # POP3 stays off, everything else the lock took is back
    assert not services(back) & POP3
    assert RECORD not in back  # a record is one lock's, gone with it


def test_a_revoke_after_a_lock_keeps_the_locks_record_for_the_restore(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """The revoke takes nothing more (the lock took it all): it must not overwrite the record
    with an empty one, or the restore would give back nothing."""
    cfg = iredmail_site(make_config, tmp_path, slapd)
    dn, uid = find_dn(admin, base_dn, "E1")
    without(admin, dn, POP3)
    before = services(entry(admin, dn))
    run(cfg, "lock", uid, "--reason", "compromised")
    record = set(entry(admin, dn)[RECORD])
    outcome = runner.operator_action(
        load_config(cfg), uid, ActionKind.REVOKE, "organisation's request", "admin"
    )
    assert outcome.result is not None and not outcome.result.failed
    revoked = entry(admin, dn)
    assert revoked["syncdState"] == ["revoked"] and set(revoked[RECORD]) == record
    run(cfg, "restore", uid)
    assert services(entry(admin, dn)) == before


def test_a_mailbox_locked_without_a_record_gets_iredmails_defaults_back(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """Locked by an older syncd, which kept no record: the restore does what it did then."""
    cfg = iredmail_site(make_config, tmp_path, slapd)
    dn, uid = find_dn(admin, base_dn, "E1")
    without(admin, dn, POP3)
    run(cfg, "lock", uid, "--reason", "compromised")
    assert admin.modify(dn, {RECORD: [(MODIFY_REPLACE, [])]}), admin.result
    run(cfg, "restore", uid)
    assert services(entry(admin, dn)) == {s.lower() for s in SERVICES}


def test_a_lock_of_a_mailbox_with_no_login_service_records_none_and_the_restore_adds_none(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """A mailbox that only receives (its operator turned every login off) stays so."""
    cfg = iredmail_site(make_config, tmp_path, slapd)
    dn, uid = find_dn(admin, base_dn, "E1")
    without(admin, dn, LOGIN & services(entry(admin, dn)))
    run(cfg, "lock", uid, "--reason", "spam")  # a lock that takes forwarding too: not this
    assert entry(admin, dn)[RECORD] == ["none"]
    run(cfg, "restore", uid)
    assert services(entry(admin, dn)) == {s.lower() for s in KEPT_SERVICES}


def test_dovecot_still_refuses_a_service_the_operator_had_off_after_a_lock_and_restore(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
) -> None:
    """The person reads mail by POP3 only (IMAP off in iRedAdmin): after a lock and a restore
    Dovecot's IMAP login (``enabledService=%Ls%Lc``) still refuses them, while a colleague
    whose IMAP was on gets it back."""
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    cfg = iredmail_site(make_config, tmp_path, slapd)
    dovecot = Dovecot(slapd, f"o=domains,{base_dn}", documented("dovecot", "iredmail"))
    try:
        people = {}
        for employee in ("E1", "E2"):
            dn, uid = find_dn(admin, base_dn, employee)
            change_own_password(slapd, dn, slip_password(tmp_path, uid), CHOSEN)
            people[employee] = (dn, uid)
        (pop_dn, pop_uid), (_, imap_uid) = people["E1"], people["E2"]
        without(admin, pop_dn, IMAP)
        assert not dovecot.login(f"{pop_uid}@{DOMAIN}", CHOSEN)
        assert dovecot.login(f"{imap_uid}@{DOMAIN}", CHOSEN), dovecot.log()

        for dn, uid in people.values():
            run(cfg, "lock", uid, "--reason", "compromised")
            run(cfg, "restore", uid)
            change_own_password(slapd, dn, slip_password(tmp_path, uid), "Back!4good-ok")

        assert not dovecot.login(f"{pop_uid}@{DOMAIN}", "Back!4good-ok")
        assert not services(entry(admin, pop_dn)) & IMAP
        assert services(entry(admin, pop_dn)) >= POP3
        assert dovecot.login(f"{imap_uid}@{DOMAIN}", "Back!4good-ok"), dovecot.log()
    finally:
        dovecot.stop()


# -- the schema: an older syncd schema brought up to date, and noticed -------------------------


def _subschema_class(debian: DebianSlapd) -> str:
    conn = debian.admin()
    try:
        conn.search("cn=Subschema", "(objectClass=*)", BASE, attributes=["objectClasses"])
        [found] = [
            d for d in conn.response[0]["attributes"]["objectClasses"] if "'syncdAccount'" in d
        ]
        return str(found)
    finally:
        conn.unbind()


def test_init_brings_an_older_syncd_schema_up_to_date_and_doctor_notices_it_first(
    tmp_path: Path,
) -> None:
    """A directory prepared by an older syncd: its syncdAccount class lacks the new attribute
    (here the class as it was before syncdLockedServices). ``doctor`` names it with its fix;
    ``directory init`` replaces the class, once; the schema check is then ok."""
    _need_debian_slapd()
    debian = DebianSlapd(tmp_path / "slapd").start()
    try:
        cfg = write_config(tmp_path, debian)
        assert syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url).returncode == 0
        _, shipped = schema_entry()
        [current] = shipped["olcObjectClasses"]
        older = current.replace(" $ syncdLockedServices", "")
        assert "syncdlockedservices" not in class_may(older)
        found = config_values(debian, "(cn=*syncd)", "olcObjectClasses")
        [(dn, [loaded])] = found.items()
        downgrade = debian.ldapmodify(
            f"dn: {dn}\nchangetype: modify\ndelete: olcObjectClasses\nolcObjectClasses: {loaded}"
            f"\n-\nadd: olcObjectClasses\nolcObjectClasses: {older}\n-\n"
        )
        assert downgrade.returncode == 0, downgrade.stderr
        assert "syncdLockedServices" not in _subschema_class(debian)

        doctor = json.loads(syncd(cfg, "doctor", "--read-only", "--json").stdout)
        schema = {c["name"]: c for c in doctor["checks"]}["schema"]
        assert schema["status"] == "finding"
        assert "syncdAccount MAY syncdLockedServices" in schema["detail"]
        assert "syncd directory init" in schema["fix"]

        dry = syncd(cfg, "directory", "init", "--dry-run", "--admin-url", debian.ldapi_url)
        assert "delete: olcObjectClasses" in dry.stdout and "syncdLockedServices" in dry.stdout
        init = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
        assert init.returncode == 0, init.stdout + init.stderr
        assert "syncdLockedServices" in _subschema_class(debian)
        again = syncd(cfg, "directory", "init", "--dry-run", "--admin-url", debian.ldapi_url)
        assert "nothing to do" in again.stdout, again.stdout
        after = json.loads(syncd(cfg, "doctor", "--read-only", "--json").stdout)
        # (the regulation's password policy is policy apply's, not init's: not asked here)
        assert {c["name"]: c["status"] for c in after["checks"]}["schema"] == "ok", after
    finally:
        debian.stop()


def config_values(debian: DebianSlapd, flt: str, attribute: str) -> dict[str, list[str]]:
    """``{dn: values}`` of ``attribute`` under cn=schema,cn=config, as root reads it (ldapi)."""
    done = subprocess.run(
        [
            *("ldapsearch", "-Q", "-LLL", "-o", "ldif-wrap=no", "-Y", "EXTERNAL"),
            *("-H", debian.ldapi_url, "-b", "cn=schema,cn=config", flt, attribute),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, list[str]] = {}
    dn = ""
    for line in done.stdout.splitlines():
        if line.startswith("dn: "):
            dn = line[4:]
        elif line.startswith(f"{attribute}: "):
            out.setdefault(dn, []).append(line.split(": ", 1)[1])
    return out
