"""``syncd policy check|apply``: the directory's password policy against the regulation's.

syncd's own one-time passwords obey the regulation by construction (``syncd/passwords.py``);
the passwords people choose afterwards are checked only by the directory. So the directory's
policy is compared, rule by rule, with the province's ``password:`` rule (DIGEST §2) and its
``must_change`` article, and ``apply`` writes what is missing. Each line names the article and
the attribute, and says honestly what the server cannot enforce.

Where each profile family keeps its policy:

- **OpenLDAP** (``openldap``, ``openldap-ou``, ``iredmail``: iRedMail runs ppolicy on OpenLDAP
  too): the ppolicy default policy entry (``cn=default,ou=policies,<suffix>``, the entry
  ``syncd directory init`` creates). ``pwdMinLength`` is only checked with ``pwdCheckQuality``
  1 or 2; ``pwdMaxAge`` (seconds); ``pwdMustChange`` and ``pwdAllowUserChange`` (the first
  login's change); ``pwdLockout`` without ``pwdLockoutDuration`` (syncd's locks are
  ``pwdAccountLockedTime``). ppolicy has no notion of character classes or of a person's name:
  that needs a check module (``pwdCheckModule``, e.g. OpenLDAP's contrib ``ppm``, which Debian
  12's slapd-contrib does not ship), which syncd does not configure; a line says so. iRedMail
  keeps ``pwdCheckQuality: 1``: iRedAdmin and Roundcube's password plugin write hashed values,
  which ``2`` would refuse.
  A maximum age in the *default* policy would expire the service DN's own password too and
  stop syncd: ``apply`` gives the service DN a policy of its own (``cn=syncd-service``,
  ``pwdPolicySubentry``) without one, and ``check`` reports a service DN without it.
- **Active Directory** (``ad``): the domain object's policy, in ``policy_ad.py``.
- **Zimbra**: the default class of service (``cn=default,cn=cos,cn=zimbra``):
  ``zimbraPasswordMinLength``, ``zimbraPasswordMaxAge`` (days), ``zimbraPasswordLocked``
  FALSE, and the character-class minimums (``zimbraPasswordMinUpperCaseChars`` …) where the
  server's schema has them (ZCS 5 and later; an older schema cannot hold them: a line says
  so). ``zimbraPasswordMustChange`` is set by the profile on every one-time password.

A regulation's period is calendar months (``3m``); a server counts seconds or days. The value
written is the *shortest* such period can be (3 months: 89 days, February to April), so the
server never lets a password live longer than the regulation allows, whatever the month.
A stricter server value (a longer minimum, a shorter maximum age) is in line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException

from connectors.config import DirectoryConfig
from connectors.directory import open_directory
from connectors.directory.setup import (
    POLICY_ATTRIBUTES,
    Change,
    admin_connection,
    apply_change,
    definition_name,
    is_under,
    norm_dn,
)
from syncd.ports import DirectoryError
from syncd.regulation import Duration, Profile

Status = Literal["ok", "drift", "server cannot"]
OPENLDAP_PROFILES = ("openldap", "openldap-ou", "iredmail")
ZIMBRA_COS = "cn=default,cn=cos,cn=zimbra"
SERVICE_POLICY_RDN = "cn=syncd-service"
DAY = 86_400
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # a common year: the shortest


def shortest_days(period: Duration) -> int:
    """The fewest days ``period`` can span (3 months: 89, February to April of a common year)."""
    if period.unit == "d":
        return period.amount
    months = period.amount * (12 if period.unit == "y" else 1)
    full_years, rest = divmod(months, 12)
    spans = [sum(_MONTH_DAYS[(start + i) % 12] for i in range(rest)) for start in range(12)]
    return full_years * 365 + min(spans)


@dataclass(frozen=True)
class Line:
    """One rule compared: the regulation's article, the server's attribute, both values."""

    rule: str
    article: str
    attribute: str
    status: Status
    have: str
    want: str
    detail: str = ""


@dataclass
class PolicyReport:
    profile: str  # the regulation
    directory: str  # the directory profile
    where: str  # the entry holding the policy
    lines: list[Line] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)  # what apply writes
    notes: list[str] = field(default_factory=list)

    @property
    def drift(self) -> list[Line]:
        return [x for x in self.lines if x.status == "drift"]

    @property
    def ok(self) -> bool:
        return not self.drift

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "directory": self.directory,
            "where": self.where,
            "ok": self.ok,
            "drift": len(self.drift),
            "lines": [asdict(x) for x in self.lines],
            "notes": self.notes,
        }

    def text(self) -> str:
        out = [f"syncd policy check: {self.profile} against {self.where} ({self.directory})"]
        label = {"ok": "ok", "drift": "DRIFT", "server cannot": "CANNOT"}
        for x in self.lines:
            values = f"{x.attribute}: {x.have or '(none)'}"
            if x.status != "ok":
                values += f", the regulation asks {x.want}"
            out.append(f"  {label[x.status]:<7} {x.rule:<18} [{x.article}] {values}")
            if x.detail:
                out.append(f"  {'':<7} {'':<18} {x.detail}")
        out += [f"  note: {n}" for n in self.notes]
        n = len(self.drift)
        out.append(
            "The directory's policy is in line with the regulation."
            if n == 0
            else f"{n} difference{'s' if n > 1 else ''}: `syncd policy apply` writes what the "
            "regulation asks (--dry-run shows it)."
        )
        return "\n".join(out) + "\n"

    def ldif(self) -> str:
        """``--dry-run``: the changes as LDIF for ``ldapmodify`` (as the directory's
        administrator), the comparison above them as comments."""
        head = "".join(f"# {line}\n" for line in self.text().splitlines())
        head += "# apply with: ldapmodify -Y EXTERNAL -H ldapi:/// -f this.ldif (as root)\n"
        if not self.changes:
            return head + "# nothing to do\n"
        return head + "\n" + "\n".join(c.ldif() for c in self.changes)


# -- connections -------------------------------------------------------------------------------


def bind(cfg: DirectoryConfig, domain: str, dn: str, password: str) -> Connection:
    """A connection to ``directory.url`` bound as ``dn``, TLS exactly as syncd connects."""
    directory: Any = open_directory(cfg, password, domain)  # every profile has its Server
    server = directory.server
    try:
        conn = Connection(
            server, dn, password, receive_timeout=int(cfg.timeout), raise_exceptions=False
        )
        if cfg.start_tls:
            conn.open()
            if not conn.start_tls():
                raise DirectoryError(f"StartTLS refused by {cfg.url}")
        if not conn.bind():
            raise DirectoryError(
                f"cannot bind to {cfg.url} as {dn}: {conn.result.get('description')}"
            )
    except (LDAPException, OSError) as exc:
        raise DirectoryError(f"cannot reach {cfg.url}: {exc}") from exc
    return conn


def admin_bind(
    cfg: DirectoryConfig, domain: str, admin_url: str | None, admin_dn: str | None, secret: str
) -> Connection:
    """Who writes the policy: root over ldapi (SASL EXTERNAL, as ``directory init``), an
    administrator DN with its password, else the service DN (least privilege usually lets it
    only read the policy: the refusal then names these options)."""
    if admin_url:
        return admin_connection(admin_url)
    return bind(cfg, domain, admin_dn or cfg.bind_dn, secret)


# -- reading -----------------------------------------------------------------------------------


def _read(conn: Connection, dn: str, attributes: list[str]) -> dict[str, list[str]] | None:
    ok = conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=attributes)
    if not ok and conn.result.get("result") not in (0, 32):
        raise DirectoryError(
            f"reading {dn}: {conn.result.get('description')} ({conn.result.get('result')})"
        )
    for e in conn.response or []:
        if e.get("type") == "searchResEntry":
            return {
                k.lower(): [str(v) for v in (vs if isinstance(vs, list) else [vs])]
                for k, vs in e["attributes"].items()
                if vs not in ([], None)
            }
    return None


def _first(attrs: Mapping[str, list[str]] | None, name: str) -> str:
    values = (attrs or {}).get(name.lower()) or []
    return values[0] if values else ""


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def _schema_attributes(conn: Connection) -> set[str]:
    root = _read(conn, "", ["subschemaSubentry"])
    where = _first(root, "subschemaSubentry") or "cn=Subschema"
    found = _read(conn, where, ["attributeTypes"]) or {}
    return {definition_name(d) for d in found.get("attributetypes", [])}


def _suffix(conn: Connection, base_dn: str) -> str:
    root = _read(conn, "", ["namingContexts"]) or {}
    contexts = [c for c in root.get("namingcontexts", []) if is_under(base_dn, c)]
    return max(contexts, key=lambda c: len(norm_dn(c)), default=base_dn)


# -- the comparison, shared ------------------------------------------------------------------


def _at_least(rule: str, article: str, attribute: str, have: str, want: int) -> Line:
    ok = have != "" and _int(have) >= want
    return Line(rule, article, attribute, "ok" if ok else "drift", have, f"at least {want}")


def _at_most(rule: str, article: str, attribute: str, have: str, want: int, unit: str) -> Line:
    ok = have != "" and 0 < _int(have) <= want
    return Line(rule, article, attribute, "ok" if ok else "drift", have, f"at most {want} ({unit})")


def _equal(rule: str, article: str, attribute: str, have: str, want: str, detail: str = "") -> Line:
    ok = have.upper() == want.upper()
    return Line(rule, article, attribute, "ok" if ok else "drift", have, want, detail)


def _classes(profile: Profile) -> list[tuple[str, str]]:
    """(rule, what) of each character class the regulation asks for."""
    pw = profile.password
    out = []
    if pw.upper:
        out.append(("upper case", "an upper-case letter"))
    if pw.lower:
        out.append(("lower case", "a lower-case letter"))
    if pw.digit:
        out.append(("digit", "a digit"))
    if pw.special:
        out.append(("special", f"one of {pw.special}"))
    return out


def _forbidden(profile: Profile) -> list[tuple[str, str]]:
    """(rule, what) of each thing a password must not contain."""
    pw = profile.password
    return [
        (rule, what)
        for flag, rule, what in (
            (pw.forbid_account, "not account name", "the account name"),
            (pw.forbid_name, "not person's name", "the person's name"),
            (pw.forbid_birth_date, "not birth date", "the date of birth"),
            (pw.forbid_org, "not org name", "the organisation's or office's name"),
        )
        if flag
    ]


def _lock_article(profile: Profile) -> str:
    lc = profile.lifecycle
    return lc.lock_inactive.article if lc.lock_inactive.after else lc.manual_lock["compromised"]


SYNCD_OWN = (
    "syncd's one-time passwords meet it (syncd/passwords.py); passwords people choose "
    "themselves are not checked by this server"
)


# -- OpenLDAP ppolicy --------------------------------------------------------------------------


def _ppolicy(
    conn: Connection, cfg: DirectoryConfig, profile: Profile, report: PolicyReport
) -> None:
    pw = profile.password
    suffix = _suffix(conn, cfg.base_dn)
    policy_dn = _policy_dn(conn, suffix)
    wanted_attrs = [
        *("pwdMinLength", "pwdCheckQuality", "pwdMaxAge", "pwdMustChange"),
        *("pwdAllowUserChange", "pwdLockout", "pwdLockoutDuration", "pwdCheckModule"),
        "objectClass",
    ]
    policy = _read(conn, policy_dn, wanted_attrs)
    report.where = f"ppolicy {policy_dn}"
    have = {a: _first(policy, a) for a in wanted_attrs}
    quality = 1 if cfg.profile == "iredmail" else 2
    art = pw.article
    want: dict[str, str] = {
        "pwdMinLength": str(pw.min_length),
        "pwdCheckQuality": str(quality),
        "pwdMustChange": "TRUE",
        "pwdAllowUserChange": "TRUE",
        "pwdLockout": "TRUE",
    }
    lines = [
        _at_least("min length", art, "pwdMinLength", have["pwdMinLength"], pw.min_length),
        _at_least("length checked", art, "pwdCheckQuality", have["pwdCheckQuality"], quality),
    ]
    if pw.max_age is not None:
        seconds = shortest_days(pw.max_age) * DAY
        want["pwdMaxAge"] = str(seconds)
        lines.append(_at_most("max age", art, "pwdMaxAge", have["pwdMaxAge"], seconds, "seconds"))
    else:
        lines.append(
            Line(
                "max age",
                art,
                "pwdMaxAge",
                "ok",
                have["pwdMaxAge"],
                "",
                "the regulation sets no maximum age",
            )
        )
    must = profile.must_change_article
    lines += [
        _equal(
            "must change",
            must,
            "pwdMustChange",
            have["pwdMustChange"],
            "TRUE",
            "a password set by an administrator (syncd's one-time ones) must be changed",
        ),
        _equal(
            "user may change",
            must,
            "pwdAllowUserChange",
            have["pwdAllowUserChange"],
            "TRUE",
            "people must be able to change their own password",
        ),
        _equal(
            "lockout",
            _lock_article(profile),
            "pwdLockout",
            have["pwdLockout"],
            "TRUE",
            "syncd's locks (pwdAccountLockedTime) hold only with pwdLockout TRUE",
        ),
    ]
    duration = have["pwdLockoutDuration"]
    lines.append(
        Line(
            "lock kept",
            _lock_article(profile),
            "pwdLockoutDuration",
            "drift" if _int(duration) != 0 else "ok",
            duration,
            "none (0)",
            "a lockout duration would end syncd's locks by themselves",
        )
    )
    module = have["pwdCheckModule"]
    named = f" ({module} is named: syncd does not read its settings)" if module else ""
    classes = [what for _, what in _classes(profile)]
    if classes:
        lines.append(
            Line(
                "character classes",
                art,
                "pwdCheckModule",
                "server cannot",
                module,
                ", ".join(classes),
                f"ppolicy itself checks only the length; the classes need a check module"
                f"{named}; {SYNCD_OWN}",
            )
        )
    forbidden = [what for _, what in _forbidden(profile)]
    if forbidden:
        lines.append(
            Line(
                "must not contain",
                art,
                "pwdCheckModule",
                "server cannot",
                module,
                "not " + ", ".join(forbidden),
                f"only a check module that reads the entry could know them{named}; {SYNCD_OWN}",
            )
        )
    report.lines += lines

    # the changes apply makes
    if policy is None:
        report.changes.append(
            Change(
                f"the default password policy the regulation asks for ({art})",
                policy_dn,
                "add",
                {**POLICY_ATTRIBUTES, **{k: [v] for k, v in want.items()}},
            )
        )
    else:
        mods: list[tuple[str, str, Sequence[str]]] = [
            ("replace", x.attribute, [want[x.attribute]])
            for x in lines
            if x.status == "drift" and x.attribute in want
        ]
        if _int(duration) != 0:
            mods.append(("replace", "pwdLockoutDuration", []))
        if mods:
            report.changes.append(
                Change(
                    f"the default password policy as the regulation asks ({art})",
                    policy_dn,
                    "modify",
                    mods=mods,
                )
            )
    if pw.max_age is not None:
        _service_policy(conn, cfg, suffix, report)


def _policy_dn(conn: Connection, suffix: str) -> str:
    """The entry of the ppolicy overlay's default policy: ``olcPPolicyDefault`` where the
    connection may read cn=config (root over ldapi), else ``cn=default,ou=policies,<suffix>``
    (``directory init``'s) or the only other policy the connection sees (a site's own, which
    init keeps), else where ``apply`` creates it."""
    default = f"cn=default,ou=policies,{suffix}"
    conn.search("cn=config", "(olcPPolicyDefault=*)", SUBTREE, attributes=["olcPPolicyDefault"])
    named = [
        str(v)
        for e in conn.response or []
        if e.get("type") == "searchResEntry"
        for v in e["attributes"].get("olcPPolicyDefault", [])
        if is_under(str(v), suffix)
    ]
    if named:
        return named[0]
    conn.search(suffix, "(objectClass=pwdPolicy)", SUBTREE, attributes=["1.1"])
    seen = [
        str(e["dn"])
        for e in conn.response or []
        if e.get("type") == "searchResEntry"
        and not str(e["dn"]).lower().startswith(SERVICE_POLICY_RDN)
    ]
    if any(norm_dn(dn) == norm_dn(default) for dn in seen) or len(seen) != 1:
        return default
    return seen[0]


def _service_policy(
    conn: Connection, cfg: DirectoryConfig, suffix: str, report: PolicyReport
) -> None:
    """A maximum age in the default policy would expire syncd's own password: the service DN
    gets a policy without one (locks and quality as the default's do not matter to it)."""
    service_dn = f"{SERVICE_POLICY_RDN},ou=policies,{suffix}"
    own = _read(conn, cfg.bind_dn, ["pwdPolicySubentry"])
    have = _first(own, "pwdPolicySubentry")
    ok = bool(have) and norm_dn(have) == norm_dn(service_dn)
    report.lines.append(
        Line(
            "service password",
            "syncd",
            "pwdPolicySubentry",
            "ok" if ok else "drift",
            have,
            service_dn,
            f"{cfg.bind_dn} needs a policy without pwdMaxAge, or its own password expires "
            "and every run fails",
        )
    )
    if ok:
        return
    if _read(conn, service_dn, ["cn"]) is None:
        report.changes.append(
            Change(
                "a policy for syncd's service DN: its password never expires",
                service_dn,
                "add",
                {
                    "objectClass": ["device", "pwdPolicy"],
                    "cn": [SERVICE_POLICY_RDN.partition("=")[2]],
                    "pwdAttribute": ["userPassword"],
                    "pwdMaxAge": ["0"],
                    "pwdAllowUserChange": ["TRUE"],
                },
            )
        )
    report.changes.append(
        Change(
            "syncd's service DN follows its own policy",
            cfg.bind_dn,
            "modify",
            mods=[("replace", "pwdPolicySubentry", [service_dn])],
        )
    )


# -- Zimbra: the default class of service ------------------------------------------------------

ZIMBRA_CLASSES = {
    "upper case": "zimbraPasswordMinUpperCaseChars",
    "lower case": "zimbraPasswordMinLowerCaseChars",
    "digit": "zimbraPasswordMinNumericChars",
    "special": "zimbraPasswordMinPunctuationChars",
}


def _zimbra(conn: Connection, profile: Profile, report: PolicyReport, cos: str) -> None:
    pw = profile.password
    art = pw.article
    known = _schema_attributes(conn)
    names = [
        *("zimbraPasswordMinLength", "zimbraPasswordMaxAge", "zimbraPasswordLocked"),
        *ZIMBRA_CLASSES.values(),
    ]
    entry = _read(conn, cos, [n for n in names if n.lower() in known])
    if entry is None:
        raise DirectoryError(
            f"{cos}: no such class of service visible to the service DN (Zimbra's default "
            "COS; the service DN needs read access to cn=cos,cn=zimbra)"
        )
    report.where = f"Zimbra COS {cos}"
    have = {n: _first(entry, n) for n in names}
    want: dict[str, str] = {"zimbraPasswordMinLength": str(pw.min_length)}
    lines = [
        _at_least(
            "min length",
            art,
            "zimbraPasswordMinLength",
            have["zimbraPasswordMinLength"],
            pw.min_length,
        ),
    ]
    if pw.max_age is not None:
        days = shortest_days(pw.max_age)
        want["zimbraPasswordMaxAge"] = str(days)
        lines.append(
            _at_most(
                "max age", art, "zimbraPasswordMaxAge", have["zimbraPasswordMaxAge"], days, "days"
            )
        )
    want["zimbraPasswordLocked"] = "FALSE"
    lines.append(
        Line(
            "user may change",
            profile.must_change_article,
            "zimbraPasswordLocked",
            "drift" if have["zimbraPasswordLocked"].upper() == "TRUE" else "ok",
            have["zimbraPasswordLocked"],
            "FALSE",
            "people must be able to change their own password",
        )
    )
    lines.append(
        Line(
            "must change",
            profile.must_change_article,
            "zimbraPasswordMustChange",
            "ok",
            "per account",
            "TRUE on each one-time password",
            "the zimbra profile sets it with every password syncd issues",
        )
    )
    for rule, what in _classes(profile):
        attribute = ZIMBRA_CLASSES[rule]
        if attribute.lower() not in known:
            lines.append(
                Line(
                    rule,
                    art,
                    attribute,
                    "server cannot",
                    "",
                    what,
                    f"this server's Zimbra schema has no {attribute} (ZCS 5 and later have "
                    f"it); {SYNCD_OWN}",
                )
            )
            continue
        want[attribute] = "1"
        lines.append(_at_least(rule, art, attribute, have[attribute], 1))
    for rule, what in _forbidden(profile):
        lines.append(
            Line(
                rule,
                art,
                "(none)",
                "server cannot",
                "",
                f"not {what}",
                f"Zimbra has no setting for {what}; {SYNCD_OWN}",
            )
        )
    report.lines += lines
    mods: list[tuple[str, str, Sequence[str]]] = [
        ("replace", x.attribute, [want[x.attribute]])
        for x in lines
        if x.status == "drift" and x.attribute in want
    ]
    if mods:
        report.changes.append(
            Change(f"Zimbra's default class of service ({art})", cos, "modify", mods=mods)
        )
        report.notes.append("Zimbra caches classes of service: run `zmprov flushCache cos`")


# -- entry points ------------------------------------------------------------------------------


def compare(
    conn: Connection, cfg: DirectoryConfig, profile: Profile, *, cos: str = ZIMBRA_COS
) -> PolicyReport:
    """The directory's policy (read through ``conn``) against ``profile``'s rule, with the
    changes that would bring it in line."""
    report = PolicyReport(profile.id, cfg.profile, "")
    try:
        if cfg.profile in OPENLDAP_PROFILES:
            _ppolicy(conn, cfg, profile, report)
        elif cfg.profile == "zimbra":
            _zimbra(conn, profile, report, cos)
        elif cfg.profile == "ad":
            from connectors.directory.policy_ad import ad_policy

            age = profile.password.max_age
            ad_policy(conn, cfg, profile, report, shortest_days(age) if age else None)
        else:
            raise DirectoryError(
                f"syncd policy: the {cfg.profile} profile's password policy is not supported yet"
            )
    except LDAPException as exc:
        raise DirectoryError(f"reading the password policy: {exc}") from exc
    return report


def check(
    cfg: DirectoryConfig, domain: str, password: str, profile: Profile, *, cos: str = ZIMBRA_COS
) -> PolicyReport:
    """Read as the service DN (which reads the policy: ``directory init``'s access rules)."""
    conn = bind(cfg, domain, cfg.bind_dn, password)
    try:
        return compare(conn, cfg, profile, cos=cos)
    finally:
        conn.unbind()


def apply(
    conn: Connection,
    cfg: DirectoryConfig,
    profile: Profile,
    *,
    dry_run: bool,
    cos: str = ZIMBRA_COS,
    applied: Callable[[Change], None] = lambda _: None,
) -> PolicyReport:
    """Write what the regulation asks, through ``conn`` (an administrator's); idempotent: a
    policy in line plans nothing. Each change made is told to ``applied`` as it is made."""
    report = compare(conn, cfg, profile, cos=cos)
    if dry_run:
        return report
    for change in report.changes:
        try:
            apply_change(conn, change, "")
        except DirectoryError as exc:
            if conn.result.get("result") == 50:  # insufficientAccessRights
                raise DirectoryError(
                    f"{exc}: the service DN may only read the policy; run as root on the slapd "
                    "host with --admin-url ldapi:///, or give --admin-dn and "
                    "--admin-password-file"
                ) from exc
            raise
        applied(change)
    return report


__all__ = ["Line", "PolicyReport", "apply", "check", "compare", "shortest_days"]
