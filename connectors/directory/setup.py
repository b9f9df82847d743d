"""``syncd directory init``: what syncd needs in an OpenLDAP directory, created idempotently.

What it needs (the same list ``syncd doctor`` checks, and ``config/ldap/acl.ldif`` shows as
LDIF for a stock Debian slapd):

- ``cn=config``: syncd's schema (connectors/directory/syncd-schema.ldif; the attribute types
  an older loaded one lacks are added to it, and its ``syncdAccount`` class is replaced by the
  file's when its ``MAY`` lacks them); the ppolicy and lastbind modules; on the database
  holding ``directory.base_dn``: ``olcLastBind: TRUE``, equality indexes on the attributes
  syncd searches (only those missing: Debian already indexes ``uid``, and a duplicate index
  definition is refused), an unlimited size limit for the service DN (first, so no earlier
  rule shadows it), access rules, the ppolicy overlay (default policy, cleartext hashed) and
  the lastbind overlay.
- The access rules, inserted first, each ending in ``by * break`` so that they only *add*
  rights and the site's own rules still decide for everyone else: root over ldapi manages the
  data (Debian grants it ``cn=config`` and the frontend, but the database's own ``to * by *
  read`` stops it there; root can already rewrite any ACL, so this adds no power), the service
  DN writes the managed base and reads the policies.
- Entries: the managed base and ``ou=`` parents, the service DN (``applicationProcess`` +
  ``simpleSecurityObject``) with the password of the configured secret, and the default
  password policy with ``pwdLockout: TRUE`` (a lock is ``pwdAccountLockedTime``, kept until
  syncd restores the account).

How it gets the rights: as root on the slapd host, over ldapi with SASL EXTERNAL, which is how
Debian's slapd lets root administer ``cn=config`` (``ldapmodify -Y EXTERNAL -H ldapi:///``).
No administrator password is asked for, stored or logged.

Idempotent: everything is read first and only what is missing becomes a change; a second run
plans nothing. ``--dry-run`` prints the changes as LDIF for ``ldapmodify -Y EXTERNAL -H
ldapi:///``; the password step is an ``ldappasswd -S`` line (it asks for the password: the
secret is never printed). A change the server refuses stops the run with the change named;
what was applied
before it stays (cn=config has no transactions) and a re-run goes on from there.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from ldap3 import (
    BASE,
    EXTERNAL,
    LEVEL,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NONE,
    SASL,
    Connection,
    Server,
)
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from connectors.config import DirectoryConfig
from connectors.directory.openldap import split_dn, split_rdn
from syncd.errors import SyncdError
from syncd.ports import DirectoryError

SCHEMA_FILE = Path(str(resources.files("connectors.directory") / "syncd-schema.ldif"))
DEFAULT_LDAPI = "/var/run/slapd/ldapi"  # Debian's slapd (SLAPD_SERVICES="… ldapi:///")
ROOT_PEERCRED = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"
MODULES = ("ppolicy", "lastbind")
LASTBIND_PRECISION = 60  # write authTimestamp at most once a minute per account
POLICY_ATTRIBUTES: dict[str, list[str]] = {
    "objectClass": ["device", "pwdPolicy"],
    "cn": ["default"],
    "pwdAttribute": ["userPassword"],
    "pwdLockout": ["TRUE"],
    "pwdMaxFailure": ["0"],
    "pwdMustChange": ["TRUE"],
    "pwdAllowUserChange": ["TRUE"],
    "pwdInHistory": ["0"],
}
# a password no bind matches: the entry exists before its real password is set, and a
# dry-run's LDIF never carries the secret (ppolicy leaves a value with a {scheme} as it is)
NO_PASSWORD = "{CRYPT}!"  # noqa: S105 - not a password: the absence of one


class SetupError(SyncdError):
    """The directory cannot be prepared as asked (bad base DN, no database holds it, …)."""


@dataclass(frozen=True)
class Change:
    """One LDAP change: an add (``attributes``) or a modify (``mods``), with why."""

    why: str
    dn: str
    kind: Literal["add", "modify"]
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # (add | replace | delete, attribute, values)
    mods: Sequence[tuple[str, str, Sequence[str]]] = ()

    def ldif(self) -> str:
        lines = [f"# {self.why}", f"dn: {self.dn}", f"changetype: {self.kind}"]
        if self.kind == "add":
            lines += [_line(k, v) for k, vs in self.attributes.items() for v in vs]
        else:
            for op, attr, values in self.mods:
                lines += [f"{op}: {attr}", *(_line(attr, v) for v in values), "-"]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PasswordStep:
    """Set the service DN's password to the configured secret (never shown)."""

    dn: str
    source: str  # where the secret comes from, for the printed command

    def ldif(self) -> str:
        return (
            f"# the service DN's password, from {self.source} (never printed): run\n"
            f"#   ldappasswd -Y EXTERNAL -H ldapi:/// -S '{self.dn}'\n"
            "# and type it when asked (ldappasswd -T would keep the file's final newline); then,\n"
            "# as ppolicy marks a password set by someone else as one to change (pwdReset), which\n"
            "# restricts the service DN to changing it:\n"
            f"#   printf 'dn: {self.dn}\\nchangetype: modify\\nreplace: pwdReset\\n-\\n' |\n"
            "#     ldapmodify -Y EXTERNAL -H ldapi:///\n"
        )


@dataclass
class InitPlan:
    changes: list[Change | PasswordStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what init leaves to the operator

    def ldif(self) -> str:
        head = (
            "# syncd directory init --dry-run: apply with\n"
            "#   ldapmodify -Y EXTERNAL -H ldapi:/// -f this.ldif\n"
        )
        if not self.changes:
            return head + "# nothing to do: the directory has what syncd needs\n"
        return head + "\n" + "\n".join(c.ldif() for c in self.changes)


def _line(attr: str, value: str) -> str:
    """``attr: value``, base64 (``attr::``) when LDIF may not carry the value as it is."""
    safe = value.isascii() and value.isprintable() and not value.startswith((" ", ":", "<"))
    if safe and not value.endswith(" "):
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(value.encode()).decode()}"


# -- reading syncd's schema file ---------------------------------------------------------------


def read_ldif_entry(text: str) -> tuple[str, dict[str, list[str]]]:
    """The one entry of a simple LDIF file (comments, folded lines; no base64, no URLs)."""
    unfolded: list[str] = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if raw.startswith(" ") and unfolded:
            unfolded[-1] += raw[1:]
        elif raw.strip():
            unfolded.append(raw)
    dn, attributes = "", dict[str, list[str]]()
    for line in unfolded:
        name, _, value = line.partition(":")
        if name.lower() == "dn":
            dn = value.strip()
        else:
            attributes.setdefault(name, []).append(value.strip())
    return dn, attributes


def schema_entry() -> tuple[str, dict[str, list[str]]]:
    return read_ldif_entry(SCHEMA_FILE.read_text(encoding="utf-8"))


_NAME = re.compile(r"\bNAME\s+(?:'([^']+)'|\(\s*'([^']+)')", re.IGNORECASE)


def definition_name(definition: str) -> str:
    """The (first) NAME of an attribute type or object class definition, lower case."""
    found = _NAME.search(definition)
    return (found.group(1) or found.group(2)).lower() if found else ""


_MAY = re.compile(r"\bMAY\s+(?:\(([^)]*)\)|(\S+))", re.IGNORECASE)


def class_may(definition: str) -> set[str]:
    """The attributes an object class definition allows (its ``MAY``), lower case: an older
    syncd schema's ``syncdAccount`` lacks the attributes added since, and an entry can then
    hold none of them (objectClassViolation), even once their types are loaded."""
    found = _MAY.search(definition)
    if not found:
        return set()
    names = found.group(1) if found.group(1) is not None else found.group(2)
    return {n.strip().lower() for n in names.split("$") if n.strip()}


# -- the admin connection ----------------------------------------------------------------------


def ldapi_server(url: str) -> Server:
    """An ldapi:// URL (the socket path percent-encoded, or none for Debian's) as a Server."""
    parsed = urlparse(url)
    if parsed.scheme != "ldapi":
        raise SetupError(f"--admin-url {url!r}: use ldapi:// (root over slapd's unix socket)")
    path = unquote(parsed.netloc) or DEFAULT_LDAPI
    return Server("ldapi://" + path, get_info=NONE)


def admin_connection(url: str) -> Connection:
    """Bind with SASL EXTERNAL over ldapi: slapd knows the caller by its uid and gid."""
    try:
        conn = Connection(
            ldapi_server(url),
            authentication=SASL,
            sasl_mechanism=EXTERNAL,
            sasl_credentials="",  # no authzid: act as who the socket says we are
            raise_exceptions=False,
        )
        if not conn.bind():
            raise DirectoryError(
                f"{url}: SASL EXTERNAL bind refused ({conn.result.get('description')}): "
                "run as root on the slapd host"
            )
    except (LDAPException, OSError) as exc:
        raise DirectoryError(f"cannot reach {url}: {exc} (is slapd listening on ldapi?)") from exc
    return conn


# -- reading what is there ---------------------------------------------------------------------


def _search(
    conn: Connection, base: str, flt: str, scope: str, attributes: list[str]
) -> list[tuple[str, dict[str, list[str]]]]:
    ok = conn.search(base, flt, search_scope=scope, attributes=attributes)
    if not ok and conn.result.get("result") not in (0, 32):  # 32: no such object
        raise DirectoryError(
            f"reading {base}: {conn.result.get('description')} ({conn.result.get('result')})"
        )
    return [
        (str(e["dn"]), {k: [str(x) for x in v] for k, v in e["attributes"].items()})
        for e in conn.response or []
        if e.get("type") == "searchResEntry"
    ]


def _exists(conn: Connection, dn: str) -> dict[str, list[str]] | None:
    found = _search(conn, dn, "(objectClass=*)", BASE, ["*"])
    return found[0][1] if found else None


def _strip_index(value: str) -> str:
    """``{3}to * by …`` → ``to * by …`` (cn=config's ordering prefix)."""
    return re.sub(r"^\{\d+\}", "", value)


def _norm(value: str) -> str:
    """An ACL or limit as slapd may render it back (case, quotes, spaces in DNs aside), so that
    a rule already there is recognised and never added twice."""
    text = " ".join(_strip_index(value).replace('"', "").split()).lower()
    return re.sub(r"\s*([,=+])\s*", r"\1", text)


def norm_dn(dn: str) -> str:
    return ",".join(r.replace(" ", "").lower() for r in split_dn(dn))


def is_under(dn: str, suffix: str) -> bool:
    d, s = norm_dn(dn), norm_dn(suffix)
    return d == s or d.endswith("," + s)


def access_rules(cfg: DirectoryConfig, suffix: str) -> list[str]:
    """The olcAccess rules syncd needs, in order (each ``by * break``: they only add)."""
    svc = cfg.bind_dn
    return [
        f"to * by dn.exact={ROOT_PEERCRED} manage by * break",
        f'to dn.subtree="{cfg.base_dn}" by dn.exact="{svc}" write by * break',
        f'to dn.subtree="ou=policies,{suffix}" by dn.exact="{svc}" read by * break',
    ]


def limit_rule(cfg: DirectoryConfig) -> str:
    return f'dn.exact="{cfg.bind_dn}" size=unlimited time=unlimited'


@dataclass
class Database:
    dn: str
    suffix: str
    attributes: dict[str, list[str]]


def find_database(conn: Connection, base_dn: str) -> Database:
    """The database whose suffix holds ``base_dn`` (the longest such suffix)."""
    found = [
        Database(dn, suffix, attrs)
        for dn, attrs in _search(
            conn,
            "cn=config",
            "(olcSuffix=*)",
            LEVEL,
            ["olcSuffix", "olcDbIndex", "olcAccess", "olcLimits", "olcLastBind"],
        )
        for suffix in attrs.get("olcSuffix", [])
        if is_under(base_dn, suffix)
    ]
    if not found:
        raise SetupError(f"directory.base_dn {base_dn!r}: no database of this slapd holds it")
    return max(found, key=lambda d: len(norm_dn(d.suffix)))


def required_indexes(cfg: DirectoryConfig) -> dict[str, str]:
    """The equality indexes syncd's searches need on the database holding the base, each with
    the search that needs it (docs/architecture.md, Performance), derived from the profile's
    own mapping so that a profile reading another attribute asks for its index: every whole
    read filters on ``objectClass``; a scoped read on exact ``uid``, ``mail``, employee number
    and organisation terms (``OpenLdapDirectory._scoped_filters``: the first attribute of each
    field); the delta read on exact ``entryCSN`` terms. Empty for Active Directory, which
    indexes what syncd asks of it itself. Without them every result is still right, only
    every search scans the whole database (slapd logs ``not indexed``)."""
    from connectors.directory import profile
    from connectors.directory.openldap import OpenLdapDirectory

    cls: Any = profile(cfg.profile)
    # a profile of another server (ad: user objects, its own scope filter) has no olcDbIndex
    inet_org_person = getattr(cls, "scope_filter", None) is OpenLdapDirectory.scope_filter
    if not (isinstance(cls, type) and issubclass(cls, OpenLdapDirectory) and inet_org_person):
        return {}
    fields = cls.FIELD_ATTRIBUTES
    out = {"objectClass": "every read: (objectClass=inetOrgPerson)"}
    for name in ("uid", "mail", "employee_number"):
        out.setdefault(fields[name][0], f"a scoped read's exact {fields[name][0]} terms")
    for attr in fields["org"]:
        out.setdefault(attr, "a scoped read: the organisations' accounts")
    out["entryCSN"] = "the delta read: what changed since the last run, by exact entryCSN"
    return out


def _indexed(values: Iterable[str]) -> set[str]:
    """Attributes (lower case) with an equality index in ``olcDbIndex`` values. An attribute
    named alone gets the ``default`` line's kinds (slapd-mdb(5): "if only an attr is given, the
    indices specified for default are maintained"): ``uid`` beside ``default pres`` has no
    equality index; without a ``default`` line it is taken as one, as before."""
    lines = [value.strip().partition(" ") for value in values]
    default = next((kinds for attrs, _, kinds in lines if attrs.lower() == "default"), None)
    out: set[str] = set()
    for attrs, _, kinds in lines:
        given = kinds or default
        if given is None or "eq" in given.replace(" ", "").split(","):
            out |= {a.strip().lower() for a in attrs.split(",")} - {"default"}
    return out


def index_mods(values: Sequence[str], wanted: Iterable[str]) -> list[tuple[str, str, list[str]]]:
    """The ``olcDbIndex`` changes that give each of ``wanted`` an equality index: a new
    ``<attr> eq`` value, or for an attribute indexed another way (``mail pres``) that value
    replaced by one with ``eq`` added: slapd refuses a second definition for an attribute."""
    have = _indexed(values)
    missing = [a for a in wanted if a.lower() not in have]
    mods: list[tuple[str, str, list[str]]] = []
    fresh: list[str] = []
    for attr in missing:
        other = next(
            (
                v
                for v in values
                if attr.lower() in {a.strip().lower() for a in v.strip().split(" ")[0].split(",")}
            ),
            None,
        )
        if other is None:
            fresh.append(f"{attr} eq")
        elif not any(m[2] == [other] for m in mods):
            names, _, kinds = other.strip().partition(" ")
            # a bare attribute list has the default line's kinds: keep them, and add eq
            kinds = kinds or next(
                (k for a, _, k in (v.strip().partition(" ") for v in values) if a == "default"),
                "",
            )
            widened = f"{names} {kinds},eq" if kinds else f"{names} eq"
            mods += [("delete", "olcDbIndex", [other]), ("add", "olcDbIndex", [widened])]
    if fresh:
        mods.append(("add", "olcDbIndex", fresh))
    return mods


# -- the plan ----------------------------------------------------------------------------------


def plan_config(conn: Connection, cfg: DirectoryConfig) -> tuple[list[Change], Database, str]:
    """The cn=config changes; also the database and the default policy's DN."""
    changes: list[Change] = []
    schema_dn, schema = schema_entry()
    loaded = [
        (dn, attrs)
        for dn, attrs in _search(
            conn, "cn=schema,cn=config", "(objectClass=olcSchemaConfig)", LEVEL, ["*"]
        )
        if re.fullmatch(r"(\{\d+\})?syncd", attrs.get("cn", [""])[0])
    ]
    if not loaded:
        changes.append(Change("syncd's schema", schema_dn, "add", schema))
    else:
        have = {definition_name(d) for d in loaded[0][1].get("olcAttributeTypes", [])}
        missing = [d for d in schema["olcAttributeTypes"] if definition_name(d) not in have]
        schema_mods: list[tuple[str, str, Sequence[str]]] = []
        if missing:
            schema_mods.append(("add", "olcAttributeTypes", missing))
        # the class too: its MAY must name the new types (slapd 2.5 replaces a class
        # definition in place when the old value is deleted and the new one added at once)
        classes = {definition_name(d): d for d in loaded[0][1].get("olcObjectClasses", [])}
        for shipped in schema["olcObjectClasses"]:
            loaded_class = classes.get(definition_name(shipped))
            if loaded_class is not None and not class_may(shipped) <= class_may(loaded_class):
                schema_mods += [
                    ("delete", "olcObjectClasses", [loaded_class]),
                    ("add", "olcObjectClasses", [shipped]),
                ]
        if schema_mods:
            changes.append(
                Change(
                    "syncd's schema is older than this syncd: the types and class it lacks",
                    loaded[0][0],
                    "modify",
                    mods=schema_mods,
                )
            )

    module_lists = _search(
        conn, "cn=config", "(objectClass=olcModuleList)", LEVEL, ["olcModuleLoad"]
    )
    have_modules = {
        re.sub(r"\.la$", "", _strip_index(m)).lower()
        for _, attrs in module_lists
        for m in attrs.get("olcModuleLoad", [])
    }
    wanted = [m for m in MODULES if m not in have_modules]
    if wanted and module_lists:
        changes.append(
            Change(
                "modules: password policy and last-bind time",
                module_lists[0][0],
                "modify",
                mods=[("add", "olcModuleLoad", wanted)],
            )
        )
    elif wanted:
        changes.append(
            Change(
                "modules: password policy and last-bind time",
                "cn=module,cn=config",
                "add",
                {"objectClass": ["olcModuleList"], "cn": ["module"], "olcModuleLoad": wanted},
            )
        )

    db = find_database(conn, cfg.base_dn)
    a = db.attributes
    mods: list[tuple[str, str, Sequence[str]]] = []
    if [v.upper() for v in a.get("olcLastBind", [])] != ["TRUE"]:
        mods.append(("replace", "olcLastBind", ["TRUE"]))
    mods += index_mods(a.get("olcDbIndex", []), required_indexes(cfg))
    if _norm(limit_rule(cfg)) not in {_norm(v) for v in a.get("olcLimits", [])}:
        mods.append(("add", "olcLimits", ["{0}" + limit_rule(cfg)]))
    have_rules = {_norm(v) for v in a.get("olcAccess", [])}
    new_rules = [r for r in access_rules(cfg, db.suffix) if _norm(r) not in have_rules]
    if new_rules:
        mods.append(("add", "olcAccess", [f"{{{i}}}{r}" for i, r in enumerate(new_rules)]))
    if mods:
        changes.append(
            Change(
                "the database: last-bind time, indexes, the service DN's size limit, access",
                db.dn,
                "modify",
                mods=mods,
            )
        )

    policy_dn = f"cn=default,ou=policies,{db.suffix}"
    overlays = _search(conn, db.dn, "(objectClass=olcOverlayConfig)", LEVEL, ["*"])
    ppolicy = [(dn, o) for dn, o in overlays if "olcPPolicyConfig" in o.get("objectClass", [])]
    if not ppolicy:
        changes.append(
            Change(
                "password policy: locks are pwdAccountLockedTime; cleartext writes are hashed",
                f"olcOverlay=ppolicy,{db.dn}",
                "add",
                {
                    "objectClass": ["olcOverlayConfig", "olcPPolicyConfig"],
                    "olcOverlay": ["ppolicy"],
                    "olcPPolicyDefault": [policy_dn],
                    "olcPPolicyHashCleartext": ["TRUE"],
                },
            )
        )
    elif not ppolicy[0][1].get("olcPPolicyDefault"):
        changes.append(
            Change(
                "password policy: the default policy",
                ppolicy[0][0],
                "modify",
                mods=[("add", "olcPPolicyDefault", [policy_dn])],
            )
        )
    else:
        policy_dn = ppolicy[0][1]["olcPPolicyDefault"][0]  # the site's own: kept
    if not any("olcLastBindConfig" in o.get("objectClass", []) for _, o in overlays):
        changes.append(
            Change(
                "last-bind time that survives a password change (authTimestamp)",
                f"olcOverlay=lastbind,{db.dn}",
                "add",
                {
                    "objectClass": ["olcOverlayConfig", "olcLastBindConfig"],
                    "olcOverlay": ["lastbind"],
                    "olcLastBindPrecision": [str(LASTBIND_PRECISION)],
                },
            )
        )
    return changes, db, policy_dn


def _parents(dn: str, suffix: str) -> list[str]:
    """``dn`` and its ancestors below ``suffix``, the highest first."""
    rdns = split_dn(dn)
    depth = len(split_dn(suffix))
    return [",".join(rdns[i:]) for i in range(len(rdns) - depth - 1, -1, -1)]


def _ou_entry(dn: str) -> Change:
    rdn, _ = split_rdn(dn)
    name, _, value = rdn.partition("=")
    if name.strip().lower() != "ou":
        raise SetupError(f"{dn}: syncd directory init creates only ou= entries here; add it")
    return Change(
        "a branch syncd needs",
        dn,
        "add",
        {"objectClass": ["organizationalUnit"], "ou": [value.strip()]},
    )


def plan_entries(
    conn: Connection, cfg: DirectoryConfig, db: Database, policy_dn: str, password: str
) -> tuple[list[Change | PasswordStep], list[str]]:
    """The entries: branches, the service DN and its password, the default policy."""
    changes: list[Change | PasswordStep] = []
    notes: list[str] = []
    seen: set[str] = set()

    def branch(dn: str, *, itself: bool = False) -> None:
        """The ou= entries above ``dn`` (and ``dn`` itself) that are missing."""
        for parent in _parents(dn, db.suffix)[: None if itself else -1]:
            if norm_dn(parent) not in seen and _exists(conn, parent) is None:
                changes.append(_ou_entry(parent))
            seen.add(norm_dn(parent))

    if not is_under(cfg.bind_dn, db.suffix):
        raise SetupError(
            f"directory.bind_dn {cfg.bind_dn!r} is not under {db.suffix!r}: "
            "syncd directory init creates the service DN in the managed database only"
        )
    if _exists(conn, db.suffix) is None:
        raise SetupError(f"{db.suffix}: the database's suffix entry is missing; add it first")
    branch(cfg.base_dn, itself=True)
    branch(cfg.bind_dn)
    found = _search(conn, cfg.bind_dn, "(objectClass=*)", BASE, ["*", "pwdReset"])
    service = found[0][1] if found else None
    if service is None:
        rdn, _ = split_rdn(cfg.bind_dn)
        name, _, value = rdn.partition("=")
        if name.strip().lower() != "cn":
            raise SetupError(f"directory.bind_dn {cfg.bind_dn!r}: init creates a cn= service DN")
        changes.append(
            Change(
                "syncd's service DN (its password is set next)",
                cfg.bind_dn,
                "add",
                {
                    "objectClass": ["applicationProcess", "simpleSecurityObject"],
                    "cn": [value.strip()],
                    "userPassword": [NO_PASSWORD],
                },
            )
        )
    if service is None or not _binds(conn, cfg.bind_dn, password):
        changes.append(PasswordStep(cfg.bind_dn, secret_source(cfg)))
    elif [v.upper() for v in service.get("pwdReset", [])] == ["TRUE"]:
        changes.append(
            Change(
                "the service DN's password is not a one-time password (pwdReset would "
                "restrict it to changing it)",
                cfg.bind_dn,
                "modify",
                mods=[("replace", "pwdReset", [])],
            )
        )

    branch(policy_dn)
    policy = _exists(conn, policy_dn)
    if policy is None:
        changes.append(
            Change(
                "the default password policy: a lock holds until syncd restores the account",
                policy_dn,
                "add",
                POLICY_ATTRIBUTES,
            )
        )
    else:
        if [v.upper() for v in policy.get("pwdLockout", [])] != ["TRUE"]:
            changes.append(
                Change(
                    "the policy must enforce locks (pwdLockout)",
                    policy_dn,
                    "modify",
                    mods=[("replace", "pwdLockout", ["TRUE"])],
                )
            )
        if any(v != "0" for v in policy.get("pwdLockoutDuration", [])):
            notes.append(
                f"{policy_dn}: pwdLockoutDuration {policy['pwdLockoutDuration'][0]} ends "
                "syncd's locks after that many seconds; left as it is (remove it)"
            )
    return changes, notes


def secret_source(cfg: DirectoryConfig) -> str:
    if cfg.bind_password_file is not None:
        return f"directory.bind_password_file ({cfg.bind_password_file})"
    if cfg.bind_credential is not None:
        return f"directory.bind_credential ({cfg.bind_credential})"
    return f"directory.bind_password_env (${cfg.bind_password_env})"


def _binds(conn: Connection, dn: str, password: str) -> bool:
    """Whether ``dn`` binds with ``password`` (over the admin's own socket)."""
    probe = Connection(conn.server, dn, password, raise_exceptions=False)
    try:
        return bool(probe.bind())
    except (LDAPException, OSError):
        return False
    finally:
        probe.unbind()


def check_dns(cfg: DirectoryConfig) -> None:
    """Refuse, naming the key, a DN ldap3 would not send (it raises deep in a search)."""
    for key, dn in (("directory.bind_dn", cfg.bind_dn), ("directory.base_dn", cfg.base_dn)):
        try:
            parse_dn(dn)
        except LDAPInvalidDnError as exc:
            raise SetupError(f"{key} {dn!r} is not a DN syncd can use: {exc}") from None


def plan(conn: Connection, cfg: DirectoryConfig, password: str) -> InitPlan:
    """Everything missing. The entries are planned as if the config changes were applied (a
    dry-run on a bare slapd shows them all), and they are planned again after applying."""
    config_changes, db, policy_dn = plan_config(conn, cfg)
    entries, notes = plan_entries(conn, cfg, db, policy_dn, password)
    return InitPlan([*config_changes, *entries], notes)


# -- applying ----------------------------------------------------------------------------------

_OPS = {"add": MODIFY_ADD, "replace": MODIFY_REPLACE, "delete": MODIFY_DELETE}


def apply_change(conn: Connection, change: Change | PasswordStep, password: str) -> None:
    if isinstance(change, PasswordStep):
        ok = conn.extend.standard.modify_password(change.dn, None, password) and conn.modify(
            change.dn, {"pwdReset": [(MODIFY_REPLACE, [])]}
        )
        what = f"setting the password of {change.dn}"
    elif change.kind == "add":
        ok = conn.add(change.dn, attributes={k: list(v) for k, v in change.attributes.items()})
        what = f"adding {change.dn}"
    else:
        mods: dict[str, list[tuple[str, list[str]]]] = {}
        for op, attr, values in change.mods:  # one attribute may be deleted and added at once
            mods.setdefault(attr, []).append((_OPS[op], list(values)))
        ok = conn.modify(change.dn, mods)
        what = f"modifying {change.dn} ({', '.join(a for _, a, _ in change.mods)})"
    if not ok:
        r = conn.result
        raise DirectoryError(
            f"{what}: {r.get('description')} ({r.get('result')}) {r.get('message') or ''}".strip()
            + "; the changes printed before it were applied, a re-run goes on from there"
        )


def run_init(
    cfg: DirectoryConfig,
    password: str,
    admin_url: str,
    *,
    dry_run: bool,
    applied: Callable[[str], None] = lambda _: None,
) -> InitPlan:
    """Plan (and unless ``dry_run`` apply) what syncd needs. Each change made is told to
    ``applied`` as it is made, so that a change refused half-way leaves a true account of
    what is already done. Everything is planned (and every refusal of the configuration
    raised) before the first change."""
    check_dns(cfg)
    conn = admin_connection(admin_url)
    try:
        first = plan(conn, cfg, password)
        if dry_run or not first.changes:
            return first
        config_changes, _, _ = plan_config(conn, cfg)
        for change in config_changes:
            apply_change(conn, change, password)
            applied(_done(change))
        _, db, policy_dn = plan_config(conn, cfg)
        entries, _ = plan_entries(conn, cfg, db, policy_dn, password)
        for entry in entries:
            apply_change(conn, entry, password)
            applied(_done(entry))
        return first
    except LDAPException as exc:  # a DN ldap3 refuses to send, a connection cut
        raise DirectoryError(f"{admin_url}: {exc}") from exc
    finally:
        conn.unbind()


def _done(change: Change | PasswordStep) -> str:
    if isinstance(change, PasswordStep):
        return f"set the password of {change.dn} from {change.source}"
    verb = "added" if change.kind == "add" else "changed"
    return f"{verb} {change.dn}: {change.why}"


__all__ = ["Change", "InitPlan", "PasswordStep", "run_init"]
