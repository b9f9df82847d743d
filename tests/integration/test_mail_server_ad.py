"""The ``ad`` profile at the mail server: syncd's own commands against a real Samba AD DC, a real
Dovecot logging people in by binding to it, and Postfix's LDAP table asked with ``postmap -q``,
both configured with the blocks docs/mail-server.md marks ``<!-- tested on samba: … ad -->``
(read from the document, so the document is what is tested).

Every state is put there by ``syncd reconcile``, ``lock`` and ``restore`` run as commands; a
person changes a one-time password with Kerberos kpasswd, as AD allows with an expired password.
"""

from __future__ import annotations

import contextlib
import csv
import imaplib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE

from connectors.store import write_private
from devtools.samba_sandbox import SambaSandbox
from devtools.slapd_sandbox import free_port
from tests.conftest import ORGS_YAML
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import write_roster
from tests.integration import mail_docs

DOMAIN = "test.gov.vn"
DOVECOT = Path("/usr/sbin/dovecot")
POSTMAP = Path("/usr/sbin/postmap")
CHOSEN = "Mine!4ever-ok"
READER_PASSWORD = "Read!only-pw9"  # a throwaway account of the test DC


def documented(server: str) -> dict[str, str]:
    """The ``key = value`` lines of the block marked ``<!-- tested on samba: <server> ad``, as
    written: the test replaces only its placeholders (server, base, CA file and, for Postfix,
    the read-only account and its password), which it must have."""
    placeholders = {
        "dovecot": ("uris", "base", "tls_ca_cert_file"),  # no lookup before the person's bind
        "postfix": (*mail_docs.POSTFIX, "tls_ca_cert_file"),
    }[server]
    return mail_docs.settings(f"tested on samba: {server} ad", placeholders)


def _require(binary: Path, package: str) -> None:
    if binary.exists():
        return
    why = f"{binary} is not installed (Debian: {package})"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


class Dovecot:
    """One Dovecot in its own directory, IMAP on a free loopback port, its passdb binding to
    the Samba DC as the person (the documented settings), a static userdb."""

    def __init__(self, samba: SambaSandbox, base: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-ad-"))
        self.root.chmod(0o755)  # Dovecot's unprivileged processes read the CA and sockets here
        home = self.root / "home"
        home.mkdir(mode=0o1777)
        home.chmod(0o1777)
        ca = self.root / "ca.pem"
        shutil.copy(samba.ca_file, ca)
        ca.chmod(0o644)
        self.port = free_port()
        ldap_conf = self.root / "dovecot-ldap.conf.ext"
        settings = {
            **documented("dovecot"),
            "uris": samba.url,  # this test's DC, its CA and subtree
            "tls_ca_cert_file": str(ca),
            "base": base,
        }
        write_private(ldap_conf, mail_docs.lines(settings))
        conf = self.root / "dovecot.conf"
        conf.write_text(
            f"""base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = syncd-ad-test-{self.port}
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
auth_failure_delay = 0
auth_cache_size = 0
auth_verbose = yes
mail_location = maildir:~/Maildir
passdb {{
  driver = ldap
  args = {ldap_conf}
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={home}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""",
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            with contextlib.suppress(OSError):
                imaplib.IMAP4("127.0.0.1", self.port, timeout=2).logout()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        out = ""
        for name in ("stderr.log", "dovecot.log"):
            with contextlib.suppress(OSError):
                out += (self.root / name).read_text(errors="replace")[-3000:]
        return out

    def login(self, user: str, password: str) -> bool:
        """An IMAP LOGIN as a mail client does it: True if Dovecot let the person in."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            imap.login(user, password)
        except imaplib.IMAP4.error:
            return False
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def dovecot(samba: SambaSandbox, ad_base: str) -> Iterator[Dovecot]:
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    server = Dovecot(samba, ad_base)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reader(samba: SambaSandbox) -> str:
    """A read-only account for Postfix (an ordinary domain user: Authenticated Users read)."""
    dn = f"CN=postfix-reader,CN=Users,{samba.suffix}"
    admin = samba.admin()
    admin.add(dn, ["user"], {"sAMAccountName": "postfix-reader"})  # kept if a run left it
    quoted = f'"{READER_PASSWORD}"'.encode("utf-16-le")
    assert admin.modify(dn, {"unicodePwd": [(MODIFY_REPLACE, [quoted])]}), admin.result
    assert admin.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, ["512"])]}), admin.result
    admin.unbind()
    return dn


def postmap(samba: SambaSandbox, base: str, reader: str, root: Path) -> Path:
    _require(POSTMAP, "postfix postfix-ldap")
    root.mkdir()
    (root / "main.cf").write_text("compatibility_level = 3.6\n", encoding="utf-8")
    settings = {
        **documented("postfix"),
        "server_host": samba.url,
        "tls_ca_cert_file": str(samba.ca_file),
        "search_base": base,
        "bind_dn": reader,
        "bind_pw": READER_PASSWORD,
    }
    table = root / "mailboxes.cf"
    write_private(table, mail_docs.lines(settings))
    return table


def lookup(table: Path, address: str) -> str | None:
    """What Postfix's table answers for ``address``: the result, or None (not found)."""
    done = subprocess.run(
        [str(POSTMAP), "-c", str(table.parent), "-q", address, f"ldap:{table}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "fatal" not in done.stderr and "warning" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), done.stderr
    return done.stdout.strip() or None


def configure(tmp_path: Path, samba: SambaSandbox, base: str, regulation: str) -> Path:
    (tmp_path / "orgs.yaml").write_text(ORGS_YAML, encoding="utf-8")
    write_private(tmp_path / "bind.pw", samba.service_password + "\n")
    path = tmp_path / "syncd.yaml"
    path.write_text(
        f"""profile: {regulation}
domain: {DOMAIN}
directory:
  profile: ad
  url: {samba.url}
  ca_file: {samba.ca_file}
  bind_dn: {samba.service_dn}
  bind_password_file: bind.pw
  base_dn: {base}
paths:
  inbox: inbox
  state: state
  outbox: outbox
  audit_log: state/audit.jsonl
orgs: orgs.yaml
transfer: {{alias_days: 30}}
""",
        encoding="utf-8",
    )
    return path


def run(cfg: Path, *args: str) -> str:
    done = syncd(cfg, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def slip_password(tmp_path: Path, uid: str) -> str:
    """The one-time password of ``uid`` on its newest credential slip (what the person gets)."""
    found = []
    address = f"{uid}@{DOMAIN}"
    for path in sorted((tmp_path / "outbox").glob("*/*.csv"), key=lambda p: p.stat().st_mtime):
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
        column = rows[0].index("Mật khẩu tạm thời")
        found += [row[column] for row in rows[1:] if address in row]
    assert found, f"no slip for {uid}"
    return found[-1]


def find(samba: SambaSandbox, base: str, employee: str) -> tuple[str, str]:
    admin = samba.admin()
    admin.search(base, f"(employeeID={employee})", attributes=["uid"])
    [hit] = [e for e in admin.response if e.get("type") == "searchResEntry"]
    admin.unbind()
    return hit["dn"], str(hit["attributes"]["uid"][0])


ROWS = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,", "E3,Trần Bình,skhcn,,,,,"]


def test_dovecot_refuses_new_locked_and_revoked_ad_accounts_and_takes_a_restored_one(
    tmp_path: Path, samba: SambaSandbox, ad_base: str, dovecot: Dovecot
) -> None:
    cfg = configure(tmp_path, samba, ad_base, "caobang-2025")
    rows = list(ROWS)
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", rows)))
    dn, uid = find(samba, ad_base, "E1")
    user = f"{uid}@{DOMAIN}"
    first = slip_password(tmp_path, uid)

    assert not dovecot.login(user, first), dovecot.log()  # must change first (data 773)
    samba.change_password(dn, first, CHOSEN)
    assert dovecot.login(user, CHOSEN), dovecot.log()
    assert not dovecot.login(user, "Wrong!pass-1")

    run(cfg, "lock", uid, "--reason", "compromised")
    assert not dovecot.login(user, CHOSEN)  # disabled (data 533)

    run(cfg, "restore", uid)
    assert not dovecot.login(user, CHOSEN)  # the restore issued a new one-time password
    again = slip_password(tmp_path, uid)
    assert again != first
    assert not dovecot.login(user, again)  # ... which must be changed first
    samba.change_password(dn, again, "Back!4good-ok")
    assert dovecot.login(user, "Back!4good-ok"), dovecot.log()

    other_dn, other = find(samba, ad_base, "E2")
    samba.change_password(other_dn, slip_password(tmp_path, other), CHOSEN)
    assert dovecot.login(f"{other}@{DOMAIN}", CHOSEN)
    rows[1] = "E2,Lê Thị Mai,skhcn,,,,Nghỉ việc,"
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "b.csv", rows)))
    assert not dovecot.login(f"{other}@{DOMAIN}", CHOSEN)  # revoked


@pytest.mark.parametrize(
    ("regulation", "receives"), [("caobang-2025", True), ("tuyenquang-2025", False)]
)
def test_postfix_delivers_to_a_locked_ad_mailbox_only_where_the_regulation_says_so(
    regulation: str,
    receives: bool,
    tmp_path: Path,
    samba: SambaSandbox,
    ad_base: str,
    reader: str,
) -> None:
    """Cao Bằng Đ8.1: a locked mailbox still receives; Tuyên Quang Đ8.1: it does not; a
    revoked one never does."""
    cfg = configure(tmp_path, samba, ad_base, regulation)
    rows = list(ROWS)
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", rows)))
    table = postmap(samba, ad_base, reader, tmp_path / "postfix")
    _, uid = find(samba, ad_base, "E1")
    address = f"{uid}@{DOMAIN}"
    assert lookup(table, address) == address
    assert lookup(table, f"nobody.skhcn@{DOMAIN}") is None

    run(cfg, "lock", uid, "--reason", "spam")
    assert (lookup(table, address) is not None) is receives

    _, other = find(samba, ad_base, "E2")
    assert lookup(table, f"{other}@{DOMAIN}") is not None
    rows[1] = "E2,Lê Thị Mai,skhcn,,,,Nghỉ việc,"
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "b.csv", rows)))
    assert lookup(table, f"{other}@{DOMAIN}") is None  # revoked (or deleted: Tuyên Quang)

    run(cfg, "restore", uid)
    assert lookup(table, address) == address


def test_postfix_delivers_to_the_old_ad_address_after_a_transfer_until_its_alias_expires(
    tmp_path: Path, samba: SambaSandbox, ad_base: str, reader: str
) -> None:
    cfg = configure(tmp_path, samba, ad_base, "caobang-2025")  # transfer.alias_days: 30
    row = "E1,Đàm Văn Hùng,{},,,,,"
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", [row.format("skhcn")])))
    moved = write_roster(tmp_path / "b.csv", [row.format("syt")])
    run(cfg, "reconcile", "--roster", str(moved))
    table = postmap(samba, ad_base, reader, tmp_path / "postfix")
    old, new = f"hungdv.skhcn@{DOMAIN}", f"hungdv.syt@{DOMAIN}"
    assert lookup(table, new) == new
    assert lookup(table, old) == new  # the same mailbox, by its old address (smtp: proxy)
    later = (datetime.now(UTC) + timedelta(days=20)).isoformat(timespec="seconds")
    run(cfg, "reconcile", "--roster", str(moved), "--now", later)
    assert lookup(table, old) == new  # 20 days: still within the alias's 30
    expired = (datetime.now(UTC) + timedelta(days=31)).isoformat(timespec="seconds")
    out = run(cfg, "reconcile", "--roster", str(moved), "--now", expired)
    assert lookup(table, old) is None, out
    assert lookup(table, new) == new
