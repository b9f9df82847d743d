"""The BER encoding of one LDAP add request (RFC 4511 §4.7), for the pipelined creates.

Why syncd encodes this one request itself: ldap3 builds every request as pyasn1 objects and
encodes them with pyasn1's generic encoder, about 0.5 ms of CPU per add on this machine —
40 % of a whole run of pipelined creates by py-spy (issue 14), more than slapd spends on the
add itself, so ldap3's encoding, not the directory, set the pace. An add request is a handful
of nested type-length-value triples; this writes one in a few tens of microseconds, with the
same bytes ldap3 would send (``tests/unit/test_ber.py`` compares them). Only the add is
encoded here: binding, StartTLS, the responses and every other operation stay ldap3's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Value = str | bytes | int  # an int is sent as its decimal text, as ldap3 sends it
SEQUENCE, SET, INTEGER, OCTET_STRING = 0x30, 0x31, 0x02, 0x04
ADD_REQUEST = 0x68  # [APPLICATION 8], constructed


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _octets(value: Value) -> bytes:
    return _tlv(OCTET_STRING, value if isinstance(value, bytes) else str(value).encode("utf-8"))


def _values(value: Value | Sequence[Value]) -> Sequence[Value]:
    return (value,) if isinstance(value, str | bytes | int) else value


def add_request(
    message_id: int, dn: str, attributes: Mapping[str, Value | Sequence[Value]]
) -> bytes:
    """The whole LDAPMessage of an add of ``dn`` with ``attributes`` (each a value or a list
    of values, ``objectClass`` among them; none empty: an add needs a value)."""
    if not 0 <= message_id < 2**31:
        raise ValueError(f"an LDAP message id is 0..2^31-1, not {message_id}")
    listed = b"".join(
        _tlv(SEQUENCE, _octets(name) + _tlv(SET, b"".join(_octets(v) for v in _values(value))))
        for name, value in attributes.items()
    )
    operation = _tlv(ADD_REQUEST, _octets(dn) + _tlv(SEQUENCE, listed))
    number = message_id.to_bytes(message_id.bit_length() // 8 + 1, "big")  # sign bit clear
    return _tlv(SEQUENCE, _tlv(INTEGER, number) + operation)
