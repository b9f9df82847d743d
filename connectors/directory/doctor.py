"""``syncd doctor``: does the directory give syncd what it needs? Asked of the directory itself.

``config validate`` reads files only; a directory without syncd's schema, with slapd's default
size limit, without ppolicy or with an ACL hiding entries fails later and worse (588
``undefinedAttributeType`` on a first run, a read aborted at entry 500, locks slapd does not
enforce, people re-issued a uid they already hold). The doctor binds as the service DN, as
syncd does, and checks each of these by asking or by trying, and names the fix of each
finding: the ``syncd directory init`` step, or the part of ``config/ldap/acl.ldif``.

Checks, in order (a check that needs an earlier one is *skipped* when that one failed):

- **bind**: the URL answers and the service DN binds with the configured secret.
- **ppolicy**: the bind asks for the password-policy control; slapd answers with it only when
  the ppolicy overlay runs on the database holding the service DN (read-only: no cn=config).
- **base**: the managed base exists and the service DN reads it.
- **schema**: every attribute type and object class the profile reads and writes is in
  ``cn=Subschema`` (syncd's own from syncd-schema.ldif; the standard ones).
- **policy**: a password-policy entry the service DN can read (``cn=default,ou=policies,…``,
  or the only one) has ``pwdLockout: TRUE`` and no ``pwdLockoutDuration``. Which entry is the
  overlay's default is in cn=config, which the service DN must not read: the lockout probe
  below is what proves the default policy locks.
- **policy-drift**: the password policy against the regulation's (``syncd policy check``:
  length, maximum age, the change at first login; connectors/directory/policy.py); a
  difference is a finding naming ``syncd policy apply``.
- **visibility**: one paged read of the whole base, as syncd reads it. An error (a size limit
  the data already crosses) is a finding. An entry with ``hasSubordinates: TRUE`` none of whose
  children are visible has children an ACL hides. With ``--admin-url`` (root over ldapi, as
  ``directory init``) the service DN's view is compared entry by entry with root's.
  **What cannot be seen without it**: an entry hidden while a sibling stays visible, or hidden
  with its whole branch when the branch's parent is hidden too. ``directory init``'s rules give
  the service DN the whole base, so only a site rule placed before them can hide anything.
- **indexes**: the equality indexes syncd's searches need (``setup.required_indexes``: the
  profile's own attributes, ``entryCSN`` for the delta read) in ``olcDbIndex`` of the database
  holding the base, read from cn=config with ``--admin-url``; each missing one is named with
  the ldapmodify that adds it. Without ``--admin-url`` they are **not checked** (the service
  DN must not read cn=config): skipped, saying how to check them. Active Directory: none.
- **zimbra** (zimbra profile only): ``directory.zimbra.mail_host`` is set, its class of service
  (if any) is found, and no account syncd manages lacks ``zimbraMailHost`` or
  ``zimbraMailTransport`` (an account without them gets no mail and cannot log in).
- **write** (skipped with ``--read-only``): a probe entry ``uid=syncd-doctor-<random>`` is
  added under the base (``syncdManaged: FALSE``, so a concurrent run leaves it alone), given a
  random password by the password-modify operation, changed, and deleted at the end.
- **lastbind**: the probe binds; ``pwdLastSuccess`` (``olcLastBind``) and ``authTimestamp``
  (lastbind overlay) must appear on it (read-only: on the service DN's own entry).
- **lockout**: the probe is locked as syncd locks (``pwdAccountLockedTime``, here dated 2000:
  a lock must never expire) and must no longer bind.
- **size-limit**: 501 small entries (``organizationalRole``, which no syncd read matches) under
  a probe branch, read back with syncd's paged search: slapd's default limit (500) stops it.
  A limit above both 500 and the directory's present size is not seen (the visibility read
  finds it once the data crosses it); ``directory init`` sets the service DN unlimited.

The probes are deleted whatever happens; one left behind is a finding naming it, and so are
probes an interrupted doctor left (``leftovers``, seen by the visibility read).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ldap3 import BASE, MODIFY_REPLACE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import escape_rdn

from connectors.config import DirectoryConfig
from connectors.directory import open_directory
from connectors.directory import profile as profile_class
from connectors.directory.openldap import PAGED_RESULTS, split_rdn
from connectors.directory.setup import (
    Change,
    access_rules,
    admin_connection,
    check_dns,
    class_may,
    definition_name,
    find_database,
    index_mods,
    is_under,
    limit_rule,
    norm_dn,
    required_indexes,
    schema_entry,
)
from syncd.errors import SyncdError
from syncd.ports import DirectoryError
from syncd.regulation import Profile
from syncd.regulation.profile import Quota

PPOLICY_CONTROL = "1.3.6.1.4.1.42.2.27.8.5.1"
CHANGE_AFTER_RESET = b"\x81\x01\x02"
LONG_AGO = "20000101000000Z"
SLAPD_DEFAULT_SIZE_LIMIT = 500
PROBE = "syncd-doctor-"
# kept by other overlays or the core: their absence is the ppolicy, lastbind or slapd's matter
OPERATIONAL = {"pwdlastsuccess", "authtimestamp", "pwdchangedtime", "createtimestamp", "pwdreset"}
INIT = "syncd directory init"
LOCKOUT_ATTRIBUTES = ("pwdLockout", "pwdLockoutDuration")

Status = Literal["ok", "finding", "skipped"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class Report:
    url: str
    bind_dn: str
    base_dn: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == "finding" for c in self.checks)

    def findings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "finding"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "bind_dn": self.bind_dn,
            "base_dn": self.base_dn,
            "ok": self.ok,
            "findings": len(self.findings()),
            "checks": [asdict(c) for c in self.checks],
        }

    def text(self) -> str:
        out = [f"syncd doctor: {self.url} as {self.bind_dn}, base {self.base_dn}"]
        label = {"ok": "ok", "finding": "FINDING", "skipped": "skipped"}
        for c in self.checks:
            out.append(f"  {label[c.status]:<8} {c.name:<11} {c.detail}")
            if c.fix:
                out.append(f"  {'':<8} {'':<11} fix: {c.fix}")
        n = len(self.findings())
        # a check that did not run is not a pass (the indexes without --admin-url, the probes
        # with --read-only): the last line says so rather than "all passed"
        skipped = [c.name for c in self.checks if c.status == "skipped"]
        if n:
            out.append(f"{n} finding{'s' if n > 1 else ''}: fix, then run syncd doctor again.")
        elif skipped:
            out.append(f"No findings; not checked: {', '.join(skipped)} (see above).")
        else:
            out.append("All checks passed.")
        return "\n".join(out) + "\n"


def _entries(conn: Connection) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for item in conn.response or []:
        if item.get("type") == "searchResEntry":
            yield str(item["dn"]), item["attributes"]


MIB = 1024 * 1024


def _values(attrs: Mapping[str, Any], name: str) -> list[str]:
    for key, value in attrs.items():
        if key.lower() == name.lower():
            return [str(v) for v in (value if isinstance(value, list) else [value])]
    return []


def paged(
    conn: Connection, base: str, flt: str, attributes: list[str], page_size: int
) -> tuple[list[tuple[str, Mapping[str, Any]]], str | None]:
    """A paged subtree search as syncd's read does it: the entries, and what cut it short."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    cookie: bytes | None = None
    while True:
        conn.search(
            base,
            flt,
            search_scope=SUBTREE,
            attributes=attributes,
            paged_size=page_size,
            paged_cookie=cookie,
        )
        out += list(_entries(conn))
        result = conn.result
        if result.get("result") != 0:
            return out, f"{result.get('description')} ({result.get('result')})"
        control = (result.get("controls") or {}).get(PAGED_RESULTS)
        if control is None:
            return out, "the server ignored the paging control"
        cookie = control["value"]["cookie"]
        if not cookie:
            return out, None


class Doctor:
    """The checks against one directory, bound as the configured service DN."""

    def __init__(
        self,
        cfg: DirectoryConfig,
        password: str,
        domain: str,
        *,
        write: bool = True,
        admin_url: str | None = None,
        secret_source: str = "the configured secret",  # noqa: S107 - a description
        regulation: Profile | None = None,
    ) -> None:
        self.cfg = cfg
        self.regulation = regulation
        self.password = password
        self.domain = domain
        self.write = write
        self.admin_url = admin_url
        self.secret_source = secret_source
        self.report = Report(cfg.url, cfg.bind_dn, cfg.base_dn)
        self.conn: Connection | None = None
        self.suffix = ""
        self.schema_ok = False
        self.ppolicy = False
        self.must_change = False
        self.subschema = "cn=Subschema"
        tag = secrets.token_hex(4)
        self.probe_dn = f"uid={PROBE}{tag},{cfg.base_dn}"
        self.probe_branch = f"ou={PROBE}{tag},{cfg.base_dn}"
        self.probe_password = secrets.token_urlsafe(18)
        self.leftovers: list[str] = []

    # -- plumbing -------------------------------------------------------------------------------

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.report.checks.append(Check(name, status, detail, fix))

    def skip(self, names: list[str], why: str) -> None:
        for name in names:
            self.add(name, "skipped", why)

    def _connect(self, dn: str, password: str) -> tuple[Connection | None, str, bool]:
        """A connection bound as ``dn`` (TLS as syncd connects); (conn, error, ppolicy)."""
        directory: Any = open_directory(self.cfg, password, self.domain)
        conn = Connection(
            directory.server,
            dn,
            password,
            receive_timeout=int(self.cfg.timeout),
            raise_exceptions=False,
        )
        if self.cfg.start_tls:
            conn.open()
            if not conn.start_tls():
                return None, f"StartTLS refused: {conn.result.get('description')}", False
        if not conn.bind(controls=[(PPOLICY_CONTROL, False, None)]):
            r = conn.result
            return None, f"{r.get('description')} ({r.get('result')})", False
        control = (conn.result.get("controls") or {}).get(PPOLICY_CONTROL)
        # the response's error [1] ENUMERATED 2: changeAfterReset (draft-behera-ldap-password-
        # policy); ldap3 leaves the value undecoded
        self.must_change = control is not None and CHANGE_AFTER_RESET in (control["value"] or b"")
        return conn, "", control is not None

    def _read(self, dn: str, attributes: list[str]) -> Mapping[str, Any] | None:
        assert self.conn is not None
        self.conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=attributes)
        found = list(_entries(self.conn))
        return found[0][1] if found else None

    def _failed(self, what: str) -> str:
        assert self.conn is not None
        r = self.conn.result
        return (
            f"{what}: {r.get('description')} ({r.get('result')}) {r.get('message') or ''}".strip()
        )

    # -- the checks -----------------------------------------------------------------------------

    def run(self) -> Report:
        later = [
            "ppolicy",
            "base",
            "schema",
            "policy",
            "policy-drift",
            "visibility",
            "indexes",
            "hand-edits",
            *(["zimbra"] if self.cfg.profile == "zimbra" else []),
            *(["quota"] if self._quota_rule() else []),
        ]
        probes = ["write", "lastbind", "lockout", "size-limit"]
        try:
            conn, error, self.ppolicy = self._connect(self.cfg.bind_dn, self.password)
        except (LDAPException, OSError) as exc:
            self.add(
                "bind",
                "finding",
                f"cannot reach {self.cfg.url}: {exc}",
                "is slapd running and listening there? (directory.url)",
            )
            self.skip(later + probes, "needs a bind")
            return self.report
        except DirectoryError as exc:  # the profile refused the URL (plain ldap:// to a remote)
            self.add("bind", "finding", str(exc), "directory.url, start_tls or ca_file")
            self.skip(later + probes, "needs a bind")
            return self.report
        if conn is None:
            self.add(
                "bind",
                "finding",
                f"{self.cfg.bind_dn} cannot bind with {self.secret_source}: {error}",
                f"{INIT} creates the service DN and sets its password from the configured "
                "secret (or: ldappasswd -Y EXTERNAL -H ldapi:/// -S '<bind_dn>')",
            )
            self.skip(later + probes, "needs a bind")
            return self.report
        self.conn = conn
        try:
            if self.must_change:
                self.add(
                    "bind",
                    "finding",
                    f"{self.cfg.bind_dn} binds, but its password is marked to be changed "
                    "(pwdReset): slapd lets it do nothing else",
                    f"delete pwdReset from {self.cfg.bind_dn} ({INIT} does)",
                )
                self.skip(later + probes, "needs a usable bind")
                return self.report
            self.add("bind", "ok", f"bound as {self.cfg.bind_dn}")
            self.check_ppolicy()
            if not self.check_base():
                self.skip(later[2:] + probes, "needs the base")
                return self.report
            self.check_schema()
            self.check_policy()
            self.check_policy_drift()
            self.check_visibility()
            self.check_indexes()
            self.check_hand_edits()
            if self.cfg.profile == "zimbra":
                self.check_zimbra()
            if self._quota_rule():
                self.check_quota()
            if not self.write:
                self.check_lastbind_readonly()
                self.skip(["write", "lockout", "size-limit"], "--read-only")
            else:
                self.check_probes()
        except LDAPException as exc:  # a DN ldap3 refuses to send, the connection cut
            self.add(
                "error",
                "finding",
                f"the checks stopped: {exc}",
                "directory.base_dn and bind_dn as plain DNs (no spaces after commas); a "
                "directory that stays up",
            )
        finally:
            self.cleanup()
            with contextlib.suppress(LDAPException):
                conn.unbind()
        return self.report

    def check_ppolicy(self) -> None:
        if self.ppolicy:
            self.add(
                "ppolicy", "ok", "the password-policy overlay answers on the service DN's bind"
            )
        else:
            self.add(
                "ppolicy",
                "finding",
                "no password-policy overlay on the database holding the service DN: slapd "
                "would not enforce syncd's locks (pwdAccountLockedTime) nor flag one-time "
                "passwords",
                f"{INIT} (the ppolicy module and olcOverlay=ppolicy; config/ldap/acl.ldif)",
            )

    def check_base(self) -> bool:
        assert self.conn is not None
        base = self._read(self.cfg.base_dn, ["objectClass"])
        if base is not None:
            self.add("base", "ok", f"{self.cfg.base_dn} exists")
        else:
            missing = self.conn.result.get("result") == 32
            self.add(
                "base",
                "finding",
                f"{self.cfg.base_dn} "
                + ("does not exist" if missing else self._failed("cannot be read")),
                f"{INIT} creates it"
                if missing
                else f"an access rule letting the service DN write it ({INIT})",
            )
            return False
        root = self._read("", ["namingContexts", "subschemaSubentry"]) or {}
        contexts = [c for c in _values(root, "namingContexts") if is_under(self.cfg.base_dn, c)]
        self.suffix = max(contexts, key=lambda c: len(norm_dn(c)), default="")
        self.subschema = (_values(root, "subschemaSubentry") or ["cn=Subschema"])[0]
        return True

    def _required(self) -> tuple[dict[str, str], dict[str, str]]:
        """(attribute types, object classes) the profile reads and writes, by lower-case name."""
        directory: Any = open_directory(self.cfg, self.password, self.domain)
        classes_extra, delivery = directory.delivering()
        attrs = [*directory.ATTRIBUTES, *(a for v in directory.WRITES.values() for a in v)]
        attrs += list(delivery)
        classes = ["inetOrgPerson", "syncdAccount", *classes_extra]
        return (
            {a.lower(): a for a in attrs if a.lower() not in OPERATIONAL},
            {c.lower(): c for c in classes},
        )

    def check_schema(self) -> None:
        assert self.conn is not None
        found = self._read(self.subschema, ["attributeTypes", "objectClasses"])
        if found is None:
            self.add("schema", "finding", self._failed(f"cannot read {self.subschema}"))
            return
        have_attrs = {definition_name(d) for d in _values(found, "attributeTypes")}
        classes = {definition_name(d): d for d in _values(found, "objectClasses")}
        have_classes = set(classes)
        want_attrs, want_classes = self._required()
        # every type of syncd's schema file, and syncdAccount allowing each (an older schema
        # lacks the types added since, or has them without its class naming them)
        # (AD's form, syncd-schema-ad.ldif, has only the types its profile writes)
        _, shipped = schema_entry() if self.cfg.profile != "ad" else ("", {})
        written = {
            definition_name(d): m.group(1)
            for d in shipped.get("olcAttributeTypes", [])
            if (m := re.search(r"NAME\s+'([^']+)'", d))
        }
        for name, as_written in written.items():
            want_attrs.setdefault(name, as_written)
        missing = [want_attrs[a] for a in sorted(want_attrs.keys() - have_attrs)]
        missing += [want_classes[c] for c in sorted(want_classes.keys() - have_classes)]
        for definition in shipped.get("olcObjectClasses", []):
            loaded = classes.get(definition_name(definition))
            lacking = class_may(definition) - class_may(loaded) if loaded else set()
            missing += [f"syncdAccount MAY {written.get(a, a)}" for a in sorted(lacking)]
        if not missing:
            self.schema_ok = True
            self.add("schema", "ok", f"{len(want_attrs)} attribute types and the classes loaded")
            return
        ours = [m for m in missing if m.startswith("syncd")]
        fix = []
        if ours:
            fix.append(
                f"{INIT} loads syncd's schema (or: ldapadd -Y EXTERNAL -H ldapi:/// -f "
                "config/ldap/syncd-schema.ldif)"
            )
        if len(ours) < len(missing):
            fix.append("load the cosine and inetorgperson schemas Debian ships (/etc/ldap/schema)")
        self.add(
            "schema",
            "finding",
            f"not in {self.subschema}: {', '.join(missing)}; every create or state change "
            "would fail with undefinedAttributeType",
            "; ".join(fix),
        )

    def check_policy(self) -> None:
        assert self.conn is not None
        where = self.suffix or self.cfg.base_dn
        self.conn.search(
            where,
            "(objectClass=pwdPolicy)",
            search_scope=SUBTREE,
            attributes=["pwdLockout", "pwdLockoutDuration"],
        )
        found = {norm_dn(dn): (dn, a) for dn, a in _entries(self.conn)}
        default = f"cn=default,ou=policies,{where}"
        if not found:
            self.add(
                "policy",
                "finding",
                f"no password policy visible to the service DN (expected {default})",
                f"{INIT} adds {default} with pwdLockout: TRUE and the access rule to read it",
            )
            return
        dn, attrs = found.get(norm_dn(default)) or next(iter(found.values()))
        lockout = [v.upper() for v in _values(attrs, "pwdLockout")]
        duration = [v for v in _values(attrs, "pwdLockoutDuration") if v != "0"]
        if lockout != ["TRUE"]:
            self.add(
                "policy",
                "finding",
                f"{dn}: pwdLockout is not TRUE: slapd ignores pwdAccountLockedTime, so syncd's "
                "locks and revocations would not stop a login",
                f"pwdLockout: TRUE on {dn} ({INIT} sets it)",
            )
        elif duration:
            self.add(
                "policy",
                "finding",
                f"{dn}: pwdLockoutDuration {duration[0]}: a lock would end by itself",
                f"delete pwdLockoutDuration from {dn}",
            )
        else:
            self.add("policy", "ok", f"{dn}: pwdLockout TRUE, no lockout duration")

    def check_policy_drift(self) -> None:
        """The policy against the regulation, read as the service DN (syncd policy check)."""
        from connectors.directory.policy import OPENLDAP_PROFILES, compare

        assert self.conn is not None
        if self.regulation is None or self.cfg.profile not in (*OPENLDAP_PROFILES, "zimbra"):
            self.add("policy-drift", "skipped", "no regulation, or a profile syncd policy skips")
            return
        try:
            report = compare(self.conn, self.cfg, self.regulation)
        except DirectoryError as exc:
            self.add("policy-drift", "finding", str(exc), "syncd policy check says more")
            return
        # the lockout lines are the "policy" check's (one finding for one cause)
        drift = [x for x in report.drift if x.attribute not in LOCKOUT_ATTRIBUTES]
        if not drift:
            self.add("policy-drift", "ok", f"{report.where} is in line with {self.regulation.id}")
            return
        self.add(
            "policy-drift",
            "finding",
            f"{report.where} differs from {self.regulation.id}: "
            + "; ".join(
                f"{x.attribute} {x.have or '(none)'}, asked {x.want} [{x.article}]" for x in drift
            ),
            "syncd policy apply (as root on the slapd host: --admin-url ldapi:///); "
            "syncd policy check shows each rule",
        )

    def check_hand_edits(self) -> None:
        """Accounts whose wire no longer enforces the state syncd recorded (a lock undone in
        ADUC, ``pwdAccountLockedTime`` deleted, a kept address removed): read as a run reads
        them (syncd.plan.drift), so the doctor says what the next run will put back."""
        from datetime import UTC, datetime

        from syncd.plan.drift import missing_aliases, on_the_wire, primary_missing
        from syncd.ports import Scope

        directory: Any = open_directory(self.cfg, self.password, self.domain)
        try:
            accounts = directory.read(Scope())
        except DirectoryError as exc:
            self.add("hand-edits", "skipped", f"the accounts could not be read: {exc}")
            return
        finally:
            directory.close()
        now = datetime.now(UTC)
        locked = self.regulation.lifecycle.locked_receives_mail if self.regulation else None
        found: list[str] = []
        for acc in accounts:
            if not acc.managed:
                continue
            what = on_the_wire(acc, locked) if locked is not None else list(acc.drift)
            what += [f"old address {m} removed" for m in missing_aliases(acc, now)]
            what += primary_missing(acc, self.domain)
            if what:
                found.append(f"{acc.uid} ({acc.state.value}): {'; '.join(what)}")
        if not found:
            self.add("hand-edits", "ok", f"{len(accounts)} accounts as syncd recorded them")
            return
        self.add(
            "hand-edits",
            "finding",
            f"{len(found)} account(s) changed outside syncd, e.g. " + " | ".join(found[:3]),
            "a lock or delivery opened, or an old address removed: the next run puts syncd's "
            "recorded state back (syncd plan --latest shows it); to open a mailbox on purpose, "
            "syncd restore (audited). A lock on an active account (pwdAccountLockedTime) is "
            "never undone by syncd: ask who set it and why (or whether failed binds did), then "
            "record it with syncd lock, or delete it in the directory. A primary "
            "address missing is never put back by syncd: restore it (ldapmodify, add "
            "mail: <uid>@<domain>), or move the person to another address with a transfer",
        )

    def check_indexes(self) -> None:
        """``olcDbIndex`` against what syncd's searches need; only with root's view of
        cn=config, and never "ok" without it."""
        wanted = required_indexes(self.cfg)
        if not wanted:
            self.add("indexes", "skipped", f"the {self.cfg.profile} profile needs no index")
            return
        names = ", ".join(wanted)
        if not self.admin_url:
            self.add(
                "indexes",
                "skipped",
                "not checked: the service DN cannot read cn=config. syncd's searches need "
                f"equality indexes on {names}; without them each scans the whole database",
                "run syncd doctor --admin-url ldapi:/// as root on the slapd host, or look: "
                "ldapsearch -Q -Y EXTERNAL -H ldapi:/// -b cn=config "
                f"'(olcSuffix={self.suffix or self.cfg.base_dn})' olcDbIndex",
            )
            return
        try:
            admin = admin_connection(self.admin_url)
        except DirectoryError as exc:
            self.add("indexes", "finding", f"cn=config could not be read: {exc}")
            return
        try:
            db = find_database(admin, self.cfg.base_dn)
        except SyncdError as exc:
            self.add("indexes", "finding", f"cn=config: {exc}")
            return
        finally:
            admin.unbind()
        values = db.attributes.get("olcDbIndex", [])
        mods = index_mods(values, wanted)
        if not mods:
            self.add("indexes", "ok", f"{db.dn} has equality indexes on {names}")
            return
        missing = [f"{a} ({wanted[a]})" for a in wanted if index_mods(values, [a])]
        ldif = Change("", db.dn, "modify", mods=mods).ldif().split("\n", 1)[1]
        self.add(
            "indexes",
            "finding",
            f"{db.dn} has no equality index on {'; '.join(missing)}: each such search scans "
            "the whole database (slapd logs 'not indexed'); results stay right, only slower",
            f"{INIT} adds them, or as root on the slapd host: printf "
            + repr(ldif).replace('"', "'")
            + " | ldapmodify -Y EXTERNAL -H ldapi:///",
        )

    def check_zimbra(self) -> None:
        """Zimbra routes and serves an account only with ``zimbraMailHost`` and
        ``zimbraMailTransport``: the setting new accounts get them from, its class of service,
        and the accounts syncd manages that lack them (made before the setting, or by hand)."""
        assert self.conn is not None
        routing = self.cfg.zimbra
        problems: list[str] = []
        fixes: list[str] = []
        if routing.mail_host is None:
            problems.append(
                "directory.zimbra.mail_host is not set: accounts syncd creates get no "
                "zimbraMailHost nor zimbraMailTransport"
            )
            fixes.append(
                "set directory.zimbra.mail_host to the mailbox server's zimbraServiceHostname "
                "(zmprov gas mailbox lists them)"
            )
        if routing.cos is not None:
            directory: Any = open_directory(self.cfg, self.password, self.domain)
            try:
                directory.cos_id()
            except DirectoryError as exc:
                problems.append(str(exc))
                fixes.append("directory.zimbra.cos: a class of service zmprov gac lists")
            finally:
                directory.close()
        seen, error = paged(
            self.conn,
            self.cfg.base_dn,
            "(&(objectClass=inetOrgPerson)(objectClass=syncdAccount)(!(syncdManaged=FALSE))"
            "(|(!(zimbraMailHost=*))(!(zimbraMailTransport=*))))",
            ["uid", "mail", "syncdState"],
            self.cfg.page_size,
        )
        if error is not None:
            problems.append(f"the accounts could not be read: {error}")
        if seen:
            shown = [
                f"{(_values(a, 'mail') or _values(a, 'uid') or [dn])[0]} "
                f"({(_values(a, 'syncdState') or ['?'])[0]})"
                for dn, a in seen[:5]
            ]
            problems.append(
                f"{len(seen)} account(s) syncd manages lack zimbraMailHost or "
                "zimbraMailTransport, so Zimbra neither delivers to them nor logs them in: "
                + ", ".join(shown)
            )
            host = routing.mail_host or "<mailbox server>"
            fixes.append(
                f"for each: zmprov ma <address> zimbraMailHost {host} (Zimbra sets "
                "zimbraMailTransport with it), then zmprov flushCache account <address>"
            )
        if problems:
            self.add("zimbra", "finding", "; ".join(problems), "; ".join(fixes))
            return
        cos = f", class of service {routing.cos}" if routing.cos else ""
        self.add(
            "zimbra",
            "ok",
            f"new accounts get zimbraMailHost {routing.mail_host}, zimbraMailTransport "
            f"lmtp:{routing.mail_host}:{routing.lmtp_port}{cos}; every account syncd manages "
            "has both",
        )

    def _quota_rule(self) -> tuple[str, Quota] | None:
        """The profile's quota attribute and the regulation's least quota, where both are
        (Hưng Yên Đ8.1b with iredmail or zimbra)."""
        attribute = getattr(profile_class(self.cfg.profile), "QUOTA_ATTRIBUTE", None)
        rule = self.regulation.mailbox.quota if self.regulation else None
        return (attribute, rule) if attribute and rule else None

    def check_quota(self) -> None:
        """Mailboxes syncd manages whose quota is below the regulation's least: syncd writes
        the configured quota on the mailboxes it creates, never on those made before (by hand,
        by an older configuration, adopted), so the doctor lists them."""
        assert self.conn is not None
        found = self._quota_rule()
        assert found is not None
        attribute, rule = found
        seen, error = paged(
            self.conn,
            self.cfg.base_dn,
            "(&(objectClass=syncdAccount)(!(syncdManaged=FALSE))(!(syncdState=revoked)))",
            ["uid", "mail", "syncdKind", attribute],
            self.cfg.page_size,
        )
        if error is not None:
            self.add("quota", "finding", f"the accounts could not be read: {error}", "")
            return
        low: list[str] = []
        for dn, attrs in seen:
            kind = (_values(attrs, "syncdKind") or ["person"])[0]
            least = rule.organisation_min_mb if kind == "organisation" else rule.personal_min_mb
            given = _values(attrs, attribute)
            mib = int(given[0]) // MIB if given and given[0].lstrip("-").isdigit() else None
            # 0 is "no limit" to Dovecot and Zimbra; no value: the server's default applies
            if mib is None or (mib != 0 and mib < least):
                name = (_values(attrs, "mail") or _values(attrs, "uid") or [dn])[0]
                low.append(f"{name} ({'none' if mib is None else f'{mib} MiB'} < {least} MiB)")
        if low:
            self.add(
                "quota",
                "finding",
                f"{len(low)} mailbox(es) syncd manages have less than the least quota "
                f"{rule.article} asks: " + ", ".join(low[:5]) + (", …" if len(low) > 5 else ""),
                f"raise each {attribute} to at least the least quota in the mail server's tool "
                "(syncd sets the quota of the mailboxes it creates only)",
            )
            return
        self.add(
            "quota",
            "ok",
            f"every mailbox syncd manages has at least {rule.personal_min_mb} MiB "
            f"({rule.organisation_min_mb} MiB an organisation's) in {attribute} [{rule.article}]",
        )

    def check_visibility(self) -> None:
        assert self.conn is not None
        seen, error = paged(
            self.conn,
            self.cfg.base_dn,
            "(objectClass=*)",
            ["hasSubordinates", "entryCSN"],
            self.cfg.page_size,
        )
        if error is not None:
            self.add(
                "visibility",
                "finding",
                f"reading {self.cfg.base_dn} as syncd does stopped after {len(seen)} entries: "
                f"{error}; every run would abort",
                f"an unlimited size limit for the service DN: {INIT} adds olcLimits: "
                f"{limit_rule(self.cfg)}",
            )
            return
        dns = {norm_dn(dn) for dn, _ in seen}
        stale = [dn for dn, _ in seen if split_rdn(dn)[0].partition("=")[2].startswith(PROBE)]
        if stale:
            self.add(
                "leftovers",
                "finding",
                f"{len(stale)} probe entries of an interrupted syncd doctor, e.g. {stale[0]}",
                "delete them (ldapdelete -r) once no doctor runs",
            )
        parents = {norm_dn(split_rdn(dn)[1]) for dn, _ in seen}
        hiding = [
            dn
            for dn, a in seen
            if [v.upper() for v in _values(a, "hasSubordinates")] == ["TRUE"]
            and norm_dn(dn) not in parents
        ]
        hidden: list[str] = []
        if self.admin_url:
            hidden = self._hidden_from_service(dns)
        if hiding or hidden:
            where = hidden[:5] if hidden else hiding[:5]
            what = (
                (
                    f"{len(hidden)} entries root sees are hidden from the service DN, e.g. "
                    if len(hidden) > 1
                    else "1 entry root sees is hidden from the service DN: "
                )
                if hidden
                else "entries whose children are all hidden from the service DN: "
            )
            self.add(
                "visibility",
                "finding",
                what + "; ".join(where) + ": syncd would re-issue their uids and never revoke them",
                f"remove the access rule hiding them, or put syncd's before it ({INIT}: "
                f"{access_rules(self.cfg, self.suffix or self.cfg.base_dn)[1]})",
            )
            return
        blind = [dn for dn, a in seen if not _values(a, "entryCSN")]
        if blind:
            self.add(
                "entryCSN",
                "finding",
                f"{len(blind)} entries' entryCSN is hidden from the service DN, e.g. "
                f"{'; '.join(blind[:3])}: the delta read cannot see their changes, so every "
                "run reads the whole directory",
                f"let the service DN read entryCSN: put syncd's access rule before the one "
                f"hiding it ({INIT}: {access_rules(self.cfg, self.suffix or self.cfg.base_dn)[1]})",
            )
        compared = " (compared with root's view)" if self.admin_url else ""
        self.add(
            "visibility",
            "ok",
            f"{len(seen)} entr{'ies' if len(seen) != 1 else 'y'} read in full, none with "
            f"hidden children{compared}",
        )

    def _hidden_from_service(self, visible: set[str]) -> list[str]:
        admin = admin_connection(self.admin_url or "")
        try:
            everything, _ = paged(
                admin, self.cfg.base_dn, "(objectClass=*)", ["1.1"], self.cfg.page_size
            )
        finally:
            admin.unbind()
        return [dn for dn, _ in everything if norm_dn(dn) not in visible]

    def check_lastbind_readonly(self) -> None:
        found = self._read(self.cfg.bind_dn, ["pwdLastSuccess", "authTimestamp"])
        if found is None:
            self.add("lastbind", "skipped", "the service DN cannot read its own entry")
            return
        self._lastbind(found, self.cfg.bind_dn)

    def _lastbind(self, attrs: Mapping[str, Any], dn: str) -> None:
        missing = [a for a in ("pwdLastSuccess", "authTimestamp") if not _values(attrs, a)]
        fixes = {
            "pwdLastSuccess": "olcLastBind: TRUE on the database",
            "authTimestamp": "the lastbind overlay (kept across a password change)",
        }
        if not missing:
            self.add(
                "lastbind", "ok", f"a login of {dn} is recorded (pwdLastSuccess, authTimestamp)"
            )
            return
        self.add(
            "lastbind",
            "finding",
            f"a login of {dn} left no {' nor '.join(missing)}: the inactivity clocks "
            "(lock after so long without a login) would not see logins",
            f"{INIT} ({'; '.join(fixes[m] for m in missing)})",
        )

    def check_probes(self) -> None:
        assert self.conn is not None
        conn = self.conn
        uid = split_rdn(self.probe_dn)[0].partition("=")[2]
        classes = ["inetOrgPerson", *(["syncdAccount"] if self.schema_ok else [])]
        attrs: dict[str, Any] = {"cn": uid, "sn": "syncd doctor probe", "uid": uid}
        if self.schema_ok:
            attrs["syncdManaged"] = "FALSE"
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("adding", lambda: conn.add(self.probe_dn, classes, attrs)),
            (
                "setting a password on",
                lambda: conn.extend.standard.modify_password(
                    self.probe_dn, None, self.probe_password
                ),
            ),
            (
                "modifying",
                lambda: conn.modify(
                    self.probe_dn, {"description": [(MODIFY_REPLACE, ["syncd doctor"])]}
                ),
            ),
        ]
        for i, (what, step) in enumerate(steps):
            ok = step()
            if i == 0 and ok:
                self.leftovers.append(self.probe_dn)
            if not ok:
                self.add(
                    "write",
                    "finding",
                    self._failed(f"{what} {self.probe_dn}"),
                    f"an access rule giving the service DN write on {self.cfg.base_dn} "
                    f"({INIT}: {access_rules(self.cfg, self.suffix or self.cfg.base_dn)[1]})",
                )
                self.skip(["lastbind", "lockout", "size-limit"], "needs the write probe")
                return
        self.add("write", "ok", f"added, changed (password too) and will delete {self.probe_dn}")
        self.check_lastbind()
        self.check_lockout()
        self.check_size_limit()

    def check_lastbind(self) -> None:
        probe, error, _ = self._connect(self.probe_dn, self.probe_password)
        if probe is None:
            self.add("lastbind", "finding", f"the probe cannot bind with its password: {error}")
            return
        probe.unbind()
        found = self._read(self.probe_dn, ["pwdLastSuccess", "authTimestamp"]) or {}
        self._lastbind(found, "the probe")

    def check_lockout(self) -> None:
        assert self.conn is not None
        if not self.ppolicy:
            self.add("lockout", "skipped", "needs the password-policy overlay")
            return
        # a real timestamp, as syncd writes, long past: it holds only if locks never expire
        # (no pwdLockoutDuration), and no clock on either side is involved
        if not self.conn.modify(
            self.probe_dn, {"pwdAccountLockedTime": [(MODIFY_REPLACE, [LONG_AGO])]}
        ):
            self.add("lockout", "finding", self._failed(f"locking {self.probe_dn}"))
            return
        probe, _, _ = self._connect(self.probe_dn, self.probe_password)
        if probe is None:
            self.add("lockout", "ok", "a locked account cannot log in")
            return
        probe.unbind()
        self.add(
            "lockout",
            "finding",
            "a locked account still logs in: the default policy does not enforce "
            "pwdAccountLockedTime, or lets a lock expire (pwdLockout FALSE, a "
            "pwdLockoutDuration, or no default policy)",
            f"{INIT} (olcPPolicyDefault and cn=default,ou=policies with pwdLockout: TRUE)",
        )

    def check_size_limit(self) -> None:
        assert self.conn is not None
        conn = self.conn
        count = SLAPD_DEFAULT_SIZE_LIMIT + 1
        name = split_rdn(self.probe_branch)[0].partition("=")[2]
        if not conn.add(self.probe_branch, ["organizationalUnit"], {"ou": name}):
            self.add("size-limit", "finding", self._failed(f"adding {self.probe_branch}"))
            return
        self.leftovers.append(self.probe_branch)
        for n in range(count):
            dn = f"cn={escape_rdn(str(n))},{self.probe_branch}"
            if not conn.add(dn, ["organizationalRole"], {"cn": str(n)}):
                self.add("size-limit", "finding", self._failed(f"adding {dn}"))
                return
            self.leftovers.insert(0, dn)
        seen, error = paged(
            conn, self.probe_branch, "(objectClass=organizationalRole)", ["1.1"], self.cfg.page_size
        )
        if error is None and len(seen) == count:
            self.add("size-limit", "ok", f"a paged read returned all {count} probe entries")
            return
        self.add(
            "size-limit",
            "finding",
            f"a paged read of {count} probe entries stopped after {len(seen)}: "
            f"{error or 'entries missing'}; syncd's read aborts once the directory holds "
            f"more than that",
            f"{INIT} adds olcLimits: {limit_rule(self.cfg)} (config/ldap/acl.ldif)",
        )

    def cleanup(self) -> None:
        """Delete every probe entry (children first); a survivor is a finding."""
        if self.conn is None or not self.leftovers:
            return
        left = []
        for dn in self.leftovers:
            try:
                if not self.conn.delete(dn) and self.conn.result.get("result") != 32:
                    left.append(dn)
            except LDAPException:
                left.append(dn)
        self.leftovers = []
        if left:
            self.add(
                "cleanup",
                "finding",
                f"{len(left)} probe entries could not be deleted, e.g. {left[0]}",
                "delete them (ldapdelete -r) as an administrator",
            )


def run_doctor(
    cfg: DirectoryConfig,
    password: str,
    domain: str,
    *,
    write: bool = True,
    admin_url: str | None = None,
    secret_source: str = "the configured secret",  # noqa: S107 - a description
    regulation: Profile | None = None,
) -> Report:
    check_dns(cfg)
    return Doctor(
        cfg,
        password,
        domain,
        write=write,
        admin_url=admin_url,
        secret_source=secret_source,
        regulation=regulation,
    ).run()


__all__ = ["Check", "Report", "run_doctor"]
