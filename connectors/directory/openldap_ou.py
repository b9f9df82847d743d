"""OpenLDAP, each organisation a branch: ``uid=<uid>,ou=<org>,<base>`` (profile ``openldap-ou``).

What differs from the generic profile (:mod:`connectors.directory.openldap`, which it extends):

- **The organisation is the entry's place**, not an attribute: ``Field.ORG`` is written by
  moving the entry (``PLACED``) and read from its parent RDN, an ``ou=`` directly under the
  base. A transfer is therefore a modrdn with a new superior, even when the uid stays the same
  (a scheme whose uid does not carry the organisation); a linked entry is moved into its
  branch too. ``ou`` is neither written nor kept in step; it is read only for an entry outside
  every organisation's branch (made before syncd, or by the flat layout), so that adopting
  such a tree renames nobody and its people still match by organisation. A branch's name
  is compared as LDAP compares ``ou`` (``ou=SKHCN`` is skhcn's). ``directory.layout`` does
  not apply: the layout is the profile.
- **Delivery is the standard object class ``domainRelatedObject``** (RFC 4524, cosine schema,
  loaded by every OpenLDAP): a mailbox receives mail while it is associated with the mail
  domain (``associatedDomain: <domain>``), and the class and value are removed to stop
  delivery. None of the schemas Debian's slapd ships as standard (core, cosine,
  inetorgperson, nis) has a boolean a mail server could filter on, and syncd's own schema has
  no second delivery attribute; ``associatedDomain`` has an equality rule (so it can be
  indexed and filtered: Postfix's ``(associatedDomain=%d)``, the recipient's domain) and its
  meaning, "the DNS domain this object is associated with", fits a mailbox that receives for
  that domain. The price: an entry without it receives nothing, so an entry made by hand must
  be linked (or given the class) before the mail server's filter accepts it, where the generic
  profile's ``(!(syncdDelivery=FALSE))`` delivers to it. ``directory.delivery_attribute``
  therefore does not apply, and a non-default value is refused.
- Scoped reads find an organisation's accounts by place: ``entryDN:dnOneLevelMatch:=`` its
  branch (like the generic profile's substring term on ``mail``, not served by an index).

The core's ``Directory.update`` returns no DN, so an update that moves an entry (a transfer
with the uid unchanged) is remembered here, and later calls with the DN the plan read
(a transfer's restore in the same run) follow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from connectors.config import DirectoryConfig
from connectors.directory.openldap import (
    FIELD_ATTRIBUTES,
    OpenLdapDirectory,
    split_dn,
    split_rdn,
)
from syncd.model import Field
from syncd.ports import DirectoryError

DELIVERY_CLASS = "domainRelatedObject"
DELIVERY_ATTRIBUTE = "associatedDomain"
GENERIC_DELIVERY = "syncdDelivery"  # directory.delivery_attribute's default: left unset


def _ava(rdn: str) -> tuple[str, str] | None:
    """(attribute type in lower case, unescaped value) of a single-valued RDN, else None."""
    out = bytearray()
    name, _, raw = rdn.partition("=")
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "+":
            return None  # a multi-valued RDN is nobody's organisation
        if c == "\\":
            pair = raw[i + 1 : i + 3]
            if len(pair) == 2 and all(x in "0123456789abcdefABCDEF" for x in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += raw[i + 1 : i + 2].encode()
            i += 2
            continue
        out += c.encode()
        i += 1
    return name.strip().lower(), out.decode("utf-8", "replace")


def _key(ava: tuple[str, str] | None) -> tuple[str, str] | None:
    """An RDN as compared: ``ou`` and ``dc`` values match ignoring case."""
    return (ava[0], ava[1].lower()) if ava else None


class OpenLdapOuDirectory(OpenLdapDirectory):
    """:class:`syncd.ports.Directory` for OpenLDAP with the organisation in the DN."""

    # ``org``: the entry's place; ``ou`` only for an entry outside every branch (see above)
    FIELD_ATTRIBUTES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **FIELD_ATTRIBUTES,
        "receives_mail": (DELIVERY_ATTRIBUTE,),  # delivery: associated with the mail domain
    }
    PLACED: ClassVar[frozenset[Field]] = frozenset({Field.ORG})

    def __init__(self, config: DirectoryConfig, password: str, domain: str) -> None:
        if config.delivery_attribute != GENERIC_DELIVERY:
            raise DirectoryError(
                f"directory.delivery_attribute: {config.delivery_attribute!r} is not used by "
                f"the openldap-ou profile (delivery is {DELIVERY_CLASS}/{DELIVERY_ATTRIBUTE}); "
                "remove it, or use the openldap profile"
            )
        super().__init__(config, password, domain)
        self.per_org = True
        self._base = [_key(_ava(r)) for r in split_dn(self.base)]

    # -- the organisation is the place ----------------------------------------------------------

    def org_of(self, dn: str) -> str | None:
        """The organisation whose branch holds ``dn`` (``uid=…,ou=<org>,<base>``), or None."""
        rdns = [_ava(r) for r in split_dn(dn)]
        if len(rdns) != len(self._base) + 2 or [_key(x) for x in rdns[2:]] != self._base:
            return None
        parent = rdns[1]
        if not parent or parent[0] not in ("ou", "organizationalunitname"):
            return None
        # compared as LDAP compares ou (ignoring case): catalogue codes are lower case, and a
        # branch made as ou=SKHCN is skhcn's (read as written, it would look like a transfer)
        return parent[1].lower()

    def _org(self, dn: str, a: Mapping[str, Any]) -> str | None:
        return self.org_of(dn) or super()._org(dn, a)

    def org_filter(self, org: str) -> str:
        place = escape_filter_chars(self.place_of(org))
        return f"(entryDN:dnOneLevelMatch:={place}){super().org_filter(org)}"

    def update(
        self,
        dn: str,
        attrs: Mapping[Field, tuple[str, ...]],
        *,
        link: bool = False,
        since: datetime | None = None,
    ) -> str:
        """A changed organisation moves the entry to its branch (its RDN unchanged); the
        entry's DN afterwards."""
        dn = self._where(dn)
        org = (attrs.get(Field.ORG) or (None,))[0]
        if org and self.org_of(dn) != org.lower():
            new_dn = f"{split_rdn(dn)[0]},{self.place_of(org)}"
            self._rename(dn, new_dn, org)
            self._relocated = {k: new_dn if v == dn else v for k, v in self._relocated.items()}
            self._relocated[dn.lower()] = new_dn
            self._relocated.pop(new_dn.lower(), None)
            dn = new_dn
        return super().update(dn, attrs, link=link, since=since)

    def move(self, dn: str, new_uid: str, attrs: Mapping[Field, tuple[str, ...]]) -> str:
        dn = self._where(dn)
        org = (attrs.get(Field.ORG) or (None,))[0] or self.org_of(dn)
        return super().move(dn, new_uid, {**attrs, Field.ORG: (org,)} if org else attrs)

    # -- delivery: the entry is associated with the mail domain -------------------------------

    def delivering(self) -> tuple[list[str], dict[str, Any]]:
        return [DELIVERY_CLASS], {DELIVERY_ATTRIBUTE: self.domain}

    def delivery_changes(self, dn: str, delivery: bool) -> dict[str, list[tuple[str, list[str]]]]:
        has = DELIVERY_CLASS.lower() in self._classes(dn)
        if delivery:
            changes = {DELIVERY_ATTRIBUTE: [(MODIFY_REPLACE, [self.domain])]}
            return changes if has else {"objectClass": [(MODIFY_ADD, [DELIVERY_CLASS])], **changes}
        if not has:
            return {}
        return {
            "objectClass": [(MODIFY_DELETE, [DELIVERY_CLASS])],
            DELIVERY_ATTRIBUTE: [(MODIFY_REPLACE, [])],
        }

    def receives(self, a: Mapping[str, Any]) -> bool | None:
        return any(str(v).lower() == self.domain.lower() for v in a.get(DELIVERY_ATTRIBUTE) or [])

    def delivery_filter(self, address: str) -> str:
        return (
            f"(&(objectClass=inetOrgPerson)(mail={escape_filter_chars(address)})"
            f"({DELIVERY_ATTRIBUTE}={escape_filter_chars(self.domain)}))"
        )

    def _classes(self, dn: str) -> set[str]:
        try:
            ok = self.conn.search(
                dn, "(objectClass=*)", search_scope=BASE, attributes=["objectClass"]
            )
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"reading the classes of {dn}: {exc}", transient=True) from exc
        self._check(ok, f"reading the classes of {dn}")
        found = [e for e in self.conn.response or [] if e.get("type") == "searchResEntry"]
        return {str(c).lower() for e in found for c in e["attributes"].get("objectClass", [])}


if TYPE_CHECKING:  # what the registry promises of a profile, checked by mypy
    from connectors.directory import Factory

    _: Factory = OpenLdapOuDirectory
