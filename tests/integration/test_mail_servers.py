"""What syncd promises at the mail server, proven with the real servers (docs/mail-server.md).

A real Dovecot (Debian's dovecot-imapd and dovecot-ldap, its own configuration, base directory
and port, started here) authenticates against the test slapd with the passdb and userdb
filters that docs/mail-server.md documents for each profile — read from the document, so the
document is what is tested — and imaplib logs in as a person would. Postfix's LDAP table
(postfix-ldap) answers ``postmap -q <address> ldap:<file>`` with the documented delivery query.
Every state is put there by syncd itself (``syncd reconcile``, ``lock``, ``restore`` run as
commands), never by hand; a person changing their one-time password binds as themselves.
"""

from __future__ import annotations

import contextlib
import csv
import html
import imaplib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ldap3 import NONE, Connection, Server

from connectors.store import write_private
from devtools.slapd_sandbox import Sandbox, free_port
from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import write_roster
from tests.integration import mail_docs
from tests.integration.debian_slapd import DebianSlapd
from tests.integration.test_directory_contract import needs_schema

DOMAIN = "test.gov.vn"
DOCS = mail_docs.DOCS
DOVECOT = Path("/usr/sbin/dovecot")
POSTMAP = Path("/usr/sbin/postmap")
# the person's own password once the one-time one is changed
CHOSEN = "Mine!4ever-ok"


def documented(server: str, profile: str) -> dict[str, str]:
    """The ``key = value`` lines of the block docs/mail-server.md marks
    ``<!-- tested: <server> <profile> -->``, as written: the servers below replace only its
    placeholders (server, base, read-only account and password), which it must have."""
    placeholders = mail_docs.DOVECOT if server == "dovecot" else mail_docs.POSTFIX
    return mail_docs.settings(f"tested: {server} {profile} -->", placeholders)


def _require(binary: Path, package: str) -> None:
    if binary.exists():
        return
    why = f"{binary} is not installed (Debian: {package})"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


class Dovecot:
    """One Dovecot instance in its own directory (configuration, base_dir, state, logs, mail),
    IMAP on a free loopback port, authenticating against ``slapd`` with ``filters``."""

    def __init__(
        self,
        slapd: Sandbox | DebianSlapd,
        base: str,
        filters: dict[str, str],
        extra: str = "",
        *,
        reader: tuple[str, str] | None = None,
        user_attrs: str | None = None,
    ) -> None:
        """``extra``: more configuration, appended (plugins, dicts, another passdb);
        ``reader``: the read-only account's DN and password (default: the sandbox's);
        ``user_attrs``: a documented userdb line (the home from the directory), to which only
        the user mail is kept as here is added (default: a home of this test's)."""
        if reader is None:
            assert isinstance(slapd, Sandbox)
            reader = (slapd.reader_dn, slapd.service_password)
        # short and reachable by the unprivileged users Dovecot's processes run as (socket
        # paths are limited to 108 bytes; pytest's tmp_path is neither)
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.root.chmod(0o755)
        home = self.root / "home"
        home.mkdir(mode=0o1777)
        home.chmod(0o1777)
        self.port = free_port()
        ldap_conf = self.root / "dovecot-ldap.conf.ext"
        settings = {
            **filters,  # as documented, its placeholders replaced by this test's servers
            "uris": slapd.url,
            "dn": reader[0],
            "dnpass": reader[1],
            "base": base,
            # where this test keeps mail, as nobody's uid/gid (never as root): not LDAP access
            "user_attrs": f"{user_attrs},=uid=65534,=gid=65534"
            if user_attrs
            else f"=home={home}/%u,=uid=65534,=gid=65534",
        }
        write_private(ldap_conf, mail_docs.lines(settings))
        conf = self.root / "dovecot.conf"
        conf.write_text(
            f"""base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = syncd-test-{self.port}
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
  driver = ldap
  args = {ldap_conf}
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
# no growing penalty for this test's many refused logins from one address
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{extra}""",
            encoding="utf-8",
        )
        self.conf = conf
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


class Postfix:
    """Postfix's LDAP table with the documented query, asked with ``postmap -q``."""

    def __init__(
        self,
        slapd: Sandbox | DebianSlapd,
        base: str,
        query: dict[str, str],
        root: Path,
        *,
        reader: tuple[str, str] | None = None,
    ) -> None:
        if reader is None:
            assert isinstance(slapd, Sandbox)
            reader = (slapd.reader_dn, slapd.service_password)
        self.root = root
        (root / "main.cf").write_text("compatibility_level = 3.6\n", encoding="utf-8")
        settings = {
            **query,  # as documented, its placeholders replaced by this test's servers
            "server_host": slapd.url,
            "search_base": base,
            "bind_dn": reader[0],
            "bind_pw": reader[1],
        }
        self.table = root / "mailboxes.cf"
        write_private(self.table, mail_docs.lines(settings))

    def lookup(self, address: str) -> str | None:
        """What Postfix's table answers for ``address``: the result, or None (not found)."""
        done = subprocess.run(
            [str(POSTMAP), "-c", str(self.root), "-q", address, f"ldap:{self.table}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "fatal" not in done.stderr and "warning" not in done.stderr, done.stderr
        assert done.returncode in (0, 1), done.stderr
        return done.stdout.strip() or None


@pytest.fixture
def servers() -> Iterator[list[Dovecot]]:
    started: list[Dovecot] = []
    yield started
    for dovecot in started:
        dovecot.stop()


# -- the scene: accounts put in each state by syncd's own commands ------------------------------


def configure(
    make_config: MakeConfig, tmp_path: Path, profile: str, regulation: str, extra: str = ""
) -> Path:
    make_config(profile=regulation, extra="transfer: {alias_days: 30}\n" + extra)
    path = tmp_path / "syncd.yaml"
    if profile != "openldap":
        text = path.read_text(encoding="utf-8")
        # the quota a site gives new mailboxes where the profile writes one (a Hưng Yên
        # configuration without it is refused: Đ8.1b)
        quota = "  quota_mb: 2048\n  org_quota_mb: 10240\n" if profile in QUOTA_PROFILES else ""
        if profile == "zimbra":  # the mailbox server new accounts live on
            quota += f"  zimbra: {{mail_host: mail.{DOMAIN}}}\n"
        head = f"directory:\n  profile: {profile}\n{quota}"
        path.write_text(text.replace("directory:\n", head, 1))
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


def find_dn(admin: Connection, base: str, employee: str) -> tuple[str, str]:
    admin.search(base, f"(employeeNumber={employee})", attributes=["uid"])
    [hit] = [e for e in admin.response if e.get("type") == "searchResEntry"]
    return hit["dn"], str(hit["attributes"]["uid"][0])


def change_own_password(slapd: Sandbox, dn: str, old: str, new: str) -> None:
    """What the person does on the webmail's password page: bind as themselves with the slip's
    password, then the RFC 3062 password change (ppolicy allows it while pwdReset is set)."""
    conn = Connection(Server(slapd.url, get_info=NONE), dn, old)
    assert conn.bind(), conn.result
    assert conn.extend.standard.modify_password(dn, old, new), conn.result
    conn.unbind()


DOVECOT_PROFILES = ["openldap", "iredmail"]  # Zimbra logs people in itself
POSTFIX_PROFILES = ["openldap", "iredmail", "zimbra"]
QUOTA_PROFILES = ("iredmail", "zimbra")  # they write each new mailbox's quota


def login_name(profile: str, uid: str) -> str:
    """iRedMail logs in with the whole address (mail=%u), the generic filter with the uid."""
    return f"{uid}@{DOMAIN}" if profile == "iredmail" else uid


def mail_base(profile: str, base_dn: str) -> str:
    return f"o=domains,{base_dn}" if profile == "iredmail" else base_dn


@pytest.mark.parametrize("profile", DOVECOT_PROFILES)
def test_dovecot_refuses_new_locked_and_revoked_accounts_and_takes_a_restored_one(
    profile: str,
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    servers: list[Dovecot],
) -> None:
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    if profile != "openldap":
        needs_schema(slapd, profile)
    cfg = configure(make_config, tmp_path, profile, "caobang-2025")
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,", "E3,Trần Bình,skhcn,,,,,"]
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", rows)))
    dovecot = Dovecot(slapd, mail_base(profile, base_dn), documented("dovecot", profile))
    servers.append(dovecot)
    dn, uid = find_dn(admin, base_dn, "E1")
    user = login_name(profile, uid)
    first = slip_password(tmp_path, uid)

    # provisioning: the one-time password binds at slapd, but the login filter refuses it
    assert Connection(Server(slapd.url, get_info=NONE), dn, first).bind()
    assert not dovecot.login(user, first), dovecot.log()
    change_own_password(slapd, dn, first, CHOSEN)
    assert dovecot.login(user, CHOSEN), dovecot.log()
    assert not dovecot.login(user, "Wrong!pass-1")

    run(cfg, "lock", uid, "--reason", "compromised")
    assert not dovecot.login(user, CHOSEN)

    run(cfg, "restore", uid)
    assert not dovecot.login(user, CHOSEN)  # the restore issued a new one-time password
    again = slip_password(tmp_path, uid)
    assert again != first
    assert not dovecot.login(user, again)  # ... which must be changed first
    change_own_password(slapd, dn, again, "Back!4good-ok")
    assert dovecot.login(user, "Back!4good-ok"), dovecot.log()

    # revoked: HR says the person left
    other_dn, other = find_dn(admin, base_dn, "E2")
    change_own_password(slapd, other_dn, slip_password(tmp_path, other), CHOSEN)
    assert dovecot.login(login_name(profile, other), CHOSEN)
    rows[1] = "E2,Lê Thị Mai,skhcn,,,,Nghỉ việc,"
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "b.csv", rows)))
    assert not dovecot.login(login_name(profile, other), CHOSEN)


FIRST_LOGIN_URL = "https://matkhau.test.gov.vn"
# what the documented command names, and what this test's servers replace it with
DOC_SERVER = {"openldap": "ldaps://ldap.caobang.gov.vn", "iredmail": "ldap://127.0.0.1:389"}
DOC_BASE = {"openldap": "ou=people,dc=caobang,dc=gov,dc=vn", "iredmail": "dc=caobang,dc=gov,dc=vn"}


def slip_page(tmp_path: Path, address: str) -> str:
    """The text of the person's page on the newest rendered slip (what they read)."""
    pages = sorted((tmp_path / "outbox").glob("*/*.html"), key=lambda p: p.stat().st_mtime)
    found = [
        section
        for page in pages
        for section in page.read_text(encoding="utf-8").split("<section")
        if address in section
    ]
    assert found, f"no slip page for {address}"
    return html.unescape(re.sub(r"<[^>]+>", " ", found[-1]))


def documented_change(profile: str, url: str, base: str, uid: str) -> list[str]:
    """The documented first-login command, only its marked parts replaced: the server, the
    base and the person (``<uid>``, ``<address>``, ``<domain>``)."""
    command = mail_docs.block(f"tested: first-login {profile} -->").strip()
    for placeholder in (DOC_SERVER[profile], DOC_BASE[profile]):
        assert placeholder in command, f"{command!r} no longer names {placeholder}"
    command = command.replace(DOC_SERVER[profile], url).replace(DOC_BASE[profile], base)
    for name, value in {"<uid>": uid, "<address>": f"{uid}@{DOMAIN}", "<domain>": DOMAIN}.items():
        command = command.replace(name, value)
    assert "<" not in command, command
    return shlex.split(command)


@pytest.mark.parametrize("profile", DOVECOT_PROFILES)
def test_a_new_person_changes_the_one_time_password_where_the_slip_says_then_logs_in(
    profile: str,
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    servers: list[Dovecot],
) -> None:
    """The first login as a person walks it: the slip sends them to the self-service step
    (not to the webmail, which is behind the login that refuses them), the documented
    ``ldappasswd`` binds with the slip's password and changes it, and only then does the
    documented Dovecot block let them in."""
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    if profile != "openldap":
        needs_schema(slapd, profile)
    slips = f"slips: {{first_login_url: '{FIRST_LOGIN_URL}'}}\n"
    cfg = configure(make_config, tmp_path, profile, "caobang-2025", slips)
    run(
        cfg,
        "reconcile",
        "--roster",
        str(write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])),
    )
    dovecot = Dovecot(slapd, mail_base(profile, base_dn), documented("dovecot", profile))
    servers.append(dovecot)
    dn, uid = find_dn(admin, base_dn, "E1")
    user = login_name(profile, uid)

    page = slip_page(tmp_path, f"{uid}@{DOMAIN}")
    assert FIRST_LOGIN_URL in page, page
    assert "caobang-2025 Đ6" in page  # the must-change article
    assert "bị từ chối" in page  # the login is refused until then: no "the system will ask"
    assert "hệ thống yêu cầu đổi mật khẩu" not in page
    first = slip_password(tmp_path, uid)
    assert not dovecot.login(user, first), dovecot.log()

    command = documented_change(profile, slapd.url, base_dn, uid)
    assert command[command.index("-D") + 1].lower() == dn.lower()  # the documented DN is theirs
    done = subprocess.run(
        command,
        # as ldappasswd asks: the new password twice (-S), then the slip's (-W, to bind)
        input=f"{CHOSEN}\n{CHOSEN}\n{first}\n",
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,  # no terminal: the prompts read the typed lines from stdin
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert first not in done.stdout + done.stderr and CHOSEN not in done.stdout + done.stderr

    assert dovecot.login(user, CHOSEN), dovecot.log()
    assert not dovecot.login(user, first)


def delivery(profile: str, slapd: Sandbox, base_dn: str, tmp_path: Path) -> Postfix:
    _require(POSTMAP, "postfix postfix-ldap")
    root = tmp_path / "postfix"
    root.mkdir()
    return Postfix(slapd, mail_base(profile, base_dn), documented("postfix", profile), root)


@pytest.mark.parametrize("profile", POSTFIX_PROFILES)
@pytest.mark.parametrize(
    ("regulation", "receives"), [("caobang-2025", True), ("tuyenquang-2025", False)]
)
def test_postfix_delivers_to_a_locked_mailbox_only_where_the_regulation_says_so(
    profile: str,
    regulation: str,
    receives: bool,
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
) -> None:
    """Cao Bằng Đ8.1: a locked mailbox still receives; Tuyên Quang Đ8.1: it does not; a
    revoked one never does."""
    if profile != "openldap":
        needs_schema(slapd, profile)
    cfg = configure(make_config, tmp_path, profile, regulation)
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,", "E3,Trần Bình,skhcn,,,,,"]
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", rows)))
    postfix = delivery(profile, slapd, base_dn, tmp_path)
    _, uid = find_dn(admin, base_dn, "E1")
    address = f"{uid}@{DOMAIN}"
    assert postfix.lookup(address) is not None
    assert postfix.lookup(f"nobody.skhcn@{DOMAIN}") is None

    run(cfg, "lock", uid, "--reason", "spam")
    assert (postfix.lookup(address) is not None) is receives

    _, other = find_dn(admin, base_dn, "E2")
    assert postfix.lookup(f"{other}@{DOMAIN}") is not None
    rows[1] = "E2,Lê Thị Mai,skhcn,,,,Nghỉ việc,"
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "b.csv", rows)))
    assert postfix.lookup(f"{other}@{DOMAIN}") is None  # revoked (or deleted: Tuyên Quang)

    run(cfg, "restore", uid)
    assert postfix.lookup(address) is not None


@pytest.mark.parametrize("profile", POSTFIX_PROFILES)
def test_postfix_delivers_to_the_old_address_after_a_transfer_until_its_alias_expires(
    profile: str,
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
) -> None:
    if profile != "openldap":
        needs_schema(slapd, profile)
    cfg = configure(make_config, tmp_path, profile, "caobang-2025")  # transfer.alias_days: 30
    row = "E1,Đàm Văn Hùng,{},,,,,"
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", [row.format("skhcn")])))
    moved = write_roster(tmp_path / "b.csv", [row.format("syt")])
    run(cfg, "reconcile", "--roster", str(moved))
    postfix = delivery(profile, slapd, base_dn, tmp_path)
    old, new = f"hungdv.skhcn@{DOMAIN}", f"hungdv.syt@{DOMAIN}"
    assert postfix.lookup(new) is not None
    assert postfix.lookup(old) == postfix.lookup(new)  # the same mailbox
    later = (datetime.now(UTC) + timedelta(days=20)).isoformat(timespec="seconds")
    run(cfg, "reconcile", "--roster", str(moved), "--now", later)
    assert postfix.lookup(old) is not None  # 20 days: still within the alias's 30
    expired = (datetime.now(UTC) + timedelta(days=31)).isoformat(timespec="seconds")
    out = run(cfg, "reconcile", "--roster", str(moved), "--now", expired)
    assert postfix.lookup(old) is None, out
    assert postfix.lookup(new) is not None


def test_every_profile_with_mail_server_filters_is_tested_here() -> None:
    """A block docs/mail-server.md marks as tested belongs to a profile this file runs."""
    marked = set(re.findall(r"<!-- tested: (\w+) ([\w-]+) -->", DOCS.read_text("utf-8")))
    assert {p for s, p in marked if s == "dovecot"} == set(DOVECOT_PROFILES)
    assert {p for s, p in marked if s == "postfix"} == set(POSTFIX_PROFILES)
