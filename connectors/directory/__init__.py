"""Directory profiles behind :class:`syncd.ports.Directory`, by the name ``directory.profile``
gives in syncd.yaml.

Adding a profile is one module here (its field mapping, and what each state means on the
wire) and one line in ``PROFILES``; the contract suite (tests/integration/
test_directory_contract.py) then runs every contract test against it.

``PROFILES`` names each profile's class as ``module:Class`` and is imported lazily, so the
configuration schema can take its choices from it (``tuple(PROFILES)``) without importing
ldap3, or this package importing the configuration back.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from syncd.ports import Directory, DirectoryError

if TYPE_CHECKING:
    from connectors.config import DirectoryConfig

PROFILES: dict[str, str] = {
    # CN=<uid>,<base>: user objects; sAMAccountName ≤ 20, userAccountControl, unicodePwd
    "ad": "connectors.directory.ad:ActiveDirectory",
    # ou attribute; layout flat or per-org; delivery: syncdDelivery (directory.delivery_attribute)
    "openldap": "connectors.directory.openldap:OpenLdapDirectory",
    # uid=…,ou=<org>,<base>: the organisation is the entry's place; delivery: associatedDomain
    "openldap-ou": "connectors.directory.openldap_ou:OpenLdapOuDirectory",
    # mail=…,ou=Users,domainName=<domain>,o=domains,<base>; accountStatus, enabledService
    "iredmail": "connectors.directory.iredmail:IRedMailDirectory",
    # uid=…,<base>: zimbraAccount; zimbraAccountStatus, zimbraMailStatus; post-change hook
    "zimbra": "connectors.directory.zimbra:ZimbraDirectory",
}


class OpenedDirectory(Directory, Protocol):
    """A profile's directory as a connector opens it: the core's port, plus what the
    connectors and the mail server need to know."""

    # True: every account read carries its state reason, an active one's too (how it was
    # made), for showing it; False (a run): only accounts not active (locked, revoked,
    # provisioning) do, the plan reading a lock's and a revocation's (Account.state_reason)
    every_reason: bool

    def close(self) -> None:
        """Unbind (a later call opens a new connection)."""
        ...

    def delivery_filter(self, address: str) -> str:
        """The mail server's delivery lookup for ``address`` (docs/mail-server.md): a filter
        that finds the entry only while mail is delivered to it."""
        ...


# (directory config, bind password, mail domain) → the profile's directory
Factory = Callable[["DirectoryConfig", str, str], OpenedDirectory]


def profile(name: str) -> Factory:
    """The factory (the class) of the profile ``name``."""
    where = PROFILES.get(name)
    if where is None:
        raise DirectoryError(
            f"directory.profile: unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        )
    module, _, attribute = where.partition(":")
    return cast(Factory, getattr(importlib.import_module(module), attribute))


def open_directory(config: DirectoryConfig, password: str, domain: str) -> OpenedDirectory:
    """The directory of the profile ``config.profile`` (no traffic until first used)."""
    return profile(config.profile)(config, password, domain)


__all__ = ["PROFILES", "Factory", "OpenedDirectory", "open_directory", "profile"]
