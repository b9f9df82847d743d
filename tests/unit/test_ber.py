"""syncd's encoding of an add request (connectors/directory/ber.py) is byte for byte what
ldap3 would send for the same add: long values (lengths in two and three bytes), several
values, non-ASCII text, bytes, message ids across the sign bit of a byte."""

from __future__ import annotations

import pytest
from ldap3.operation.add import add_operation
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.utils.asn1 import encode

from connectors.directory.ber import ProtocolError, Searched, add_request, paged_cookie

DN = "uid=hungdv.skhcn,ou=people,dc=test,dc=gov,dc=vn"
ATTRS: dict[str, str | bytes | int | list[str]] = {
    "uid": "hungdv.skhcn",
    "cn": "Đinh Văn Hùng",
    "mail": ["hungdv.skhcn@test.gov.vn", "hung.dv@test.gov.vn"],
    "syncdStateReason": "người mới " * 40,  # 400+ bytes: a two-byte length
    "description": "x" * 70_000,  # a three-byte length
    "jpegPhoto": b"\xff\xd8\x00\x01",
    "userPassword": "Mk-1234!",
    "mailQuota": 1_073_741_824,
    "objectClass": ["inetOrgPerson", "syncdAccount"],
}


def ldap3_bytes(message_id: int, dn: str, attrs: dict[str, str | bytes | int | list[str]]) -> bytes:
    msg = LDAPMessage()
    msg["messageID"] = MessageID(message_id)
    msg["protocolOp"] = ProtocolOp().setComponentByName(
        "addRequest", add_operation(dn, attrs, auto_encode=True)
    )
    return bytes(encode(msg))


@pytest.mark.parametrize("message_id", [0, 1, 127, 128, 255, 256, 65_535, 2**31 - 1])
def test_an_add_request_is_the_bytes_ldap3_would_send(message_id: int) -> None:
    assert add_request(message_id, DN, ATTRS) == ldap3_bytes(message_id, DN, ATTRS)


def test_a_message_id_outside_ldap_range_is_refused() -> None:
    with pytest.raises(ValueError, match="message id"):
        add_request(2**31, DN, ATTRS)


def _message(message_id: int, operation: bytes) -> bytes:
    body = bytes((0x02, 1, message_id)) + operation
    return bytes((0x30, len(body))) + body


DONE = bytes((0x65, 7, 0x0A, 1, 0, 0x04, 0, 0x04, 0))  # searchResDone: success
ENTRY = bytes((0x64, 7, 0x04, 3)) + b"a=b" + bytes((0x30, 0))  # "a=b", no attributes


def test_a_search_stream_ends_at_its_done_and_refuses_what_is_not_its_answer() -> None:
    assert Searched(5).feed(_message(5, ENTRY) + _message(5, DONE))[0] == [("a=b", {})]
    notice = bytes((0x78, 7, 0x0A, 1, 52, 0x04, 0, 0x04, 0))  # a notice of disconnection
    with pytest.raises(ProtocolError, match="ended the connection"):
        Searched(5).feed(_message(5, ENTRY) + _message(0, notice))
    with pytest.raises(ProtocolError, match="message 6"):
        Searched(5).feed(_message(6, ENTRY))
    with pytest.raises(ProtocolError, match="after the end"):
        Searched(5).feed(_message(5, DONE) + _message(5, ENTRY))
    with pytest.raises(ProtocolError, match="operation 0x69"):  # an add's answer
        Searched(5).feed(_message(5, bytes((0x69,)) + DONE[1:]))
    with pytest.raises(ProtocolError):  # an entry whose DN runs past its message
        Searched(5).feed(_message(5, bytes((0x64, 4, 0x04, 9, 0x61, 0x3D))))


def test_a_paged_cookie_is_read_from_the_controls_value() -> None:
    assert paged_cookie(bytes((0x30, 7, 0x02, 1, 0, 0x04, 2)) + b"\x01\x02") == b"\x01\x02"
    assert paged_cookie(bytes((0x30, 5, 0x02, 1, 0, 0x04, 0))) == b""
    with pytest.raises(ProtocolError):
        paged_cookie(b"\x04\x00")
