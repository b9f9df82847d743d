"""The pipelined creates read slapd's answers themselves (connectors/directory/ber.py
``Answers``), on the real slapd: every kind of answer an add gets (success, already exists,
a schema refusal with its message, a referral with its URL, no such parent with a matched DN
long enough for a long-form length, the notice of disconnection) decodes as ldap3 decodes
it, however the socket's reads split the stream; and the pipeline's connection lives from
call to call (one bind per run), is opened again when the server closed it while idle,
leaves no thread behind, and reads through TLS alike."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from pathlib import Path

import pytest
from ldap3 import Connection
from ldap3.strategy.base import BaseStrategy
from ldap3.utils.asn1 import decode_message_fast

from connectors.directory.ber import (
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    Answer,
    Answers,
    ProtocolError,
    add_request,
)
from connectors.loading import load_config
from connectors.runner import open_directory
from devtools.slapd_sandbox import Sandbox
from syncd.ports import DirectoryError
from tests.conftest import MakeConfig
from tests.helpers import create_action, descriptors_past_select_limit, entries
from tests.integration.test_tls import _directory as _tls_directory
from tests.integration.test_tls import tls_slapd  # noqa: F401 - the TLS slapd fixture

LONG = "x" * 150  # an organisational unit whose DN makes an answer longer than 127 bytes


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    head = bytes((size,)) if size < 0x80 else bytes((0x81, size)) if size < 256 else b""
    assert head, "short bodies only"
    return bytes((tag,)) + head + body


def _bind(sock: socket.socket, dn: str, password: str) -> None:
    simple = _tlv(0x80, password.encode())
    bind = _tlv(0x60, _tlv(INTEGER, b"\x03") + _tlv(OCTET_STRING, dn.encode()) + simple)
    sock.sendall(_tlv(SEQUENCE, _tlv(INTEGER, b"\x01") + bind))
    assert sock.recv(100)[7:10] == b"\x0a\x01\x00"  # bindResponse: success


def _received(sock: socket.socket, answers: int) -> bytes:
    """What slapd sent until ``answers`` whole messages arrived (counted by ldap3)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, "slapd closed the connection"
        data += chunk
        if len(_split(data)) == answers:
            return data


def _split(data: bytes) -> list[bytes]:
    """The whole messages in ``data``, cut by their BER lengths (the test's own reading)."""
    out, pos = [], 0
    while pos + 2 <= len(data):
        size, head = data[pos + 1], 2
        if size & 0x80:
            n = size & 0x7F
            size, head = int.from_bytes(data[pos + 2 : pos + 2 + n], "big"), 2 + n
        if pos + head + size > len(data):
            break
        out.append(data[pos : pos + head + size])
        pos += head + size
    return out


def _as_ldap3_reads(raw: bytes) -> Answer:
    msg = decode_message_fast(raw)
    r = BaseStrategy.decode_response_fast(None, msg)
    return Answer(
        msg["messageID"],
        0x60 | msg["protocolOp"],
        r["result"],
        r["dn"],
        r["message"],
        tuple(r["referrals"] or ()),
    )


@pytest.fixture
def slapd_answers(slapd: Sandbox, admin: Connection, base_dn: str) -> bytes:
    """slapd's answers to five pipelined adds as sent on one connection, then its notice of
    disconnection after a request it does not know."""
    assert admin.add(
        f"ou=ref,{base_dn}",
        ["referral", "extensibleObject"],
        {"ou": "ref", "ref": "ldap://ldap.example.gov.vn"},
    )
    assert admin.add(f"ou={LONG},{base_dn}", ["organizationalUnit"], {"ou": LONG})
    person = {"objectClass": ["inetOrgPerson"], "cn": "Hà Văn A", "sn": "Hà"}
    adds = [
        (f"uid=a,{base_dn}", {**person, "uid": "a"}),
        (f"uid=a,{base_dn}", {**person, "uid": "a"}),  # already exists
        (f"uid=b,{base_dn}", {**person, "uid": "b", "mail": "đ@test.gov.vn"}),  # not IA5
        (f"uid=c,ou=ref,{base_dn}", {**person, "uid": "c"}),  # under a referral
        (f"uid=d,ou=nowhere,ou={LONG},{base_dn}", {**person, "uid": "d"}),  # no parent
    ]
    with socket.create_connection(("127.0.0.1", slapd.port), timeout=10) as sock:
        _bind(sock, slapd.admin_dn, slapd.admin_password)
        data = b""
        for n, (dn, attrs) in enumerate(adds):
            sock.sendall(add_request(n + 2, dn, attrs))
            data += _received(sock, 1)  # in order, so the expected answers below hold
        sock.sendall(_tlv(SEQUENCE, _tlv(INTEGER, b"\x07") + b"\x99\x00"))  # no such request
        data += _received(sock, 1)
    return data


def test_every_answer_slapd_gives_an_add_decodes_as_ldap3_reads_it_however_reads_split(
    slapd_answers: bytes, base_dn: str
) -> None:
    messages = _split(slapd_answers)
    expected = [_as_ldap3_reads(m) for m in messages]
    assert [(a.message_id, a.code) for a in expected] == [
        (2, 0), (3, 68), (4, 21), (5, 10), (6, 32), (0, 2),
    ]  # fmt: skip
    assert expected[2].message == "mail: value #0 invalid per syntax"
    (referral,) = expected[3].referrals
    assert referral.startswith("ldap://ldap.example.gov.vn")
    assert expected[4].matched == f"ou={LONG},{base_dn}" and len(messages[4]) > 130
    assert expected[5].operation == 0x78  # extendedResponse: the notice of disconnection
    whole = Answers().feed(slapd_answers)
    assert whole == expected
    byte_by_byte = Answers()
    got: list[Answer] = []
    for i in range(len(slapd_answers)):
        got += byte_by_byte.feed(slapd_answers[i : i + 1])
        # an answer counts once its last byte has arrived, not before
        assert len(got) == sum(1 for m in _split(slapd_answers[: i + 1]))
    assert got == expected and not byte_by_byte.partial
    rng = random.Random(14)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(slapd_answers)), rng.randint(1, 12)))
        reader, got = Answers(), []
        for start, end in zip([0, *cuts], [*cuts, len(slapd_answers)], strict=True):
            got += reader.feed(slapd_answers[start:end])
        assert got == expected, cuts


def test_what_is_no_result_on_the_add_connection_is_a_protocol_error() -> None:
    entry = _tlv(SEQUENCE, _tlv(INTEGER, b"\x02") + _tlv(0x64, _tlv(OCTET_STRING, b"uid=a")))
    with pytest.raises(ProtocolError, match="no result"):
        Answers().feed(entry)  # a searchResEntry
    with pytest.raises(ProtocolError, match="LDAPMessage"):
        Answers().feed(b"\x04\x01a")
    with pytest.raises(ProtocolError, match="length"):
        Answers().feed(b"\x30\x80\x02\x01\x01")  # indefinite length: not LDAP's
    cut = _tlv(SEQUENCE, _tlv(INTEGER, b"\x02") + _tlv(0x69, b"\x0a\x01\x00\x04\x05ab"))
    with pytest.raises(ProtocolError, match="past the end"):
        Answers().feed(cut)  # an element longer than its message


class CountingProxy:
    """A loopback TCP proxy to slapd counting the connections made through it; ``drop()``
    closes every one of them at once, as a server's idle timeout does."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.accepted += 1
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.open = []

    def close(self) -> None:
        self.listener.close()
        self.drop()


def test_the_pipeline_connection_is_bound_once_per_run_and_reopened_when_dropped_idle(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    """Three batches of creates make two connections (the run's own and the pipeline's), not
    one more per batch; a pipeline the server closed while idle is opened again before an add
    is sent on it, so no add of the next batch is lost with it (each would have come back
    ``unanswered``, to be read back and retried)."""
    make_config()
    proxy = CountingProxy(slapd.port)
    cfg_path = tmp_path / "syncd.yaml"
    text = cfg_path.read_text(encoding="utf-8").replace(slapd.url, f"ldap://127.0.0.1:{proxy.port}")
    cfg_path.write_text(text, encoding="utf-8")
    try:
        directory = open_directory(load_config(cfg_path), [])
        try:
            for batch in range(3):
                out = directory.create_many(
                    [(create_action(f"p{batch}{n:02d}"), f"Mk-{n}.1234!") for n in range(20)]
                )
                assert all(isinstance(o, str) for o in out), out
            assert proxy.accepted == 2
            assert [t for t in threading.enumerate() if "Receiver" in type(t).__name__] == []
            proxy.drop()  # the server ends both idle connections
            time.sleep(0.2)
            out = directory.create_many(
                [(create_action(f"q{n:02d}"), "Mk-q.1234!") for n in range(20)]
            )
            assert [o for o in out if isinstance(o, DirectoryError)] == []
        finally:
            directory.close()
    finally:
        proxy.close()
    assert len(entries(admin, base_dn)) == 80


def test_the_kept_pipeline_is_checked_when_its_socket_is_numbered_past_1024(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A process that has opened many files and sockets gets descriptors past select(2)'s 1024:
    the second batch's check of the kept connection raised ValueError there (found when the
    suite first ran on two workers), so no create of that batch was sent."""
    make_config()
    with descriptors_past_select_limit():
        directory = open_directory(load_config(tmp_path / "syncd.yaml"), [])
        try:
            for batch in range(
                2
            ):  # the first opens the pipeline's connection, the second checks it
                out = directory.create_many(
                    [(create_action(f"h{batch}{n:02d}"), f"Mk-{n}.1234!") for n in range(20)]
                )
                assert all(isinstance(o, str) for o in out), out
        finally:
            directory.close()
    assert len(entries(admin, base_dn)) == 40


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_pipelined_creates_read_their_answers_through_tls(
    tls_slapd: tuple[Sandbox, Path, Path],  # noqa: F811 - the fixture imported above
    how: str,
) -> None:
    """The answers are read from the TLS socket (ldaps://, or StartTLS on ldap://), call
    after call on the one connection."""
    sandbox, ca, _ = tls_slapd
    url = sandbox.ldaps_url if how == "ldaps" else sandbox.url
    directory = _tls_directory(sandbox, url, ca, start_tls=how == "starttls")
    try:
        for batch in range(2):
            out = directory.create_many(
                [(create_action(f"{how}{batch}{n:02d}"), f"Mk-{n}.1234!") for n in range(20)]
            )
            assert out == [f"uid={how}{batch}{n:02d},{sandbox.people_dn}" for n in range(20)]
    finally:
        directory.close()
    assert Connection(sandbox.url, out[-1], "Mk-19.1234!").bind()
