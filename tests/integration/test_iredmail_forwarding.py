"""Hưng Yên Đ4.5 on the iredmail profile, proven at Postfix: iRedMail's own forwarding lookup
(``virtual_alias_maps``, the block docs/mail-server.md marks ``tested: forwarding iredmail``,
asked with ``postmap -q``) returns the address outside the state's mail before a removing run,
not after it, and not after a plan either; by default the mailbox is only reported. States
and forwarding are put there as iRedAdmin would (the admin) and by the ``syncd`` command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE, MODIFY_ADD, MODIFY_REPLACE, Connection

from devtools.slapd_sandbox import Sandbox
from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import write_roster
from tests.integration import mail_docs
from tests.integration.test_directory_contract import needs_schema
from tests.integration.test_mail_servers import POSTMAP, Postfix, _require, configure, find_dn, run

DOMAIN = "test.gov.vn"
OUTSIDE = "phuc.nguyen@gmail.com"
STATE = "vanthu@sotp.hungyen.gov.vn"
REMOVE = "rules:\n  forwarding: {action: remove}\n"


def forwarding_table(slapd: Sandbox, base_dn: str, tmp_path: Path) -> Postfix:
    _require(POSTMAP, "postfix postfix-ldap")
    root = tmp_path / "postfix"
    root.mkdir()
    query = mail_docs.settings("tested: forwarding iredmail -->", mail_docs.POSTFIX)
    return Postfix(slapd, f"o=domains,{base_dn}", query, root)


def site(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    extra: str = "",
) -> tuple[Path, Path, str, str]:
    """A Hưng Yên iRedMail site with one person whose mail iRedAdmin forwards to Gmail, to a
    state body and (keep a copy) to the mailbox itself."""
    needs_schema(slapd, "iredmail")
    cfg = configure(make_config, tmp_path, "iredmail", "hungyen-2025", extra)
    roster = write_roster(tmp_path / "a.csv", ["E1,Nguyễn Hoàng Phúc,khcn,,,,,"])
    run(cfg, "reconcile", "--roster", str(roster))
    dn, uid = find_dn(admin, base_dn, "E1")
    own = f"{uid}@{DOMAIN}"
    assert admin.modify(dn, {"mailForwardingAddress": [(MODIFY_REPLACE, [own, OUTSIDE, STATE])]}), (
        admin.result
    )
    return cfg, roster, dn, own


def entry(admin: Connection, dn: str) -> dict[str, Any]:
    assert admin.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["*"])
    return dict(admin.response[0]["attributes"])


def forwards(postfix: Postfix, address: str) -> set[str]:
    """The addresses Postfix forwards to: its lookup joins values with commas, and a value
    is itself a list "separated by comma or whitespace" (virtual(5))."""
    found = postfix.lookup(address)
    return {a for a in re.split(r"[,\s]+", found) if a} if found else set()


def test_a_removing_run_takes_the_outside_address_out_of_postfixs_forwarding_and_a_plan_not(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    cfg, roster, dn, own = site(make_config, tmp_path, slapd, admin, base_dn, REMOVE)
    assert "forwarding elsewhere   removed      [hungyen-2025 Đ4.5]  (rules)" in run(cfg, "rules")
    postfix = forwarding_table(slapd, base_dn, tmp_path)
    assert forwards(postfix, own) == {own, OUTSIDE, STATE}

    shown = json.loads(run(cfg, "plan", "--roster", str(roster), "--json"))["plan"]
    [action] = [a for a in shown["actions"] if a["action"] == "enforce"]
    assert action["article"] == "hungyen-2025 Đ4.5" and OUTSIDE in action["reason"]
    assert action["fields"] == {"forwarding": [own, STATE]}
    assert forwards(postfix, own) == {own, OUTSIDE, STATE}  # a plan changes nothing

    run(cfg, "reconcile", "--roster", str(roster))
    assert forwards(postfix, own) == {own, STATE}  # the copy and the state address stay
    assert "forward" in {s.lower() for s in entry(admin, dn)["enabledService"]}
    audit = [
        json.loads(line)
        for line in (tmp_path / "state" / "audit.jsonl").read_text("utf-8").splitlines()
    ]
    [record] = [r for r in audit if r.get("action") == "enforce"]
    assert record["article"] == "hungyen-2025 Đ4.5" and "hungyen-2025" in record["reason"]
    assert record["before"] == {"forwarding": [own, OUTSIDE, STATE]}
    assert record["result"] == "ok"

    again = json.loads(run(cfg, "plan", "--roster", str(roster), "--json"))["plan"]
    assert [a for a in again["actions"] if a["action"] == "enforce"] == []


def test_by_default_the_outside_forwarding_is_reported_and_left_at_postfix(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    cfg, roster, _, own = site(make_config, tmp_path, slapd, admin, base_dn)
    rules = run(cfg, "rules")
    line = "forwarding elsewhere   reported     [hungyen-2025 Đ4.5]  (profile hungyen-2025)"
    assert line in rules
    assert f"state mail: {DOMAIN}, *.gov.vn" in rules
    postfix = forwarding_table(slapd, base_dn, tmp_path)
    out = json.loads(run(cfg, "reconcile", "--roster", str(roster), "--json"))
    notices = json.dumps(out, ensure_ascii=False)
    assert OUTSIDE in notices and "hungyen-2025 Đ4.5" in notices
    assert forwards(postfix, own) == {own, OUTSIDE, STATE}


def test_a_mailbox_forwarding_only_outside_receives_its_mail_itself_after_the_removal(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """Nothing is lost: with no forwarding address left, Postfix's forwarding lookup finds
    nothing and its mailbox lookup (virtual_mailbox_maps) delivers to the mailbox."""
    cfg, roster, dn, own = site(make_config, tmp_path, slapd, admin, base_dn, REMOVE)
    assert admin.modify(dn, {"mailForwardingAddress": [(MODIFY_REPLACE, [OUTSIDE])]})
    postfix = forwarding_table(slapd, base_dn, tmp_path)
    assert forwards(postfix, own) == {OUTSIDE}
    run(cfg, "reconcile", "--roster", str(roster))
    assert forwards(postfix, own) == set()
    assert "mailForwardingAddress" not in entry(admin, dn)
    mailbox_root = tmp_path / "mailboxes"
    mailbox_root.mkdir()
    mailboxes = Postfix(
        slapd,
        f"o=domains,{base_dn}",
        mail_docs.settings("tested: postfix iredmail -->", mail_docs.POSTFIX),
        mailbox_root,
    )
    assert mailboxes.lookup(own) is not None


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (f"{OUTSIDE}, {STATE}", {STATE}),
        (f"{OUTSIDE} {STATE}", {STATE}),
        (f"{OUTSIDE},@sotp.hungyen.gov.vn", set()),
    ],
)
def test_gmail_hidden_in_one_value_beside_a_state_address_is_taken_out_of_postfixs_forwarding(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    value: str,
    kept: set[str],
) -> None:
    """One mailForwardingAddress value that Postfix reads as two addresses (issue 12)."""
    cfg, roster, dn, own = site(make_config, tmp_path, slapd, admin, base_dn, REMOVE)
    assert admin.modify(dn, {"mailForwardingAddress": [(MODIFY_REPLACE, [own, value])]})
    postfix = forwarding_table(slapd, base_dn, tmp_path)
    assert OUTSIDE in forwards(postfix, own)  # Postfix forwards to Gmail from that value
    run(cfg, "reconcile", "--roster", str(roster))
    assert forwards(postfix, own) == {own, *kept}
    assert entry(admin, dn)["mailForwardingAddress"] == [own, *sorted(kept)]


def test_a_held_forwarding_removal_is_reported_held_and_postfix_still_forwards(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """Past the safety limit the removal is held back (exit 3): nothing says it was removed,
    --json lists it under held_actions as every held stage, and Postfix still forwards."""
    limit = "safety: {max_lock_count: 1}\n"
    cfg, _, dn, own = site(make_config, tmp_path, slapd, admin, base_dn, REMOVE + limit)
    rows = ["E1,Nguyễn Hoàng Phúc,khcn,,,,,", "E2,Trần Văn Bình,khcn,,,,,"]
    roster = write_roster(tmp_path / "b.csv", rows)
    run(cfg, "reconcile", "--roster", str(roster))  # E2 made (and E1's one removal done)
    dn2, uid2 = find_dn(admin, base_dn, "E2")
    assert admin.modify(dn, {"mailForwardingAddress": [(MODIFY_REPLACE, [own, OUTSIDE, STATE])]})
    assert admin.modify(dn2, {"mailForwardingAddress": [(MODIFY_REPLACE, [OUTSIDE])]})
    postfix = forwarding_table(slapd, base_dn, tmp_path)
    done = syncd(cfg, "reconcile", "--roster", str(roster), "--json")
    assert done.returncode == 3, done.stdout + done.stderr
    out = json.loads(done.stdout)
    plan = out["plan"]
    assert [a["action"] for a in plan["held_actions"]] == ["enforce", "enforce"]
    assert {a["uid"] for a in plan["held_actions"]} == {own.split("@")[0], uid2}
    assert [a for a in plan["actions"] if a["action"] == "enforce"] == []
    [held] = plan["held"]
    assert held.startswith("held back: removing forwarding out of the state's mail of 2 ")
    assert out["held"] == [held]  # as every held stage: the line at the top, the actions
    notices = [n for n in plan["notices"] if OUTSIDE in n]
    assert notices and all("; removed" not in n and "to be removed" in n for n in notices)
    report = Path(out["report"]).read_text(encoding="utf-8")
    assert "HELD BACK" in report and "to be removed" in report and "; removed [" not in report
    assert forwards(postfix, own) == {own, OUTSIDE, STATE}
    assert forwards(postfix, f"{uid2}@{DOMAIN}") == {OUTSIDE}


@pytest.mark.parametrize("profile", ["openldap", "openldap-ou", "zimbra", "ad"])
def test_syncd_rules_says_forwarding_is_not_checked_where_the_profile_does_not_read_it(
    make_config: MakeConfig, tmp_path: Path, profile: str
) -> None:
    """Only a profile whose FIELD_ATTRIBUTES maps forwarding reads it (issue 12: these said
    "reported" and checked nothing)."""
    cfg = configure(make_config, tmp_path, profile, "hungyen-2025")
    rules = run(cfg, "rules")
    assert "forwarding elsewhere   NOT CHECKED  [hungyen-2025 Đ4.5]" in rules
    assert f"the {profile} profile does not read forwarding" in rules
    assert "reported" not in rules and "removed" not in rules


def test_syncd_rules_says_whose_state_domains_hold(make_config: MakeConfig, tmp_path: Path) -> None:
    cfg = configure(make_config, tmp_path, "iredmail", "hungyen-2025")
    assert f"state mail: {DOMAIN}, *.gov.vn (the regulation's list)" in run(cfg, "rules")
    cfg = configure(
        make_config,
        tmp_path,
        "iredmail",
        "hungyen-2025",
        "rules:\n  forwarding: {state_domains: [hungyen.gov.vn]}\n",
    )
    rules = run(cfg, "rules")
    assert f"state mail: {DOMAIN}, hungyen.gov.vn (the site's list, replacing the" in rules


def test_a_compromised_lock_stops_the_attackers_forward_at_postfix_and_the_restore_gives_it_back(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """Hưng Yên: a locked mailbox still receives (Đ7.1), so a forward to Gmail would keep
    running through a compromised lock; the lock takes ``forward`` (iRedMail's forwarding
    query asks for it), recorded, and the restore gives exactly it back. A spam lock is the
    holder's own doing and leaves forwarding to the Đ4.5 check."""
    cfg, _, dn, own = site(make_config, tmp_path, slapd, admin, base_dn)
    uid = own.split("@")[0]
    postfix = forwarding_table(slapd, base_dn, tmp_path)
    mailbox_root = tmp_path / "mailboxes"
    mailbox_root.mkdir()
    mailboxes = Postfix(
        slapd,
        f"o=domains,{base_dn}",
        mail_docs.settings("tested: postfix iredmail -->", mail_docs.POSTFIX),
        mailbox_root,
    )
    assert forwards(postfix, own) == {own, OUTSIDE, STATE}
    before = {s.lower() for s in entry(admin, dn)["enabledService"]}

    run(cfg, "lock", uid, "--reason", "compromised", "--note", "ticket 42")
    assert forwards(postfix, own) == set()  # Gmail gets nothing more
    assert mailboxes.lookup(own) is not None  # the mailbox itself still receives (Đ7.1)
    locked = entry(admin, dn)
    assert "forward" not in {s.lower() for s in locked["enabledService"]}
    assert "forward" in {s.lower() for s in locked["syncdLockedServices"]}

    run(cfg, "restore", uid)
    assert {s.lower() for s in entry(admin, dn)["enabledService"]} == before
    assert forwards(postfix, own) == {own, OUTSIDE, STATE}  # the Đ4.5 check's again

    run(cfg, "lock", uid, "--reason", "spam")
    assert forwards(postfix, own) == {own, OUTSIDE, STATE}


def test_forwarding_turned_back_on_by_hand_on_a_compromised_mailbox_is_put_back_off(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """An operator re-adds ``forward`` in iRedAdmin on the compromised mailbox: the next run
    sees it (the lock's record says the lock took it) and takes it again; the restore still
    gives it back once."""
    cfg, roster, dn, own = site(make_config, tmp_path, slapd, admin, base_dn)
    uid = own.split("@")[0]
    postfix = forwarding_table(slapd, base_dn, tmp_path)
    run(cfg, "lock", uid, "--reason", "malware")
    assert forwards(postfix, own) == set()
    assert admin.modify(dn, {"enabledService": [(MODIFY_ADD, ["forward"])]}), admin.result
    assert OUTSIDE in forwards(postfix, own)

    shown = json.loads(run(cfg, "plan", "--roster", str(roster), "--json"))["plan"]
    [action] = [a for a in shown["actions"] if a["action"] == "enforce"]
    assert "forward back in enabledService" in action["reason"]
    run(cfg, "reconcile", "--roster", str(roster))
    assert forwards(postfix, own) == set()
    assert "forward" in {s.lower() for s in entry(admin, dn)["syncdLockedServices"]}
    run(cfg, "restore", uid)
    assert forwards(postfix, own) == {own, OUTSIDE, STATE}
