"""A slapd configured the way Debian's package configures it, for ``syncd directory init``.

The configuration is Debian's own ``/usr/share/slapd/slapd.init.ldif`` (what ``slapd``'s
postinst loads on a fresh install) with only the host paths moved into a temporary directory:
the pid and args files, the database directory, and an ldapi socket of its own. So the test
server has Debian's indexes (``objectClass eq``, ``cn,uid eq``, …, which made the old
``config/ldap/acl.ldif`` fail), its ACLs (root over ldapi manages ``cn=config``; everyone reads
the data), its 500-entry size limit, and no ppolicy, lastbind or syncd schema. The suffix entry
is added as the postinst adds it. It listens on a free loopback port and on its ldapi socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ldap3 import NONE, Connection, Server
from ldap3.core.exceptions import LDAPException

from devtools.slapd_sandbox import find_slapd, free_port

DEBIAN_INIT_LDIF = Path("/usr/share/slapd/slapd.init.ldif")


@dataclass
class DebianSlapd:
    root: Path
    suffix: str = "dc=tinh,dc=gov,dc=vn"
    admin_password: str = "debian-admin"  # throwaway server on loopback
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def socket(self) -> Path:
        return self.root / "ldapi"

    @property
    def ldapi_url(self) -> str:
        return "ldapi://" + quote(str(self.socket), safe="")

    @property
    def admin_dn(self) -> str:
        return f"cn=admin,{self.suffix}"

    def _config(self) -> str:
        text = DEBIAN_INIT_LDIF.read_text(encoding="utf-8")
        for old, new in (
            ("@SUFFIX@", self.suffix),
            ("@PASSWORD@", self.admin_password),
            ("/var/run/slapd/slapd.pid", str(self.root / "slapd.pid")),
            ("/var/run/slapd/slapd.args", str(self.root / "slapd.args")),
            ("olcDbDirectory: /var/lib/ldap", f"olcDbDirectory: {self.root / 'data'}"),
        ):
            assert old in text, f"{DEBIAN_INIT_LDIF} no longer has {old!r}"
            text = text.replace(old, new)
        return text

    def _base(self) -> str:
        dc = self.suffix.split(",")[0].split("=")[1]
        return (
            f"dn: {self.suffix}\nobjectClass: top\nobjectClass: dcObject\n"
            f"objectClass: organization\no: {dc}\ndc: {dc}\n"
        )

    def start(self) -> DebianSlapd:
        slapd = find_slapd()
        if slapd is None or not DEBIAN_INIT_LDIF.exists():
            raise RuntimeError("Debian's slapd is not installed (apt-get install slapd)")
        conf, data = self.root / "slapd.d", self.root / "data"
        if not conf.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            conf.mkdir(mode=0o700)
            data.mkdir(mode=0o700)
            (self.root / "init.ldif").write_text(self._config(), encoding="utf-8")
            (self.root / "base.ldif").write_text(self._base(), encoding="utf-8")
            slapadd = str(slapd.with_name("slapadd"))
            for n, name in (("-n0", "init.ldif"), ("-n1", "base.ldif")):
                subprocess.run(
                    [slapadd, n, "-F", str(conf), "-l", str(self.root / name)],
                    check=True,
                    capture_output=True,
                )
        listen = f"ldap://127.0.0.1:{self.port}/ {self.ldapi_url}/"
        log = (self.root / "slapd.log").open("ab")
        self.process = subprocess.Popen(
            [str(slapd), "-F", str(conf), "-h", listen, "-d", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.root / "slapd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"slapd exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(LDAPException, OSError):
                self.admin().unbind()
                if self.socket.exists():
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"slapd did not answer on {self.url}")

    def admin(self) -> Connection:
        """The rootDN, as the postinst's debconf password makes it."""
        return Connection(
            Server(self.url, get_info=NONE), self.admin_dn, self.admin_password, auto_bind=True
        )

    def ldapmodify(self, ldif: str) -> subprocess.CompletedProcess[str]:
        """``ldapmodify -Y EXTERNAL -H ldapi://…`` as root, as an operator changes cn=config."""
        return subprocess.run(
            ["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", self.ldapi_url],
            input=ldif,
            capture_output=True,
            text=True,
            check=False,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


ORGS_YAML = """\
orgs:
  - {code: skhcn, name: Sở Khoa học và Công nghệ, mailbox: sokhcn, kind: department}
"""
SERVICE_PASSWORD = "Svc-secret-42"  # throwaway server on loopback


def write_config(folder: Path, slapd: DebianSlapd) -> Path:
    """A syncd.yaml for ``slapd``'s suffix: service DN and people branch as install.md names
    them, the bind password in a 0600 file."""
    (folder / "orgs.yaml").write_text(ORGS_YAML, encoding="utf-8")
    secret = folder / "bind.pw"
    secret.write_text(SERVICE_PASSWORD + "\n", encoding="utf-8")
    secret.chmod(0o600)
    config = folder / "syncd.yaml"
    config.write_text(
        f"""profile: caobang-2025
domain: tinh.gov.vn
directory:
  url: {slapd.url}
  bind_dn: cn=syncd,ou=services,{slapd.suffix}
  bind_password_file: bind.pw
  base_dn: ou=people,{slapd.suffix}
paths:
  inbox: inbox
  state: state
  outbox: outbox
  audit_log: state/audit.jsonl
orgs: orgs.yaml
""",
        encoding="utf-8",
    )
    return config


def syncd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``syncd`` command."""
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def dump(slapd: DebianSlapd, base: str) -> str:
    """Every entry under ``base`` with its user attributes, as root reads it over ldapi."""
    result = subprocess.run(
        [
            *("ldapsearch", "-Q", "-LLL", "-o", "ldif-wrap=no", "-Y", "EXTERNAL"),
            *("-H", slapd.ldapi_url, "-b", base, "(objectClass=*)", "*"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout
