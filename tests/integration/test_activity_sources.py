"""The activity sources read what real Postfix and Dovecot wrote on this machine.

A real Dovecot (the helper of test_mail_servers.py: its own configuration, base directory and
port, authenticating against the test slapd with the documented filters) runs with the
``last_login`` plugin and logs to a file; a real Postfix instance (its own configuration
directory, queue, loopback port and ``maillog_file``) takes mail over SMTP, authenticates
submissions through Dovecot's auth socket (SASL) and delivers with ``virtual`` into Maildirs in
its directory. People log in with imaplib and send with smtplib; the sources in
``connectors/activity/`` must then say who logged in, sent and received, and when. Both
servers run with ``TZ=Asia/Ho_Chi_Minh``, as a Vietnamese mail server does, so the syslog time
stamps (no year, no zone) are read in the configured zone.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import smtplib
import sqlite3
import subprocess
import tempfile
import time
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ldap3 import Connection

from connectors.activity import DovecotDictSource, DovecotSqlSource, MailLogSource
from connectors.activity.saved import Seen
from devtools.slapd_sandbox import Sandbox, free_port
from tests.conftest import MakeConfig
from tests.helpers import write_roster
from tests.integration.test_mail_servers import (
    CHOSEN,
    DOMAIN,
    DOVECOT,
    Dovecot,
    _require,
    change_own_password,
    configure,
    documented,
    find_dn,
    run,
    slip_password,
)

POSTFIX = Path("/usr/sbin/postfix")
ZONE = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """One real Postfix instance in its own directory: SMTP on a free loopback port, mail for
    ``mailboxes`` delivered by ``virtual`` into Maildirs here, every line it logs in
    ``<root>/maillog``; SASL through Dovecot's auth socket when ``sasl_path`` is given."""

    def __init__(self, mailboxes: list[str], sasl_path: Path | None = None) -> None:
        _require(POSTFIX, "postfix")
        # reachable by the postfix user and by nobody (virtual delivers as 65534)
        self.root = Path(tempfile.mkdtemp(prefix="postfix-"))
        self.root.chmod(0o755)
        (self.root / "queue").mkdir()
        data = self.root / "data"
        data.mkdir()
        shutil.chown(data, "postfix")
        vmail = self.root / "vmail"
        vmail.mkdir(mode=0o777)
        vmail.chmod(0o777)
        self.maillog = self.root / "maillog"
        self.port = free_port()
        (self.root / "vmailbox").write_text(
            "".join(f"{m} {m.split('@')[0]}/\n" for m in mailboxes), encoding="utf-8"
        )
        sasl = (
            f"smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n"
            f"smtpd_sasl_path = {sasl_path}\n"
            if sasl_path
            else ""
        )
        (self.root / "main.cf").write_text(
            f"""compatibility_level = 3.6
queue_directory = {self.root}/queue
data_directory = {data}
maillog_file = {self.maillog}
maillog_file_prefixes = {self.root}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.{DOMAIN}
mydestination =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{self.root}/vmailbox
virtual_mailbox_base = {vmail}
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
{sasl}""",
            encoding="utf-8",
        )
        (self.root / "master.cf").write_text(
            MASTER_CF.format(listen=f"127.0.0.1:{self.port}"), encoding="utf-8"
        )
        self.postfix("start")
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                smtplib.SMTP("127.0.0.1", self.port, timeout=5).quit()
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postfix did not listen on {self.port}: {self.log()}")
            time.sleep(0.1)

    def postfix(self, command: str) -> None:
        done = subprocess.run(
            [str(POSTFIX), "-c", str(self.root), command],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"postfix {command}: {done.stderr}{self.log()}")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.maillog.read_text(errors="replace")[-3000:]
        return ""

    def send(self, sender: str, to: str, login: tuple[str, str] | None = None) -> None:
        """One message over SMTP, as a person's mail client (``login``: SASL) or another
        server sends it; returns once Postfix has logged its delivery (it is asynchronous)."""
        delivered = re.compile(rf"to=<{re.escape(to)}>.*status=sent")
        before = len(delivered.findall(self.everything()))
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            if login:
                smtp.login(*login)
            smtp.sendmail(sender, [to], f"From: {sender}\r\nSubject: test\r\n\r\nxin chao\r\n")
        deadline = time.monotonic() + 30
        while len(delivered.findall(self.everything())) == before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix never delivered to {to}: {self.log()}")
            time.sleep(0.05)

    def everything(self) -> str:
        """Every line logged so far, rotated copies (gzip too) included."""
        text = ""
        for path in sorted(self.root.glob("maillog*"), reverse=True):
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", errors="replace") as fh:
                text += fh.read()
        return text

    def stop(self) -> None:
        """``postfix stop``, then wait until this instance's master (and so its children)
        has exited: nothing of it outlives the test."""
        pid_file = self.root / "queue" / "pid" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(RuntimeError):
                self.postfix("stop")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # ProcessLookupError (an OSError) once it is gone
                time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def vietnam_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers started from here log in Việt Nam's time, as the province's do (both import
    TZ from their environment by default)."""
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A short folder Dovecot's unprivileged processes can write (the dict, the auth socket:
    socket paths are limited to 108 bytes, pytest's tmp_path is longer and private)."""
    path = Path(tempfile.mkdtemp(prefix="act-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def running() -> Iterator[list[Dovecot | Postfix]]:
    started: list[Dovecot | Postfix] = []
    yield started
    for server in reversed(started):
        server.stop()


def last_login_conf(scratch: Path, store: str) -> str:
    """Dovecot's last_login plugin writing to ``store`` (``file``, ``fs`` or ``sqlite`` — the
    last as iRedMail maps it, one column per service), and its auth socket for Postfix."""
    key = "last-login/%u"
    if store == "file":
        target = f"file:{scratch}/lastlogin"
    elif store == "fs":
        (scratch / "lastlogin").mkdir(mode=0o777)
        (scratch / "lastlogin").chmod(0o777)
        target = f"fs:posix:prefix={scratch}/lastlogin/"
    else:
        key = "last-login/%s/%u/%d"
        target = f"sqlite:{scratch}/dict-sql.conf.ext"
        maps = "".join(
            f"""map {{
  pattern = shared/last-login/{service}/$user/$domain
  table = last_login
  value_field = {service}
  value_type = uint
  fields {{
    username = $user
    domain = $domain
  }}
}}
"""
            for service in ("imap", "pop3", "lda")
        )
        (scratch / "dict-sql.conf.ext").write_text(
            f"connect = {scratch}/last_login.db\n{maps}", encoding="utf-8"
        )
        db = scratch / "last_login.db"
        with contextlib.closing(sqlite3.connect(db)) as conn:  # iRedMail's table
            conn.executescript(
                "CREATE TABLE last_login (id INTEGER PRIMARY KEY, username VARCHAR(255) NOT "
                "NULL DEFAULT '', domain VARCHAR(255) NOT NULL DEFAULT '', imap INTEGER, "
                "pop3 INTEGER, lda INTEGER);"
                "CREATE UNIQUE INDEX idx_last_login ON last_login (username, domain);"
            )
        db.chmod(0o666)
    return f"""
mail_plugins = $mail_plugins last_login
plugin {{
  last_login_dict = proxy::lastlogin
  last_login_key = {key}
}}
dict {{
  lastlogin = {target}
}}
service dict {{
  unix_listener dict {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener {scratch}/auth {{
    mode = 0666
  }}
}}
"""


def written(scratch: Path, store: str, dovecot: Dovecot) -> None:
    """Until Dovecot has stored a last login (the plugin writes through the dict service,
    after the IMAP session may have ended)."""
    deadline = time.monotonic() + 30
    while True:
        if store == "sqlite":
            with contextlib.closing(sqlite3.connect(scratch / "last_login.db")) as conn:
                if conn.execute("SELECT count(*) FROM last_login").fetchone()[0]:
                    return
        elif store == "fs":
            if any(p.is_file() for p in (scratch / "lastlogin").rglob("*")):
                return
        elif (scratch / "lastlogin").is_file() and (scratch / "lastlogin").stat().st_size:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Dovecot never stored a last login in its {store} dict: {dovecot.log()}"
            )
        time.sleep(0.05)


def people(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> list[str]:
    """Three mailboxes made by syncd; the first person has chosen their own password."""
    cfg = configure(make_config, tmp_path, "openldap", "caobang-2025")
    rows = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,skhcn,,,,,", "E3,Trần Bình,skhcn,,,,,"]
    run(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", rows)))
    uids = []
    for emp in ("E1", "E2", "E3"):
        dn, uid = find_dn(admin, base_dn, emp)
        uids.append(uid)
    dn, _ = find_dn(admin, base_dn, "E1")
    change_own_password(slapd, dn, slip_password(tmp_path, uids[0]), CHOSEN)
    return uids


def second(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def within(seen: Seen, address: str, kind: str, start: datetime, end: datetime) -> str:
    """The source of ``address``'s last ``kind``, checked to be between ``start`` and ``end``
    (log stamps have whole seconds)."""
    [(key, when)] = [(k, w) for k, w in seen.get(address, {}).items() if k.startswith(kind)]
    assert second(start) <= when <= end, (key, when, start, end)
    return key


def test_real_postfix_and_dovecot_lines_give_each_address_its_last_login_send_and_receive(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    scratch: Path,
    running: list[Dovecot | Postfix],
    vietnam_time: None,
) -> None:
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    hung, mai, binh = people(make_config, tmp_path, slapd, admin, base_dn)
    dovecot = Dovecot(
        slapd, base_dn, documented("dovecot", "openldap"), last_login_conf(scratch, "file")
    )
    running.append(dovecot)
    postfix = Postfix([f"{u}@{DOMAIN}" for u in (hung, mai, binh)], scratch / "auth")
    running.append(postfix)

    start = datetime.now(UTC)
    assert dovecot.login(hung, CHOSEN), dovecot.log()
    # hung sends to mai through the submission (SASL through Dovecot, against slapd) ...
    postfix.send(f"{hung}@{DOMAIN}", f"{mai}@{DOMAIN}", login=(hung, CHOSEN))
    # ... and binh receives from outside
    postfix.send("vanthu@example.org", f"{binh}@{DOMAIN}")
    written(scratch, "file", dovecot)
    end = datetime.now(UTC)
    assert f"sasl_username={hung}" in postfix.log()  # what Postfix itself wrote

    state = tmp_path / "state" / "activity"
    logs = MailLogSource(
        postfix.maillog, "postfix", frozenset({"login", "send", "receive"}), ZONE, DOMAIN, state
    ).last_activity()
    assert set(logs) == {f"{hung}@{DOMAIN}", f"{mai}@{DOMAIN}", f"{binh}@{DOMAIN}"}
    assert within(logs, f"{hung}@{DOMAIN}", "send", start, end) == "send (postfix)"
    assert within(logs, f"{mai}@{DOMAIN}", "receive", start, end) == "receive (postfix)"
    assert within(logs, f"{binh}@{DOMAIN}", "receive", start, end) == "receive (postfix)"
    assert [k for k in logs[f"{hung}@{DOMAIN}"]] == ["send (postfix)"]

    dovecot_log = MailLogSource(
        dovecot.root / "dovecot.log", "dovecot log", frozenset({"login"}), ZONE, DOMAIN, state
    ).last_activity()
    # the SASL authentication of the submission is no IMAP login: one login, hung's
    assert list(dovecot_log) == [f"{hung}@{DOMAIN}"]
    within(dovecot_log, f"{hung}@{DOMAIN}", "login", start, end)

    plugin = DovecotDictSource(
        scratch / "lastlogin", "last_login", frozenset({"login"}), DOMAIN, state
    ).last_activity()
    assert list(plugin) == [f"{hung}@{DOMAIN}"]
    within(plugin, f"{hung}@{DOMAIN}", "login", start, end)

    # the saved progress is private, and the next read starts where this one stopped
    assert {p.stat().st_mode & 0o777 for p in state.iterdir()} == {0o600}
    assert state.stat().st_mode & 0o777 == 0o700


def test_a_rotated_and_compressed_postfix_log_is_finished_before_the_new_one(
    scratch: Path, tmp_path: Path, running: list[Dovecot | Postfix], vietnam_time: None
) -> None:
    """logrotate's way: the log is renamed and compressed, Postfix reopens a new one; the
    mail delivered after the last read and before the rotation is only in the .gz."""
    a, b, c = (f"{u}.skhcn@{DOMAIN}" for u in ("hungdv", "maitl", "binht"))
    postfix = Postfix([a, b, c])
    running.append(postfix)
    source = MailLogSource(
        postfix.maillog, "postfix", frozenset({"receive"}), ZONE, DOMAIN, tmp_path / "state"
    )
    start = datetime.now(UTC)
    postfix.send("x@example.org", a)
    assert set(source.last_activity()) == {a}
    postfix.send("x@example.org", b)  # read by nobody yet
    rotated = postfix.maillog.with_name("maillog.1.gz")
    with postfix.maillog.open("rb") as src, gzip.open(rotated, "wb") as dst:
        shutil.copyfileobj(src, dst)
    postfix.maillog.unlink()
    postfix.postfix("reload")  # Postfix opens a new maillog
    postfix.send("x@example.org", c)
    assert postfix.maillog.exists() and f"to=<{b}>" not in postfix.maillog.read_text()
    seen = source.last_activity()
    end = datetime.now(UTC)
    assert source.note == ""  # found where it stopped: no full re-read
    assert set(seen) == {a, b, c}
    for address in (a, b, c):
        within(seen, address, "receive", start, end)


@pytest.mark.parametrize("store", ["fs", "sqlite"])
def test_dovecot_last_login_in_an_fs_dict_or_iredmails_sql_table_is_a_login(
    store: str,
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    scratch: Path,
    running: list[Dovecot | Postfix],
    vietnam_time: None,
) -> None:
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    if store == "sqlite" and not Path("/usr/lib/dovecot/modules/dict/libdriver_sqlite.so").exists():
        why = "Dovecot's SQLite driver is not installed (Debian: dovecot-sqlite)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    hung, _, _ = people(make_config, tmp_path, slapd, admin, base_dn)
    # the user is the whole address, as with iRedMail's pass_attrs (its key needs the domain)
    filters = {**documented("dovecot", "openldap"), "pass_attrs": "mail=user"}
    dovecot = Dovecot(slapd, base_dn, filters, last_login_conf(scratch, store))
    running.append(dovecot)
    start = datetime.now(UTC)
    assert dovecot.login(hung, CHOSEN), dovecot.log()
    written(scratch, store, dovecot)
    end = datetime.now(UTC)
    state = tmp_path / "state" / "activity"
    if store == "fs":
        source: DovecotDictSource | DovecotSqlSource = DovecotDictSource(
            scratch / "lastlogin", "last_login", frozenset({"login"}), DOMAIN, state
        )
    else:
        source = DovecotSqlSource(
            f"sqlite:///{scratch}/last_login.db",
            "last_login",
            "iredadmin.last_login",
            frozenset({"login", "receive"}),
            DOMAIN,
            state,
        )
    seen = source.last_activity()
    assert list(seen) == [f"{hung}@{DOMAIN}"], dovecot.log()
    within(seen, f"{hung}@{DOMAIN}", "login", start, end)
