"""Zimbra's OpenLDAP accounts (profile ``zimbra``).

What differs from the generic profile (:mod:`connectors.directory.openldap`, which it extends),
so that Zimbra's mailbox server and its Postfix see syncd's accounts as Zimbra's own:

- **Classes.** ``inetOrgPerson``, ``zimbraAccount`` (its ``zimbraId`` a new UUID, as
  ``zmprov createAccount`` gives) and syncd's ``syncdAccount`` (state, reason, clocks, aliases
  with their expiry); ``uid=<uid>,<base>`` as Zimbra places accounts (``ou=people`` of the
  domain). ``directory.layout`` applies as in the generic profile.
- **Addresses.** ``mail`` holds every address (as Zimbra keeps it); the primary is also
  ``zimbraMailDeliveryAddress`` and the others (the old address after a transfer, until its
  alias expires) ``zimbraMailAlias``, which Zimbra's Postfix lookups read.
- **State.** ``zimbraAccountStatus``: ``active``; ``locked`` for a lock that keeps delivery
  (Zimbra refuses the login and still delivers: Cao Bằng Đ8.1, Hưng Yên Đ7.1); ``closed`` for
  a revoke and for a lock where the regulation says a locked mailbox receives nothing (Tuyên
  Quang Đ8.1). Delivery is also ``zimbraMailStatus`` ``enabled``/``disabled``, the term of
  Zimbra's Postfix queries (``delivery_filter``). Which of the two a lock is comes from the
  regulation (the core's ``delivery``, from ``lifecycle.locked_receives_mail``).
- **Password.** A one-time password also sets ``zimbraPasswordMustChange: TRUE`` (Zimbra asks
  for a new one at login and clears it); whether the person still has to change it is read
  from ``zimbraPasswordMustChange`` *and* ppolicy's ``pwdReset``, both still set. Zimbra writes
  the new ``userPassword`` as its slapd's rootdn and clears its flag, and ppolicy with
  ``pwdMustChange`` then sets ``pwdReset`` again (a password written by an administrator), so
  ``pwdReset`` alone would say "not changed" of a person who did change it (and the
  default-password lock of Hưng Yên and Tuyên Quang would lock them); a change at the
  directory itself (the person's own bind and RFC 3062) clears ``pwdReset`` and leaves
  Zimbra's flag, so that flag alone would say the same.
- **Activity.** ``zimbraLastLogonTimestamp`` (written by Zimbra at most once per
  ``zimbraLastLogonTimestampFrequency``, 7 days by default) counts as a login beside the
  directory's own bind times; the newest wins.
- **Routing.** ``zimbraMailHost`` (``directory.zimbra.mail_host``) and ``zimbraMailTransport``
  (``lmtp:<mail_host>:<lmtp_port>``) on every account syncd makes, as ``zmprov createAccount``
  sets them from the server it picks (Zimbra's ``LdapProvisioning.createAccount``, which refuses
  an account with neither): Zimbra's Postfix routes mail to the mailbox by the transport
  (``ldap-transport.cf``), its proxy and mailbox server serve the account only on its mail
  host. A rename (a transfer) keeps both, being the same entry; an entry made before syncd that
  syncd turns into a Zimbra account gets them too. ``directory.zimbra.cos`` (a name or a
  zimbraId) is written as the class of service's ``zimbraId`` (``zimbraCOSId``), as zmprov
  resolves it; without it none is written and Zimbra applies the domain's default class.
  ``zimbraCreateTimestamp``, which newer zmprov also writes, is left out: the schema syncd is
  tested with (ZCS 4.0's) has no such type, and Zimbra does not need it to deliver or log in.
- **Quota.** ``zimbraMailQuota`` (bytes) from ``directory.quota_mb`` /
  ``directory.org_quota_mb`` when the account is made.
- **Zimbra caches accounts**: after each change to an account, ``directory.post_change_hook``
  (e.g. ``zmprov flushCache account {address}``) runs without a shell, ``{address}`` replaced
  by the account's address (never a password). A hook that fails is logged as a warning with
  its exit status and the end of its error output: the directory change stands (the cache
  expires by itself), so the change is not reported as failed.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from ldap3 import BASE, LEVEL, MODIFY_ADD, MODIFY_REPLACE
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from connectors.config import DirectoryConfig
from connectors.directory.openldap import FIELD_ATTRIBUTES, OpenLdapDirectory
from syncd.model import Account, Action, ActionKind, Field, State
from syncd.ports import DirectoryError

log = structlog.get_logger("syncd.directory")

GENERIC_DELIVERY = "syncdDelivery"  # directory.delivery_attribute's default: not used here
ACCOUNT_CLASS = "zimbraAccount"
MIB = 1024 * 1024
HOOK_TIMEOUT = 60.0  # seconds; zmprov starts a JVM
COS_BASE = "cn=cos,cn=zimbra"  # where Zimbra keeps its classes of service
ROUTING = ("zimbraMailHost", "zimbraMailTransport")


def _value(a: Mapping[str, Any], name: str) -> str | None:
    values = a.get(name) or []
    return str(values[0]) if values else None


class ZimbraDirectory(OpenLdapDirectory):
    """:class:`syncd.ports.Directory` for Zimbra's OpenLDAP."""

    # where a new account's quota goes (directory.quota_mb; the configuration checks it
    # against the regulation's least quota: Hưng Yên Đ8.1b)
    QUOTA_ATTRIBUTE: ClassVar[str | None] = "zimbraMailQuota"

    FIELD_ATTRIBUTES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **FIELD_ATTRIBUTES,
        # the directory's bind times and Zimbra's own record of a login; the newest counts
        "last_login": ("pwdLastSuccess", "authTimestamp", "zimbraLastLogonTimestamp"),
        # both must still say so (see the module's docstring and ``_account``)
        "must_change_password": ("pwdReset", "zimbraPasswordMustChange"),
        # the login switches a lock turns off (ppolicy's, Zimbra's status), and delivery
        "drift": ("pwdAccountLockedTime", "zimbraAccountStatus"),
        "receives_mail": ("zimbraMailStatus", "zimbraAccountStatus"),
    }

    def __init__(self, config: DirectoryConfig, password: str, domain: str) -> None:
        if config.delivery_attribute != GENERIC_DELIVERY:
            raise DirectoryError(
                f"directory.delivery_attribute: {config.delivery_attribute!r} is not used by "
                "the zimbra profile (delivery is zimbraMailStatus); remove it"
            )
        super().__init__(config, password, domain)
        self.hook = tuple(config.post_change_hook)
        self.routing = config.zimbra
        self._cos_id: str | None = None
        self._warned = False

    # -- fields ---------------------------------------------------------------------------------

    def attributes_of(self, values: Mapping[Field, tuple[str, ...]]) -> dict[str, list[str]]:
        out = super().attributes_of(values)
        if Field.MAIL in values:
            addresses = list(dict.fromkeys(values[Field.MAIL]))
            out["zimbraMailDeliveryAddress"] = addresses[:1]
            out["zimbraMailAlias"] = addresses[1:]
        return out

    def new_entry(self, action: Action) -> tuple[list[str], dict[str, Any]]:
        attrs: dict[str, Any] = {
            "zimbraId": str(uuid.uuid4()),
            "zimbraAccountStatus": "active",
            "zimbraMailStatus": "enabled",
        }
        org_mailbox = action.kind is ActionKind.CREATE_ORG_MAILBOX
        quota = self.config.org_quota_mb if org_mailbox else self.config.quota_mb
        if quota is not None:
            attrs["zimbraMailQuota"] = str(quota * MIB)
        attrs.update(self.routing_attributes())
        if self.routing.cos is not None:
            attrs["zimbraCOSId"] = self.cos_id()
        return [ACCOUNT_CLASS], attrs

    def routing_attributes(self) -> dict[str, str]:
        """``zimbraMailHost`` and ``zimbraMailTransport`` of a new account, as zmprov sets them
        (``lmtp:<host>:<port>``); none, with a warning once, when no mail host is configured."""
        host = self.routing.mail_host
        if host is None:
            if not self._warned:
                log.warning(
                    "directory.zimbra.mail_host is not set: new accounts get no zimbraMailHost "
                    "nor zimbraMailTransport, and Zimbra neither delivers to them nor logs "
                    "them in"
                )
                self._warned = True
            return {}
        return {
            "zimbraMailHost": host,
            "zimbraMailTransport": f"lmtp:{host}:{self.routing.lmtp_port}",
        }

    def cos_id(self) -> str:
        """The ``zimbraId`` of ``directory.zimbra.cos`` (a name or a zimbraId), read once from
        ``cn=cos,cn=zimbra``: Zimbra looks an account's class up by that id only, so a name
        written as it is would leave the account on the default class."""
        if self._cos_id is not None:
            return self._cos_id
        wanted = str(self.routing.cos)
        value = escape_filter_chars(wanted)
        flt = f"(&(objectClass=zimbraCOS)(|(cn={value})(zimbraId={value})))"
        try:
            self.conn.search(COS_BASE, flt, search_scope=LEVEL, attributes=["zimbraId"])
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"reading {COS_BASE}: {exc}", transient=True) from exc
        found = [
            str(e["attributes"]["zimbraId"][0])
            for e in self.conn.response or []
            if e.get("type") == "searchResEntry" and e["attributes"].get("zimbraId")
        ]
        if len(found) != 1:
            raise DirectoryError(
                f"directory.zimbra.cos {wanted!r}: "
                + ("no class of service" if not found else f"{len(found)} classes of service")
                + f" of that name or zimbraId under {COS_BASE} readable by the service DN; "
                f"zmprov gc {wanted} zimbraId shows it, and the service DN needs read access "
                "to cn=cos,cn=zimbra"
            )
        self._cos_id = found[0]
        return self._cos_id

    def _account(self, dn: str, a: Mapping[str, Any]) -> Account:
        account = super()._account(dn, a)
        zimbra_asks = (_value(a, "zimbraPasswordMustChange") or "").upper() == "TRUE"
        ppolicy_asks = (_value(a, "pwdReset") or "").upper() == "TRUE"
        return replace(account, must_change_password=zimbra_asks and ppolicy_asks)

    # -- state on the wire ------------------------------------------------------------------------

    def wire_drift(self, a: Mapping[str, Any], state: State) -> tuple[str, ...]:
        """Beside ppolicy's lock: Zimbra's own status back to active on a blocked account."""
        out = super().wire_drift(a, state)
        status = _value(a, "zimbraAccountStatus") or ""
        if state in (State.LOCKED, State.REVOKED) and status.lower() == "active":
            out += ("zimbraAccountStatus active: Zimbra lets the person log in",)
        if state is State.ACTIVE and status and status.lower() != "active":
            # locked or closed in Zimbra's console (or ``lockout`` after failed logins) while
            # syncd records it active: named, never reopened (syncd.plan.drift)
            out += (f"zimbraAccountStatus {status} on an active account: Zimbra refuses logins",)
        return out

    def receives(self, a: Mapping[str, Any]) -> bool | None:
        """What Zimbra's Postfix lookup checks (``zimbraMailStatus``); a closed account gets
        nothing whatever it says."""
        mail = (_value(a, "zimbraMailStatus") or "").lower()
        return mail == "enabled" and (_value(a, "zimbraAccountStatus") or "").lower() != "closed"

    def state_changes(
        self, dn: str, state: State, delivery: bool
    ) -> dict[str, list[tuple[str, list[str]]]]:
        # Zimbra's "locked" refuses the login and still delivers; "closed" does neither
        status = "active" if state is State.ACTIVE else "locked" if delivery else "closed"
        changes = self.delivery_changes(dn, delivery)
        changes["zimbraAccountStatus"] = [(MODIFY_REPLACE, [status])]
        return changes

    def delivery_changes(self, dn: str, delivery: bool) -> dict[str, list[tuple[str, list[str]]]]:
        """zimbraMailStatus; an entry made before syncd first becomes a Zimbra account."""
        changes: dict[str, list[tuple[str, list[str]]]] = {
            "zimbraMailStatus": [(MODIFY_REPLACE, ["enabled" if delivery else "disabled"])]
        }
        entry = self._entry(dn)
        classes = {str(c).lower() for c in entry.get("objectClass") or []}
        if ACCOUNT_CLASS.lower() not in classes:
            changes["objectClass"] = [(MODIFY_ADD, [ACCOUNT_CLASS])]
            changes["zimbraId"] = [(MODIFY_REPLACE, [str(uuid.uuid4())])]
            changes["zimbraAccountStatus"] = [(MODIFY_REPLACE, ["active"])]
            for name, value in self.routing_attributes().items():
                if not entry.get(name):
                    changes[name] = [(MODIFY_REPLACE, [value])]
            addresses = [str(m) for m in entry.get("mail") or []]
            if addresses and not entry.get("zimbraMailDeliveryAddress"):
                changes["zimbraMailDeliveryAddress"] = [(MODIFY_REPLACE, addresses[:1])]
                changes["zimbraMailAlias"] = [(MODIFY_REPLACE, addresses[1:])]
        return changes

    def delivery_filter(self, address: str) -> str:
        """Zimbra's Postfix alias lookup (``ldap-vam.cf``) for ``address``."""
        a = escape_filter_chars(address)
        return (
            f"(&(|(zimbraMailDeliveryAddress={a})(zimbraMailAlias={a}))(zimbraMailStatus=enabled))"
        )

    def set_password(self, dn: str, password: str, *, activate: bool = False) -> None:
        super().set_password(dn, password, activate=activate)
        dn = self._where(dn)
        self._call(
            f"asking {dn} to change its password in Zimbra",
            self.conn.modify,
            dn,
            {"zimbraPasswordMustChange": [(MODIFY_REPLACE, ["TRUE"])]},
        )
        self._after(dn)

    # -- Zimbra's cache: the hook after each change ------------------------------------------

    # create: set_password, which create calls once the entry exists, runs the hook

    def update(
        self,
        dn: str,
        attrs: Mapping[Field, tuple[str, ...]],
        *,
        link: bool = False,
        since: datetime | None = None,
    ) -> str:
        new_dn = super().update(dn, attrs, link=link, since=since)
        self._after(new_dn)
        return new_dn

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        super().set_state(dn, state, since, reason, delivery=delivery)
        self._after(self._where(dn))

    def delete(self, dn: str) -> None:
        address = self._address(self._where(dn))
        super().delete(dn)
        self._run_hook(address)

    def _after(self, dn: str) -> None:
        if self.hook:
            self._run_hook(self._address(dn))

    def _address(self, dn: str) -> str:
        entry = self._entry(dn)
        for name in ("zimbraMailDeliveryAddress", "mail", "uid"):
            values = entry.get(name) or []
            if values:
                value = str(values[0])
                return value if "@" in value else f"{value}@{self.domain}"
        return dn

    def _run_hook(self, address: str) -> None:
        """``directory.post_change_hook`` for ``address``: an argument list, no shell."""
        if not self.hook:
            return
        argv = [part.replace("{address}", address) for part in self.hook]
        try:
            # the operator's configured command as an argument list: no shell ever sees it
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=HOOK_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning(
                "post-change hook did not run; Zimbra may serve the old account until its "
                "cache expires",
                command=argv,
                error=str(exc),
            )
            return
        if done.returncode != 0:
            log.warning(
                "post-change hook failed; Zimbra may serve the old account until its cache expires",
                command=argv,
                exit_status=done.returncode,
                stderr=done.stderr[-500:],
            )

    def _entry(self, dn: str) -> Mapping[str, Any]:
        attributes = ["objectClass", "mail", "uid", "zimbraMailDeliveryAddress", *ROUTING]
        try:
            ok = self.conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=attributes)
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"reading {dn}: {exc}", transient=True) from exc
        self._check(ok, f"reading {dn}")
        found = [e for e in self.conn.response or [] if e.get("type") == "searchResEntry"]
        if not found:
            raise DirectoryError(f"reading {dn}: no such entry")
        attrs: Mapping[str, Any] = found[0]["attributes"]
        return attrs


if TYPE_CHECKING:  # what the registry promises of a profile, checked by mypy
    from connectors.directory import Factory

    _: Factory = ZimbraDirectory
