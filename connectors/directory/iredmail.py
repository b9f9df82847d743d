"""iRedMail's OpenLDAP layout (profile ``iredmail``): accounts as iRedMail creates them.

What differs from the generic profile (:mod:`connectors.directory.openldap`, which it extends),
so that iRedMail's own Dovecot and Postfix filters (docs/mail-server.md) see syncd's accounts
as their own:

- **Place.** ``mail=<address>,ou=Users,domainName=<domain>,o=domains,<base>``: the primary
  address is the entry's name, as iRedAdmin and iRedMail's tools make it. The domain's branch
  (``o=domains``, the ``mailDomain`` entry, ``ou=Users``) is made when missing. The
  organisation stays in ``ou`` (iRedMail has no place for it). ``directory.layout`` does not
  apply.
- **Classes.** ``inetOrgPerson``, ``mailUser`` (iRedMail's), ``shadowAccount`` (nis) and
  syncd's ``syncdAccount`` (state, reason, clocks, aliases with their expiry: iRedMail has no
  attribute for those, so syncd's schema is loaded beside iRedMail's).
- **Addresses.** ``Field.MAIL`` is spread: the primary address in ``mail`` (single, the RDN),
  every other one (the old address after a transfer, until its alias expires) in
  ``shadowAddress``, which iRedMail's filters accept for delivery and for login
  (``enabledService: shadowaddress``). Read back, ``mail`` comes first.
- **Services.** ``accountStatus`` and ``enabledService`` are what iRedMail's filters check. A
  new mailbox gets iRedMail's default services. A lock keeps ``accountStatus: active`` and the
  delivery services (``mail``, ``deliver``, ``lda``, ``lmtp``, …) but removes the login services
  (IMAP, POP3, SMTP, sieve, SOGo) — a locked mailbox still receives (Cao Bằng Đ8.1, Hưng Yên
  Đ7.1). Where the regulation says a locked mailbox receives nothing (Tuyên Quang Đ8.1), and
  for a revoke, ``accountStatus: disabled`` stops delivery too. Which of the two a lock is is
  not decided here: the core passes ``delivery`` from the regulation's
  ``lifecycle.locked_receives_mail`` (syncd/regulation/<id>.yaml). ``pwdAccountLockedTime``
  (ppolicy) blocks the bind as in the generic profile.
- **Restore gives back what the lock took.** The lock records the login services it removed
  in ``syncdLockedServices`` (syncd's schema: iRedMail has no attribute saying why a service
  is off; ``none`` when it removed none), and the restore adds exactly those back and deletes
  the record: a person whose operator had turned POP3 off does not get POP3 back from a
  lock and a restore. Only the lock that takes the services writes it (from active); a
  revoke or a put-back of a locked mailbox keeps the record as it is. An entry locked by an
  older syncd (no record) gets iRedMail's default services back, as before. Where the
  directory's syncd schema predates the attribute (``syncd doctor`` says so, ``syncd directory
  init`` brings it up to date), the lock is written without the record: a lock never fails
  for want of it.
- **Quota and storage.** ``mailQuota`` (bytes) from ``directory.quota_mb`` or
  ``directory.org_quota_mb`` (Hưng Yên Đ8.1b: 2 GB personal, 10 GB organisation), written when
  the mailbox is made; ``homeDirectory`` ``<directory.mail_storage>/<domain>/<uid>/``, which
  iRedMail's Postfix lookup returns (a mailbox without it receives nothing) and which a rename
  keeps (the mail stays where it is).
- **Delivery filter.** iRedMail's own ``virtual_mailbox_maps`` query (``delivery_filter``).
- **Forwarding.** ``mailForwardingAddress`` is read as ``Account.forwarding`` (Hưng Yên Đ4.5:
  syncd.plan.forwarding reports, or removes, the addresses outside the state's mail) and
  written back by an ``enforce`` with the addresses kept (none: the attribute goes, and
  iRedMail delivers to the mailbox itself). ``enabledService: forward`` is left as the site
  set it; the mailbox's own address among them (iRedMail's "keep a copy") is a state address
  and stays. A lock for a security reason (compromised, malware:
  :func:`syncd.plan.forwarding.lock_stops_forwarding`) also takes ``forward`` out of
  ``enabledService``, recorded in ``syncdLockedServices`` with the login services, so the
  restore gives it back exactly: the mailbox still receives (Hưng Yên Đ7.1), the attacker's
  forward no longer runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from ldap3 import BASE, MODIFY_ADD, MODIFY_REPLACE
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from connectors.config import DirectoryConfig
from connectors.directory.openldap import FIELD_ATTRIBUTES, OpenLdapDirectory
from syncd.model import Action, ActionKind, Field, State
from syncd.plan.forwarding import lock_stops_forwarding
from syncd.ports import DirectoryError

log = structlog.get_logger("syncd.directory")

GENERIC_DELIVERY = "syncdDelivery"  # directory.delivery_attribute's default: not used here
CLASSES = ["mailUser", "shadowAccount"]
# Services whose filters let a person in (Dovecot's ``enabledService=%Ls%Lc``: imap,
# imapsecured, …; Postfix's SASL sender login maps: smtp; sieve; SOGo): a lock removes them.
LOGIN_SERVICES = (
    "smtp",
    "smtpsecured",
    "smtptls",
    "pop3",
    "pop3secured",
    "pop3tls",
    "imap",
    "imapsecured",
    "imaptls",
    "managesieve",
    "managesievesecured",
    "sieve",
    "sievesecured",
    "sogo",
)
# What delivery and the server's own processes need (``mail`` and ``deliver`` are in iRedMail's
# delivery query): kept by a lock; accountStatus decides whether mail is accepted.
KEPT_SERVICES = (
    "mail",
    "deliver",
    "lda",
    "lmtp",
    "internal",
    "doveadm",
    "lib-storage",
    "indexer-worker",
    "dsync",
    "quota-status",
    "forward",
    "senderbcc",
    "recipientbcc",
    "shadowaddress",
    "displayedInGlobalAddressBook",
)
SERVICES = (*KEPT_SERVICES, *LOGIN_SERVICES)  # a new mailbox's, as iRedMail's tools give
MIB = 1024 * 1024
# what a security lock (compromised, malware) also takes: iRedMail's forwarding query asks
# for it (docs/mail-server.md), so without it nothing is forwarded
FORWARD = "forward"
# the login services a lock took (syncd's schema), and its value when it took none
RECORD = "syncdLockedServices"
NOTHING_TAKEN = "none"
# undefinedAttributeType, objectClassViolation: a syncd schema older than RECORD
OLD_SCHEMA = {17, 65}
_BLOCKED = {State.LOCKED.value, State.REVOKED.value}


def _first_value(a: Mapping[str, Any], name: str) -> str | None:
    values = a.get(name) or []
    return str(values[0]) if values else None


def _merge(current: list[str], add: tuple[str, ...], remove: tuple[str, ...]) -> list[str]:
    """``current`` without ``remove`` and with ``add`` (compared without case, as LDAP does)."""
    gone = {r.lower() for r in remove}
    out = [s for s in current if s.lower() not in gone]
    have = {s.lower() for s in out}
    return out + [s for s in add if s.lower() not in have]


class IRedMailDirectory(OpenLdapDirectory):
    """:class:`syncd.ports.Directory` for an iRedMail OpenLDAP directory."""

    # where a new mailbox's quota goes (directory.quota_mb; the configuration checks it
    # against the regulation's least quota: Hưng Yên Đ8.1b)
    QUOTA_ATTRIBUTE: ClassVar[str | None] = "mailQuota"

    # every address: mail (the primary, the RDN) then shadowAddress (the others)
    FIELD_ATTRIBUTES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **FIELD_ATTRIBUTES,
        "mail": ("mail", "shadowAddress"),
        # the login switches a lock turns off (ppolicy's, iRedMail's services; forward where
        # the lock's record says it took it), and delivery
        "drift": ("pwdAccountLockedTime", "enabledService", RECORD),
        "receives_mail": ("accountStatus", "enabledService"),
        # Hưng Yên Đ4.5: where iRedMail forwards (its virtual_alias_maps query), all of the
        # addresses whether or not enabledService: forward is on now (turning it on sends)
        "forwarding": ("mailForwardingAddress",),
    }

    def __init__(self, config: DirectoryConfig, password: str, domain: str) -> None:
        if config.delivery_attribute != GENERIC_DELIVERY:
            raise DirectoryError(
                f"directory.delivery_attribute: {config.delivery_attribute!r} is not used by "
                "the iredmail profile (delivery is accountStatus/enabledService); remove it"
            )
        if config.layout != "flat":
            raise DirectoryError(
                "directory.layout: the iredmail profile places every mailbox under "
                "ou=Users,domainName=<domain>,o=domains,<base_dn>; remove layout"
            )
        super().__init__(config, password, domain)
        self.per_org = False
        self._domain_ready = False
        # set for the one set_state in progress whose lock also stops forwarding
        self._stop_forwarding = False

    # -- place ----------------------------------------------------------------------------------

    @property
    def domain_dn(self) -> str:
        return f"domainName={escape_rdn(self.domain)},o=domains,{self.base}"

    def place_of(self, org: str | None) -> str:
        return f"ou=Users,{self.domain_dn}"

    def dn_for(self, uid: str, org: str | None) -> str:
        return f"mail={escape_rdn(f'{uid}@{self.domain}')},{self.place_of(org)}"

    def _ensure_ou(self, org: str | None) -> None:
        """The domain's branch, made once if missing (an iRedMail server already has it)."""
        if self._domain_ready:
            return
        branch = [
            (f"o=domains,{self.base}", ["organization"], {"o": "domains"}),
            (
                self.domain_dn,
                ["mailDomain"],
                {"domainName": self.domain, "accountStatus": "active", "enabledService": "mail"},
            ),
            (self.place_of(None), ["organizationalUnit"], {"ou": "Users"}),
        ]
        for dn, classes, attrs in branch:
            if self._exists(dn):
                continue
            ok = self.conn.add(dn, classes, attrs)
            if not ok and self.conn.result.get("result") != 68:  # 68: made meanwhile
                self._check(False, f"creating {dn}")
        self._domain_ready = True

    def _exists(self, dn: str) -> bool:
        return self._entry(dn) is not None

    def _entry(self, dn: str) -> Mapping[str, Any] | None:
        """The entry's classes, addresses and services, or None if there is no such entry."""
        try:
            self.conn.search(
                dn,
                "(objectClass=*)",
                search_scope=BASE,
                attributes=["objectClass", "mail", "enabledService", "syncdState", RECORD],
            )
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"reading {dn}: {exc}", transient=True) from exc
        if self.conn.result.get("result") == 32:  # noSuchObject
            return None
        self._check(self.conn.result.get("result") == 0, f"reading {dn}")
        found = [e for e in self.conn.response or [] if e.get("type") == "searchResEntry"]
        return found[0]["attributes"] if found else None

    def move(self, dn: str, new_uid: str, attrs: Mapping[Field, tuple[str, ...]]) -> str:
        """The new address is the new RDN; ``uid`` (the local part) is not, so it is written."""
        return super().move(dn, new_uid, {**attrs, Field.UID: (new_uid,)})

    # -- fields ---------------------------------------------------------------------------------

    def attributes_of(self, values: Mapping[Field, tuple[str, ...]]) -> dict[str, list[str]]:
        out = super().attributes_of({f: v for f, v in values.items() if f is not Field.MAIL})
        if Field.MAIL in values:
            addresses = list(dict.fromkeys(values[Field.MAIL]))
            out["mail"] = addresses[:1]
            out["shadowAddress"] = addresses[1:]
        return out

    def new_entry(self, action: Action) -> tuple[list[str], dict[str, Any]]:
        attrs: dict[str, Any] = {
            "accountStatus": "active",
            "enabledService": list(SERVICES),
            "homeDirectory": f"{self.config.mail_storage.rstrip('/')}/{self.domain}/{action.uid}/",
        }
        org_mailbox = action.kind is ActionKind.CREATE_ORG_MAILBOX
        quota = self.config.org_quota_mb if org_mailbox else self.config.quota_mb
        if quota is not None:
            attrs["mailQuota"] = str(quota * MIB)
        return list(CLASSES), attrs

    # -- state on the wire ------------------------------------------------------------------------

    def wire_drift(self, a: Mapping[str, Any], state: State) -> tuple[str, ...]:
        """Beside ppolicy's lock: a login service back on a locked or revoked mailbox, and
        ``forward`` back on a mailbox a security lock took it from (the put-back, a lock
        with the recorded reason, takes it again: ``state_changes``)."""
        out = super().wire_drift(a, state)
        if state in (State.LOCKED, State.REVOKED):
            login = {s.lower() for s in LOGIN_SERVICES}
            back = [str(s) for s in a.get("enabledService") or [] if str(s).lower() in login]
            if back:
                out += (f"login services back in enabledService ({', '.join(back)})",)
        took = {str(s).lower() for s in a.get(RECORD) or []}
        on = {str(s).lower() for s in a.get("enabledService") or []}
        if state is State.LOCKED and FORWARD in took and FORWARD in on:
            # a security lock took it (state_changes): forwarding turned back on by hand
            out += ("forward back in enabledService, which the security lock took",)
        if state is State.ACTIVE:
            # shut by hand while syncd records it active: named, never reopened (drift.py). One
            # service off (pop3 only) is a site's choice; none left is a lock
            status = (_first_value(a, "accountStatus") or "active").lower()
            if status != "active":
                out += (f"accountStatus {status} on an active account: no login, no delivery",)
            if not on & {s.lower() for s in LOGIN_SERVICES}:
                out += ("no login service left in enabledService on an active account",)
        return out

    def receives(self, a: Mapping[str, Any]) -> bool | None:
        """What iRedMail's delivery query checks: accountStatus active, mail and deliver."""
        services = {str(s).lower() for s in a.get("enabledService") or []}
        status = (_first_value(a, "accountStatus") or "").lower()
        return status == "active" and {"mail", "deliver"} <= services

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        """Beside the generic state change: a lock whose reason says someone else may hold
        the mailbox (compromised, malware: the core says which, from the reason it wrote)
        also takes ``forward``, or an attacker's forward to Gmail keeps running through a
        lock that still receives (Hưng Yên Đ7.1, Đ4.5)."""
        self._stop_forwarding = state is State.LOCKED and lock_stops_forwarding(reason)
        try:
            super().set_state(dn, state, since, reason, delivery=delivery)
        finally:
            self._stop_forwarding = False

    def state_changes(
        self, dn: str, state: State, delivery: bool
    ) -> dict[str, list[tuple[str, list[str]]]]:
        """Blocked: the login services removed, and recorded (``RECORD``) by the lock that
        takes them; active: the recorded ones back, or iRedMail's defaults without a record.
        A security lock (``set_state``) takes ``forward`` too, recorded with them; a put-back
        takes it again only where the record says the lock took it (the restore must give
        back exactly what the lock took). Delivery (the regulation's choice for a lock; off
        for a revoke) is accountStatus."""
        entry = self._entry(dn)
        if entry is None:
            raise DirectoryError(f"setting {dn} {state.value}: no such entry")
        changes = self._mailbox(dn, entry, delivery)
        if not changes:
            return {}
        current = [str(s) for s in entry.get("enabledService") or []]
        record = [str(s) for s in entry.get(RECORD) or []]
        if state is State.ACTIVE:
            if record:
                given = tuple(s for s in record if s.lower() != NOTHING_TAKEN)
                services = _merge(current, given, ())
            else:  # locked by an older syncd: what iRedMail gives a new mailbox
                services = _merge(current, SERVICES, ())
            changes[RECORD] = [(MODIFY_REPLACE, [])]
        else:
            was = (_first_value(entry, "syncdState") or "").lower()
            recording = bool(current) and not record and was not in _BLOCKED
            took_forward = FORWARD in {s.lower() for s in record}
            off: tuple[str, ...] = LOGIN_SERVICES
            if self._stop_forwarding and (recording or took_forward):
                off = (*LOGIN_SERVICES, FORWARD)
            if recording:
                taking = {s.lower() for s in off}
                taken = [s for s in current if s.lower() in taking]
                changes[RECORD] = [(MODIFY_REPLACE, taken or [NOTHING_TAKEN])]
            kept = tuple(s for s in KEPT_SERVICES if s not in off)
            services = _merge(current, kept if not current else (), off)
        changes["enabledService"] = [(MODIFY_REPLACE, services)]
        return changes

    def _modify(self, dn: str, changes: dict[str, Any], what: str) -> None:
        """A state change without the record where the directory's syncd schema predates it:
        the lock itself must hold; the restore then gives iRedMail's defaults."""
        try:
            super()._modify(dn, changes, what)
        except DirectoryError:
            if RECORD not in changes or self.conn.result.get("result") not in OLD_SCHEMA:
                raise
            log.warning(
                "syncd's schema has no syncdLockedServices: run syncd directory init "
                "(until then a restore gives iRedMail's default services back)",
                dn=dn,
            )
            super()._modify(dn, {k: v for k, v in changes.items() if k != RECORD}, what)

    def delivery_changes(self, dn: str, delivery: bool) -> dict[str, list[tuple[str, list[str]]]]:
        """Delivery on or off (a link: on). A mailbox linked without iRedMail's services gets
        them all, as a new one would; one that has them keeps the site's choice."""
        entry = self._entry(dn)
        if entry is None:
            raise DirectoryError(f"changing the delivery of {dn}: no such entry")
        changes = self._mailbox(dn, entry, delivery)
        if changes and not entry.get("enabledService"):
            changes["enabledService"] = [(MODIFY_REPLACE, list(SERVICES))]
        return changes

    def _mailbox(
        self, dn: str, entry: Mapping[str, Any], delivery: bool
    ) -> dict[str, list[tuple[str, list[str]]]]:
        """``accountStatus`` for ``delivery``, and iRedMail's class for an entry made before
        syncd that has an address; nothing for an entry without one (no mailbox to serve)."""
        classes = {str(c).lower() for c in entry.get("objectClass") or []}
        changes: dict[str, list[tuple[str, list[str]]]] = {}
        if "mailuser" not in classes:
            if not entry.get("mail"):
                return {}
            changes["objectClass"] = [
                (MODIFY_ADD, [c for c in CLASSES if c.lower() not in classes])
            ]
        changes["accountStatus"] = [(MODIFY_REPLACE, ["active" if delivery else "disabled"])]
        return changes

    def delivery_filter(self, address: str) -> str:
        """iRedMail's own Postfix ``virtual_mailbox_maps`` query (docs/mail-server.md)."""
        a = escape_filter_chars(address)
        return (
            f"(&(objectClass=mailUser)(|(mail={a})(shadowAddress={a}))(accountStatus=active)"
            "(!(domainStatus=disabled))(enabledService=mail)(enabledService=deliver))"
        )


if TYPE_CHECKING:  # what the registry promises of a profile, checked by mypy
    from connectors.directory import Factory

    _: Factory = IRedMailDirectory
