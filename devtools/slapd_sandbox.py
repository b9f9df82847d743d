"""A throwaway OpenLDAP ``slapd`` for tests and ``make demo``.

It runs Debian's slapd from a private directory (its own ``cn=config``, database and pid file),
listens on a free loopback port only, loads the overlays the generic profile needs (ppolicy with
lockout, lastbind, ``olcLastBind``) and syncd's schema, and creates a service DN for syncd with
the limits and access rules it needs (``config/ldap/acl.ldif`` documents the same for a
production directory). Nothing here is a mock: it is the real server, started and stopped.

The mail servers' own schemas (iRedMail's ``iredmail.schema``, Zimbra's ``zimbra.schema``) are
loaded too when they can be found (``profile_schema_dir()``), so the ``iredmail`` and ``zimbra``
profiles run against the attribute types the real servers define. They are not copied into the
repository: they are third-party files (GPL, Zimbra Public License) collected in the team's
shared folder beside the checkout (``../shared/schemas``, CI has the same copy), and are read
from there in slapd.conf format and converted to ``cn=config`` entries here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ldap3 import NONE, Connection, Server
from ldap3.core.exceptions import LDAPException

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
# the schema ships with the directory profiles (package data of connectors.directory)
SYNCD_SCHEMA = Path(str(resources.files("connectors.directory") / "syncd-schema.ldif"))
# lastbind rewrites authTimestamp only when it is older than this (as config/ldap/acl.ldif ships
# for production, to spare a write per login). Kept at production's value on purpose: the
# tests assert a login time to within it, and the first bind of an entry is always written.
# pwdLastSuccess (olcLastBind) is exact, but a password change deletes it.
LASTBIND_PRECISION = 60
# Debian's nis schema: shadowAccount and homeDirectory, which iRedMail's mailUser entries use
NIS_SCHEMA = SCHEMA_DIR / "nis.ldif"
# profile → its mail server's schema file (slapd.conf format) in profile_schema_dir()
PROFILE_SCHEMAS = {"iredmail": "iredmail.schema", "zimbra": "zimbra.schema"}
SCHEMA_DIR_VARIABLE = "SYNCD_PROFILE_SCHEMAS"


def profile_schema_dir() -> Path | None:
    """Where the mail servers' schema files are: ``$SYNCD_PROFILE_SCHEMAS``, else the shared
    folder beside the checkout (``<repo>/../shared/schemas``), if it exists."""
    named = os.environ.get(SCHEMA_DIR_VARIABLE)
    where = Path(named) if named else Path(__file__).resolve().parents[1].parent / "shared/schemas"
    return where if where.is_dir() else None


def available_profile_schemas() -> tuple[str, ...]:
    """The profiles whose mail-server schema can be loaded here."""
    where = profile_schema_dir()
    if where is None:
        return ()
    return tuple(p for p, name in PROFILE_SCHEMAS.items() if (where / name).is_file())


def schema_to_ldif(text: str, name: str) -> str:
    """A slapd.conf-format schema (``objectIdentifier``, ``attributetype``, ``objectclass``
    statements; ``#`` comments; continuation lines start with white space) as the LDIF of one
    ``cn=<name>,cn=schema,cn=config`` entry, as ``slaptest -f … -F …`` would convert it."""
    keys = {
        "objectidentifier": "olcObjectIdentifier",
        "attributetype": "olcAttributeTypes",
        "objectclass": "olcObjectClasses",
    }
    statements: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        # zimbra.schema indents one statement by a space; a keyword still starts a statement
        starts = line.split(maxsplit=1)[0].lower() in keys
        if line[0].isspace() and statements and not starts:
            statements[-1] += " " + line.strip()
        else:
            statements.append(line.strip())
    out = [f"dn: cn={name},cn=schema,cn=config", "objectClass: olcSchemaConfig", f"cn: {name}"]
    for statement in statements:
        keyword, _, value = statement.partition(" ")
        attribute = keys.get(keyword.lower())
        if attribute is None:
            raise ValueError(f"{name}: unknown schema statement {keyword!r}")
        out.append(f"{attribute}: {' '.join(value.split())}")
    return "\n".join(out) + "\n"


def find_slapd() -> Path | None:
    """Where Debian's slapd binary is, if installed."""
    for candidate in ("/usr/sbin/slapd", shutil.which("slapd")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sandbox:
    """One slapd instance living in ``root``; use as a context manager or call start/stop."""

    root: Path
    suffix: str = "dc=example,dc=gov,dc=vn"
    admin_password: str = "admin-secret"  # noqa: S105 - throwaway server on loopback
    service_password: str = "syncd-secret"  # noqa: S105
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    listen_host: str = "127.0.0.1"  # a container sets 0.0.0.0; tests and the demo never do
    tls: tuple[Path, Path, Path] | None = None  # (CA certificate, server certificate, key)
    tls_port: int = field(default_factory=free_port)
    env: Mapping[str, str] | None = None  # added to slapd's environment (not slapadd's)
    # the mail servers' schemas to load (PROFILE_SCHEMAS keys): those found, unless told
    profile_schemas: tuple[str, ...] = field(default_factory=available_profile_schemas)
    # slapd's -d debug level into slapd.log: "0" none; "filter" logs each entry a search
    # tests (how a test proves a search is answered from an index, not by a scan)
    debug: str = "0"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def admin_dn(self) -> str:
        return f"cn=admin,{self.suffix}"

    @property
    def service_dn(self) -> str:
        return f"cn=syncd,ou=services,{self.suffix}"

    @property
    def reader_dn(self) -> str:
        """A read-only DN *without* the unlimited-size rule: it sees slapd's size limit."""
        return f"cn=reader,ou=services,{self.suffix}"

    @property
    def people_dn(self) -> str:
        return f"ou=people,{self.suffix}"

    @property
    def policy_dn(self) -> str:
        return f"cn=default,ou=policies,{self.suffix}"

    # -- set-up ---------------------------------------------------------------------------

    def _profile_schema(self, profile: str) -> Path:
        """The profile's schema converted to LDIF in the sandbox's root (for an include)."""
        where = profile_schema_dir()
        if where is None or profile not in PROFILE_SCHEMAS:
            raise RuntimeError(f"no schema for profile {profile!r} (see profile_schema_dir())")
        source = where / PROFILE_SCHEMAS[profile]
        path = self.root / f"{profile}-schema.ldif"
        path.write_text(
            schema_to_ldif(source.read_text(encoding="utf-8"), profile), encoding="utf-8"
        )
        return path

    def _config_ldif(self) -> str:
        data = self.root / "data"
        svc = self.service_dn
        includes = "".join(
            f"include: file://{SCHEMA_DIR / name}\n"
            for name in ("core.ldif", "cosine.ldif", "inetorgperson.ldif")
        )
        if self.profile_schemas:
            includes += f"include: file://{NIS_SCHEMA}\n"
        for profile in self.profile_schemas:
            includes += f"include: file://{self._profile_schema(profile)}\n"
        tls = ""
        if self.tls is not None:
            ca, cert, key = self.tls
            tls = (
                f"olcTLSCACertificateFile: {ca}\nolcTLSCertificateFile: {cert}\n"
                f"olcTLSCertificateKeyFile: {key}\n"
            )
        return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {self.root / "slapd.pid"}
olcArgsFile: {self.root / "slapd.args"}
{tls}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_DIR}
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy
olcModuleLoad: lastbind

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}include: file://{SYNCD_SCHEMA}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: 500

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {self.suffix}
olcRootDN: {self.admin_dn}
olcRootPW: {self.admin_password}
olcDbDirectory: {data}
olcDbMaxSize: 4294967296
olcDbNoSync: TRUE
olcLastBind: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,mail,employeeNumber,ou eq
olcDbIndex: entryCSN eq
olcLimits: {{0}}dn.exact="{svc}" size=unlimited time=unlimited
olcAccess: {{0}}to attrs=userPassword by dn.exact="{svc}" write by self write
  by anonymous auth by * none
olcAccess: {{1}}to dn.subtree="{self.people_dn}" by dn.exact="{svc}" write by self read
  by dn.exact="{self.reader_dn}" read by anonymous auth by * none
olcAccess: {{2}}to dn.subtree="ou=policies,{self.suffix}" by dn.exact="{svc}" read by * none
olcAccess: {{3}}to dn.base="{self.suffix}" by dn.exact="{svc}" read by * none
olcAccess: {{4}}to * by self read by * none

dn: olcOverlay={{0}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{0}}ppolicy
olcPPolicyDefault: {self.policy_dn}
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: FALSE

dn: olcOverlay={{1}}lastbind,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcLastBindConfig
olcOverlay: {{1}}lastbind
olcLastBindPrecision: {LASTBIND_PRECISION}
"""

    def _base_ldif(self) -> str:
        dc = self.suffix.split(",")[0].split("=")[1]
        return f"""dn: {self.suffix}
objectClass: dcObject
objectClass: organization
dc: {dc}
o: {self.suffix}

dn: ou=people,{self.suffix}
objectClass: organizationalUnit
ou: people

dn: ou=services,{self.suffix}
objectClass: organizationalUnit
ou: services

dn: ou=policies,{self.suffix}
objectClass: organizationalUnit
ou: policies

dn: {self.service_dn}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: syncd
userPassword: {self.service_password}

dn: {self.reader_dn}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: reader
userPassword: {self.service_password}

dn: {self.policy_dn}
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 0
pwdMustChange: TRUE
pwdAllowUserChange: TRUE
pwdInHistory: 0
"""

    def start(self, *, env: Mapping[str, str] | None = None) -> Sandbox:
        """Start slapd; ``env`` (else the sandbox's ``env``) is added to its environment."""
        slapd = find_slapd()
        if slapd is None:
            raise RuntimeError("slapd is not installed (Debian: apt-get install slapd ldap-utils)")
        self.root.mkdir(parents=True, exist_ok=True)
        conf, data = self.root / "slapd.d", self.root / "data"
        fresh = not conf.exists()
        if fresh:
            conf.mkdir(mode=0o700)
            data.mkdir(mode=0o700, exist_ok=True)
            (self.root / "config.ldif").write_text(self._config_ldif(), encoding="utf-8")
            (self.root / "base.ldif").write_text(self._base_ldif(), encoding="utf-8")
            _run(
                [
                    str(slapd.with_name("slapadd")),
                    "-n0",
                    "-F",
                    str(conf),
                    "-l",
                    str(self.root / "config.ldif"),
                ]
            )
            _run(
                [
                    str(slapd.with_name("slapadd")),
                    "-n1",
                    "-F",
                    str(conf),
                    "-l",
                    str(self.root / "base.ldif"),
                ]
            )
        log = (self.root / "slapd.log").open("ab")
        extra = self.env if env is None else env
        listen = f"ldap://{self.listen_host}:{self.port}/"
        if self.tls is not None:
            listen += f" ldaps://{self.listen_host}:{self.tls_port}/"
        self.process = subprocess.Popen(
            [str(slapd), "-F", str(conf), "-h", listen, "-d", self.debug],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **extra} if extra else None,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.root / "slapd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"slapd exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(LDAPException, OSError):
                conn = Connection(
                    Server(self.url, connect_timeout=1),
                    self.admin_dn,
                    self.admin_password,
                    auto_bind=True,
                )
                conn.unbind()
                return
            time.sleep(0.1)
        raise RuntimeError(f"slapd did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Kill -9, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def admin(self) -> Connection:
        return Connection(
            Server(self.url, get_info=NONE), self.admin_dn, self.admin_password, auto_bind=True
        )

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")


def main() -> None:
    """``python -m devtools.slapd_sandbox --root DIR`` runs one in the foreground (docker/)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--suffix", default="dc=example,dc=gov,dc=vn")
    parser.add_argument("--port", type=int, default=389)
    parser.add_argument("--listen-host", default="127.0.0.1")
    args = parser.parse_args()
    sandbox = Sandbox(args.root, suffix=args.suffix, port=args.port, listen_host=args.listen_host)
    sandbox.admin_password = os.environ.get("SLAPD_ADMIN_PASSWORD", sandbox.admin_password)
    sandbox.service_password = os.environ.get("SLAPD_SERVICE_PASSWORD", sandbox.service_password)
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sandbox.start()
    print(f"slapd serving {args.suffix} on {args.listen_host}:{args.port}", flush=True)
    while not stop.wait(1.0):
        if sandbox.process is not None and sandbox.process.poll() is not None:
            raise SystemExit(f"slapd exited with {sandbox.process.returncode}")
    print("stopping slapd", flush=True)
    sandbox.stop()


if __name__ == "__main__":
    main()
