"""Active Directory (profile ``ad``): ``user`` objects, as a Windows DC or a Samba AD DC keeps them.

What differs from the generic profile (:mod:`connectors.directory.openldap`, which it extends;
the paged, checked reads, escaping, connection and export are shared):

- **Names.** The entry is ``CN=<uid>,<place>`` (the RDN of a ``user`` is always ``cn``, so the
  full name lives in ``displayName``). The uid is kept whole in ``uid`` (RFC 2307, in every AD
  schema since 2003 R2); ``sAMAccountName`` holds at most 20 characters, so a longer uid gets a
  derived one (``sam_account_name``: its first characters and a digest of the whole uid, made
  unique in the domain), and the address stays whole in ``userPrincipalName``, ``mail`` and
  ``proxyAddresses``. An entry made before syncd without ``uid`` is read by its
  ``sAMAccountName``.
- **Addresses.** ``mail`` is single-valued in AD: it holds the primary address; every address
  is in ``proxyAddresses``, ``SMTP:`` (upper case) for the primary and ``smtp:`` for the others
  (the transfer aliases), as Exchange and every AD-aware mail server read them. Other proxy types
  (``X500:``, ``sip:``) an entry already has are kept.
- **Passwords.** Only ``unicodePwd`` (the quoted password in UTF-16LE), only over an encrypted
  connection (LDAPS or StartTLS): the DC hashes it and applies the domain's password policy
  (a refusal is a ``DirectoryError`` naming the entry, never the password). ``pwdLastSet: 0``
  makes the first login change it: until then a bind fails with ``data 773``.
- **States.** ``userAccountControl`` bit ``ACCOUNTDISABLE`` (0x2) blocks login for every state
  but active (a bind fails with ``data 533``); the other bits an entry has are kept. The state,
  its date and reason, and delivery are syncd's own attributes, as in the generic profile: AD
  has none for them (Exchange's ``extensionAttributeN`` are not in a plain AD or Samba schema),
  so the forest's schema is extended once with ``syncd-schema-ad.ldif`` (the same names, AD's
  syntaxes; ``syncdAccount`` is a dynamic auxiliary class). Delivery is ``syncdDelivery``; the
  mail server's lookup is ``delivery_filter()``.
- **Activity.** The last login is the newest of ``lastLogonTimestamp`` (replicated, but
  rewritten only when older than ``msDS-LogonTimeSyncInterval``, 14 days by default, minus a
  random 0-5 days: a login is known to within 9-14 days — ``ACTIVITY_NOTE``, printed by
  ``syncd rules``) and ``lastLogon`` (exact, but kept by each DC for the logins it served).
  ``password_changed`` is when the DC last stored ``unicodePwd`` (its replication metadata,
  ``replPropertyMetaData``), because ``pwdLastSet`` is 0 while the change is pending.
  Timestamps syncd writes are AD generalized time (``YYYYmmddHHMMSS.0Z``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlparse

from ldap3 import BASE, MODIFY_REPLACE, SUBTREE
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from connectors.config import DirectoryConfig
from connectors.directory.openldap import (
    OpenLdapDirectory,
    split_dn,
    writes_for,
)
from syncd.model import Account, Action, Field, State
from syncd.ports import DirectoryError, Scope

AD_TIME = "%Y%m%d%H%M%S.0Z"  # AD's generalized time: the fraction is required
ACCOUNTDISABLE = 0x2
NORMAL_ACCOUNT = 0x200
SAM_MAX = 20  # sAMAccountName's limit for users (pre-Windows 2000 logon name)
# ATTRTYP of unicodePwd: the same in every AD (the schema's fixed prefix table)
UNICODE_PWD_ATTID = 0x9005A
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
NEVER = {0, 0x7FFFFFFFFFFFFFFF}
# AD's schema bounds these (rangeUpper, as Windows and Samba ship it): a longer value is refused
# before it is sent, naming the field and the value, not with AD's "invalid value"
RANGE_UPPER: dict[str, int] = {
    "employeeID": 16,
    "givenName": 64,
    "sn": 64,
    "ou": 64,
    "title": 128,
    "displayName": 256,
    "mail": 256,
}
# a person's or an organisation's mailbox; computers are users too, but not persons
USERS = "(&(objectCategory=person)(objectClass=user))"

FIELD_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "dn": (),
    "uid": ("uid", "sAMAccountName"),  # written to uid; sAMAccountName is derived
    "cn": ("displayName", "cn"),  # written to displayName: cn is the RDN (the uid)
    "sn": ("sn",),
    "given_name": ("givenName",),
    "mail": ("proxyAddresses", "mail"),  # written by ``addresses``
    "employee_number": ("employeeID",),
    "org": ("ou",),
    "office": ("departmentNumber",),
    "title": ("title",),
    "state": ("syncdState",),
    "state_since": ("syncdStateSince",),
    "active_since": ("syncdActiveSince",),
    "state_reason": ("syncdStateReason",),
    "managed": ("syncdManaged",),
    "kind": ("syncdKind",),
    "aliases": ("syncdAlias",),
    "has_syncd_class": ("objectClass",),
    "last_login": ("lastLogonTimestamp", "lastLogon"),
    "password_changed": ("replPropertyMetaData",),
    "created": ("whenCreated",),
    "must_change_password": ("pwdLastSet",),
    "drift": ("userAccountControl",),  # ACCOUNTDISABLE, which ADUC's "Enable Account" clears
    "receives_mail": ("syncdDelivery",),
    "forwarding": (),  # Exchange's forwarding (altRecipient) is not read: nothing to check
}


def ad_time(when: datetime | None) -> str:
    """``when`` (the wall clock if None) as AD generalized time, in UTC."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime(AD_TIME)


def filetime(value: str | None) -> datetime | None:
    """An AD integer time (100 ns since 1601, UTC) to whole seconds; 0 and "never" are None."""
    try:
        ticks = int(value or 0)
    except ValueError:
        return None
    if ticks in NEVER or ticks < 0:
        return None
    return (FILETIME_EPOCH + timedelta(microseconds=ticks // 10)).replace(microsecond=0)


def password_stored(blob: bytes | str | None) -> datetime | None:
    """When ``unicodePwd`` was last written, from ``replPropertyMetaData``
    (PROPERTY_META_DATA_EXT_VECTOR, MS-DRSR 5.162: version, reserved, count, reserved, then
    48-byte records of attid, version, originating time in seconds since 1601, …)."""
    if not blob:
        return None
    # ldap3 without schema gives bytes, or str when the bytes happened to be valid UTF-8
    raw = blob.encode("utf-8", "surrogateescape") if isinstance(blob, str) else bytes(blob)
    try:
        _, _, count, _ = struct.unpack_from("<IIII", raw, 0)
        for i in range(count):
            attid, _, seconds = struct.unpack_from("<IIQ", raw, 16 + 48 * i)
            if attid == UNICODE_PWD_ATTID:
                return FILETIME_EPOCH + timedelta(seconds=seconds)
    except struct.error:
        return None
    return None


def sam_account_name(uid: str, attempt: int = 0) -> str:
    """The ``sAMAccountName`` of ``uid``: the uid itself when it fits in 20 characters, else
    its first 13 characters, ``-`` and 6 hexadecimal digits of a digest of the whole uid
    (``attempt`` 1, 2, … picks further digits when that name is taken). Stable, so a re-run
    derives the same name."""
    if len(uid) <= SAM_MAX:
        return uid
    digest = hashlib.sha256(uid.encode()).hexdigest()
    tail = digest[6 * attempt : 6 * attempt + 6] or f"{attempt:06x}"
    # a name may not end with a dot (Windows drops it)
    return f"{uid[:13].rstrip('.')}-{tail}"


def _addresses(mail: tuple[str, ...], kept: list[str]) -> dict[str, list[str]]:
    """``mail`` (the primary first) as ``mail`` and ``proxyAddresses``; ``kept``: the entry's
    proxy addresses of other types, which stay."""
    proxies = [f"SMTP:{a}" if i == 0 else f"smtp:{a}" for i, a in enumerate(mail)]
    return {"mail": list(mail[:1]), "proxyAddresses": [*proxies, *kept]}


class ActiveDirectory(OpenLdapDirectory):
    """:class:`syncd.ports.Directory` for Active Directory (Windows or Samba AD DC)."""

    FIELD_ATTRIBUTES: ClassVar[Mapping[str, tuple[str, ...]]] = FIELD_ATTRIBUTES
    # shown by ``syncd rules`` beside "activity counts": how exact a login time is here
    ACTIVITY_NOTE: ClassVar[str] = (
        "a login is read from lastLogonTimestamp, which AD rewrites only when it is older than "
        "msDS-LogonTimeSyncInterval (14 days by default) minus a random 0-5 days: the last "
        "login may be 9-14 days older than the real one, so an inactivity lock can come that "
        "much early (lastLogon of the DC syncd reads is exact for the logins it served)"
    )

    def __init__(self, config: DirectoryConfig, password: str, domain: str) -> None:
        super().__init__(config, password, domain)
        if (
            urlparse(config.url).scheme != "ldaps"
            and not config.start_tls
            and not config.allow_insecure
        ):
            # said now, not at the first password a DC refuses (unwillingToPerform)
            raise DirectoryError(
                f"directory.url: {config.url}: the ad profile sets passwords (unicodePwd), which "
                "Active Directory takes only over an encrypted connection; use ldaps:// or "
                "directory.start_tls: true"
            )
        # sAMAccountName is unique in the whole domain, not only under base_dn
        self.domain_root = ",".join(r for r in split_dn(self.base) if r.lower().startswith("dc="))

    # -- reading ------------------------------------------------------------------------------

    def scope_filter(self, scope: Scope) -> str:
        return super().scope_filter(scope).replace("(objectClass=inetOrgPerson)", USERS, 1)

    def _all(self, a: Mapping[str, Any], name: str) -> tuple[str, ...]:
        if name != "mail":
            return super()._all(a, name)
        # every SMTP proxy address, the primary (SMTP:) first; else mail (an entry made by hand)
        proxies = [str(p) for p in a.get("proxyAddresses") or []]
        primary = [p[5:] for p in proxies if p.startswith("SMTP:")]
        others = sorted(p[5:] for p in proxies if p.startswith("smtp:"))
        return tuple(primary + others) or tuple(str(m) for m in a.get("mail") or [])

    def _account(self, dn: str, a: Mapping[str, Any]) -> Account:
        account = super()._account(dn, a)
        logins = [
            filetime(str(v))
            for name in ("lastLogonTimestamp", "lastLogon")
            for v in a.get(name) or []
        ]
        meta = a.get("replPropertyMetaData") or [None]
        # pwdLastSet 0: the change at next logon is pending
        pending = self._get(a, "must_change_password") == "0"
        return replace(
            account,
            last_login=max((t for t in logins if t), default=None),
            password_changed=password_stored(meta[0]),
            must_change_password=pending,
        )

    def wire_drift(self, a: Mapping[str, Any], state: State) -> tuple[str, ...]:
        """A locked or revoked account must carry ACCOUNTDISABLE, an active one must not; AD
        has no ppolicy lock."""
        uac = self._get(a, "drift")
        blocked = state in (State.LOCKED, State.REVOKED)
        if blocked and uac is not None and not int(uac) & ACCOUNTDISABLE:
            return (f"ACCOUNTDISABLE cleared (userAccountControl {uac}): the account logs in",)
        if state is State.ACTIVE and uac is not None and int(uac) & ACCOUNTDISABLE:
            # disabled in ADUC while syncd records it active: named, never re-enabled (drift.py)
            return (f"ACCOUNTDISABLE set (userAccountControl {uac}) on an active account",)
        return ()

    def delivery_filter(self, address: str) -> str:
        a = escape_filter_chars(address)
        return (
            f"(&{USERS}(|(mail={a})(proxyAddresses=smtp:{a}))"
            f"(!({self.config.delivery_attribute}=FALSE)))"
        )

    # -- writing ------------------------------------------------------------------------------

    def place_of(self, org: str | None) -> str:
        """As the generic layouts, spelt as AD spells DNs it returns (``OU=``), so the DN a
        change returns is the DN a later read gives."""
        if self.per_org and org:
            return f"OU={escape_rdn(org)},{self.base}"
        return self.base

    def dn_for(self, uid: str, org: str | None) -> str:
        return f"CN={escape_rdn(uid)},{self.place_of(org)}"

    def attributes_of(self, values: Mapping[Field, tuple[str, ...]]) -> dict[str, list[str]]:
        """The field values as AD attributes: uid to ``uid`` (``sAMAccountName`` and the UPN
        are written where the uid is given, by ``create`` and ``move``), the addresses as
        ``mail`` and ``proxyAddresses``."""
        out: dict[str, list[str]] = {}
        for f, v in values.items():
            field = Field(f)
            if field is Field.MAIL:
                continue
            for name in self.WRITES[field]:
                out[name] = list(v)
        return out

    @staticmethod
    def _fits(dn: str, attrs: Mapping[str, Any]) -> None:
        """Refuse, before anything is sent, a value longer than AD's schema holds."""
        for name, limit in RANGE_UPPER.items():
            for value in attrs.get(name) or []:
                if len(value) > limit:
                    raise DirectoryError(
                        f"{dn}: {name} {value!r} has {len(value)} characters; Active "
                        f"Directory's schema holds at most {limit}; nothing was changed"
                    )

    def _proxies_kept(self, dn: str) -> list[str]:
        """The entry's proxy addresses that are not SMTP (X500:, sip:, …): they stay."""
        found = self._base_read(dn, ["proxyAddresses"])
        return [str(p) for p in found.get("proxyAddresses") or [] if str(p)[:5].lower() != "smtp:"]

    def _base_read(self, dn: str, attributes: list[str]) -> Mapping[str, Any]:
        try:
            ok = self.conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=attributes)
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"reading {dn}: {exc}", transient=True) from exc
        self._check(ok, f"reading {dn}")
        found = [e for e in self.conn.response or [] if e.get("type") == "searchResEntry"]
        if len(found) != 1:
            raise DirectoryError(f"reading {dn}: {len(found)} entries returned")
        attrs: Mapping[str, Any] = found[0]["attributes"]
        return attrs

    def _free_sam(self, uid: str, dn: str | None = None) -> str:
        """A ``sAMAccountName`` for ``uid`` that no other entry of the domain holds."""
        if len(uid) <= SAM_MAX:
            return uid  # the uid itself: a clash is the directory's refusal, naming the entry
        for attempt in range(10):
            name = sam_account_name(uid, attempt)
            try:
                ok = self.conn.search(
                    self.domain_root or self.base,
                    f"(sAMAccountName={escape_filter_chars(name)})",
                    search_scope=SUBTREE,
                    attributes=["sAMAccountName"],
                )
            except LDAPException as exc:
                self._conn = None
                raise DirectoryError(f"looking up {name}: {exc}", transient=True) from exc
            self._check(ok, f"looking up sAMAccountName {name} for {uid}")
            holders = {
                str(e["dn"]).lower()
                for e in self.conn.response or []
                if e.get("type") == "searchResEntry"
            }
            if not holders or holders == {(dn or "").lower()}:
                return name
        raise DirectoryError(f"no free sAMAccountName for {uid}: ten derived names are taken")

    def _names_of(self, uid: str, dn: str | None = None) -> dict[str, list[str]]:
        return {
            "uid": [uid],
            "sAMAccountName": [self._free_sam(uid, dn)],
            "userPrincipalName": [f"{uid}@{self.domain}"],
        }

    def create(self, action: Action, password: str, *, since: datetime | None = None) -> str:
        """A disabled ``user`` in ``provisioning``; enabled once its password is set."""
        dn = self.dn_for(action.uid, action.org)
        now = ad_time(since)
        attrs: dict[str, Any] = {k: v for k, v in self.attributes_of(action.attrs).items() if v}
        attrs.update(
            {k: v for k, v in _addresses(action.attrs.get(Field.MAIL, ()), []).items() if v}
        )
        self._fits(dn, attrs)
        self._ensure_ou(action.org)
        attrs.update(self._names_of(action.uid))
        attrs.update(
            userAccountControl=str(NORMAL_ACCOUNT | ACCOUNTDISABLE),
            syncdKind="organisation" if action.kind.value == "create-org-mailbox" else "person",
            syncdState=State.PROVISIONING.value,
            syncdStateSince=now,
            syncdActiveSince=now,
            syncdStateReason=f"{action.reason} [{action.article}]"[:1000],
        )
        classes, delivery = self.delivering()
        attrs.update(delivery)
        self._call(f"creating {dn}", self.conn.add, dn, ["user", "syncdAccount", *classes], attrs)
        try:
            self.set_password(dn, password, activate=True)
        except DirectoryError:
            self.conn.delete(dn)  # never leave a mailbox nobody can open
            raise
        return dn

    def update(
        self,
        dn: str,
        attrs: Mapping[Field, tuple[str, ...]],
        *,
        link: bool = False,
        since: datetime | None = None,
    ) -> str:
        dn = self._where(dn)
        values = {k: v for k, v in self.attributes_of(attrs).items() if k != "uid"}
        if Field.MAIL in attrs:
            values.update(_addresses(attrs[Field.MAIL], self._proxies_kept(dn)))
        if attrs.get(Field.UID):
            values.update(self._names_of(attrs[Field.UID][0], dn))
        self._fits(dn, values)
        changes: dict[str, list[tuple[str, list[str]]]] = {
            k: [(MODIFY_REPLACE, v)] for k, v in values.items()
        }
        if link:
            now = ad_time(since)
            self._add_class(dn)
            changes.update(
                syncdKind=[(MODIFY_REPLACE, ["person"])],
                syncdState=[(MODIFY_REPLACE, [State.ACTIVE.value])],
                syncdStateSince=[(MODIFY_REPLACE, [now])],
                syncdActiveSince=[(MODIFY_REPLACE, [now])],
            )  # userAccountControl untouched: adopting never enables what an admin disabled
            changes.update(self.delivery_changes(dn, True))
        if changes:
            self._modify(dn, changes, f"updating {dn}")
        return dn

    def move(self, dn: str, new_uid: str, attrs: Mapping[Field, tuple[str, ...]]) -> str:
        """modrdn to ``CN=<new uid>``, then the uid's attributes (sAMAccountName, UPN)."""
        return super().move(dn, new_uid, {**attrs, Field.UID: (new_uid,)})

    def _uac(self, dn: str) -> int:
        found = self._base_read(dn, ["userAccountControl"])
        values = found.get("userAccountControl") or [str(NORMAL_ACCOUNT)]
        return int(values[0])

    def set_password(self, dn: str, password: str, *, activate: bool = False) -> None:
        """``unicodePwd`` (the DC hashes it and checks its policy), then ``pwdLastSet: 0``."""
        dn = self._where(dn)
        quoted = f'"{password}"'.encode("utf-16-le")
        self._call(
            f"setting the one-time password of {dn}",
            self.conn.modify,
            dn,
            {"unicodePwd": [(MODIFY_REPLACE, [quoted])]},
        )
        changes: dict[str, list[tuple[str, list[str]]]] = {"pwdLastSet": [(MODIFY_REPLACE, ["0"])]}
        if activate:
            changes["syncdState"] = [(MODIFY_REPLACE, [State.ACTIVE.value])]
            changes["userAccountControl"] = [
                (MODIFY_REPLACE, [str(self._uac(dn) & ~ACCOUNTDISABLE)])
            ]
        self._call(f"flagging {dn} to change its password", self.conn.modify, dn, changes)

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        """Every state but active sets ACCOUNTDISABLE (AD keeps no lock date: syncdStateSince
        does)."""
        dn = self._where(dn)
        stamp = ad_time(since)
        uac = self._uac(dn)
        uac = uac & ~ACCOUNTDISABLE if state is State.ACTIVE else uac | ACCOUNTDISABLE
        changes = {
            "syncdState": [(MODIFY_REPLACE, [state.value])],
            "syncdStateSince": [(MODIFY_REPLACE, [stamp])],
            "syncdStateReason": [(MODIFY_REPLACE, [reason[:1000]])],
            "userAccountControl": [(MODIFY_REPLACE, [str(uac)])],
            **self.delivery_changes(dn, delivery),
        }
        if state is State.ACTIVE:
            changes["syncdActiveSince"] = [(MODIFY_REPLACE, [stamp])]
        self._modify(dn, changes, f"setting {dn} {state.value}")


# uid goes to uid only, the addresses through ``_addresses`` (derived mapping otherwise)
ActiveDirectory.WRITES = {
    **writes_for(FIELD_ATTRIBUTES),
    Field.UID: ("uid",),
    Field.NAME: ("displayName",),
    Field.MAIL: (),
}

if TYPE_CHECKING:  # what the registry promises of a profile, checked by mypy
    from connectors.directory import Factory

    _: Factory = ActiveDirectory
