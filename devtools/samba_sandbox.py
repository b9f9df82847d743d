"""A throwaway Samba AD DC for the ``ad`` profile's tests: the real server, provisioned into a
private directory and started on loopback.

Samba's LDAP ports (389, 636, 3268, 3269) are fixed in its code, so each sandbox listens on an
address of its own in 127.0.0.0/8 (Linux answers on every address of that block through ``lo``),
chosen at random among those whose ports are free; the KDC and kpasswd ports are free ports of
that address. Only the ``ldap`` and ``kdc`` services run, in one process (``-M single``).

Set-up, once per root: ``samba-tool domain provision --use-rfc2307`` (about 4 s here), a CA and
a server certificate for that address (so clients verify it: ``ca_file``), syncd's schema
extension (``connectors/directory/syncd-schema-ad.ldif``, loaded with ``ldapmodify`` as a real
AD's Schema Admin would with ``ldifde``), ``OU=people`` and a service account ``CN=syncd``
with full control of that OU only (an inherited ACE: nothing outside it, no schema, no domain
policy). ``change_password`` is what a person does at first login: Kerberos kpasswd with the
old password (a bind is refused until then, ``data 773``).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ldap3 import MODIFY_REPLACE, NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.formatters.formatters import format_sid

SAMBA = Path("/usr/sbin/samba")
SAMBA_TOOL = Path("/usr/bin/samba-tool")
SCHEMA = Path(str(resources.files("connectors.directory") / "syncd-schema-ad.ldif"))
LDAP_PORTS = (389, 636, 3268, 3269)


def find_samba() -> str | None:
    """Why a Samba AD DC cannot run here, or None when it can."""
    for tool in (SAMBA, SAMBA_TOOL, Path("/usr/bin/ldapmodify"), Path("/usr/bin/kpasswd")):
        if not tool.exists():
            return f"{tool} is not installed (Debian: samba, samba-ad-dc, ldap-utils, krb5-user)"
    return None


def _free(host: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def _free_port(host: str) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if _free(host, port):
            return port


def free_loopback_host() -> str:
    """An address of 127.0.0.0/8 (not 127.0.0.x) whose LDAP ports nobody holds."""
    rng = random.SystemRandom()
    for _ in range(100):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if all(_free(host, p) for p in LDAP_PORTS):
            return host
    raise RuntimeError("no loopback address with free LDAP ports")


def _run(cmd: list[str], input: str | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, input=input, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} … failed ({done.returncode}):\n{done.stderr}")
    return str(done.stdout)


@dataclass
class SambaSandbox:
    """One Samba AD DC living in ``root``; use as a context manager or call start/stop."""

    root: Path
    realm: str = "SYNCD.TEST"
    workgroup: str = "SYNCD"
    admin_password: str = "Adm1n!sandbox-pw"  # noqa: S105 - throwaway server on loopback
    service_password: str = "Svc!sandbox-pw7"  # noqa: S105
    host: str = field(default_factory=free_loopback_host)
    process: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds, for reports

    def __post_init__(self) -> None:
        self.kdc_port = _free_port(self.host)
        self.kpasswd_port = _free_port(self.host)

    @property
    def suffix(self) -> str:
        return ",".join(f"DC={part}" for part in self.realm.lower().split("."))

    @property
    def url(self) -> str:
        return f"ldaps://{self.host}"

    @property
    def admin_dn(self) -> str:
        return f"CN=Administrator,CN=Users,{self.suffix}"

    @property
    def service_dn(self) -> str:
        return f"CN=syncd,CN=Users,{self.suffix}"

    @property
    def people_dn(self) -> str:
        return f"OU=people,{self.suffix}"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def krb5_conf(self) -> Path:
        return self.root / "krb5.conf"

    @property
    def _conf(self) -> Path:
        return self.root / "dc" / "etc" / "smb.conf"

    # -- set-up ---------------------------------------------------------------------------

    def _certificates(self) -> None:
        """A CA and a certificate for this address, so that clients verify the server."""
        tls = self.root / "tls"
        tls.mkdir(mode=0o700, exist_ok=True)
        ca_key, key = tls / "ca-key.pem", tls / "key.pem"
        _run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"),
                *("-keyout", str(ca_key), "-out", str(self.ca_file), "-subj", "/CN=syncd test CA"),
            ]
        )
        csr = tls / "req.pem"
        _run(
            [
                *("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)),
                *("-out", str(csr), "-subj", f"/CN={self.host}"),
            ]
        )
        ext = tls / "ext.cnf"
        ext.write_text(f"subjectAltName=IP:{self.host},DNS:dc.{self.realm.lower()}\n")
        _run(
            [
                *("openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.ca_file)),
                *("-CAkey", str(ca_key), "-CAcreateserial", "-days", "30"),
                *("-extfile", str(ext), "-out", str(tls / "cert.pem")),
            ]
        )
        key.chmod(0o600)  # samba refuses a key others can read

    def provision(self) -> None:
        dc, run, tls = self.root / "dc", self.root / "run", self.root / "tls"
        run.mkdir(mode=0o700, exist_ok=True)
        options = {
            "interfaces": f"{self.host}/8",
            "bind interfaces only": "yes",
            "server services": "ldap, kdc",
            "dsdb:schema update allowed": "true",  # to load syncd's schema extension
            "krb5 port": str(self.kdc_port),
            "kpasswd port": str(self.kpasswd_port),
            "pid directory": str(run),
            "ncalrpc dir": str(run / "ncalrpc"),
            "winbindd socket directory": str(run / "winbindd"),
            "ntp signd socket directory": str(run / "ntp"),
            "log file": str(self.root / "log.%m"),
            "tls enabled": "yes",
            "tls keyfile": str(tls / "key.pem"),
            "tls certfile": str(tls / "cert.pem"),
            "tls cafile": str(self.ca_file),
        }
        _run(
            [
                str(SAMBA_TOOL),
                *("domain", "provision", "--use-rfc2307", "--server-role=dc"),
                *(f"--realm={self.realm}", f"--domain={self.workgroup}", "--dns-backend=NONE"),
                f"--adminpass={self.admin_password}",
                f"--targetdir={dc}",
                "--host-name=dc",
                *(f"--option={k}={v}" for k, v in options.items()),
            ]
        )
        # provision drops this one from --option: AD lets NTLM and simple binds use the
        # previous password for 60 minutes after a change; off, so a test sees a change at once
        conf = self._conf.read_text(encoding="utf-8")
        self._conf.write_text(
            conf.replace("[global]\n", "[global]\n\told password allowed period = 0\n", 1),
            encoding="utf-8",
        )
        self.krb5_conf.write_text(
            f"""[libdefaults]
  default_realm = {self.realm}
  dns_lookup_kdc = false
  dns_lookup_realm = false
[realms]
  {self.realm} = {{
    kdc = {self.host}:{self.kdc_port}
    kpasswd_server = {self.host}:{self.kpasswd_port}
    admin_server = {self.host}:{self.kpasswd_port}
  }}
""",
            encoding="utf-8",
        )

    def _load_schema(self) -> None:
        ldif = SCHEMA.read_text(encoding="utf-8").replace(
            "CN=Configuration,DC=X", f"CN=Configuration,{self.suffix}"
        )
        _run(
            [
                *("ldapmodify", "-x", "-H", self.url, "-D", self.admin_dn),
                *("-y", str(self._admin_password_file())),
            ],
            input=ldif,
            env={**os.environ, "LDAPTLS_CACERT": str(self.ca_file)},
        )

    def _admin_password_file(self) -> Path:
        path = self.root / "admin.pw"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(self.admin_password, encoding="utf-8")
        return path

    def _service_account(self) -> None:
        """OU=people, and CN=syncd with full control of it (inherited by what it holds)."""
        conn = self.admin()
        try:
            for dn, classes, attrs in (
                (self.people_dn, ["organizationalUnit"], {}),
                (
                    self.service_dn,
                    ["user"],
                    {"sAMAccountName": "syncd", "userAccountControl": str(0x200 | 0x10000)},
                ),
            ):
                if not conn.add(dn, classes, attrs):
                    raise RuntimeError(f"adding {dn}: {conn.result}")
            quoted = f'"{self.service_password}"'.encode("utf-16-le")
            if not conn.modify(dn, {"unicodePwd": [(MODIFY_REPLACE, [quoted])]}):
                raise RuntimeError(f"setting the password of {dn}: {conn.result}")
            conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=["objectSid"])
            sid = format_sid(conn.response[0]["raw_attributes"]["objectSid"][0])
        finally:
            conn.unbind()
        _run(
            [
                *(str(SAMBA_TOOL), "dsacl", "set", "-s", str(self._conf)),
                *("-H", str(self.root / "dc" / "private" / "sam.ldb")),
                *(f"--objectdn={self.people_dn}", f"--sddl=(A;CI;GA;;;{sid})"),
            ]
        )

    def start(self) -> SambaSandbox:
        """Provision (the first time), start samba, wait for LDAPS, set up the directory."""
        missing = find_samba()
        if missing:
            raise RuntimeError(missing)
        self.root.mkdir(parents=True, exist_ok=True)
        fresh = not self._conf.exists()
        if fresh:
            began = time.monotonic()
            self._certificates()
            self.provision()
            self.timings["provision"] = time.monotonic() - began
        began = time.monotonic()
        log = (self.root / "samba.log").open("ab")
        self.process = subprocess.Popen(
            [str(SAMBA), "-i", "-M", "single", "-s", str(self._conf), "--debug-stdout"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()
        self.timings["start"] = time.monotonic() - began
        if fresh:
            began = time.monotonic()
            self._load_schema()
            self._service_account()
            self.timings["setup"] = time.monotonic() - began
        return self

    def _server(self) -> Server:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca_file))
        return Server(self.url, get_info=NONE, tls=tls, connect_timeout=2)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.root / "samba.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"samba exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(LDAPException, OSError):
                Connection(
                    self._server(), self.admin_dn, self.admin_password, auto_bind=True
                ).unbind()
                return
            time.sleep(0.2)
        raise RuntimeError(f"samba did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    # -- what the tests do as people and as the domain's administrator ----------------------

    def admin(self) -> Connection:
        return Connection(self._server(), self.admin_dn, self.admin_password, auto_bind=True)

    def change_password(self, dn: str, old: str, new: str) -> None:
        """What a person does at first login: kpasswd (Kerberos) with the old password. AD
        refuses their bind until then (``data 773``), so the LDAP way cannot be used."""
        conn = self.admin()
        try:
            conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=["sAMAccountName"])
            sam = conn.response[0]["attributes"]["sAMAccountName"][0]
        finally:
            conn.unbind()
        _run(
            ["kpasswd", f"{sam}@{self.realm}"],
            input=f"{old}\n{new}\n{new}\n",
            env={**os.environ, "KRB5_CONFIG": str(self.krb5_conf)},
        )

    def __enter__(self) -> SambaSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """``python -m devtools.samba_sandbox --root DIR`` runs one in the foreground."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args()
    sandbox = SambaSandbox(args.root)
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sandbox.start()
    print(
        f"Samba AD DC {sandbox.realm} on {sandbox.url} (CA {sandbox.ca_file}); "
        f"timings {sandbox.timings}",
        flush=True,
    )
    while not stop.wait(1.0):
        if sandbox.process is not None and sandbox.process.poll() is not None:
            raise SystemExit(f"samba exited with {sandbox.process.returncode}")
    sandbox.stop()


if __name__ == "__main__":
    main()
