"""A throwaway slapd laid out as Zimbra's: the sandbox of ``slapd_sandbox`` (accounts under its
suffix, Zimbra's schema loaded) plus the ``cn=zimbra`` database where Zimbra keeps its
configuration, with the default class of service ``cn=default,cn=cos,cn=zimbra`` as ``zmprov``
leaves it on a fresh install (no password settings) and Zimbra's LDAP administrator
``uid=zimbra,cn=admins,cn=zimbra``. syncd's service DN may read ``cn=cos,cn=zimbra`` (``syncd
policy check`` does), never write it: ``syncd policy apply`` writes it as the administrator.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ldap3 import NONE, Connection, Server

from devtools.slapd_sandbox import Sandbox

ZIMBRA_SUFFIX = "cn=zimbra"
ZIMBRA_ADMIN = "uid=zimbra,cn=admins,cn=zimbra"
DEFAULT_COS = "cn=default,cn=cos,cn=zimbra"


@dataclass
class ZimbraSandbox(Sandbox):
    """A :class:`Sandbox` with Zimbra's ``cn=zimbra`` database beside the accounts' one."""

    def __post_init__(self) -> None:
        if "zimbra" not in self.profile_schemas:
            raise RuntimeError("Zimbra's schema is not available (see profile_schema_dir())")

    def _config_ldif(self) -> str:
        return (
            super()._config_ldif()
            + f"""
dn: olcDatabase={{2}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{2}}mdb
olcSuffix: {ZIMBRA_SUFFIX}
olcRootDN: {ZIMBRA_ADMIN}
olcRootPW: {self.admin_password}
olcDbDirectory: {self.root / "zimbra-data"}
olcDbMaxSize: 1073741824
olcDbNoSync: TRUE
olcAccess: {{0}}to dn.subtree="cn=cos,{ZIMBRA_SUFFIX}" by dn.exact="{self.service_dn}" read
  by * none
olcAccess: {{1}}to dn.base="{ZIMBRA_SUFFIX}" by dn.exact="{self.service_dn}" read by * none
olcAccess: {{2}}to * by * none
"""
        )

    def start(self, *, env: Mapping[str, str] | None = None) -> ZimbraSandbox:
        (self.root / "zimbra-data").mkdir(parents=True, mode=0o700, exist_ok=True)
        super().start(env=env)
        conn = self.zimbra_admin()
        try:
            for dn, classes, attrs in (
                (ZIMBRA_SUFFIX, ["organizationalRole"], {"cn": "zimbra"}),
                (f"cn=cos,{ZIMBRA_SUFFIX}", ["organizationalRole"], {"cn": "cos"}),
                (DEFAULT_COS, ["zimbraCOS"], {"cn": "default", "zimbraId": str(uuid.uuid4())}),
            ):
                if not conn.add(dn, classes, attrs) and conn.result["result"] != 68:
                    raise RuntimeError(f"adding {dn}: {conn.result}")
        finally:
            conn.unbind()
        return self

    def zimbra_admin(self) -> Connection:
        """Bound as Zimbra's LDAP administrator (what ``zmprov`` binds as)."""
        return Connection(
            Server(self.url, get_info=NONE), ZIMBRA_ADMIN, self.admin_password, auto_bind=True
        )


__all__ = ["DEFAULT_COS", "ZIMBRA_ADMIN", "ZimbraSandbox"]
