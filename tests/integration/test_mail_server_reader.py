"""The mail server's read-only account as docs/mail-server.md makes it, on a slapd configured as
Debian's package configures it after ``syncd directory init`` — and the whole documented path a
province follows: its LDIF and password commands, then the documented Dovecot and Postfix blocks
bound as that account, then a person's first login with the documented ``ldappasswd`` step.

Debian's stock rules let everyone read the people (``to * by * read``), under which an anonymous
Dovecot would work too and the account's rule would prove nothing; the document says to close
that, so the test closes it first, as such a site has: then only the documented account reads.
"""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import NONE, SUBTREE, Connection, Server

from connectors.directory.setup import admin_connection
from tests.helpers import write_roster
from tests.integration import mail_docs
from tests.integration.debian_slapd import DebianSlapd, syncd, write_config
from tests.integration.test_directory_init import _need_debian_slapd
from tests.integration.test_mail_servers import (
    CHOSEN,
    DOVECOT,
    POSTMAP,
    Dovecot,
    Postfix,
    _require,
    documented,
    documented_change,
)

DOC_SUFFIX = "dc=caobang,dc=gov,dc=vn"
READER_PASSWORD = "Reader!only-77"  # throwaway server on loopback


@pytest.fixture
def debian(tmp_path: Path) -> Iterator[DebianSlapd]:
    _need_debian_slapd()
    server = DebianSlapd(tmp_path / "slapd").start()
    yield server
    server.stop()


def close_anonymous_reading(debian: DebianSlapd) -> None:
    """Remove Debian's ``to * by * read`` (what docs/mail-server.md says to close)."""
    conn = admin_connection(debian.ldapi_url)
    conn.search("cn=config", "(olcSuffix=*)", SUBTREE, attributes=["olcAccess"])
    [entry] = conn.response
    [open_rule] = [r for r in entry["attributes"]["olcAccess"] if r.endswith("to * by * read")]
    conn.unbind()
    index = open_rule[: open_rule.index("}") + 1]
    done = debian.ldapmodify(
        f"dn: {entry['dn']}\nchangetype: modify\ndelete: olcAccess\nolcAccess: {index}\n-\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_documented_reader_lets_the_documented_mail_server_blocks_work_and_reads_no_password(
    debian: DebianSlapd, tmp_path: Path
) -> None:
    _require(DOVECOT, "dovecot-imapd dovecot-ldap")
    _require(POSTMAP, "postfix postfix-ldap")
    cfg = write_config(tmp_path, debian)
    init = syncd(cfg, "directory", "init", "--admin-url", debian.ldapi_url)
    assert init.returncode == 0, init.stdout + init.stderr
    close_anonymous_reading(debian)

    # the account, as documented: its LDIF in mailserver.ldif, then the commands that apply it,
    # set its password and remove pwdReset; only the suffix and the ldapi socket replaced
    ldif = mail_docs.block("tested: reader openldap -->").replace(DOC_SUFFIX, debian.suffix)
    work = tmp_path / "operator"
    work.mkdir()
    (work / "mailserver.ldif").write_text(ldif, encoding="utf-8")
    commands = mail_docs.block("tested: reader-password openldap -->")
    commands = commands.replace(DOC_SUFFIX, debian.suffix).replace("ldapi:///", debian.ldapi_url)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", commands],
        cwd=work,
        input=f"{READER_PASSWORD}\n{READER_PASSWORD}\n",  # ldappasswd -S asks twice
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,  # no terminal: the prompt reads stdin
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reader_dn = f"cn=mailserver,ou=services,{debian.suffix}"
    reader = (reader_dn, READER_PASSWORD)

    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    run = syncd(cfg, "reconcile", "--roster", str(roster))
    assert run.returncode == 0, run.stdout + run.stderr
    people = f"ou=people,{debian.suffix}"
    uid, address = "hungdv.skhcn", "hungdv.skhcn@tinh.gov.vn"

    # the account reads what the filters ask for, not the password; nobody else reads
    as_reader = Connection(Server(debian.url, get_info=NONE), reader_dn, READER_PASSWORD)
    assert as_reader.bind(), as_reader.result
    as_reader.search(people, f"(&(uid={uid})(pwdReset=TRUE))", attributes=["*", "+"])
    [found] = as_reader.entries
    assert "userPassword" not in found.entry_attributes
    assert str(found.syncdState) == "active" and str(found.mail) == address
    as_reader.unbind()
    anonymous = Connection(Server(debian.url, get_info=NONE))
    assert anonymous.bind()
    anonymous.search(people, f"(uid={uid})")
    assert anonymous.entries == []
    anonymous.unbind()

    root = tmp_path / "postfix"
    root.mkdir()
    postfix = Postfix(debian, people, documented("postfix", "openldap"), root, reader=reader)
    assert postfix.lookup(address) == uid

    dovecot = Dovecot(debian, people, documented("dovecot", "openldap"), reader=reader)
    try:
        first = next(
            row[2]
            for path in (tmp_path / "outbox").glob("*/*.csv")
            for row in csv.reader(path.read_text(encoding="utf-8-sig").splitlines())
            if address in row
        )
        assert not dovecot.login(uid, first), dovecot.log()
        done = subprocess.run(
            documented_change("openldap", debian.url, people, uid),
            input=f"{CHOSEN}\n{CHOSEN}\n{first}\n",
            capture_output=True,
            text=True,
            check=False,
            start_new_session=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert dovecot.login(uid, CHOSEN), dovecot.log()
    finally:
        dovecot.stop()
