"""syncd's encoding of an add request (connectors/directory/ber.py) is byte for byte what
ldap3 would send for the same add: long values (lengths in two and three bytes), several
values, non-ASCII text, bytes, message ids across the sign bit of a byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ldap3.operation.add import add_operation
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.utils.asn1 import encode

from connectors.directory.ber import (
    FilterSyntax,
    ProtocolError,
    Searched,
    add_request,
    filter_bytes,
    paged_cookie,
    search_request,
)
from connectors.directory.openldap import _paged_search

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


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=90)


@given(
    attrs=st.dictionaries(
        st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,20}", fullmatch=True),
        st.one_of(
            _text.filter(bool),
            st.lists(
                st.one_of(_text.filter(bool), st.text("ab", min_size=120, max_size=300)),
                min_size=1,
                max_size=5,
            ),
        ),
        min_size=1,
        max_size=12,
    )
)
@settings(max_examples=300, deadline=None)
def test_any_add_request_is_the_bytes_ldap3_would_send(
    attrs: dict[str, str | bytes | int | list[str]],
) -> None:
    """Lengths around the one-byte limit (127/128) in values, sets and attributes."""
    assert add_request(200, DN, attrs) == ldap3_bytes(200, DN, attrs)


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


# -- search requests: the bytes ldap3 would send ----------------------------------------------

_ATTRS = st.sampled_from(["uid", "mail", "employeeNumber", "cn", "objectClass", "entryCSN", "x-1"])
# values as a filter string carries them: UTF-8 text (Vietnamese too) and \XX escapes
_CHUNK = st.one_of(
    st.text(alphabet="aAzZ09.-_@ đĐƯơẫ", min_size=1, max_size=6),
    st.sampled_from(["\\2a", "\\28", "\\29", "\\5c", "\\00", "\\c4\\90"]),
)
_VALUE = st.lists(_CHUNK, min_size=1, max_size=4).map("".join)


def _items() -> st.SearchStrategy[str]:
    equality = st.builds(
        lambda a, o, v: f"({a}{o}{v})", _ATTRS, st.sampled_from(["=", ">=", "<=", "~="]), _VALUE
    )
    present = _ATTRS.map(lambda a: f"({a}=*)")
    substring = st.builds(
        lambda a, parts: f"({a}={'*'.join(parts)})",
        _ATTRS,
        st.lists(st.one_of(st.just(""), _VALUE), min_size=2, max_size=4),
    ).filter(lambda f: f.split("=", 1)[1][:-1].replace("*", "").strip() != "")
    return st.one_of(equality, present, substring)


_FILTERS = st.recursive(
    _items(),
    lambda inner: st.one_of(
        st.builds(lambda fs: f"(&{''.join(fs)})", st.lists(inner, min_size=1, max_size=4)),
        st.builds(lambda fs: f"(|{''.join(fs)})", st.lists(inner, min_size=1, max_size=4)),
        inner.map(lambda f: f"(!{f})"),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    flt=_FILTERS,
    message_id=st.integers(0, 2**31 - 1),
    size=st.integers(0, 70000),
    cookie=st.binary(max_size=300),
    attrs=st.lists(_ATTRS, max_size=4),
)
def test_a_search_request_is_the_bytes_ldap3_would_send(
    flt: str, message_id: int, size: int, cookie: bytes, attrs: list[str]
) -> None:
    """The slim read's pages, encoded by syncd (ldap3 took ~16 ms for a filter of 500 terms):
    the same bytes as ldap3's own encoding of the same search, for every filter shape."""
    base = "ou=people,dc=tỉnh,dc=gov,dc=vn"
    assert search_request(message_id, base, flt, attrs, size, cookie) == _paged_search(
        message_id, base, flt, attrs, size, cookie
    )


@pytest.mark.parametrize(
    "bad",
    ["uid=a", "(uid=a", "(uid=a))", "(&)", "(!(a=1)(b=2))", "(uid:dn:=a)", "(=a)", "(a=\\zz)",
     "(a=b(c)", "(a=**)"],
)  # fmt: skip
def test_a_filter_the_encoder_does_not_take_is_refused_for_ldap3_to_encode(bad: str) -> None:
    with pytest.raises(FilterSyntax):
        filter_bytes(bad)
