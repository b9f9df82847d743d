"""``make demo``: the main job on an embedded default.

Starts (or reuses) a throwaway slapd whose data lives in ``.demo/`` of the checkout, listening
on loopback only; loads the Cao Bằng sample (catalogue, 9 HR rosters — one XLSX, one typed in
TCVN3 — and the mailboxes that predate syncd); runs a real reconcile and prints the summary and
an ``ldapsearch`` command to look at the result. Run it again: 0 changes.
``python -m devtools.demo stop`` stops the slapd.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

from ldap3 import Connection

from connectors import runner
from connectors.daemon import configure_logging
from connectors.loading import inbox_files, load_config
from connectors.outcome import EXIT_FAILED, report_text
from connectors.store import write_private
from devtools.sample_data import DOMAIN, SUFFIX, existing_ldif
from devtools.slapd_sandbox import Sandbox
from syncd.report import counts_line, decisions_text

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
SAMPLE = ROOT / "config" / "examples" / "caobang"

CONFIG = """\
# Written by `make demo` for its throwaway slapd (the port changes between runs).
profile: caobang-2025
domain: {domain}
directory:
  url: {url}
  bind_dn: {bind_dn}
  bind_password_file: bind.pw
  base_dn: {people}
  layout: flat
paths:
  inbox: inbox
  state: state
  outbox: outbox
  audit_log: state/audit.jsonl
orgs: {orgs}
safety:
  max_revoke_share: 0.10
  max_revoke_count: 25
"""


def _running(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start() -> Sandbox:
    slapd_dir = DEMO / "slapd"
    port_file = DEMO / "port"
    pid = _running(slapd_dir / "slapd.pid")
    if pid is not None and port_file.exists():
        sandbox = Sandbox(slapd_dir, suffix=SUFFIX, port=int(port_file.read_text()))
        print(f"==> reusing the demo slapd (pid {pid}) on {sandbox.url}")
        return sandbox
    fresh = not (slapd_dir / "slapd.d").exists()
    sandbox = Sandbox(slapd_dir, suffix=SUFFIX)
    sandbox.start()
    port_file.write_text(str(sandbox.port))
    sandbox.process = None  # leave it running after this process ends, for ldapsearch
    print(f"==> started a throwaway slapd on {sandbox.url} (data in {slapd_dir})")
    if fresh:
        conn = sandbox.admin()
        _load_ldif(conn, existing_ldif(sandbox.people_dn))
        conn.unbind()
        print("==> loaded the mailboxes that predate syncd (2011-style: datnv, hoalt, …)")
    return sandbox


def _load_ldif(conn: Connection, ldif: str) -> None:
    """Add the simple (one value per line, no continuation) LDIF that sample_data writes."""
    for block in ldif.strip().split("\n\n"):
        attrs: dict[str, list[str]] = {}
        dn = ""
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            if key == "dn":
                dn = value
            else:
                attrs.setdefault(key, []).append(value)
        classes = attrs.pop("objectClass")
        if not conn.add(dn, classes, attrs) and conn.result["result"] != 68:
            raise RuntimeError(f"loading {dn}: {conn.result}")


def _show(sandbox: Sandbox, org: str, limit: int = 10) -> None:
    """A few mailboxes of one organisation, read back from the directory."""
    conn = sandbox.admin()
    conn.search(sandbox.people_dn, f"(ou={org})", attributes=["uid", "cn", "syncdState"])
    rows = sorted(
        (
            str(e["attributes"]["uid"][0]),
            str(e["attributes"]["cn"][0]),
            str((e["attributes"].get("syncdState") or ["-"])[0]),
        )
        for e in conn.response
        if e.get("type") == "searchResEntry"
    )
    conn.unbind()
    print(f"\nIn the directory now, {org} ({len(rows)} entries; first {limit}):")
    for uid, cn, state in rows[:limit]:
        print(f"  {uid + '@' + DOMAIN:<44} {cn:<28} {state}")


def stop() -> None:
    pid = _running(DEMO / "slapd" / "slapd.pid")
    if pid is None:
        print("the demo slapd is not running")
        return
    os.kill(pid, signal.SIGTERM)
    print(f"stopped the demo slapd (pid {pid}); `rm -rf .demo` forgets its data")


def main() -> int:
    if sys.argv[1:] == ["stop"]:
        stop()
        return 0
    configure_logging(json_lines=False, stream=sys.stderr, level=logging.WARNING)
    DEMO.mkdir(exist_ok=True)
    sandbox = start()
    write_private(DEMO / "bind.pw", sandbox.service_password + "\n")
    inbox = DEMO / "inbox"
    if not inbox.exists():
        inbox.mkdir()
        for path in sorted((SAMPLE / "rosters").iterdir()):
            shutil.copy2(path, inbox / path.name)
    (DEMO / "syncd.yaml").write_text(
        CONFIG.format(
            domain=DOMAIN,
            url=sandbox.url,
            bind_dn=sandbox.service_dn,
            people=sandbox.people_dn,
            orgs=SAMPLE / "orgs.yaml",
        ),
        encoding="utf-8",
    )
    config = load_config(DEMO / "syncd.yaml")
    files = inbox_files(config)
    print(f"==> reconciling {len(files)} HR roster files from {inbox} into {sandbox.people_dn}")
    outcome = runner.run(config)
    plan = outcome.plan
    assert plan is not None
    print()
    print(report_text(outcome, files), end="")
    print()
    if plan.actions:
        kinds = Counter(a.kind.value for a in plan.actions)
        print(f"Changes made this run: {counts_line(dict(kinds))}")
        for a in plan.actions:
            if a.kind.value in ("link", "move", "revoke", "reset-password"):
                print(
                    f"  {a.kind.value:<15} {a.uid}{' → ' + a.new_uid if a.new_uid else ''}: "
                    f"{a.reason} [{a.article}]"
                )
    else:
        print("0 changes: the directory already matches the rosters (run it as often as you like).")
    if plan.decisions:
        print("\nWaiting for an operator (syncd decisions / syncd decide):")
        print(decisions_text(plan.decisions))
    _show(sandbox, "skhcn")
    cfg = DEMO / "syncd.yaml"
    print(f"""
Look at the result:
  ldapsearch -x -H {sandbox.url} -D '{sandbox.admin_dn}' -w {sandbox.admin_password} \\
    -b '{sandbox.people_dn}' '(ou=skhcn)' uid cn mail title syncdState
Plan again (should be 0 actions):   .venv/bin/syncd -c {cfg} plan
Pending decisions:                  .venv/bin/syncd -c {cfg} decisions
The rules and what they will do:    .venv/bin/syncd -c {cfg} rules
                                    .venv/bin/syncd -c {cfg} forecast --days 120
                                    .venv/bin/syncd -c {cfg} plan --now 2027-06-01
Audit log:                          {config.paths.audit_log}
Stop the demo slapd:                .venv/bin/python -m devtools.demo stop""")
    return outcome.exit_code if outcome.exit_code != EXIT_FAILED else 1


if __name__ == "__main__":
    sys.exit(main())
