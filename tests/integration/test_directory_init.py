"""``syncd directory init`` against a slapd configured exactly as Debian's package configures it
(tests/integration/debian_slapd.py): the real command, root over the server's own ldapi socket.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import BASE

from devtools.slapd_sandbox import find_slapd
from tests.helpers import write_roster
from tests.integration.debian_slapd import (
    DEBIAN_INIT_LDIF,
    SERVICE_PASSWORD,
    DebianSlapd,
    dump,
    syncd,
    write_config,
)

ACL_LDIF = Path(__file__).resolve().parents[2] / "config" / "ldap" / "acl.ldif"


def _need_debian_slapd() -> None:
    if find_slapd() is None or not DEBIAN_INIT_LDIF.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's slapd is not installed; CI must install it (make test does)")
        pytest.skip("Debian's slapd is not installed")


@pytest.fixture
def debian(tmp_path: Path) -> Iterator[DebianSlapd]:
    _need_debian_slapd()
    server = DebianSlapd(tmp_path / "slapd").start()
    yield server
    server.stop()


def _statements(ldif: str) -> list[str]:
    """The LDIF's lines that do something (comments and blank lines aside)."""
    return [line for line in ldif.splitlines() if line.strip() and not line.startswith("#")]


def test_init_on_a_stock_debian_slapd_makes_doctor_green_and_syncd_reconcile(
    debian: DebianSlapd, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, debian)
    before = syncd(cfg, "doctor")
    assert before.returncode == 1, before.stderr
    assert "FINDING  bind" in before.stdout and "syncd directory init" in before.stdout

    config_before, data_before = dump(debian, "cn=config"), dump(debian, debian.suffix)
    dry = syncd(cfg, "directory", "init", "--dry-run", "--admin-url", debian.ldapi_url)
    assert dry.returncode == 0, dry.stderr
    assert "dn: cn=syncd,cn=schema,cn=config" in dry.stdout
    # Debian indexes uid already: a second definition is what made the old acl.ldif fail
    assert "olcDbIndex: mail eq" in dry.stdout and "olcDbIndex: uid" not in dry.stdout
    assert "olcPPolicyDefault: cn=default,ou=policies,dc=tinh,dc=gov,dc=vn" in dry.stdout
    assert SERVICE_PASSWORD not in dry.stdout + dry.stderr
    assert (dump(debian, "cn=config"), dump(debian, debian.suffix)) == (config_before, data_before)

    init = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert init.returncode == 0, init.stderr
    assert "added cn=syncd,ou=services,dc=tinh,dc=gov,dc=vn" in init.stdout
    assert SERVICE_PASSWORD not in init.stdout + init.stderr
    # the regulation's password rules (length, age), as the install guide's next step
    policy = syncd(cfg, "policy", "apply", "--admin-url", debian.ldapi_url)
    assert policy.returncode == 0, policy.stderr

    # with root's view of cn=config: the indexes init added are checked too
    after = syncd(cfg, "doctor", "--json", "--admin-url", debian.ldapi_url)
    report = json.loads(after.stdout)
    assert after.returncode == 0, after.stdout
    assert {c["name"]: c["status"] for c in report["checks"]} == dict.fromkeys(
        [
            *("bind", "ppolicy", "base", "schema", "policy", "policy-drift", "visibility"),
            *("indexes", "write", "lastbind", "lockout", "size-limit", "hand-edits"),
        ],
        "ok",
    )

    # the first run of syncd itself, bound as the service DN init made
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    run = syncd(cfg, "reconcile", "--roster", str(roster), "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    admin = debian.admin()
    admin.search(
        f"uid=hungdv.skhcn,ou=people,{debian.suffix}",
        "(objectClass=*)",
        search_scope=BASE,
        attributes=["syncdState", "pwdReset", "pwdChangedTime"],
    )
    account = admin.entries[0]
    assert account.syncdState.value == "active" and account.pwdReset.value == "TRUE"
    assert account.pwdChangedTime.value is not None  # ppolicy saw the password set


def test_a_second_init_changes_nothing(debian: DebianSlapd, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, debian)
    first = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert first.returncode == 0, first.stderr
    config_before, data_before = dump(debian, "cn=config"), dump(debian, debian.suffix)

    second = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "nothing to do: the directory has what syncd needs\n"
    dry = syncd(cfg, "directory", "init", "--dry-run", "--admin-url", debian.ldapi_url)
    assert _statements(dry.stdout) == []
    assert (dump(debian, "cn=config"), dump(debian, debian.suffix)) == (config_before, data_before)


def test_init_turns_on_the_lockout_of_a_sites_own_policy_and_keeps_its_dn(
    debian: DebianSlapd, tmp_path: Path
) -> None:
    """A site that set up ppolicy before syncd keeps its default policy; init only makes it
    enforce locks, which syncd's revocations depend on."""
    site_policy = f"cn=site,ou=policies,{debian.suffix}"
    overlay = debian.ldapmodify(
        "dn: cn=module{0},cn=config\nchangetype: modify\nadd: olcModuleLoad\n"
        "olcModuleLoad: ppolicy\n-\n\n"
        "dn: olcOverlay=ppolicy,olcDatabase={1}mdb,cn=config\nchangetype: add\n"
        "objectClass: olcOverlayConfig\nobjectClass: olcPPolicyConfig\nolcOverlay: ppolicy\n"
        f"olcPPolicyDefault: {site_policy}\n"
    )
    assert overlay.returncode == 0, overlay.stderr
    admin = debian.admin()
    assert admin.add(f"ou=policies,{debian.suffix}", ["organizationalUnit"], {"ou": "policies"})
    assert admin.add(
        site_policy,
        ["device", "pwdPolicy"],
        {"cn": "site", "pwdAttribute": "userPassword", "pwdLockout": "FALSE"},
    ), admin.result
    cfg = write_config(tmp_path, debian)
    init = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert init.returncode == 0, init.stderr
    assert f"changed {site_policy}: the policy must enforce locks" in init.stdout
    assert "cn=default,ou=policies" not in init.stdout
    # the regulation's rules go into the site's policy too, never a second default
    policy = syncd(cfg, "policy", "apply", "--admin-url", debian.ldapi_url)
    assert policy.returncode == 0, policy.stderr
    assert f"changed {site_policy}: the default password policy" in policy.stdout
    assert "cn=default,ou=policies" not in policy.stdout
    doctor = syncd(cfg, "doctor")
    assert doctor.returncode == 0, doctor.stdout


def test_config_ldap_acl_ldif_is_what_init_writes_and_applies_on_a_stock_debian_slapd(
    tmp_path: Path,
) -> None:
    """The shipped LDIF (the example's suffix, dc=caobang,dc=gov,dc=vn) is exactly the dry run
    on a fresh Debian slapd, and ldapmodify applies it there: the operator's path without
    syncd on the LDAP host."""
    _need_debian_slapd()
    debian = DebianSlapd(tmp_path / "slapd", suffix="dc=caobang,dc=gov,dc=vn").start()
    try:
        cfg = write_config(tmp_path, debian)
        dry = syncd(cfg, "directory", "init", "--dry-run", "--admin-url", debian.ldapi_url)
        assert dry.returncode == 0, dry.stderr
        shipped = ACL_LDIF.read_text(encoding="utf-8")
        assert _statements(shipped) == _statements(dry.stdout), (
            "config/ldap/acl.ldif drifted from `syncd directory init --dry-run`"
        )
        applied = debian.ldapmodify(shipped)
        assert applied.returncode == 0, applied.stderr
        service = f"cn=syncd,ou=services,{debian.suffix}"
        # the two commands the LDIF's comment gives for the password (-s instead of -S: no tty)
        subprocess.run(
            [
                *("ldappasswd", "-Q", "-Y", "EXTERNAL", "-H", debian.ldapi_url),
                *("-s", SERVICE_PASSWORD, service),
            ],
            check=True,
            capture_output=True,
        )
        cleared = debian.ldapmodify(f"dn: {service}\nchangetype: modify\nreplace: pwdReset\n-\n")
        assert cleared.returncode == 0, cleared.stderr
        # the regulation's password policy, the same way: syncd's LDIF through ldapmodify
        policy = syncd(cfg, "policy", "apply", "--dry-run")
        assert policy.returncode == 0, policy.stderr
        assert debian.ldapmodify(policy.stdout).returncode == 0
        doctor = syncd(cfg, "doctor")
        assert doctor.returncode == 0, doctor.stdout
    finally:
        debian.stop()


def test_init_refuses_a_service_dn_outside_the_database_before_changing_anything(
    debian: DebianSlapd, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, debian)
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(
        text.replace(f"bind_dn: cn=syncd,ou=services,{debian.suffix}", "bind_dn: cn=s,o=x")
    )
    config_before, data_before = dump(debian, "cn=config"), dump(debian, debian.suffix)
    init = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert init.returncode == 2
    assert init.stderr == (
        "Error: directory.bind_dn 'cn=s,o=x' is not under 'dc=tinh,dc=gov,dc=vn': "
        "syncd directory init creates the service DN in the managed database only\n"
    )
    assert (dump(debian, "cn=config"), dump(debian, debian.suffix)) == (config_before, data_before)
