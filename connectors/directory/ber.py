"""The BER encoding of LDAP add requests (RFC 4511 §4.7), for the pipelined creates, and of
the slim read's paged search requests (§4.5.1, :func:`search_request`).

Why syncd encodes this one request itself: ldap3 builds every request as pyasn1 objects and
encodes them with pyasn1's generic encoder, about 0.5 ms of CPU per add on this machine —
40 % of a whole run of pipelined creates by py-spy (issue 14), more than slapd spends on the
add itself, so ldap3's encoding, not the directory, set the pace. An add request is a handful
of nested type-length-value triples; this writes one in a few tens of microseconds, with the
same bytes ldap3 would send (``tests/unit/test_ber.py`` compares them).

The answers to those adds are decoded here too (:class:`Answers`): ldap3's asynchronous
strategy decoded them on a receiver thread of its own, which took about a fifth of the
process's samples for answers of a dozen bytes and competed with the sender for the GIL; the
pipeline's connection is now an ordinary bound one whose socket syncd reads itself. Only the
``LDAPResult`` answers (an add's, an extended operation's such as a notice of disconnection)
are understood; anything else on that connection is a :class:`ProtocolError`, and binding,
StartTLS and every other operation stay ldap3's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

Value = str | bytes | int  # an int is sent as its decimal text, as ldap3 sends it
SEQUENCE, SET, INTEGER, OCTET_STRING = 0x30, 0x31, 0x02, 0x04
ADD_REQUEST = 0x68  # [APPLICATION 8], constructed
ENUMERATED, REFERRAL, CONTROLS = 0x0A, 0xA3, 0xA0
# protocolOp tags of the answers that are an LDAPResult (RFC 4511 §4.1.9), [APPLICATION n]
RESULTS = {0x61: "bind", 0x65: "search", 0x67: "modify", 0x69: "add", 0x6B: "delete",
           0x6D: "modify DN", 0x6F: "compare", 0x78: "extended"}  # fmt: skip
ADD_RESPONSE, EXTENDED_RESPONSE = 0x69, 0x78


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
    of values, ``objectClass`` among them; none empty: an add needs a value).

    Written for speed (a run of creates encodes one per account, while slapd waits on the
    other core): the same bytes as composing :func:`_tlv`, with the short-length case inline
    and each attribute's encoded name kept (``_NAMES``); 40 -> ~17 us an add."""
    if not 0 <= message_id < 2**31:
        raise ValueError(f"an LDAP message id is 0..2^31-1, not {message_id}")
    listed = []
    for name, value in attributes.items():
        head = _NAMES.get(name)
        if head is None:
            head = _NAMES.setdefault(name, _octets(name)) if len(_NAMES) < 4096 else _octets(name)
        if isinstance(value, str | bytes | int):
            value = (value,)
        encoded = []
        for v in value:
            raw = (
                v if isinstance(v, bytes) else v.encode() if isinstance(v, str) else str(v).encode()
            )
            n = len(raw)
            encoded.append((b"\x04" + bytes((n,)) if n < 0x80 else b"\x04" + _length(n)) + raw)
        values = b"".join(encoded)
        n = len(values)
        body = head + (b"\x31" + bytes((n,)) if n < 0x80 else b"\x31" + _length(n)) + values
        n = len(body)
        listed.append((b"\x30" + bytes((n,)) if n < 0x80 else b"\x30" + _length(n)) + body)
    operation = _tlv(ADD_REQUEST, _octets(dn) + _tlv(SEQUENCE, b"".join(listed)))
    number = message_id.to_bytes(message_id.bit_length() // 8 + 1, "big")  # sign bit clear
    return _tlv(SEQUENCE, _tlv(INTEGER, number) + operation)


# attribute name -> its encoded OCTET STRING (a bounded few dozen in practice)
_NAMES: dict[str, bytes] = {}


# -- search requests (the slim read's pages) -------------------------------------------------
SEARCH_REQUEST, BOOLEAN = 0x63, 0x01
SUBTREE, DEREF_ALWAYS = 2, 3
PAGED_RESULTS = "1.2.840.113556.1.4.319"
# an item's operator -> its Filter CHOICE tag (RFC 4511 §4.5.1); present is [7], primitive
_ITEMS = {"=": 0xA3, ">=": 0xA5, "<=": 0xA6, "~=": 0xA8}
_AND, _OR, _NOT, _SUBSTRINGS, _PRESENT = 0xA0, 0xA1, 0xA2, 0xA4, 0x87


class FilterSyntax(ValueError):
    """A filter string this encoder does not take (extensible matches among them): the caller
    lets ldap3 encode that search."""


def _unescaped(text: str) -> bytes:
    """An assertion value of a filter string as its bytes: UTF-8, ``\\XX`` a byte."""
    if "\\" not in text:
        return text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise FilterSyntax(f"a bad escape at {text[i : i + 3]!r}")
            out.append(int(pair, 16))
            i += 3
        else:
            j = text.find("\\", i)
            j = len(text) if j < 0 else j
            out += text[i:j].encode("utf-8")
            i = j
    return bytes(out)


def _item(text: str) -> bytes:
    """One ``attr<op>value`` of a filter string, encoded; spaces around the attribute and the
    value are dropped, as ldap3 drops them."""
    left, eq, right = text.strip().partition("=")
    if not eq:
        raise FilterSyntax(f"no operator in {text!r}")
    op = left[-1:] + "=" if left[-1:] in ("<", ">", "~") else "="
    if left.endswith(":"):
        raise FilterSyntax(f"an extensible match: {text!r}")
    attr = (left[:-1] if len(op) == 2 else left).strip()
    if not attr or any(c in attr for c in "()*\\=<>~"):
        raise FilterSyntax(f"an attribute description not taken here: {attr!r}")
    name = attr.encode("utf-8")
    if op == "=" and right == "*":
        return _tlv(_PRESENT, name)
    value = right.strip()
    if op == "=" and "*" in value:
        parts = value.split("*")
        subs = b""
        if parts[0]:
            subs += _tlv(0x80, _unescaped(parts[0]))
        subs += b"".join(_tlv(0x81, _unescaped(p)) for p in parts[1:-1] if p)
        if parts[-1]:
            subs += _tlv(0x82, _unescaped(parts[-1]))
        if not subs:  # "(a=**)": a substrings filter needs one substring (RFC 4511)
            raise FilterSyntax(f"no substring in {text!r}")
        return _tlv(_SUBSTRINGS, _octets(name) + _tlv(SEQUENCE, subs))
    if "*" in value:
        raise FilterSyntax(f"a '*' in {text!r}")
    return _tlv(_ITEMS[op], _octets(name) + _tlv(OCTET_STRING, _unescaped(value)))


def filter_bytes(text: str) -> bytes:
    """An RFC 4515 filter string (equality, present, substrings, ordering, approximate, and,
    or, not) as its BER Filter, the bytes ldap3 sends for it (``tests/unit/test_ber.py``).

    Why: ldap3 parses a filter into pyasn1 objects, ~16 ms for the 500 ``(employeeNumber=…)``
    terms of one batch of a scoped read, ~0.15 s of a run creating 5,000 people (issue 14);
    this writes it in well under a millisecond."""

    def one(pos: int) -> tuple[bytes, int]:
        if pos >= len(text) or text[pos] != "(":
            raise FilterSyntax(f"'(' expected at {pos} of {text[:80]!r}")
        pos += 1
        head = text[pos : pos + 1]
        if head in ("&", "|", "!"):
            pos += 1
            parts = []
            while pos < len(text) and text[pos] == "(":
                part, pos = one(pos)
                parts.append(part)
            if pos >= len(text) or text[pos] != ")" or not parts:
                raise FilterSyntax(f"')' expected at {pos} of {text[:80]!r}")
            if head == "!":
                if len(parts) != 1:
                    raise FilterSyntax("a '!' takes one filter")
                return _tlv(_NOT, parts[0]), pos + 1
            return _tlv(_AND if head == "&" else _OR, b"".join(parts)), pos + 1
        end = text.find(")", pos)
        if end < 0 or "(" in text[pos:end]:
            raise FilterSyntax(f"an item without its ')' at {pos} of {text[:80]!r}")
        return _item(text[pos:end]), end + 1

    encoded, end = one(0)
    if end != len(text):
        raise FilterSyntax(f"bytes after the filter: {text[end : end + 20]!r}")
    return encoded


def search_request(
    message_id: int, base: str, flt: str, attributes: Sequence[str], size: int, cookie: bytes
) -> bytes:
    """The whole LDAPMessage of one page of a subtree search (aliases always dereferenced, no
    size or time limit, the paged results control of ``size`` and ``cookie``): the bytes
    ldap3 sends for the same search. FilterSyntax for a filter :func:`filter_bytes` does not
    take."""
    if not 0 <= message_id < 2**31:
        raise ValueError(f"an LDAP message id is 0..2^31-1, not {message_id}")
    body = (
        _octets(base)
        + _tlv(ENUMERATED, bytes((SUBTREE,)))
        + _tlv(ENUMERATED, bytes((DEREF_ALWAYS,)))
        + _tlv(INTEGER, b"\x00")
        + _tlv(INTEGER, b"\x00")
        + _tlv(BOOLEAN, b"\x00")
        + filter_bytes(flt)
        + _tlv(SEQUENCE, b"".join(_octets(a) for a in attributes))
    )
    value = _tlv(SEQUENCE, _tlv(INTEGER, _integer(size)) + _tlv(OCTET_STRING, cookie))
    control = _tlv(SEQUENCE, _octets(PAGED_RESULTS) + _tlv(OCTET_STRING, value))
    number = message_id.to_bytes(message_id.bit_length() // 8 + 1, "big")  # sign bit clear
    return _tlv(
        SEQUENCE,
        _tlv(INTEGER, number) + _tlv(SEARCH_REQUEST, body) + _tlv(CONTROLS, control),
    )


def _integer(n: int) -> bytes:
    """A non-negative INTEGER's contents: big-endian, as short as the sign bit allows."""
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


class ProtocolError(ValueError):
    """Bytes on the pipeline's connection that are not an answer syncd understands: the stream
    cannot be trusted past them (the caller treats it as a connection lost)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One LDAPResult answer: its message id, operation tag, result code, matched DN,
    diagnostic message and referral URLs."""

    message_id: int
    operation: int
    code: int
    matched: str
    message: str
    referrals: tuple[str, ...] = ()


def _header(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int, int] | None:
    """The tag, body start and body end of the element at ``pos``; None if ``end`` comes
    first (more bytes are needed)."""
    if pos + 2 > end:
        return None
    tag, first = buf[pos], buf[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4:  # indefinite lengths are not LDAP's (RFC 4511 §5.1)
            raise ProtocolError(f"a BER length of form {first:#04x}")
        if pos + n > end:
            return None
        size = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    else:
        size = first
    if pos + size > end:
        return None
    return tag, pos, pos + size


def _element(buf: bytes | bytearray, pos: int, end: int, want: int) -> tuple[int, int]:
    """Body start and end of the element at ``pos``, which must have tag ``want`` and lie
    inside ``end`` (a whole message is known to be there: short is malformed)."""
    got = _header(buf, pos, end)
    if got is None:
        raise ProtocolError("an element runs past the end of its message")
    tag, start, stop = got
    if tag != want:
        raise ProtocolError(f"tag {tag:#04x} where {want:#04x} was expected")
    return start, stop


def _messages(buf: bytes | bytearray, end: int) -> Iterator[tuple[int, int]]:
    """Body start and end of each whole LDAPMessage from the start of ``buf`` (a message
    whose last byte has not come yet ends it: the caller keeps the rest for the next read)."""
    pos = 0
    while pos < end:
        got = _header(buf, pos, end)
        if got is None:
            return
        tag, start, stop = got
        if tag != SEQUENCE:
            raise ProtocolError(f"tag {tag:#04x} where an LDAPMessage was expected")
        yield start, stop
        pos = stop


def _text(buf: bytes | bytearray, start: int, stop: int) -> str:
    return bytes(buf[start:stop]).decode("utf-8", "replace")


def _answer(buf: bytes | bytearray, pos: int, end: int) -> Answer:
    start, stop = _element(buf, pos, end, INTEGER)
    if not 0 < stop - start <= 5:
        raise ProtocolError("a message id of the wrong size")
    message_id = int.from_bytes(buf[start:stop], "big", signed=True)
    got = _header(buf, stop, end)
    if got is None:
        raise ProtocolError("a message without its operation")
    operation, pos, op_end = got
    if operation not in RESULTS:
        raise ProtocolError(f"message {message_id}: operation {operation:#04x} is no result")
    start, stop = _element(buf, pos, op_end, ENUMERATED)
    code = int.from_bytes(buf[start:stop], "big")
    start, stop = _element(buf, stop, op_end, OCTET_STRING)
    matched = _text(buf, start, stop)
    start, stop = _element(buf, stop, op_end, OCTET_STRING)
    message = _text(buf, start, stop)
    urls: list[str] = []
    if stop < op_end and buf[stop] == REFERRAL:
        pos, ref_end = _element(buf, stop, op_end, REFERRAL)
        while pos < ref_end:
            start, pos = _element(buf, pos, ref_end, OCTET_STRING)
            urls.append(_text(buf, start, pos))
    # what may follow (an extended answer's name and value, the message's controls) is not
    # needed to tell an add's outcome
    return Answer(message_id, operation, code, matched, message, tuple(urls))


SEARCH_ENTRY, SEARCH_REFERENCE, SEARCH_DONE, INTERMEDIATE = 0x64, 0x73, 0x65, 0x79
BOOLEAN = 0x01


@dataclass(frozen=True, slots=True)
class Done:
    """The end of one search (its SearchResultDone): the result, and the response controls
    by OID, each with its value (None when it has none)."""

    answer: Answer
    controls: dict[str, bytes | None]


Entry = tuple[str, dict[str, list[bytes]]]  # DN, attribute type as sent → its raw values


def _controls(buf: bytes | bytearray, pos: int, end: int) -> dict[str, bytes | None]:
    """The ``[0] Controls`` of a message from ``pos`` (none if the message ends there)."""
    found: dict[str, bytes | None] = {}
    if pos >= end:
        return found
    pos, stop = _element(buf, pos, end, CONTROLS)
    while pos < stop:
        start, pos = _element(buf, pos, stop, SEQUENCE)
        at, after = _element(buf, start, pos, OCTET_STRING)
        oid = _text(buf, at, after)
        value: bytes | None = None
        if after < pos and buf[after] == BOOLEAN:
            _, after = _element(buf, after, pos, BOOLEAN)
        if after < pos:
            at, after = _element(buf, after, pos, OCTET_STRING)
            value = bytes(buf[at:after])
        found[oid] = value
    return found


def paged_cookie(value: bytes) -> bytes:
    """The cookie of a paged-results control's value (RFC 2696: ``SEQUENCE { size INTEGER,
    cookie OCTET STRING }``); empty on the last page."""
    pos, end = _element(value, 0, len(value), SEQUENCE)
    _, pos = _element(value, pos, end, INTEGER)
    start, stop = _element(value, pos, end, OCTET_STRING)
    return bytes(value[start:stop])


class Searched:
    """The answers to one search request, as their bytes arrive (a read may end anywhere):
    its entries (DN and raw values; references and intermediate answers are skipped, as
    ``OpenLdapDirectory._search`` skips them), then its :class:`Done`.

    Why syncd decodes them itself: the delta read's slim search (every entry's DN and
    ``entryCSN``, the whole cost of a run where nothing changed) spent ~15 µs an entry in
    ldap3's decoding and response dicts, more than ``ldapsearch`` spends reading every
    attribute of it. Anything else on the connection is a :class:`ProtocolError`.
    """

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self._buf = bytearray()
        self.references = 0  # continuation references skipped (referrals in the subtree)

    def feed(self, data: bytes) -> tuple[list[Entry], Done | None]:
        """The entries ``data`` completes and, once it has come, the search's end."""
        buf = self._buf
        buf += data
        entries: list[Entry] = []
        done: Done | None = None
        pos = 0
        for start, stop in _messages(buf, len(buf)):
            if done is not None:
                raise ProtocolError("bytes after the end of a search")
            pos = stop
            at, after = _element(buf, start, stop, INTEGER)
            message_id = int.from_bytes(buf[at:after], "big", signed=True)
            if message_id != self.message_id:
                if message_id == 0:  # a notice of disconnection
                    notice = _answer(buf, start, stop)
                    raise ProtocolError(f"the server ended the connection: {notice.message}")
                raise ProtocolError(f"an answer to message {message_id} during a search")
            op = _header(buf, after, stop)
            if op is None:
                raise ProtocolError("a message without its operation")
            operation, body, op_end = op
            if operation == SEARCH_ENTRY:
                at, after = _element(buf, body, op_end, OCTET_STRING)
                dn = _text(buf, at, after)
                attrs: dict[str, list[bytes]] = {}
                at, attrs_end = _element(buf, after, op_end, SEQUENCE)
                while at < attrs_end:
                    first, at = _element(buf, at, attrs_end, SEQUENCE)  # PartialAttribute
                    name, name_end = _element(buf, first, at, OCTET_STRING)
                    vals, vals_end = _element(buf, name_end, at, SET)
                    values: list[bytes] = []
                    while vals < vals_end:
                        v, vals = _element(buf, vals, vals_end, OCTET_STRING)
                        values.append(bytes(buf[v:vals]))
                    attrs[_text(buf, name, name_end)] = values
                entries.append((dn, attrs))
            elif operation == SEARCH_DONE:
                done = Done(_answer(buf, start, stop), _controls(buf, op_end, stop))
            elif operation == SEARCH_REFERENCE:
                self.references += 1
            elif operation != INTERMEDIATE:
                raise ProtocolError(f"operation {operation:#04x} in the answers to a search")
        del buf[:pos]
        if done is not None and buf:
            raise ProtocolError("bytes after the end of a search")
        return entries, done


class Answers:
    """The answers in a byte stream, each as soon as its last byte has arrived: a read may
    end anywhere, in a length, in the middle of a message, or hold several."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def partial(self) -> bool:
        """Bytes of an answer not whole yet are held."""
        return bool(self._buf)

    def feed(self, data: bytes) -> list[Answer]:
        """The answers ``data`` completes, in the order they came."""
        buf = self._buf
        buf += data
        out: list[Answer] = []
        pos = 0
        for start, stop in _messages(buf, len(buf)):
            out.append(_answer(buf, start, stop))
            pos = stop
        del buf[:pos]
        return out
