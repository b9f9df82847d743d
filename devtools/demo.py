"""``make demo``: the main job on an embedded default.

Starts (or reuses) a throwaway slapd whose data lives in ``.demo/`` of the checkout, listening
on loopback only; loads the Cao Bằng sample (catalogue, 9 HR rosters — one XLSX, one typed in
TCVN3 — and the mailboxes that predate syncd); runs a real reconcile and prints the summary,
the directory's password policy against the regulation (``syncd policy check``) and an
``ldapsearch`` command to look at the result. Run it again: 0 changes.
``python -m devtools.demo stop`` stops the slapd.

``PROFILE`` (``make demo PROFILE=…``) points the same sample at another directory profile:
``openldap`` (the default), ``iredmail`` and ``zimbra`` (a slapd with the mail server's schema,
the pre-syncd mailboxes as that server keeps them; Zimbra's ``cn=zimbra`` class of service
too), ``ad`` (a throwaway Samba AD DC on an address of its own in 127/8). Each profile's data
lives in ``.demo-<profile>/`` (``.demo/`` for the default); ``SYNCD_DEMO_DIR`` puts it
elsewhere (the tests do).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ldap3 import MODIFY_REPLACE, Connection

from connectors import runner
from connectors.config import Config
from connectors.daemon import configure_logging
from connectors.directory.policy import check as policy_check
from connectors.loading import inbox_files, load_config
from connectors.outcome import EXIT_FAILED, RunOutcome, report_text
from connectors.secrets import bind_password
from connectors.store import write_private
from devtools.samba_sandbox import SambaSandbox
from devtools.sample_data import DOMAIN, SUFFIX, existing_ldif
from devtools.slapd_sandbox import Sandbox
from devtools.zimbra_sandbox import ZIMBRA_ADMIN, ZimbraSandbox
from syncd.errors import SyncdError
from syncd.report import counts_line, decisions_text

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "config" / "examples" / "caobang"
PROFILES = ("openldap", "iredmail", "zimbra", "ad")
# iRedMail's services of a mailbox (as its tools give them), for the pre-syncd mailboxes
IREDMAIL_SERVICES = ["mail", "deliver", "lda", "lmtp", "imap", "imapsecured", "smtp", "sogo"]


def demo_profile() -> str:
    """The directory profile the demo runs on: ``$PROFILE``, else openldap."""
    name = os.environ.get("PROFILE") or "openldap"
    if name not in PROFILES:
        raise SystemExit(f"PROFILE={name}: the demo runs on one of {', '.join(PROFILES)}")
    return name


def demo_dir(profile: str) -> Path:
    """Where a profile's demo keeps its data: ``$SYNCD_DEMO_DIR``, else in the checkout."""
    named = os.environ.get("SYNCD_DEMO_DIR")
    if named:
        return Path(named)
    return ROOT / (".demo" if profile == "openldap" else f".demo-{profile}")


CONFIG = """\
# Written by `make demo` for its throwaway directory (the port changes between runs).
profile: caobang-2025
domain: {domain}
directory:
  profile: {profile}
  url: {url}
  bind_dn: {bind_dn}
  bind_password_file: bind.pw
  base_dn: {people}
{extra}paths:
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


@dataclass
class Demo:
    """One profile's throwaway directory and what the demo needs to know of it."""

    profile: str
    folder: Path
    server: Any = None  # Sandbox, ZimbraSandbox or SambaSandbox

    @property
    def people_dn(self) -> str:
        return str(self.server.people_dn)

    def config_extra(self) -> str:
        if self.profile == "ad":
            return f"  ca_file: {self.server.ca_file}\n"
        if self.profile == "iredmail":
            return ""
        if self.profile == "zimbra":
            # the mailbox server new accounts live on (zimbraMailHost, zimbraMailTransport)
            return f"  layout: flat\n  zimbra: {{mail_host: mail.{DOMAIN}}}\n"
        return "  layout: flat\n"

    def start(self) -> None:
        if self.profile == "ad":
            self._start_samba()
        else:
            self._start_slapd()

    # -- slapd (openldap, iredmail, zimbra) ----------------------------------------------------

    def _slapd(self, root: Path, **kwargs: Any) -> Sandbox:
        kind = ZimbraSandbox if self.profile == "zimbra" else Sandbox
        return kind(root, suffix=SUFFIX, **kwargs)

    def _start_slapd(self) -> None:
        slapd_dir = self.folder / "slapd"
        port_file = self.folder / "port"
        pid = _running(slapd_dir / "slapd.pid")
        if pid is not None and port_file.exists():
            self.server = self._slapd(slapd_dir, port=int(port_file.read_text()))
            print(f"==> reusing the demo slapd (pid {pid}) on {self.server.url}")
            return
        fresh = not (slapd_dir / "slapd.d").exists()
        self.server = self._slapd(slapd_dir)
        self.server.start()
        port_file.write_text(str(self.server.port))
        self.server.process = None  # leave it running after this process ends, for ldapsearch
        print(f"==> started a throwaway slapd on {self.server.url} (data in {slapd_dir})")
        if fresh:
            conn = self.server.admin()
            self._legacy(conn)
            conn.unbind()
            print("==> loaded the mailboxes that predate syncd (2011-style: datnv, hoalt, …)")

    # -- Samba AD DC (ad) ----------------------------------------------------------------------

    def _start_samba(self) -> None:
        root = self.folder / "samba"
        host_file, pid_file = self.folder / "host", self.folder / "samba.pid"
        pid = _running(pid_file)
        if pid is not None and host_file.exists():
            self.server = SambaSandbox(root, host=host_file.read_text().strip())
            print(f"==> reusing the demo Samba AD DC (pid {pid}) on {self.server.url}")
            return
        fresh = not (root / "dc").exists()
        saved = host_file.read_text().strip() if host_file.exists() and not fresh else None
        self.server = SambaSandbox(root, host=saved) if saved else SambaSandbox(root)
        print("==> starting a throwaway Samba AD DC (the first time provisions it: seconds)")
        self.server.start()
        host_file.write_text(self.server.host)
        assert self.server.process is not None
        pid_file.write_text(str(self.server.process.pid))
        self.server.process = None  # leave it running after this process ends
        print(f"==> Samba AD DC {self.server.realm} on {self.server.url} (data in {root})")
        if fresh:
            conn = self.server.admin()
            self._legacy(conn)
            conn.unbind()
            print("==> loaded the mailboxes that predate syncd (2011-style: datnv, hoalt, …)")

    # -- the mailboxes that predate syncd, as each server keeps them ---------------------------

    def _legacy(self, conn: Connection) -> None:
        for dn, classes, attrs in self._legacy_entries():
            if not conn.add(dn, classes, attrs) and conn.result["result"] != 68:
                raise RuntimeError(f"loading {dn}: {conn.result}")
            if self.profile == "ad":
                # a working mailbox: a password of its own (not syncd's), then enabled
                quoted = f'"Legacy!{uuid.uuid4().hex[:12]}"'.encode("utf-16-le")
                for change in (
                    {"unicodePwd": [(MODIFY_REPLACE, [quoted])]},
                    {"userAccountControl": [(MODIFY_REPLACE, ["512"])]},
                ):
                    if not conn.modify(dn, change):
                        raise RuntimeError(f"enabling {dn}: {conn.result}")

    def _legacy_entries(self) -> list[tuple[str, list[str], dict[str, list[str]]]]:
        people = self.people_dn
        out: list[tuple[str, list[str], dict[str, list[str]]]] = []
        if self.profile == "iredmail":
            domain_dn = f"domainName={DOMAIN},o=domains,{people}"
            out += [
                (f"o=domains,{people}", ["organization"], {"o": ["domains"]}),
                (
                    domain_dn,
                    ["mailDomain"],
                    {
                        "domainName": [DOMAIN],
                        "accountStatus": ["active"],
                        "enabledService": ["mail"],
                    },
                ),
                (f"ou=Users,{domain_dn}", ["organizationalUnit"], {"ou": ["Users"]}),
            ]
        for _, attrs in _parse_ldif(existing_ldif(people)):
            uid, classes = attrs["uid"][0], attrs.pop("objectClass")
            address = f"{uid}@{DOMAIN}"
            if self.profile == "iredmail":
                attrs.update(
                    accountStatus=["active"],
                    enabledService=IREDMAIL_SERVICES,
                    homeDirectory=[f"/var/vmail/vmail1/{DOMAIN}/{uid}/"],
                )
                out.append(
                    (
                        f"mail={address},ou=Users,domainName={DOMAIN},o=domains,{people}",
                        [*classes, "mailUser", "shadowAccount"],
                        attrs,
                    )
                )
            elif self.profile == "zimbra":
                attrs.update(
                    zimbraId=[str(uuid.uuid4())],
                    zimbraAccountStatus=["active"],
                    zimbraMailStatus=["enabled"],
                    zimbraMailDeliveryAddress=[address],
                )
                out.append((f"uid={uid},{people}", [*classes, "zimbraAccount"], attrs))
            elif self.profile == "ad":
                ad: dict[str, list[str]] = {
                    "sAMAccountName": [uid],
                    "userPrincipalName": [address],
                    "uid": [uid],
                    "mail": [address],
                    "proxyAddresses": [f"SMTP:{address}"],
                    "displayName": attrs["cn"],
                    "userAccountControl": [str(0x202)],
                }
                for name, to in (
                    ("sn", "sn"),
                    ("givenName", "givenName"),
                    ("ou", "ou"),
                    ("title", "title"),
                    ("employeeNumber", "employeeID"),
                ):
                    if name in attrs:
                        ad[to] = attrs[name]
                out.append((f"CN={uid},{people}", ["user"], ad))
            else:
                out.append((f"uid={uid},{people}", classes, attrs))
        return out

    # -- what the demo shows -------------------------------------------------------------------

    def show(self, org: str, limit: int = 10) -> None:
        """A few mailboxes of one organisation, read back from the directory."""
        conn = self.server.admin()
        name = "displayName" if self.profile == "ad" else "cn"
        conn.search(self.people_dn, f"(&(ou={org})(uid=*))", attributes=["uid", name, "syncdState"])
        rows = sorted(
            (
                str(e["attributes"]["uid"][0]),
                str((e["attributes"].get(name) or ["-"])[0]),
                str((e["attributes"].get("syncdState") or ["-"])[0]),
            )
            for e in conn.response
            if e.get("type") == "searchResEntry"
        )
        conn.unbind()
        print(f"\nIn the directory now, {org} ({len(rows)} entries; first {limit}):")
        for uid, cn, state in rows[:limit]:
            print(f"  {uid + '@' + DOMAIN:<44} {cn:<28} {state}")

    def look(self) -> str:
        """An ldapsearch command line to look at the result."""
        s = self.server
        if self.profile == "ad":
            return (
                f"  LDAPTLS_CACERT={s.ca_file} ldapsearch -x -H {s.url} -D '{s.admin_dn}' "
                f"-w '{s.admin_password}' \\\n    -b '{s.people_dn}' '(ou=skhcn)' "
                "uid displayName mail proxyAddresses userAccountControl syncdState"
            )
        attributes = {
            "iredmail": "mail uid cn accountStatus enabledService syncdState",
            "zimbra": "uid cn zimbraAccountStatus zimbraMailStatus syncdState",
        }.get(self.profile, "uid cn mail title syncdState")
        return (
            f"  ldapsearch -x -H {s.url} -D '{s.admin_dn}' -w {s.admin_password} \\\n"
            f"    -b '{s.people_dn}' '(ou=skhcn)' {attributes}"
        )

    def apply_hint(self, cfg: Path) -> str:
        s = self.server
        admin = ZIMBRA_ADMIN if self.profile == "zimbra" else s.admin_dn
        return (
            f".venv/bin/syncd -c {cfg} policy apply --admin-dn '{admin}' "
            f"--admin-password-file {self.folder / 'admin.pw'}"
        )

    def stop(self) -> None:
        if self.profile == "ad":
            pid = _running(self.folder / "samba.pid")
            what = "Samba AD DC"
            if pid is not None:
                os.killpg(pid, signal.SIGTERM)  # samba's own children run in its group
        else:
            pid = _running(self.folder / "slapd" / "slapd.pid")
            what = "slapd"
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
        if pid is None:
            print(f"the demo {what} is not running")
            return
        print(f"stopped the demo {what} (pid {pid}); `rm -rf {self.folder}` forgets its data")


def _parse_ldif(ldif: str) -> list[tuple[str, dict[str, list[str]]]]:
    """The simple (one value per line, no continuation) LDIF that sample_data writes."""
    out = []
    for block in ldif.strip().split("\n\n"):
        attrs: dict[str, list[str]] = {}
        dn = ""
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            if key == "dn":
                dn = value
            else:
                attrs.setdefault(key, []).append(value)
        out.append((dn, attrs))
    return out


def _policy(config_path: Path, demo: Demo) -> None:
    """The directory's password policy against the regulation (syncd policy check)."""
    config = load_config(config_path)
    try:
        report = policy_check(
            config.directory, config.domain, bind_password(config.directory, []), config.effective
        )
    except SyncdError as exc:
        print(f"\n(syncd policy check could not run: {exc})")
        return
    print()
    print(report.text(), end="")
    if not report.ok:
        print(f"Write it (as the directory's administrator): {demo.apply_hint(config_path)}")


def _outputs(config: Config, outcome: RunOutcome, files: list[Path], folder: Path) -> list[str]:
    """What people receive from this run, made for real (issue 13): HR's result for one
    roster, the organisation's slips, the leadership's report, an address list."""
    from connectors import addressbook_files, usage_report
    from connectors.hr_files import result_for, write_result

    shown: list[str] = []
    results = folder / "results"
    results.mkdir(exist_ok=True)
    first = next((f for f in files if f.name.startswith("skhcn")), files[0] if files else None)
    if first is not None:
        made = write_result(result_for(config, outcome, first.name), results / first.name)
        shown.append(f"HR's result of {first.name}:".ljust(36) + str(made[-1]))
    slips = sorted((config.paths.outbox / outcome.run_id).glob("*.html"))
    if slips:
        shown.append("Slips (one page per person):".ljust(36) + str(slips[0]))
    now = datetime.now(UTC)
    report = usage_report.make(config, now.year, None, None, folder / "published" / "baocao", now)
    page = next((p for p in report.files if p.name.endswith("-toantinh.html")), None)
    if page is not None:
        shown.append("The yearly report on mailbox use:".ljust(36) + str(page))
    books = addressbook_files.publish(
        config, "skhcn", ["html", "vcf"], folder / "published" / "danhba"
    )
    if books:
        shown.append("An address list (danh bạ):".ljust(36) + str(books[0]))
    return shown


def main() -> int:
    profile = demo_profile()
    demo = Demo(profile, demo_dir(profile))
    if sys.argv[1:] == ["stop"]:
        demo.stop()
        return 0
    configure_logging(json_lines=False, stream=sys.stderr, level=logging.WARNING)
    demo.folder.mkdir(parents=True, exist_ok=True)
    demo.start()
    server = demo.server
    write_private(demo.folder / "bind.pw", server.service_password + "\n")
    write_private(demo.folder / "admin.pw", server.admin_password + "\n")
    inbox = demo.folder / "inbox"
    if not inbox.exists():
        inbox.mkdir()
        for path in sorted((SAMPLE / "rosters").iterdir()):
            shutil.copy2(path, inbox / path.name)
    cfg = demo.folder / "syncd.yaml"
    cfg.write_text(
        CONFIG.format(
            domain=DOMAIN,
            profile=profile,
            url=server.url,
            bind_dn=server.service_dn,
            people=server.people_dn,
            extra=demo.config_extra(),
            orgs=SAMPLE / "orgs.yaml",
        ),
        encoding="utf-8",
    )
    config = load_config(cfg)
    files = inbox_files(config)
    print(
        f"==> reconciling {len(files)} HR roster files from {inbox} into {server.people_dn} "
        f"(directory profile {profile})"
    )
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
    demo.show("skhcn")
    _policy(cfg, demo)
    print("\nWhat people receive (open them in a browser):")
    for line in _outputs(config, outcome, files, demo.folder):
        print(f"  {line}")
    env = "" if profile == "openldap" else f"PROFILE={profile} "
    print(f"""
Look at the result:
{demo.look()}
Plan again (should be 0 actions):   .venv/bin/syncd -c {cfg} plan
Pending decisions:                  .venv/bin/syncd -c {cfg} decisions
The rules and what they will do:    .venv/bin/syncd -c {cfg} rules
                                    .venv/bin/syncd -c {cfg} forecast --days 120
                                    .venv/bin/syncd -c {cfg} plan --now 2027-06-01
Password policy vs the regulation:  .venv/bin/syncd -c {cfg} policy check
Audit log:                          {config.paths.audit_log}
Stop the demo's directory:          {env}.venv/bin/python -m devtools.demo stop""")
    return outcome.exit_code if outcome.exit_code != EXIT_FAILED else 1


if __name__ == "__main__":
    sys.exit(main())
