"""syncd's encoding of an add request (connectors/directory/ber.py) is byte for byte what
ldap3 would send for the same add: long values (lengths in two and three bytes), several
values, non-ASCII text, bytes, message ids across the sign bit of a byte."""

from __future__ import annotations

import pytest
from ldap3.operation.add import add_operation
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.utils.asn1 import encode

from connectors.directory.ber import add_request

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
