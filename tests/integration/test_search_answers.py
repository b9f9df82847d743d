"""The delta read's slim search decodes slapd's answers itself (connectors/directory/ber.py
``Searched``, ``OpenLdapDirectory._csns``), on the real slapd: every page of a paged search
(entries with many values, non-ASCII and binary values, lengths in one to three bytes, a
referral's reference, the end with its paging cookie) decodes as ldap3 reads the same search,
however the socket's reads split the stream; the slim read finds exactly what the profile's
ldap3 search finds, page by page; a connection cut in the middle of a page is a transient
incomplete read that leaves the directory usable, never a short list taken for the truth."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from ldap3 import SUBTREE, Connection

from connectors.config import Config
from connectors.directory.ber import Searched, paged_cookie
from connectors.directory.openldap import PAGED_RESULTS, OpenLdapDirectory, _paged_search
from connectors.runner import open_directory
from devtools.slapd_sandbox import Sandbox
from syncd.ports import ReadIncomplete
from tests.conftest import MakeConfig
from tests.integration.test_add_answers import CountingProxy, _bind, _split
from tests.integration.test_tls import _directory as _tls_directory
from tests.integration.test_tls import tls_slapd  # noqa: F401 - the TLS slapd fixture

PEOPLE = 23
PAGE = 5


@pytest.fixture
def people(admin: Connection, base_dn: str) -> str:
    """23 entries of every shape a search answer can take, and a referral."""
    assert admin.add(
        f"ou=ref,{base_dn}",
        ["referral", "extensibleObject"],
        {"ou": "ref", "ref": "ldap://ldap.example.gov.vn/ou=x"},
    )
    for n in range(PEOPLE):
        attrs: dict[str, object] = {
            "uid": f"p{n:02d}",
            "cn": f"Nguyễn Thị Ánh {n}",
            "sn": "Nguyễn",
            "mail": [f"p{n:02d}@test.gov.vn", f"alias{n}@test.gov.vn"],
        }
        if n % 3 == 0:
            attrs["description"] = "mô tả " * (30 * n + 1)  # one, two and three length bytes
        if n % 4 == 0:
            attrs["jpegPhoto"] = bytes(range(256)) * (n + 1)
        if n == 7:
            attrs["description"] = "d" * 70_000
        assert admin.add(f"uid=p{n:02d},{base_dn}", ["inetOrgPerson"], attrs), admin.result
    return base_dn


def _ldap3_pages(
    admin: Connection, base: str, flt: str
) -> list[tuple[list[tuple[str, dict[str, list[bytes]]]], bool]]:
    """Each page of the same paged search read by ldap3: its entries, and whether more come."""
    pages, cookie = [], None
    while True:
        assert admin.search(base, flt, SUBTREE, attributes=["*", "+"], paged_size=PAGE,
                            paged_cookie=cookie)  # fmt: skip
        got = [
            (r["dn"], {k: list(v) for k, v in r["raw_attributes"].items()})
            for r in admin.response
            if r["type"] == "searchResEntry"
        ]
        cookie = admin.result["controls"][PAGED_RESULTS]["value"]["cookie"]
        pages.append((got, bool(cookie)))
        if not cookie:
            return pages


def _raw_pages(slapd: Sandbox, base: str, flt: str) -> list[tuple[int, bytes]]:
    """The same search's pages as slapd sent them: each page's message id and bytes."""
    out: list[tuple[int, bytes]] = []
    cookie = b""
    with socket.create_connection(("127.0.0.1", slapd.port), timeout=10) as sock:
        _bind(sock, slapd.admin_dn, slapd.admin_password)
        for msgid in range(2, 100):
            sock.sendall(_paged_search(msgid, base, flt, ["*", "+"], PAGE, cookie))
            searched, data, done = Searched(msgid), b"", None
            while done is None:
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
                done = searched.feed(chunk)[1]
            out.append((msgid, data))
            cookie = paged_cookie(done.controls[PAGED_RESULTS] or b"")
            if not cookie:
                return out
    raise AssertionError("the search never ended")


def _operation(message: bytes) -> int:
    """The protocolOp tag of one whole LDAPMessage (after its message id)."""
    body = 2 + (message[1] & 0x7F if message[1] & 0x80 else 0)
    return message[body + 2 + message[body + 1]]


def test_every_page_of_a_search_decodes_as_ldap3_reads_it_however_reads_split(
    slapd: Sandbox, admin: Connection, people: str
) -> None:
    flt = "(objectClass=*)"
    expected = _ldap3_pages(admin, people, flt)
    raw = _raw_pages(slapd, people, flt)
    assert len(raw) == len(expected) >= PEOPLE // PAGE  # several pages
    rng = random.Random(14)
    for (msgid, data), (entries, more) in zip(raw, expected, strict=True):
        for _ in range(20):
            searched, got, done = Searched(msgid), [], None
            pos = 0
            while pos < len(data):
                step = rng.choice((1, 2, 3, 7, 64, 1000, len(data)))
                more_entries, end = searched.feed(data[pos : pos + step])
                got += more_entries
                if end is not None:
                    done = end
                pos += step
            assert got == entries
            assert done is not None and done.answer.code == 0
            assert bool(paged_cookie(done.controls[PAGED_RESULTS] or b"")) == more
    # the referral came as a reference (0x73), skipped as ldap3's reader skips it
    assert 0x73 in {_operation(m) for _, data in raw for m in _split(data)}
    assert all(not dn.startswith("ou=ref") for page, _ in expected for dn, _ in page)


def _small_pages(cfg: Config) -> Config:
    return cfg.model_copy(update={"directory": replace(cfg.directory, page_size=PAGE)})


def test_the_slim_read_finds_what_the_profiles_ldap3_search_finds(
    make_config: MakeConfig, people: str
) -> None:
    directory = open_directory(_small_pages(make_config()), [])
    assert isinstance(directory, OpenLdapDirectory)
    try:
        for flt in ("(objectClass=*)", "(uid=p1*)", "(uid=nobody)"):
            slim = list(directory._csns(flt))
            plain = [(dn, str(a["entryCSN"][0])) for dn, a in directory._search(flt, ["entryCSN"])]
            assert slim == plain
            assert all(csn for _, csn in slim)
        assert len(list(directory._csns("(objectClass=*)"))) == PEOPLE + 1  # and the base
    finally:
        directory.close()


class CuttingProxy(CountingProxy):
    """The counting proxy, but it cuts both sides once it has passed ``after`` bytes of
    answers after the bind's (the first connection only)."""

    def __init__(self, upstream: int, after: int) -> None:
        self.after = after
        self.cut = threading.Event()
        super().__init__(upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        answers = self.open.index(src) % 2 == 1  # open holds client, server, client, …
        passed = 0
        with contextlib.suppress(OSError):
            while data := src.recv(4096):
                past_bind = answers and passed > 100 and not self.cut.is_set()
                if past_bind and passed + len(data) > self.after:
                    dst.sendall(data[: self.after - passed])
                    self.cut.set()
                    break
                dst.sendall(data)
                passed += len(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def test_a_connection_cut_in_the_middle_of_a_page_is_an_incomplete_read_not_a_short_list(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, people: str
) -> None:
    cfg = make_config()
    proxy = CuttingProxy(slapd.port, after=1500)
    try:
        through = cfg.model_copy(
            update={"directory": replace(cfg.directory, url=f"ldap://127.0.0.1:{proxy.port}")}
        )
        directory = open_directory(_small_pages(through), [])
        assert isinstance(directory, OpenLdapDirectory)
        try:
            seen: list[str] = []
            with pytest.raises(ReadIncomplete) as info:
                seen.extend(dn for dn, _ in directory._csns("(objectClass=*)"))
            assert info.value.transient
            assert proxy.cut.is_set() and 0 < len(seen) < PEOPLE
            # the cut connection was dropped: the next read opens another and reads it all
            assert len(list(directory._csns("(objectClass=*)"))) == PEOPLE + 1
        finally:
            directory.close()
    finally:
        proxy.close()


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_the_slim_read_reads_its_answers_through_tls(
    tls_slapd: tuple[Sandbox, Path, Path],  # noqa: F811 - the fixture imported above
    how: str,
) -> None:
    """Pages of answers larger than one TLS record (16 KiB: 200 entries' DNs and CSNs), read
    from the TLS socket (ldaps://, or StartTLS on ldap://), as the profile's ldap3 search
    reads them."""
    sandbox, ca, _ = tls_slapd
    url = sandbox.ldaps_url if how == "ldaps" else sandbox.url
    directory = _tls_directory(sandbox, url, ca, start_tls=how == "starttls", page_size=200)
    try:
        admin = sandbox.admin()
        for n in range(300):
            dn = f"uid={how}-{n:03d},{sandbox.people_dn}"
            assert admin.add(dn, ["inetOrgPerson"], {"cn": "x", "sn": "x"}), admin.result
        admin.unbind()
        flt = f"(uid={how}-*)"
        slim = list(directory._csns(flt))
        assert slim == [
            (dn, str(a["entryCSN"][0])) for dn, a in directory._search(flt, ["entryCSN"])
        ]
        assert len(slim) == 300
    finally:
        directory.close()
