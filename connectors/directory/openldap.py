"""The generic OpenLDAP + ppolicy directory profile (ldap3).

- Reads the managed scope with ONE paged search and checks every page: a size limit, a
  missing paging control or any non-success result aborts the read (``ReadIncomplete``), so
  "not read" is never taken for "not there". What it asks for is derived from
  ``FIELD_ATTRIBUTES`` (Account field → attributes), operational attributes named explicitly.
- ``names()`` is a second paged search, checked the same way: every uid and mail under the
  base, whatever the scope of the run.
- ``get_info=NONE`` is pinned: every attribute value arrives as a list of ``str``.
- Every DN is built with RDN escaping and every filter value with filter escaping.
- Passwords go through the RFC 3062 password-modify operation, so the server hashes them with
  its own scheme; ``pwdReset: TRUE`` makes the first login change them (the mail server's
  login filter must check it: see docs/mail-server.md).
- The purge archive is written by ldap3's RFC 2849 writer, operational attributes included.
- A lock or revocation sets ``pwdAccountLockedTime`` to a real timestamp (the policy needs
  ``pwdLockout: TRUE`` and no lockout duration), which both blocks the bind and keeps the date.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import structlog
from ldap3 import (
    ALL_ATTRIBUTES,
    ALL_OPERATIONAL_ATTRIBUTES,
    BASE,
    MODIFY_ADD,
    MODIFY_REPLACE,
    NONE,
    SUBTREE,
    Connection,
    Server,
    Tls,
)
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.rfc2849 import add_ldif_header, operation_to_ldif
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from connectors.config import DirectoryConfig
from syncd.model import Account, Action, Field, Kind, State
from syncd.ports import DirectoryError, ReadIncomplete, Scope

log = structlog.get_logger("syncd.directory")

PAGED_RESULTS = "1.2.840.113556.1.4.319"
GENERALIZED = "%Y%m%d%H%M%SZ"
# The read is a contract: each Account field and the attributes it is read from. The search
# names exactly these, operational ones included (slapd returns pwdLastSuccess, authTimestamp,
# pwdChangedTime, createTimestamp and pwdReset only when asked; "+" would also bring
# entryCSN, entryDN, … for every entry). A field missing here is a field never read.
FIELD_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "dn": (),  # the entry's name, not an attribute
    "uid": ("uid",),
    "cn": ("cn",),
    "sn": ("sn",),
    "given_name": ("givenName",),
    "mail": ("mail",),
    "employee_number": ("employeeNumber",),
    "org": ("ou",),
    "office": ("departmentNumber",),
    "title": ("title",),
    "state": ("syncdState",),
    "state_since": ("syncdStateSince",),
    "state_reason": ("syncdStateReason",),
    "managed": ("syncdManaged",),
    "kind": ("syncdKind",),
    "aliases": ("syncdAlias",),
    "has_syncd_class": ("objectClass",),
    # the newest login: ppolicy's pwdLastSuccess (olcLastBind, exact, deleted by a password
    # change) and lastbind's authTimestamp (survives it, written at most once per precision)
    "last_login": ("pwdLastSuccess", "authTimestamp"),
    "password_changed": ("pwdChangedTime",),
    "created": ("createTimestamp",),
    "must_change_password": ("pwdReset",),
}


# What the core writes (syncd.model.Field) and where this profile keeps it: every field goes
# to the attributes it is read from, and the name is also the entry's displayName.
WRITES: dict[Field, tuple[str, ...]] = {
    f: FIELD_ATTRIBUTES[f.value] + (("displayName",) if f is Field.NAME else ()) for f in Field
}


def to_attributes(values: Mapping[Field, tuple[str, ...]]) -> dict[str, list[str]]:
    """The core's field values as this profile's LDAP attributes."""
    out: dict[str, list[str]] = {}
    for f, v in values.items():
        for name in WRITES[Field(f)]:
            out[name] = list(v)
    return out


def _attributes(names: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(a for f in names for a in FIELD_ATTRIBUTES[f]))


ATTRIBUTES = _attributes(tuple(FIELD_ATTRIBUTES))
# names(): the whole namespace, any class, any state: every entry holding a uid or a mail
NAME_FIELDS = ("dn", "uid", "cn", "mail", "aliases", "kind", "managed", "employee_number")
NAME_ATTRIBUTES = _attributes(NAME_FIELDS)
NAMES_FILTER = "(|(uid=*)(mail=*))"
MAX_SCOPED_PEOPLE = 200
# Result codes worth a retry: busy, unavailable, unwillingToPerform, timeLimitExceeded, other.
TRANSIENT = {3, 51, 52, 53, 80}


def _first(entry: Mapping[str, Any], name: str) -> str | None:
    values = entry.get(name) or []
    return str(values[0]) if values else None


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value[:14] + "Z", GENERALIZED).replace(tzinfo=UTC)
    except ValueError:
        return None


def _managed(a: Mapping[str, Any]) -> bool:
    return (_first(a, "syncdManaged") or "TRUE").upper() != "FALSE"


def _kind(a: Mapping[str, Any]) -> Kind:
    return (
        Kind.ORGANISATION
        if (_first(a, "syncdKind") or "").lower() == "organisation"
        else Kind.PERSON
    )


def _stamp(when: datetime | None) -> str:
    """Generalized time of ``when`` (the wall clock if None), in UTC."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime(GENERALIZED)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenLdapDirectory:
    """:class:`syncd.ports.Directory` for OpenLDAP with the ppolicy overlay."""

    def __init__(self, config: DirectoryConfig, password: str, domain: str) -> None:
        self.config = config
        self.domain = domain
        self.base = config.base_dn
        self._known_ous: set[str] = set()
        url = urlparse(config.url)
        host = url.hostname or ""
        secure = url.scheme == "ldaps" or config.start_tls
        tls = None
        if secure:
            # verification is always on: the CA file, or the system's trust store
            tls = Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_file=str(config.ca_file) if config.ca_file else None,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        elif not _is_loopback(host):
            if not config.allow_insecure:
                raise DirectoryError(
                    f"{config.url}: plain ldap:// is only allowed to loopback; use ldaps://, "
                    "directory.start_tls: true, or set directory.allow_insecure: true"
                )
            log.warning(
                "plain ldap:// to a remote directory: passwords cross the network "
                "unencrypted (directory.allow_insecure: true)",
                url=config.url,
            )
        self.server = Server(config.url, get_info=NONE, connect_timeout=config.timeout, tls=tls)
        self._password = password
        self._conn: Connection | None = None

    # -- connection ---------------------------------------------------------------------------

    @property
    def conn(self) -> Connection:
        if self._conn is None or self._conn.closed:
            try:
                conn = Connection(
                    self.server,
                    self.config.bind_dn,
                    self._password,
                    receive_timeout=int(self.config.timeout),
                    raise_exceptions=False,
                    read_only=False,
                )
                if self.config.start_tls:
                    conn.open()
                    if not conn.start_tls():
                        raise DirectoryError(
                            f"StartTLS refused by {self.config.url}: "
                            f"{conn.result.get('description')}"
                        )
                if not conn.bind():
                    raise DirectoryError(
                        f"cannot bind to {self.config.url} as {self.config.bind_dn}: "
                        f"{conn.result.get('description')}",
                        transient=conn.result.get("result") in TRANSIENT,
                    )
            except (LDAPException, OSError) as exc:
                raise DirectoryError(
                    f"cannot reach {self.config.url}: {exc}", transient=True
                ) from exc
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.unbind()
            self._conn = None

    def _check(self, ok: bool, what: str) -> None:
        if not ok:
            r = self.conn.result
            detail = f"{r.get('description')} ({r.get('result')}) {r.get('message') or ''}"
            raise DirectoryError(
                f"{what}: {detail.strip()}",
                transient=r.get("result") in TRANSIENT,
            )

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            ok = fn(*args, **kwargs)
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"{what}: {exc}", transient=True) from exc
        self._check(ok, what)

    def _modify(self, dn: str, changes: dict[str, Any], what: str) -> None:
        """Modify; an entry made before syncd first gets syncd's auxiliary class."""
        ok = self.conn.modify(dn, changes)
        if (
            not ok
            and self.conn.result.get("result") == 65
            and any(k.lower().startswith("syncd") for k in changes)
        ):
            self._add_class(dn)
            ok = self.conn.modify(dn, changes)
        self._check(ok, what)

    def _add_class(self, dn: str) -> None:
        ok = self.conn.modify(dn, {"objectClass": [(MODIFY_ADD, ["syncdAccount"])]})
        if not ok and self.conn.result.get("result") != 20:  # 20: the class is already there
            self._check(False, f"adding syncd's class to {dn}")

    # -- reading ------------------------------------------------------------------------------

    def scope_filter(self, scope: Scope) -> str:
        """The filter of the one search; a scoped run reads only what its files touch.

        A file with many people would need a huge OR of employee numbers (slow to build in
        ldap3 and to evaluate in slapd); past ``MAX_SCOPED_PEOPLE`` the whole managed base is
        read instead, which is cheaper and just as correct (the plan stays scoped).
        """
        base = "(objectClass=inetOrgPerson)"
        if scope.orgs is None or len(scope.employee_numbers) > MAX_SCOPED_PEOPLE:
            return base
        parts = [f"(ou={escape_filter_chars(o)})" for o in sorted(scope.orgs)]
        # aliases kept after a transfer carry the organisation too (hungdv.skhcn@…)
        parts += [
            f"(mail=*.{escape_filter_chars(o)}@{escape_filter_chars(self.domain)})"
            for o in sorted(scope.orgs)
        ]
        parts += [
            f"(employeeNumber={escape_filter_chars(e)})" for e in sorted(scope.employee_numbers)
        ]
        parts.append("(!(employeeNumber=*))")  # accounts waiting to be linked
        return f"(&{base}(|{''.join(parts)}))"

    def read(self, scope: Scope) -> list[Account]:
        """One paged search over the managed base; every page is checked."""
        return [
            self._account(dn, attrs)
            for dn, attrs in self._search(self.scope_filter(scope), ATTRIBUTES)
        ]

    def names(self) -> list[Account]:
        """Every entry under the base with a uid or a mail, whatever its class, state or scope.

        The names only (dn, uid, cn, mail, aliases, kind, managed, employee number): what a run
        needs so that no uid or address ever seen is given to someone else.
        """
        return [self._name(dn, attrs) for dn, attrs in self._search(NAMES_FILTER, NAME_ATTRIBUTES)]

    def _search(self, flt: str, attributes: list[str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """One paged subtree search of the base; a page cut short raises ReadIncomplete."""
        count = 0
        cookie: bytes | None = None
        pages = 0
        while True:
            try:
                self.conn.search(
                    self.base,
                    flt,
                    search_scope=SUBTREE,
                    attributes=attributes,
                    paged_size=self.config.page_size,
                    paged_cookie=cookie,
                )
            except LDAPException as exc:
                self._conn = None
                raise ReadIncomplete(f"reading {self.base}: {exc}", transient=True) from exc
            result = self.conn.result
            pages += 1
            if result.get("result") != 0:
                raise ReadIncomplete(
                    f"reading {self.base} stopped after {count} entries, page {pages}: "
                    f"{result.get('description')} ({result.get('result')}); nothing was changed",
                    transient=result.get("result") in TRANSIENT,
                )
            control = (result.get("controls") or {}).get(PAGED_RESULTS)
            if control is None:
                raise ReadIncomplete(
                    f"reading {self.base}: the server ignored the paging control after "
                    f"{count} entries (a size limit?); nothing was changed"
                )
            for item in self.conn.response or []:
                if item.get("type") == "searchResEntry":
                    count += 1
                    yield item["dn"], item["attributes"]
            cookie = control["value"]["cookie"]
            if not cookie:
                return

    def _name(self, dn: str, a: Mapping[str, Any]) -> Account:
        return Account(
            dn=dn,
            uid=(_first(a, "uid") or "").lower(),
            cn=_first(a, "cn") or "",
            mail=tuple(str(m) for m in a.get("mail", [])),
            employee_number=_first(a, "employeeNumber"),
            managed=_managed(a),
            kind=_kind(a),
            aliases=tuple(str(x) for x in a.get("syncdAlias", [])),
        )

    def _account(self, dn: str, a: Mapping[str, Any]) -> Account:
        classes = {str(c).lower() for c in a.get("objectClass", [])}
        state = (_first(a, "syncdState") or "active").lower()
        return Account(
            dn=dn,
            uid=(_first(a, "uid") or "").lower(),
            cn=_first(a, "cn") or "",
            sn=_first(a, "sn") or "",
            given_name=_first(a, "givenName") or "",
            mail=tuple(str(m) for m in a.get("mail", [])),
            employee_number=_first(a, "employeeNumber"),
            org=_first(a, "ou"),
            office=_first(a, "departmentNumber"),
            title=_first(a, "title"),
            state=State(state) if state in State._value2member_map_ else State.ACTIVE,
            state_since=_since(_first(a, "syncdStateSince")),
            state_reason=_first(a, "syncdStateReason"),
            managed=_managed(a),
            kind=_kind(a),
            aliases=tuple(str(x) for x in a.get("syncdAlias", [])),
            has_syncd_class="syncdaccount" in classes,
            last_login=max(
                (
                    t
                    for t in (
                        _since(_first(a, "pwdLastSuccess")),
                        _since(_first(a, "authTimestamp")),
                    )
                    if t
                ),
                default=None,
            ),
            password_changed=_since(_first(a, "pwdChangedTime")),
            created=_since(_first(a, "createTimestamp")),
            must_change_password=(_first(a, "pwdReset") or "").upper() == "TRUE",
        )

    # -- writing ------------------------------------------------------------------------------

    def dn_for(self, uid: str, org: str | None) -> str:
        rdn = f"uid={escape_rdn(uid)}"
        if self.config.layout == "per-org" and org:
            return f"{rdn},ou={escape_rdn(org)},{self.base}"
        return f"{rdn},{self.base}"

    def _ensure_ou(self, org: str | None) -> None:
        if self.config.layout != "per-org" or not org or org in self._known_ous:
            return
        dn = f"ou={escape_rdn(org)},{self.base}"
        ok = self.conn.add(dn, ["organizationalUnit"], {"ou": org})
        if not ok and self.conn.result.get("result") != 68:  # 68: already exists
            self._check(False, f"creating {dn}")
        self._known_ous.add(org)

    def create(self, action: Action, password: str, *, since: datetime | None = None) -> str:
        """``since``: when the account enters its state (the plan's ``now``); default: now."""
        dn = self.dn_for(action.uid, action.org)
        self._ensure_ou(action.org)
        now = _stamp(since)
        attrs: dict[str, Any] = {k: v for k, v in to_attributes(action.attrs).items() if v}
        attrs.update(
            syncdKind="organisation" if action.kind.value == "create-org-mailbox" else "person",
            syncdState=State.PROVISIONING.value,
            syncdStateSince=now,
            syncdStateReason=f"{action.reason} [{action.article}]"[:1000],
        )
        attrs[self.config.delivery_attribute] = "TRUE"
        self._call(f"creating {dn}", self.conn.add, dn, ["inetOrgPerson", "syncdAccount"], attrs)
        try:
            # Only with its password is it a mailbox: a crash before this leaves
            # "provisioning", which the next run finishes (new one-time password and slip).
            self.set_password(dn, password, activate=True)
        except DirectoryError:
            # Never leave a mailbox that nobody can open: undo the add, report the failure.
            self.conn.delete(dn)
            raise
        return dn

    def update(
        self,
        dn: str,
        attrs: Mapping[Field, tuple[str, ...]],
        *,
        link: bool = False,
        since: datetime | None = None,
    ) -> None:
        """``link`` makes the entry syncd's, active ``since`` (the plan's ``now``; default now)."""
        changes: dict[str, list[tuple[str, list[str]]]] = {
            k: [(MODIFY_REPLACE, v)] for k, v in to_attributes(attrs).items()
        }
        if link:
            now = _stamp(since)
            self._add_class(dn)
            changes.update(
                syncdKind=[(MODIFY_REPLACE, ["person"])],
                syncdState=[(MODIFY_REPLACE, [State.ACTIVE.value])],
                syncdStateSince=[(MODIFY_REPLACE, [now])],
            )
            changes[self.config.delivery_attribute] = [(MODIFY_REPLACE, ["TRUE"])]
        if changes:
            self._modify(dn, changes, f"updating {dn}")

    def move(self, dn: str, new_uid: str, attrs: Mapping[Field, tuple[str, ...]]) -> str:
        org = (attrs.get(Field.ORG) or (None,))[0]
        new_dn = self.dn_for(new_uid, org)
        if new_dn.lower() != dn.lower():
            self._ensure_ou(org)
            parent = new_dn.split(",", 1)[1]
            old_parent = dn.split(",", 1)[1]
            self._call(
                f"renaming {dn} to {new_dn}",
                self.conn.modify_dn,
                dn,
                f"uid={escape_rdn(new_uid)}",
                delete_old_dn=True,
                new_superior=parent if parent.lower() != old_parent.lower() else None,
            )
        self.update(new_dn, attrs)
        return new_dn

    def set_password(self, dn: str, password: str, *, activate: bool = False) -> None:
        self._call(
            f"setting the one-time password of {dn}",
            self.conn.extend.standard.modify_password,
            dn,
            None,
            password,
        )
        changes = {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]}
        if activate:
            changes["syncdState"] = [(MODIFY_REPLACE, [State.ACTIVE.value])]
        self._call(f"flagging {dn} to change its password", self.conn.modify, dn, changes)

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        stamp = since.astimezone(UTC).strftime(GENERALIZED)
        # slapd only enforces a lock time that has passed: never write one in the future
        locked_at = min(since, datetime.now(UTC)).astimezone(UTC).strftime(GENERALIZED)
        blocked = state is not State.ACTIVE
        changes = {
            "syncdState": [(MODIFY_REPLACE, [state.value])],
            "syncdStateSince": [(MODIFY_REPLACE, [stamp])],
            "syncdStateReason": [(MODIFY_REPLACE, [reason[:1000]])],
            self.config.delivery_attribute: [(MODIFY_REPLACE, ["TRUE" if delivery else "FALSE"])],
            # a real timestamp: with pwdLockout TRUE and no duration the lock holds and the
            # date is kept (the special value 000001010000Z would lose it)
            "pwdAccountLockedTime": [(MODIFY_REPLACE, [locked_at] if blocked else [])],
        }
        self._modify(dn, changes, f"setting {dn} {state.value}")

    def export(self, dn: str) -> str:
        """The entry as RFC 2849 LDIF (ldap3's writer): user and operational attributes."""
        try:
            ok = self.conn.search(
                dn,
                "(objectClass=*)",
                search_scope=BASE,
                attributes=[ALL_ATTRIBUTES, ALL_OPERATIONAL_ATTRIBUTES],
            )
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"exporting {dn}: {exc}", transient=True) from exc
        self._check(ok, f"exporting {dn}")
        entries = [e for e in self.conn.response or [] if e.get("type") == "searchResEntry"]
        if len(entries) != 1:
            raise DirectoryError(f"exporting {dn}: {len(entries)} entries returned")
        # raw values (bytes), objectClass first; base64 and line folding as RFC 2849 says
        lines = operation_to_ldif("searchResponse", entries)
        # its trailing blank line and "# total number of entries" comment are not the record's
        record = add_ldif_header([line for line in lines if line and not line.startswith("#")])
        return "\n".join(record) + "\n"

    def delete(self, dn: str) -> None:
        self._call(f"deleting {dn}", self.conn.delete, dn)
