"""``syncd doctor``: each finding on a real slapd, the real command.

A Debian-configured slapd (tests/integration/debian_slapd.py) is prepared by ``syncd directory
init`` (green), then one thing is taken away as an administrator would, over ldapi: the doctor
must name exactly that, with its fix, and exit 1. The tests' own slapd (the ``slapd`` fixture)
must be green too: the doctor and the sandbox agree on what syncd needs.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import MODIFY_REPLACE

from devtools.slapd_sandbox import Sandbox, find_slapd
from tests.conftest import MakeConfig
from tests.helpers import write_roster
from tests.integration.debian_slapd import (
    DEBIAN_INIT_LDIF,
    SERVICE_PASSWORD,
    DebianSlapd,
    syncd,
    write_config,
)

DB = "olcDatabase={1}mdb,cn=config"
ALL = ["bind", "ppolicy", "base", "schema", "policy", "policy-drift", "visibility", "write"]
ALL += ["lastbind", "lockout", "size-limit", "hand-edits"]
# the indexes are in cn=config, which only --admin-url reads: without it, never "ok"
GREEN = {**dict.fromkeys(ALL, "ok"), "indexes": "skipped"}


@pytest.fixture
def debian(tmp_path: Path) -> Iterator[DebianSlapd]:
    if find_slapd() is None or not DEBIAN_INIT_LDIF.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's slapd is not installed; CI must install it (make test does)")
        pytest.skip("Debian's slapd is not installed")
    server = DebianSlapd(tmp_path / "slapd").start()
    yield server
    server.stop()


@pytest.fixture
def ready(debian: DebianSlapd, tmp_path: Path) -> tuple[DebianSlapd, Path]:
    """A Debian slapd after ``syncd directory init`` and ``syncd policy apply``; its
    syncd.yaml."""
    cfg = write_config(tmp_path, debian)
    init = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert init.returncode == 0, init.stderr
    policy = syncd(cfg, "policy", "apply", "--admin-url", debian.ldapi_url)
    assert policy.returncode == 0, policy.stderr
    return debian, cfg


def doctor(cfg: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = syncd(cfg, "doctor", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    assert SERVICE_PASSWORD not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    return result.returncode, {c["name"]: c for c in report["checks"]}


def statuses(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: c["status"] for name, c in checks.items()}


def modify(debian: DebianSlapd, ldif: str) -> None:
    done = debian.ldapmodify(ldif)
    assert done.returncode == 0, done.stderr


def test_doctor_is_green_on_the_tests_own_slapd_and_leaves_no_probe(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, base_dn: str
) -> None:
    make_config()
    code, checks = doctor(tmp_path / "syncd.yaml")
    # the session slapd's policy is only what syncd's locks need; the regulation's password
    # rules are applied to slapds of their own (test_policy.py), never to the shared one
    assert code == 1, checks
    assert statuses(checks) == {**GREEN, "policy-drift": "finding"}
    admin = slapd.admin()
    admin.search(
        base_dn, "(|(uid=syncd-doctor-*)(ou=syncd-doctor-*)(objectClass=organizationalRole))"
    )
    assert admin.entries == []


def test_text_output_names_each_finding_with_its_fix_and_exits_1(
    ready: tuple[DebianSlapd, Path],
) -> None:
    debian, cfg = ready
    modify(debian, f"dn: {DB}\nchangetype: modify\ndelete: olcLimits\n-\n")
    result = syncd(cfg, "doctor")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  FINDING  size-limit"))
    assert "stopped after 500" in lines[at]
    assert "fix: syncd directory init adds olcLimits" in lines[at + 1]
    assert lines[-1] == "1 finding: fix, then run syncd doctor again."


def test_before_init_the_schema_ppolicy_policy_and_write_access_are_findings(
    debian: DebianSlapd, tmp_path: Path
) -> None:
    """A stock Debian slapd where an administrator made only the service DN and ou=people."""
    admin = debian.admin()
    for ou in ("people", "services"):
        assert admin.add(f"ou={ou},{debian.suffix}", ["organizationalUnit"], {"ou": ou})
    assert admin.add(
        f"cn=syncd,ou=services,{debian.suffix}",
        ["applicationProcess", "simpleSecurityObject"],
        {"cn": "syncd", "userPassword": SERVICE_PASSWORD},
    )
    cfg = write_config(tmp_path, debian)
    code, checks = doctor(cfg)
    assert code == 1
    assert statuses(checks) == {
        "bind": "ok",
        "ppolicy": "finding",
        "base": "ok",
        "schema": "finding",
        "policy": "finding",
        "policy-drift": "finding",
        "visibility": "ok",
        "indexes": "skipped",
        "hand-edits": "ok",
        "write": "finding",
        "lastbind": "skipped",
        "lockout": "skipped",
        "size-limit": "skipped",
    }
    assert "syncdState" in checks["schema"]["detail"]
    assert "undefinedAttributeType" in checks["schema"]["detail"]
    assert "config/ldap/syncd-schema.ldif" in checks["schema"]["fix"]
    assert "olcOverlay=ppolicy" in checks["ppolicy"]["fix"]
    assert "insufficientAccessRights" in checks["write"]["detail"]
    assert "write by * break" in checks["write"]["fix"]


def test_a_missing_size_limit_rule_is_found_before_the_directory_holds_500_entries(
    ready: tuple[DebianSlapd, Path],
) -> None:
    debian, cfg = ready
    modify(debian, f"dn: {DB}\nchangetype: modify\ndelete: olcLimits\n-\n")
    code, checks = doctor(cfg)
    assert code == 1
    assert statuses(checks) == {**GREEN, "size-limit": "finding"}
    assert "sizeLimitExceeded" in checks["size-limit"]["detail"]
    assert "size=unlimited" in checks["size-limit"]["fix"]
    assert syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url).returncode == 0
    assert doctor(cfg)[0] == 0


def test_a_missing_ppolicy_overlay_is_found(ready: tuple[DebianSlapd, Path]) -> None:
    debian, cfg = ready
    gone = debian.ldapmodify(f"dn: olcOverlay={{0}}ppolicy,{DB}\nchangetype: delete\n")
    assert gone.returncode == 0, gone.stderr
    code, checks = doctor(cfg)
    assert code == 1
    assert checks["ppolicy"]["status"] == "finding"
    assert "would not enforce syncd's locks" in checks["ppolicy"]["detail"]
    assert checks["lockout"]["status"] == "skipped"


def test_a_policy_without_lockout_is_found_and_its_locks_do_not_hold(
    ready: tuple[DebianSlapd, Path],
) -> None:
    debian, cfg = ready
    admin = debian.admin()
    policy = f"cn=default,ou=policies,{debian.suffix}"
    assert admin.modify(policy, {"pwdLockout": [(MODIFY_REPLACE, ["FALSE"])]}), admin.result
    code, checks = doctor(cfg)
    assert code == 1
    assert checks["policy"]["status"] == "finding"
    assert "pwdLockout is not TRUE" in checks["policy"]["detail"]
    assert checks["lockout"]["status"] == "finding"
    assert "a locked account still logs in" in checks["lockout"]["detail"]


def test_logins_that_leave_no_trace_are_found(ready: tuple[DebianSlapd, Path]) -> None:
    debian, cfg = ready
    gone = debian.ldapmodify(f"dn: olcOverlay={{1}}lastbind,{DB}\nchangetype: delete\n")
    assert gone.returncode == 0, gone.stderr
    modify(debian, f"dn: {DB}\nchangetype: modify\nreplace: olcLastBind\nolcLastBind: FALSE\n-\n")
    code, checks = doctor(cfg)
    assert code == 1
    assert statuses(checks) == {**GREEN, "lastbind": "finding"}
    assert "pwdLastSuccess nor authTimestamp" in checks["lastbind"]["detail"]
    assert "olcLastBind: TRUE" in checks["lastbind"]["fix"]
    assert "lastbind overlay" in checks["lastbind"]["fix"]


def test_no_write_access_to_the_people_subtree_is_found(ready: tuple[DebianSlapd, Path]) -> None:
    debian, cfg = ready
    rule = (
        f'to dn.subtree="ou=people,{debian.suffix}" '
        f'by dn.exact="cn=syncd,ou=services,{debian.suffix}" write by * break'
    )
    modify(debian, f"dn: {DB}\nchangetype: modify\ndelete: olcAccess\nolcAccess: {{1}}{rule}\n-\n")
    code, checks = doctor(cfg)
    assert code == 1
    assert checks["write"]["status"] == "finding"
    assert "insufficientAccessRights" in checks["write"]["detail"]
    assert [checks[n]["status"] for n in ("lastbind", "lockout", "size-limit")] == ["skipped"] * 3


def test_entries_an_acl_hides_from_the_service_dn_are_found(
    ready: tuple[DebianSlapd, Path],
) -> None:
    debian, cfg = ready
    branch = f"ou=bgd,ou=people,{debian.suffix}"
    hidden = f"uid=an.bgd,{branch}"
    admin = debian.admin()
    assert admin.add(branch, ["organizationalUnit"], {"ou": "bgd"})
    assert admin.add(hidden, ["inetOrgPerson"], {"uid": "an.bgd", "cn": "An", "sn": "An"})
    # a site's rule placed before syncd's: nobody but the rootdn (and root) sees the branch
    modify(
        debian,
        f"dn: {DB}\nchangetype: modify\nadd: olcAccess\n"
        f'olcAccess: {{1}}to dn.children="{branch}" by * none\n-\n',
    )
    code, checks = doctor(cfg, "--read-only")
    assert code == 1
    assert checks["visibility"]["status"] == "finding"
    assert branch in checks["visibility"]["detail"]
    assert [checks[n]["status"] for n in ("write", "lockout", "size-limit")] == ["skipped"] * 3

    code, checks = doctor(cfg, "--read-only", "--admin-url", debian.ldapi_url)
    assert code == 1
    assert "1 entry root sees is hidden from the service DN" in checks["visibility"]["detail"]
    assert hidden in checks["visibility"]["detail"]


def test_an_unreachable_directory_is_a_finding_naming_the_url(
    debian: DebianSlapd, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, debian)
    debian.stop()  # nothing listens on its port any more
    code, checks = doctor(cfg)
    assert code == 1
    assert checks["bind"]["status"] == "finding"
    assert f"cannot reach {debian.url}" in checks["bind"]["detail"]
    assert {c["status"] for name, c in checks.items() if name != "bind"} == {"skipped"}


def test_probes_left_by_an_interrupted_doctor_are_found(ready: tuple[DebianSlapd, Path]) -> None:
    debian, cfg = ready
    stale = f"ou=syncd-doctor-0badf00d,ou=people,{debian.suffix}"
    admin = debian.admin()
    assert admin.add(stale, ["organizationalUnit"], {"ou": "syncd-doctor-0badf00d"})
    code, checks = doctor(cfg)
    assert code == 1
    assert checks["leftovers"]["status"] == "finding"
    assert stale in checks["leftovers"]["detail"]
    assert statuses(checks) == {**GREEN, "leftovers": "finding"}


def test_a_lockout_duration_that_would_end_syncds_locks_is_found(
    ready: tuple[DebianSlapd, Path],
) -> None:
    debian, cfg = ready
    admin = debian.admin()
    policy = f"cn=default,ou=policies,{debian.suffix}"
    assert admin.modify(policy, {"pwdLockoutDuration": [(MODIFY_REPLACE, ["86400"])]})
    code, checks = doctor(cfg)
    assert code == 1
    assert statuses(checks) == {
        **GREEN,
        "policy": "finding",
        "lockout": "finding",
    }
    assert "pwdLockoutDuration 86400: a lock would end by itself" in checks["policy"]["detail"]
    assert "or lets a lock expire" in checks["lockout"]["detail"]


def test_indexes_are_checked_only_with_roots_view_and_each_missing_one_is_named_with_its_fix(
    ready: tuple[DebianSlapd, Path],
) -> None:
    """docs/architecture.md's index requirements: without --admin-url they are not checked
    (never "ok"); with it, each one taken away in turn is the only finding, named with the
    ldapmodify that puts it back, which does."""
    debian, cfg = ready
    _, checks = doctor(cfg, "--read-only")
    assert checks["indexes"]["status"] == "skipped"
    assert checks["indexes"]["detail"].startswith("not checked: the service DN cannot read")
    assert "syncd doctor --admin-url ldapi:///" in checks["indexes"]["fix"]
    text = syncd(cfg, "doctor", "--read-only").stdout.splitlines()
    assert text[-1].startswith("No findings; not checked: indexes, "), text[-1]
    admin = ("--read-only", "--admin-url", debian.ldapi_url)
    code, checks = doctor(cfg, *admin)
    assert (code, checks["indexes"]["status"]) == (0, "ok"), checks["indexes"]

    # (the value as cn=config holds it, what stays of it, the attribute it indexed)
    taken = [
        ("objectClass eq", None, "objectClass"),
        ("cn,uid eq", "cn eq", "uid"),  # Debian's own definition, shared with cn
        ("mail eq", "mail pres", "mail"),  # indexed, but not for equality
        ("employeeNumber eq", None, "employeeNumber"),
        ("ou eq", None, "ou"),
        ("entryCSN eq", None, "entryCSN"),
    ]
    for value, rest, attribute in taken:
        again = f"add: olcDbIndex\nolcDbIndex: {rest}\n-\n" if rest else ""
        modify(
            debian,
            f"dn: {DB}\nchangetype: modify\ndelete: olcDbIndex\nolcDbIndex: {value}\n-\n{again}",
        )
        code, checks = doctor(cfg, *admin)
        found = {name for name, c in checks.items() if c["status"] == "finding"}
        assert (code, found) == (1, {"indexes"}), (attribute, checks)
        detail, fix = checks["indexes"]["detail"], checks["indexes"]["fix"]
        assert f"no equality index on {attribute} (" in detail and ";" not in detail.split(":")[0]
        assert "syncd directory init adds them" in fix
        changed = rest is not None and attribute in rest  # its other index kept, eq added
        assert f"olcDbIndex: {f'{rest},eq' if changed else f'{attribute} eq'}" in fix
        command = fix.split("or as root on the slapd host: ", 1)[1]
        assert command.endswith("| ldapmodify -Y EXTERNAL -H ldapi:///")
        done = subprocess.run(
            ["bash", "-c", command.replace("ldapi:///", shlex.quote(debian.ldapi_url))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        code, checks = doctor(cfg, *admin)
        assert (code, checks["indexes"]["status"]) == (0, "ok"), (attribute, checks["indexes"])

    # and directory init puts back what is missing (the delta read's index too), once
    modify(
        debian, f"dn: {DB}\nchangetype: modify\ndelete: olcDbIndex\nolcDbIndex: entryCSN eq\n-\n"
    )
    init = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert init.returncode == 0 and "changed olcDatabase={1}mdb,cn=config" in init.stdout
    assert doctor(cfg, *admin)[0] == 0
    again = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert again.stdout == "nothing to do: the directory has what syncd needs\n"


def test_an_acl_hiding_entrycsn_is_found_and_runs_read_in_full_instead_of_going_blind(
    ready: tuple[DebianSlapd, Path],
) -> None:
    """Found by an attack: a site's rule before syncd's hid entryCSN from the service DN.
    Every CSN then read as "", the delta read saw no change (a title edited by hand stayed,
    and whole runs were repeated as quiet). Now each run reads in full and says why, and the
    doctor names the entries."""
    debian, cfg = ready
    roster = write_roster(
        cfg.parent / "r.csv",
        ["E1,Trần Văn An,skhcn,,Chuyên viên,,,", "E2,Lê Thị Bình,skhcn,,Chuyên viên,,,"],
    )
    made = syncd(cfg, "reconcile", "--roster", str(roster))
    assert made.returncode == 0, made.stdout + made.stderr
    kept = syncd(cfg, "reconcile", "--latest")  # the snapshot now holds the accounts made
    assert kept.returncode == 0, kept.stdout + kept.stderr
    people = f"ou=people,{debian.suffix}"
    modify(
        debian,
        f"dn: {DB}\nchangetype: modify\nadd: olcAccess\n"
        f'olcAccess: {{0}}to dn.subtree="{people}" attrs=entryCSN '
        f'by dn.exact="cn=syncd,ou=services,{debian.suffix}" none by * break\n-\n',
    )
    code, checks = doctor(cfg, "--read-only")
    assert code == 1
    assert checks["entryCSN"]["status"] == "finding"
    assert "entryCSN is hidden from the service DN" in checks["entryCSN"]["detail"]
    # the first scoped run after it: the snapshot's newest entries are not in the window of
    # recent CSNs the service DN can see any more, so it reads whole (each entry in full)
    # and says why
    first = syncd(cfg, "reconcile", "--roster", str(roster), "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "no entryCSN the service DN may read" in first.stdout
    again = syncd(cfg, "reconcile", "--roster", str(roster), "--json")  # reads whole, says why
    assert again.returncode == 0, again.stdout + again.stderr
    warnings = json.loads(again.stdout)["warnings"]
    assert any("no entryCSN the service DN may read" in w for w in warnings), warnings
    admin = debian.admin()
    admin.search(people, "(employeeNumber=E1)", attributes=["uid"])
    [entry] = admin.response
    assert admin.modify(entry["dn"], {"title": [(MODIFY_REPLACE, ["Sửa tay"])]})
    for command in ("plan", "reconcile"):  # scoped and whole runs both see the edit
        args = ["--roster", str(roster)] if command == "plan" else ["--latest", "--dry-run"]
        plan = syncd(cfg, command, *args, "--json")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        actions = json.loads(plan.stdout)["plan"]["actions"]
        assert [a["action"] for a in actions] == ["update"], actions


def test_a_scoped_run_never_gives_out_an_address_held_by_an_entry_whose_entrycsn_is_hidden(
    ready: tuple[DebianSlapd, Path],
) -> None:
    """Found by an attack: entryCSN hidden for another organisation's entries only, a
    mailbox added there by hand with an address of skhcn, then a new hire whose natural uid
    is that address: the scoped run's namespace (the snapshot and the recent CSNs, which
    the hidden entry never matches) missed it, and the address went to a second mailbox.
    Now the names a plan gives out are looked up on the server first: the run stops, the
    snapshot goes, and the next run reads the directory whole and gives another name."""
    debian, cfg = ready
    first = ["E1,Trần Văn An,skhcn,,Chuyên viên,,,"]
    roster = write_roster(cfg.parent / "r.csv", first)
    assert syncd(cfg, "reconcile", "--roster", str(roster)).returncode == 0
    assert syncd(cfg, "reconcile", "--latest").returncode == 0  # the snapshot holds them
    people = f"ou=people,{debian.suffix}"
    modify(
        debian,
        f"dn: {DB}\nchangetype: modify\nadd: olcAccess\n"
        f'olcAccess: {{0}}to dn.subtree="{people}" filter=(ou=khac) attrs=entryCSN '
        f"by * none\n-\n",
    )
    held = "binhtt.skhcn@tinh.gov.vn"
    admin = debian.admin()
    assert admin.add(
        f"uid=binhtt.khac,{people}",
        ["inetOrgPerson"],
        {"uid": "binhtt.khac", "cn": "Trần Thị Bình", "sn": "Trần", "ou": "khac",
         "employeeNumber": "K9", "mail": ["binhtt.khac@tinh.gov.vn", held]},
    ), admin.result  # fmt: skip
    roster = write_roster(cfg.parent / "r.csv", [*first, "E3,Trần Thị Bình,skhcn,,Chuyên viên,,,"])
    stopped = syncd(cfg, "reconcile", "--roster", str(roster))
    assert stopped.returncode != 0
    assert "already held in the directory" in stopped.stdout + stopped.stderr
    again = syncd(cfg, "reconcile", "--roster", str(roster), "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    made = [
        a["uid"] for a in json.loads(again.stdout)["plan"]["actions"] if a["action"] == "create"
    ]
    assert made == ["binhtt1.skhcn"], made
    admin.search(people, f"(mail={held})", attributes=["uid"])
    assert [e["dn"] for e in admin.response] == [f"uid=binhtt.khac,{people}"]
