"""The generic OpenLDAP + ppolicy directory profile (ldap3).

- Reads the managed scope with ONE paged search and checks every page: a size limit, a
  missing paging control or any non-success result aborts the read (``ReadIncomplete``), so
  "not read" is never taken for "not there". What it asks for is derived from
  ``FIELD_ATTRIBUTES`` (Account field → attributes), operational attributes named explicitly.
- ``names()`` is a second paged search, checked the same way: every uid and mail under the
  base, whatever the scope of the run.
- ``get_info=NONE`` is pinned: every attribute value arrives as a list of ``str``.
- Every DN is built with RDN escaping and every filter value with filter escaping.
- Passwords go through the RFC 3062 password-modify operation, so the server hashes them with
  its own scheme; ``pwdReset: TRUE`` makes the first login change them (the mail server's
  login filter must check it: see docs/mail-server.md).
- The purge archive is written by ldap3's RFC 2849 writer, operational attributes included.
- A lock or revocation sets ``pwdAccountLockedTime`` to a real timestamp (the policy needs
  ``pwdLockout: TRUE`` and no lockout duration), which both blocks the bind and keeps the date.
- Delivery is ``directory.delivery_attribute`` (``syncdDelivery``) TRUE/FALSE; the mail
  server's lookup is ``delivery_filter()`` (docs/mail-server.md).
- A profile built on this one (``openldap_ou``) overrides the mapping (``FIELD_ATTRIBUTES``,
  ``PLACED``), the place (``place_of``, ``_org``, ``org_filter``) and delivery
  (``delivering``, ``delivery_changes``, ``delivery_filter``); the rest is shared.
"""

from __future__ import annotations

import contextlib
import ipaddress
import marshal
import secrets
import socket
import sqlite3
import ssl
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, overload
from urllib.parse import urlparse

import structlog
from ldap3 import (
    ALL_ATTRIBUTES,
    ALL_OPERATIONAL_ATTRIBUTES,
    BASE,
    DEREF_ALWAYS,
    MODIFY_ADD,
    MODIFY_REPLACE,
    NONE,
    SUBTREE,
    SYNC,
    Connection,
    Server,
    Tls,
)
from ldap3.core.exceptions import LDAPException
from ldap3.core.results import RESULT_CODES
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.protocol.rfc2849 import add_ldif_header, operation_to_ldif
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.utils.asn1 import encode
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from connectors.code_version import CODE
from connectors.config import DirectoryConfig
from connectors.directory import hashes
from connectors.directory.ber import (
    ADD_RESPONSE,
    Answers,
    FilterSyntax,
    ProtocolError,
    Searched,
    add_request,
    paged_cookie,
    search_request,
)
from connectors.directory_snapshot import CSN, DeltaReader, Drift, Rows, SnapshotDamaged
from connectors.runlock import ChangedMeanwhile
from connectors.waiting import readable
from syncd.model import (
    Account,
    Action,
    ActionKind,
    Field,
    Kind,
    Name,
    Named,
    State,
    names_held,
)
from syncd.plan.states import MANUAL_LOCK
from syncd.ports import DirectoryError, Found, NotSent, ReadIncomplete, Scope

log = structlog.get_logger("syncd.directory")

PAGED_RESULTS = "1.2.840.113556.1.4.319"
GENERALIZED = "%Y%m%d%H%M%SZ"
# The read is a contract: each Account field and the attributes it is read from. The search
# names exactly these, operational ones included (slapd returns pwdLastSuccess, authTimestamp,
# pwdChangedTime, createTimestamp and pwdReset only when asked; "+" would also bring
# entryCSN, entryDN, … for every entry). A field missing here is a field never read.
FIELD_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "dn": (),  # the entry's name, not an attribute
    "uid": ("uid",),
    "cn": ("cn",),
    "sn": ("sn",),
    "given_name": ("givenName",),
    "mail": ("mail",),
    "employee_number": ("employeeNumber",),
    "org": ("ou",),
    "office": ("departmentNumber",),
    "title": ("title",),
    "state": ("syncdState",),
    "state_since": ("syncdStateSince",),
    "active_since": ("syncdActiveSince",),
    "state_reason": ("syncdStateReason",),
    "managed": ("syncdManaged",),
    "kind": ("syncdKind",),
    "aliases": ("syncdAlias",),
    "has_syncd_class": ("objectClass",),
    # the newest login: ppolicy's pwdLastSuccess (olcLastBind, exact, deleted by a password
    # change) and lastbind's authTimestamp (survives it, written at most once per precision)
    "last_login": ("pwdLastSuccess", "authTimestamp"),
    "password_changed": ("pwdChangedTime",),
    "created": ("createTimestamp",),
    "must_change_password": ("pwdReset",),
    # what enforces the state on the wire, compared with syncdState (``wire_drift``): a lock
    # or revoke sets pwdAccountLockedTime, which a hand edit may delete
    "drift": ("pwdAccountLockedTime",),
    # directory.delivery_attribute's default (another name is not read: ``receives``)
    "receives_mail": ("syncdDelivery",),
    # automatic forwarding: the generic schema has none (iredmail maps mailForwardingAddress)
    "forwarding": (),
}


# Written beside the attributes a field is read from: the name is also the displayName.
ALSO_WRITTEN: dict[Field, tuple[str, ...]] = {Field.NAME: ("displayName",)}


def writes_for(
    field_attributes: Mapping[str, tuple[str, ...]], placed: frozenset[Field] = frozenset()
) -> dict[Field, tuple[str, ...]]:
    """What the core writes (syncd.model.Field) and where a profile keeps it: every field goes
    to the attributes it is read from (and ``ALSO_WRITTEN``); a field kept in the entry's
    place (``placed``: its DN) is written by moving the entry, to no attribute."""
    return {
        f: () if f in placed else field_attributes[f.value] + ALSO_WRITTEN.get(f, ()) for f in Field
    }


def attributes_for(
    field_attributes: Mapping[str, tuple[str, ...]], names: tuple[str, ...]
) -> list[str]:
    """The attributes a search names to read the Account fields ``names``."""
    return list(dict.fromkeys(a for f in names for a in field_attributes[f]))


WRITES = writes_for(FIELD_ATTRIBUTES)


def to_attributes(values: Mapping[Field, tuple[str, ...]]) -> dict[str, list[str]]:
    """The core's field values as the generic profile's LDAP attributes."""
    return _to_attributes(WRITES, values)


def _to_attributes(
    writes: Mapping[Field, tuple[str, ...]], values: Mapping[Field, tuple[str, ...]]
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f, v in values.items():
        for name in writes[Field(f)]:
            out[name] = list(v)
    return out


ATTRIBUTES = attributes_for(FIELD_ATTRIBUTES, tuple(FIELD_ATTRIBUTES))
# names(): the whole namespace, any class, any state: every entry holding a uid or a mail
NAME_FIELDS = ("dn", "uid", "cn", "mail", "aliases", "kind", "managed", "employee_number")
NAME_ATTRIBUTES = attributes_for(FIELD_ATTRIBUTES, NAME_FIELDS)
# exact terms per search of a scoped read: slapd unions their index slots (cheap); a filter of
# 500 terms is ~15 kB on the wire
SCOPED_BATCH = 500
# Result codes worth a retry: busy, unavailable, unwillingToPerform, timeLimitExceeded, other.
TRANSIENT = {3, 51, 52, 53, 80}
PIPELINE = 16  # adds in flight on the create connection (create_many)
# What a create refused with entryAlreadyExists (68) means when syncd's plan did not see the
# entry: an access rule hides it from the service DN (found by an attack: every run failed
# so, and nothing said why)
ALREADY_THERE = (
    "; an entry is already at that DN: if syncd's reads do not show it, an access rule hides "
    "it from the service DN (config/ldap/acl.ldif gives it read access to the whole base)"
)
RAMP = 4  # adds create_many sends one by one while its pipeline fills (slapd idle)


def _paged_search(
    message_id: int, base: str, flt: str, attributes: list[str], size: int, cookie: bytes
) -> bytes:
    """The LDAPMessage of one page of a subtree search, encoded by ldap3 as its own search
    would send it (dereferencing aliases always, no size or time limit)."""
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    request = search_operation(
        base, flt, SUBTREE, DEREF_ALWAYS, attributes, 0, 0, False, True, True
    )
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    message["controls"] = build_controls_list([paged_search_control(False, size, cookie)])
    return bytes(encode(message))


def _first(entry: Mapping[str, Any], name: str) -> str | None:
    values = entry.get(name) or []
    return str(values[0]) if values else None


def _since(value: str | None) -> datetime | None:
    """A directory timestamp (``20250301083000Z``, fractions ignored) as a UTC datetime.

    Sliced by hand, not ``strptime``: a read of 100,000 entries parses half a million of
    them, and ``strptime`` re-parses its format each time (~10x slower). The same stamps recur
    (a run writes one ``syncdStateSince`` to thousands of entries), hence the cache.
    """
    if not value:
        return None
    return _generalized(value[:14])


@lru_cache(maxsize=1 << 16)
def _generalized(digits: str) -> datetime | None:
    if len(digits) != 14 or not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime(
            int(digits[0:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            int(digits[12:14]),
            tzinfo=UTC,
        )
    except ValueError:  # month 13, second 61, …: not a date
        return None


def _batched(base: str, terms: list[str]) -> Iterator[str]:
    """``(&base(|t1…tn))`` searches of at most ``SCOPED_BATCH`` terms each."""
    for i in range(0, len(terms), SCOPED_BATCH):
        yield f"(&{base}(|{''.join(terms[i : i + SCOPED_BATCH])}))"


def _lower(value: str) -> str:
    """``value`` in lower case, the same string when it already is (no copy per account)."""
    return value if value.islower() else value.lower()


def _shared(value: str | None) -> str | None:
    """One string for equal values (``sys.intern``): an organisation, a title or an office
    repeated over 100,000 accounts is held once."""
    return None if value is None else sys.intern(value)


def _name_of(account: Account) -> Name:
    """The namespace's entry for an account read in full: its names, sharing its strings."""
    return Name(
        account.dn,
        account.uid,
        account.cn,
        account.mail,
        account.aliases,
        account.kind,
        account.managed,
        account.employee_number,
    )


_KINDS = {k.value: k for k in Kind}


NAMES_PART = 10_000  # names per part of the snapshot's names cache
# what the cache's names were made by: their encoding (``_names_parts``) and the code that
# turns an entry into a Name (an upgrade that changes it must not reuse the old code's names)
NAMES_SHAPE = f"names-columns-2:{CODE}"


def _names_parts(names: Sequence[Name]) -> Iterator[bytes]:
    """A namespace as the snapshot's names cache keeps it (``DeltaReader.keep_names``): in
    the order of the snapshot's rows (by key, the DN in lower case), ``NAMES_PART`` names a
    part, each part the Names' fields as columns. marshal: plain lists of strings, loaded ~8
    times faster than the rows are decoded (100,000 names: ~0.1 s against ~0.8 s), and no
    code runs when it is read; columns, so that loading makes no object per name but the Name
    and its values (measured at 100k: a tuple per name, freed at once, cost 9 MiB more)."""
    ordered = sorted(names, key=lambda n: n.dn.lower())
    kind = Name._fields.index("kind")
    for i in range(0, len(ordered), NAMES_PART):
        part = ordered[i : i + NAMES_PART]
        columns = [list(c) for c in zip(*part, strict=True)]
        columns[kind] = [n.kind.value for n in part]
        yield marshal.dumps(columns)


def _names_terms(names: Sequence[Name], domain: str) -> Iterator[tuple[str, int, bytes]]:
    """What a scoped read looks for in the namespace (``_scoped_filters``), kept beside it in
    the names cache: under "" the entries without an employee number, and under each
    organisation code ``o`` the entries with one whose addresses end in ``.o@domain`` (an
    alias kept after a transfer), every dotted tail of the local part being a possible
    code. Each blob holds its entries' DNs (lower case), uids and first addresses, as
    columns in the namespace's order (by DN, lower case)."""
    at = f"@{domain}".lower()
    groups: dict[str, list[Name]] = {}
    for name in sorted(names, key=lambda n: n.dn.lower()):
        if not name.employee_number:
            groups.setdefault("", []).append(name)
            continue
        carried: set[str] = set()
        for mail in name.mail:
            low = mail.lower()
            if low.endswith(at):
                local = low[: -len(at)]
                carried.update(local[i + 1 :] for i, c in enumerate(local) if c == ".")
        for code in carried - {""}:
            groups.setdefault(code, []).append(name)
    for code, members in groups.items():
        yield code, len(members), marshal.dumps(
            [[n.dn.lower() for n in members], [n.uid for n in members],
             [n.mail[0] if n.mail else "" for n in members]]
        )  # fmt: skip


def _kept_terms(blobs: Iterable[tuple[int, bytes]]) -> list[tuple[str, str, str]] | None:
    """The (DN in lower case, uid, first address) of the blobs ``_names_terms`` wrote, each
    entry once, in the namespace's order; None for blobs of another shape or not holding
    the entries written (then the whole namespace is scanned)."""
    found: dict[str, tuple[str, str]] = {}
    try:
        for n, blob in blobs:
            dns, uids, mails = marshal.loads(blob)  # noqa: S302 - the state directory's own
            if len(dns) != n:
                return None
            found.update(zip(dns, zip(uids, mails, strict=True), strict=True))
        return [(str(dn), str(found[dn][0]), str(found[dn][1])) for dn in sorted(found)]
    except (ValueError, TypeError, EOFError):
        return None


class _CachedNames(Sequence[Name]):
    """A scoped run's namespace from the snapshot's names cache: its parts, under the key the
    cache's check found (``DeltaReader.cached_names``), are read and decoded only when first
    used, by the plan's uid pool when it gives out a name: most scoped runs give out none,
    and decoding 100,000 Names is most of what a one-organisation run at 100k spends past its
    start (issue 14). ``fresh`` are the Names of the entries read anew since the snapshot, which
    replace theirs; ``rows`` decodes the snapshot's rows instead if the parts turn out not to
    hold what was written (edited by hand). ``terms`` is what ``_scoped_filters`` reads in
    place of the whole namespace, when the cache has them."""

    def __init__(
        self,
        parts: Iterable[bytes],
        count: int,
        fresh: list[Name],
        overlay: Mapping[str, Any],
        rows: Callable[[], list[Name]],
        terms: Callable[[Iterable[str]], list[tuple[int, bytes]] | None],
    ) -> None:
        self._parts, self._count, self.fresh = parts, count, fresh
        self.overlay, self._rows, self.terms = overlay, rows, terms
        self._names: list[Name] | None = None

    def _all(self) -> list[Name]:
        if self._names is None:
            cached = _names_of_parts(self._parts, self._count, self.overlay)
            self._names = [*cached, *self.fresh] if cached is not None else self._rows()
            self._parts = ()
        return self._names

    def forget(self, dns: set[str]) -> None:
        """Drop the Names of the entries ``dns`` (gone from the server: ``_forget_deleted``)."""
        self._names = [n for n in self._all() if n.dn not in dns]

    def __len__(self) -> int:
        return len(self._all())

    @overload
    def __getitem__(self, i: int) -> Name: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Name]: ...
    def __getitem__(self, i: int | slice) -> Name | Sequence[Name]:
        return self._all()[i]

    def __iter__(self) -> Iterator[Name]:
        return iter(self._all())


def _names_of_parts(
    parts: Iterable[bytes], count: int, overlay: Mapping[str, Any]
) -> list[Name] | None:
    """The Names of ``_names_parts``, but those of the entries ``overlay`` holds anew; None
    for parts of another shape or that do not hold the ``count`` Names written (the rows are
    decoded instead). They are read from the state
    directory's own 0600 file, after their rows' digest matched; whoever can write there can
    already rewrite syncd's state itself."""
    kind = Name._fields.index("kind")
    names: list[Name] = []
    try:
        for blob in parts:
            fields = marshal.loads(blob)  # noqa: S302
            if len(fields) != len(Name._fields):
                return None
            fields[kind] = [_KINDS[k] for k in fields[kind]]
            names += map(Name._make, zip(*fields, strict=True))
    except (ValueError, TypeError, EOFError, KeyError, sqlite3.Error):
        return None
    if len(names) != count:
        return None
    if overlay:  # entries read anew since the snapshot: their names come from it
        names = [n for n in names if n.dn.lower() not in overlay]
    return names


def _is_account(attrs: Mapping[str, Any]) -> bool:
    return any(str(c).lower() == "inetorgperson" for c in attrs.get("objectClass") or [])


def _kind(value: str | None) -> Kind:
    return Kind.ORGANISATION if (value or "").lower() == "organisation" else Kind.PERSON


def split_dn(dn: str) -> list[str]:
    """The RDNs of ``dn`` as written (escapes kept), leftmost first: RFC 4514 escapes, so a
    comma in a value (``cn=Nông\\, Đạt``) does not split it."""
    rdns: list[str] = []
    start = i = 0
    while i < len(dn):
        if dn[i] == "\\":
            i += 2
            continue
        if dn[i] == ",":
            rdns.append(dn[start:i].lstrip())
            start = i + 1
        i += 1
    rdns.append(dn[start:].lstrip())
    return [r for r in rdns if r]


def split_rdn(dn: str) -> tuple[str, str]:
    """``dn``'s own RDN (as written) and its parent's DN."""
    rdns = split_dn(dn)
    return rdns[0], ",".join(rdns[1:])


def _dn_key(dn: str) -> str:
    """A DN compared as slapd writes ``creatorsName``: case and spaces aside."""
    return "".join(dn.lower().split())


def _stamp(when: datetime | None) -> str:
    """Generalized time of ``when`` (the wall clock if None), in UTC."""
    # in UTC before the cache: two readings of a repeated local hour differ only in ``fold``,
    # which the cache's key ignores (found by an attack)
    if when is None:
        return datetime.now(UTC).strftime(GENERALIZED)
    return _stamp_of(when.astimezone(UTC))


@lru_cache(maxsize=16)
def _stamp_of(when: datetime) -> str:
    """(A run's creates all carry the plan's ``now``: formatted once, not once per add.)"""
    return when.strftime(GENERALIZED)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _discard(conn: Connection | None) -> None:
    """Close a connection that failed to open, bind or start TLS, and its socket."""
    if conn is None:
        return
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()
    sock = conn.socket
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


class OpenLdapDirectory:
    """:class:`syncd.ports.Directory` for OpenLDAP with the ppolicy overlay.

    A profile built on it (:mod:`connectors.directory.openldap_ou`) declares its own
    ``FIELD_ATTRIBUTES`` (and ``PLACED``); what it writes and what its searches name are
    derived from them when the subclass is defined.
    """

    FIELD_ATTRIBUTES: ClassVar[Mapping[str, tuple[str, ...]]] = FIELD_ATTRIBUTES
    # fields kept in the entry's DN rather than (only) in attributes: none here
    PLACED: ClassVar[frozenset[Field]] = frozenset()
    WRITES: ClassVar[Mapping[Field, tuple[str, ...]]] = WRITES
    ATTRIBUTES: ClassVar[list[str]] = ATTRIBUTES
    NAME_ATTRIBUTES: ClassVar[list[str]] = NAME_ATTRIBUTES
    # An active account's state reason (how it was made: "new on the roster (f.csv:830) …")
    # is read only when asked (`syncd show`): no rule reads it (the plan reads the reason of
    # a lock or a revocation only: syncd.plan.states, departures, drift), and as one distinct
    # string per account, held in two bytes a character for the articles' "Đ", it was ~40 MiB
    # of a whole run at 100,000 accounts (issue 14).
    every_reason: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.WRITES = writes_for(cls.FIELD_ATTRIBUTES, cls.PLACED)
        cls.ATTRIBUTES = attributes_for(cls.FIELD_ATTRIBUTES, tuple(cls.FIELD_ATTRIBUTES))
        cls.NAME_ATTRIBUTES = attributes_for(cls.FIELD_ATTRIBUTES, NAME_FIELDS)

    def __init__(self, config: DirectoryConfig, password: str, domain: str) -> None:
        self.config = config
        self.domain = domain
        self.base = config.base_dn
        self.per_org = config.layout == "per-org"
        self._known_ous: set[str] = set()
        self._names_to_keep: list[Name] | None = None  # a whole run's namespace, see close()
        # entries this object moved where the core did not ask for a new DN (an update of a
        # placed field): old DN (lower case) → new DN, so later calls with the plan's DN follow
        self._relocated: dict[str, str] = {}
        url = urlparse(config.url)
        host = url.hostname or ""
        secure = url.scheme == "ldaps" or config.start_tls
        tls = None
        if secure:
            # verification is always on: the CA file, or the system's trust store
            tls = Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_file=str(config.ca_file) if config.ca_file else None,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        elif not _is_loopback(host):
            if not config.allow_insecure:
                raise DirectoryError(
                    f"{config.url}: plain ldap:// is only allowed to loopback; use ldaps://, "
                    "directory.start_tls: true, or set directory.allow_insecure: true"
                )
            log.warning(
                "plain ldap:// to a remote directory: passwords cross the network "
                "unencrypted (directory.allow_insecure: true)",
                url=config.url,
            )
        self.server = Server(config.url, get_info=NONE, connect_timeout=config.timeout, tls=tls)
        self._password = password
        self._conn: Connection | None = None
        # the last names() read, until this object writes (see names())
        self._namespace: Sequence[Name] | None = None
        self._one_add: bool | None = None  # see _hashes_added_passwords
        self._windowed = False  # names() took the snapshot and recent CSNs (see _scoped_search)
        self._pipe: Connection | None = None  # see create_many
        self._delta: DeltaReader | None = None  # see use_snapshot
        self._scoped = False
        self._entries: Rows | None = None  # see _synced
        self._whole: list[Account] | None = None  # see _read_whole
        self._gone: list[Name] = []  # names of people in scope found gone (_forget_deleted)

    # -- connection ---------------------------------------------------------------------------

    @property
    def conn(self) -> Connection:
        # Any use of the connection may change the directory: the namespace names() kept is
        # for the read() that comes right after it (which takes it before searching), no later.
        self._namespace = None
        self._entries = None
        self._whole = None
        if self._conn is None or self._conn.closed:
            self._conn = self._connect(SYNC)
        return self._conn

    def _connect(self, strategy: str) -> Connection:
        """A bound connection (StartTLS first where configured) with ldap3's ``strategy``.
        One that fails is closed here, its socket with it: ldap3 keeps the socket of a refused
        or failed attempt on the connection, which lives until the garbage collector finds
        it (found by an attack: one more open socket per attempt while slapd was down)."""
        conn: Connection | None = None
        try:
            conn = Connection(
                self.server,
                self.config.bind_dn,
                self._password,
                client_strategy=strategy,
                # never with another strategy: ldap3's ASYNC receiver thread retries forever on
                # a socket error when a receive timeout is set (it spun at full CPU once its
                # connection was gone); create_many reads its SYNC connection's socket itself
                receive_timeout=int(self.config.timeout) if strategy == SYNC else None,
                raise_exceptions=False,
                read_only=False,
            )
            if self.config.start_tls:
                conn.open()
                if not conn.start_tls():
                    raise DirectoryError(
                        f"StartTLS refused by {self.config.url}: {conn.result.get('description')}"
                    )
            if not conn.bind():
                raise DirectoryError(
                    f"cannot bind to {self.config.url} as {self.config.bind_dn}: "
                    f"{conn.result.get('description')}",
                    transient=conn.result.get("result") in TRANSIENT,
                )
        except (LDAPException, OSError) as exc:
            _discard(conn)
            raise DirectoryError(f"cannot reach {self.config.url}: {exc}", transient=True) from exc
        except DirectoryError:
            _discard(conn)
            raise
        return conn

    def close(self) -> None:
        if self._names_to_keep is not None and self._delta is not None:
            # at the end of the run, when its plan no longer holds memory: the blob's
            # temporaries then never add to the run's peak
            try:
                self._delta.keep_names(
                    _names_parts(self._names_to_keep),
                    len(self._names_to_keep),
                    NAMES_SHAPE,
                    _names_terms(self._names_to_keep, self.domain),
                )
            except sqlite3.Error as exc:  # a cache only: the next scoped run decodes the rows
                log.warning("directory snapshot: names cache not written", error=str(exc))
            self._names_to_keep = None
        if self._delta is not None:
            self._delta.close()
        if self._conn is not None:
            self._conn.unbind()
            self._conn = None
        self._close_pipe()

    def _where(self, dn: str) -> str:
        """Where the entry the plan calls ``dn`` is now (see ``_relocated``)."""
        return self._relocated.get(dn.lower(), dn)

    def _check(self, ok: bool, what: str) -> None:
        if not ok:
            r = self.conn.result
            detail = f"{r.get('description')} ({r.get('result')}) {r.get('message') or ''}"
            hint = ALREADY_THERE if r.get("result") == 68 and what.startswith("creating") else ""
            raise DirectoryError(
                f"{what}: {detail.strip()}{hint}",
                transient=r.get("result") in TRANSIENT,
            )

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            ok = fn(*args, **kwargs)
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"{what}: {exc}", transient=True) from exc
        self._check(ok, what)

    def _modify(self, dn: str, changes: dict[str, Any], what: str) -> None:
        """Modify; an entry made before syncd first gets syncd's auxiliary class."""
        ok = self.conn.modify(dn, changes)
        if (
            not ok
            and self.conn.result.get("result") == 65
            and any(k.lower().startswith("syncd") for k in changes)
        ):
            self._add_class(dn)
            ok = self.conn.modify(dn, changes)
        self._check(ok, what)

    def _add_class(self, dn: str) -> None:
        ok = self.conn.modify(dn, {"objectClass": [(MODIFY_ADD, ["syncdAccount"])]})
        if not ok and self.conn.result.get("result") != 20:  # 20: the class is already there
            self._check(False, f"adding syncd's class to {dn}")

    # -- reading ------------------------------------------------------------------------------

    def scope_filter(self, scope: Scope) -> str:
        """The filter of a whole read (``scope.orgs is None``): every account of the base.

        A profile whose accounts are of another class (AD's users) replaces the class here;
        the scoped read's searches are built around this same filter (``_scoped_filters``).
        """
        return "(objectClass=inetOrgPerson)"

    def _scoped_filters(
        self, scope: Scope, namespace: Sequence[Name], seen: Mapping[str, Account]
    ) -> Iterator[str]:
        """The searches of a scoped read, each made of terms slapd answers from an equality
        index (``ou``/``employeeNumber``/``uid``/``mail`` eq; docs/architecture.md).

        One filter OR-ing indexed and unindexed terms (``(!(employeeNumber=*))``, a ``mail``
        substring) makes slapd test every entry of the base: 12.6 s for 1,000 terms at 100k
        (issue 14), the indexed terms alone 0.02 s. So the read is split: the organisations;
        the employee numbers in batches of exact terms; then the accounts the namespace
        (already read, slim) shows without an employee number or with an address of one of
        the organisations (an alias kept after a transfer, ``hungdv.skhcn@…``), by their uid.
        ``seen`` (DN, lower case → account) is what the searches yielded so far: a person the
        organisations' search found is not asked for again by number or uid.
        """
        base = self.scope_filter(Scope())
        orgs = sorted(scope.orgs or ())
        if orgs:
            yield f"(&{base}(|{''.join(self.org_filter(o) for o in orgs)}))"
        emp = self.FIELD_ATTRIBUTES["employee_number"][0]
        found = {a.employee_number.lower() for a in seen.values() if a.employee_number}
        yield from _batched(
            base,
            [
                f"({emp}={escape_filter_chars(e)})"
                for e in sorted(scope.employee_numbers)
                if e.lower() not in found
            ],
        )
        suffixes = tuple(f".{o}@{self.domain}".lower() for o in orgs)
        uid_attr = self.FIELD_ATTRIBUTES["uid"][0]
        mail_attr = self.FIELD_ATTRIBUTES["mail"][0]
        terms: dict[str, None] = {}
        scan: Sequence[Name] = namespace
        kept = None
        if isinstance(namespace, _CachedNames):
            blobs = namespace.terms(o.lower() for o in orgs)
            kept = _kept_terms(blobs) if blobs is not None else None
        if isinstance(namespace, _CachedNames) and kept is not None:
            # the cache's entries of the same rules (``_names_terms``), in the namespace's
            # order, then the entries read anew since the snapshot by the rules themselves
            for dn, uid, mail in kept:
                if dn in seen or dn in namespace.overlay:
                    continue
                if uid:
                    terms[f"({uid_attr}={escape_filter_chars(uid)})"] = None
                elif mail:
                    terms[f"({mail_attr}={escape_filter_chars(mail)})"] = None
            scan = namespace.fresh
        for acc in scan:  # 100,000 names at 100k: no generator per name
            if acc.employee_number:  # keyed: asked for only if it carries an address of orgs
                if not suffixes:
                    continue
                for m in acc.mail:
                    if m.lower().endswith(suffixes):
                        break
                else:
                    continue
            if acc.dn.lower() in seen:
                continue
            if acc.uid:
                terms[f"({uid_attr}={escape_filter_chars(acc.uid)})"] = None
            elif acc.mail:
                terms[f"({mail_attr}={escape_filter_chars(acc.mail[0])})"] = None
        yield from _batched(base, list(terms))

    def names_filter(self) -> str:
        """Every entry holding a uid or an address, by this profile's attributes."""
        held = (*self.FIELD_ATTRIBUTES["uid"], *self.FIELD_ATTRIBUTES["mail"])
        return "(|" + "".join(f"({a}=*)" for a in held) + ")"

    def org_filter(self, org: str) -> str:
        """A filter term matching the accounts of ``org``."""
        return "".join(f"({a}={escape_filter_chars(org)})" for a in self.FIELD_ATTRIBUTES["org"])

    def read(self, scope: Scope) -> list[Account]:
        """The accounts in ``scope``: one paged search of the base for a whole read; for a
        scoped one, a few searches on indexed terms only (``_scoped_filters``), each paged
        and checked, an entry found twice kept once."""
        if scope.orgs is None:
            if self._delta is not None:
                if self._whole is not None:  # read with the namespace (see _read_whole)
                    return self._whole
                return [self._account(dn, a) for dn, a in self._synced() if _is_account(a)]
            return [
                self._account(dn, attrs)
                for dn, attrs in self._search(self.scope_filter(scope), self.ATTRIBUTES)
            ]
        namespace = self._namespace if self._namespace is not None else self.names()
        seen: dict[str, Account] = {}
        # a generator: each search is built after the previous one's entries are in ``seen``
        for flt in self._scoped_filters(scope, namespace, seen):
            for dn, attrs in self._scoped_search(flt):
                if dn.lower() not in seen:
                    seen[dn.lower()] = self._account(dn, attrs)
        if self._windowed:
            self._forget_deleted(scope, namespace, seen)
        return list(seen.values())

    def _forget_deleted(
        self, scope: Scope, namespace: Sequence[Name], seen: Mapping[str, Account]
    ) -> None:
        """Drop from a scoped run's namespace the snapshot's names of the people in scope whose
        entry is gone, so the plan gives them back as a whole run would.

        Found in session 8: a person still on the roster whose mailbox an operator deleted by
        hand was made again as ``hienhd1.skhcn`` ("hienhd.skhcn is taken") by the file of their
        organisation, because the snapshot of the last whole read still held the deleted
        name; the whole run gives ``hienhd.skhcn`` back. Only the people of the scope that
        the read found no account for (to be created, or listed as gone) may have lost one,
        so only the names carrying their employee numbers are looked up, by DN: none in most
        runs, one lookup each otherwise. The names dropped are kept for their person
        (``vanished_names``, ``LocalState.former``): nobody else gets them. An
        entry still there keeps its name (another class now, say), so nothing is freed that
        a whole run would hold. An entry an access rule hides from the service DN is not
        found by the lookup either, nor by a whole read: to both it vanished, its names kept
        for its person; that person's create is refused (68) with a hint at the access rule
        (``ALREADY_THERE``)."""
        have = {a.employee_number.lower() for a in seen.values() if a.employee_number}
        missing = {e.lower() for e in scope.employee_numbers} - have
        if not missing:
            return
        fresh = namespace.overlay if isinstance(namespace, _CachedNames) else {}
        suspects = [
            n
            for n in namespace
            if n.employee_number
            and n.employee_number.lower() in missing
            and n.dn.lower() not in fresh  # read from the server in this run: there
        ]
        gone = {n.dn for n in suspects if self._read_back(n.dn, ["1.1"]) is None}
        if not gone:
            return
        self._gone += [n for n in suspects if n.dn in gone]
        log.info(
            "directory names: entries deleted since the last whole read: their names are "
            "free again for their people",
            entries=sorted(gone)[:10],
            count=len(gone),
        )
        if isinstance(namespace, _CachedNames):
            namespace.forget(gone)
        elif isinstance(namespace, list):
            namespace[:] = [n for n in namespace if n.dn not in gone]

    def _scoped_search(self, flt: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
        """One search of a scoped read: with a snapshot, the entries' CSNs only, their
        attributes from the snapshot where it holds them as they are
        (``DeltaReader.current``); without one, or when it cannot tell, a search in full."""
        if self._delta is not None:
            csns = {dn.lower(): csn for dn, csn in self._csns(flt)}
            blind = sum(1 for csn in csns.values() if not csn)
            if blind and self._windowed:  # a namespace from the snapshot and recent CSNs
                raise self._delta.blinded(blind)
            try:
                return self._delta.current(csns)
            except Drift:
                pass
        return self._search(flt, self.ATTRIBUTES)

    def names(self) -> Sequence[Name]:
        """Every entry under the base with a uid or a mail, whatever its class, state or scope.

        The names only (dn, uid, cn, mail, aliases, kind, managed, employee number): what a run
        needs so that no uid or address ever seen is given to someone else. Kept until this
        object next writes, so the scoped read that follows (``read``) finds the unkeyed
        accounts and the old addresses in it instead of with an unindexed filter.
        """
        if self._delta is not None:
            named = (*self.FIELD_ATTRIBUTES["uid"], *self.FIELD_ATTRIBUTES["mail"])
            if not self._scoped:
                self._namespace, self._whole = self._read_whole(named)
                self._names_to_keep = self._namespace  # kept in the snapshot by close()
                return self._namespace
            recent = self._delta.names_since()
            self._windowed = recent is not None
            rows = recent if recent is not None else self._synced()
            kept = self._delta.cached_names(NAMES_SHAPE) if recent is not None else None

            def decoded() -> list[Name]:  # the namespace's attributes only, row by row
                return [self._name(dn, a) for dn, a in rows.names() if any(a.get(n) for n in named)]

            if kept is None:
                try:
                    self._namespace = decoded()
                except SnapshotDamaged as exc:
                    if recent is None:  # the whole read's own rows: stopped, retried
                        raise
                    # a page the window's check did not read (it reads the CSN index and the
                    # window's rows only): read whole now, as a damaged file found by the
                    # check is (a run then writes a new file; a plan reads into memory)
                    self._windowed = False
                    rows = self._entries = self._delta.sync(damaged=exc.cause)
                    self._namespace = decoded()
                return self._namespace
            parts = kept[0]  # read when decoded, under the checked key
            fallback = decoded
            if not self._delta.keep:
                # A plan holds no run lock: a whole run may rewrite the snapshot before the
                # plan decodes the cache, whose parts are then gone and whose rows lack the
                # names deleted since (found by an attack: such a name, kept for its person
                # in a state the plan had not loaded, looked free). The parts are still read
                # only when decoded (most plans give out no name: reading them anyway was
                # ~0.06 s of one organisation's plan at 100k); if the file was written since
                # the check, the plan stops rather than decode rows newer than its state.
                delta = self._delta

                def fallback() -> list[Name]:
                    if delta.rewritten_since_checked(NAMES_SHAPE):
                        raise ChangedMeanwhile()
                    return decoded()

            wanted = set(rows.layout.named)
            fresh = [
                self._name(dn, {k: v for k, v in a.items() if k in wanted})
                for dn, a in rows.overlay.values()
                if any(a.get(n) for n in named)
            ]
            self._namespace = _CachedNames(
                parts, kept[1], fresh, rows.overlay, fallback, self._delta.cached_terms
            )
            return self._namespace
        self._namespace = [
            self._name(dn, attrs)
            for dn, attrs in self._search(self.names_filter(), self.NAME_ATTRIBUTES)
        ]
        return self._namespace

    # -- the local snapshot (connectors/directory_snapshot.py) ------------------------------

    def use_snapshot(self, path: Path, *, keep: bool = True, scoped: bool = False) -> bool:
        """Read the whole base through a local snapshot at ``path`` from now on: only what
        changed since the last run is read in full (``directory_snapshot``); ``keep`` False
        reads it without writing it (a plan); ``scoped`` (a run of some organisations' files)
        takes the namespace from the snapshot and what changed lately
        (``DeltaReader.names_since``). Only a profile
        whose accounts are ``inetOrgPerson`` entries (what the snapshot tells apart without
        the server); another keeps reading everything. True if it will."""
        if self.scope_filter(Scope()) != "(objectClass=inetOrgPerson)":
            return False
        attributes = list(
            dict.fromkeys([*self.ATTRIBUTES, *self.NAME_ATTRIBUTES, "objectClass", "entryCSN"])
        )
        self._delta = DeltaReader(
            path,
            self.base,
            self._search,
            f"(|{self.names_filter()}{self.scope_filter(Scope())})",
            attributes,
            keep=keep,
            names=self.NAME_ATTRIBUTES,
            csns=self._csns,
        )
        self._scoped = scoped
        return True

    def holders(self, names: Iterable[str]) -> dict[str, str]:
        """Which entry holds each of ``names`` (uids and addresses, lower case) as its uid or
        an address, by exact searches on the indexed uid and mail attributes (batched, any
        entry under the base): name -> the holder's DN in lower case. What the runner asks of
        the names a plan gives out before it applies anything, so that a namespace read that
        missed an entry (one whose entryCSN the service DN cannot read, or one written during
        the run) never gives a held name twice."""
        uids = self.FIELD_ATTRIBUTES["uid"]
        mails = self.FIELD_ATTRIBUTES["mail"]  # every one (iredmail's shadowAddress too)
        at = f"@{self.domain}".lower()
        wanted = {n.lower() for n in names}
        terms: dict[str, None] = {}
        for name in wanted:
            local = name[: -len(at)] if name.endswith(at) else name if "@" not in name else ""
            addresses = [name] if "@" in name else []
            if local:
                terms.update({f"({a}={escape_filter_chars(local)})": None for a in uids})
                addresses.append(local + at)
            for address in addresses:
                terms.update({f"({a}={escape_filter_chars(address)})": None for a in mails})
        found: dict[str, str] = {}
        for flt in _batched("(objectClass=*)", list(terms)):
            for dn, attrs in self._search(flt, [*uids, *mails]):
                held = {str(v).lower() for a in (*uids, *mails) for v in attrs.get(a) or []}
                held |= {h[: -len(at)] for h in held if h.endswith(at)}
                for name in held & wanted:
                    found.setdefault(name, dn.lower())
        return found

    def deleted_names(self, names: Iterable[str], namespace: Iterable[Named]) -> list[str]:
        """Of ``names`` (uids and address local parts ``namespace`` holds: the last names()),
        those whose every holder there is gone from the server: held by no entry's uid or
        address (``holders``: one batched search of indexed attributes), and no entry at the
        DN of a namespace entry holding it (a name held as an old address, ``syncdAlias``,
        which has no index to search, is found so). [] for a namespace read whole."""
        if not self._windowed:
            return []
        wanted = {n.lower() for n in names}
        unheld = wanted - self.holders(wanted).keys()
        if not unheld:
            return []
        dns: dict[str, list[str]] = {}
        for n in namespace:
            for name in names_held(n, self.domain) & unheld:
                dns.setdefault(name, []).append(n.dn)
        return sorted(
            name
            for name in unheld
            if dns.get(name) and all(self._read_back(dn, ["1.1"]) is None for dn in dns[name])
        )

    def vanished_names(self) -> list[Name]:
        """The entries this run found gone that the snapshot held: deleted, hidden from the
        service DN or renamed by hand (or purged or renamed by syncd) since the last whole
        read, and the people in scope found gone (``_forget_deleted``). Whose their names
        were is what ``LocalState.former`` keeps (connectors/runner.py)."""
        found = [self._name(dn, a) for dn, a in self._delta.vanished] if self._delta else []
        return [*self._gone, *found]

    def remember_planned(self, actions: Sequence[Action]) -> None:
        """Creates, moves and links about to be made, before any is sent: the entries'
        names (the employee number among them), at the DN each will have, kept beside the
        snapshot until the next whole read holds them (``DeltaReader.record_made``), so one
        deleted by hand before then is still told vanished and its names kept for its
        holder."""
        if self._delta is None:
            return
        fields = self.FIELD_ATTRIBUTES
        entries = [
            (
                n.dn,
                {
                    fields["uid"][0]: [n.uid],
                    fields["mail"][0]: list(n.mail),
                    fields["employee_number"][0]: [n.employee_number or ""],
                },
            )
            for n in map(self._planned, actions)
        ]
        try:
            self._delta.record_made(entries)
        except sqlite3.Error as exc:  # best effort: the next whole read sees them as they are
            log.warning("directory snapshot: the entries made were not recorded", error=str(exc))

    def forget_planned(self, actions: Sequence[Action]) -> None:
        """Creates, moves and links ``remember_planned`` kept that were never sent."""
        if self._delta is not None:
            try:
                self._delta.forget_made([self._planned(a).dn for a in actions])
            except sqlite3.Error as exc:  # kept for the same person: nothing is lost
                log.warning("directory snapshot: skipped entries not forgotten", error=str(exc))

    def _planned(self, a: Action) -> Name:
        """The entry ``a`` (a create, move or link) makes: its DN, names, employee number."""
        uid = a.new_uid or a.uid
        dn = a.dn if a.kind is ActionKind.LINK and a.dn else self._where(self.dn_for(uid, a.org))
        mail = {m.lower() for m in a.attrs.get(Field.MAIL, ())} | {f"{uid}@{self.domain}"}
        if a.new_uid:  # a move: the old address stays with the person
            mail.add(f"{a.uid}@{self.domain}".lower())
        return Name(dn, uid, mail=tuple(sorted(mail)), employee_number=a.employee_number)

    def vanished_kept(self) -> None:
        """The run saved whose the names of ``vanished_names`` were: the snapshot stops
        telling them (``DeltaReader.acknowledge``)."""
        if self._delta is not None:
            try:
                self._delta.acknowledge()
            except sqlite3.Error as exc:  # told again by the next read: nothing lost
                log.warning("directory snapshot: vanished entries not acknowledged", error=str(exc))

    def read_names_whole(self) -> None:
        """The next :meth:`names` reads the whole base (through the snapshot's delta, which it
        brings up to date when kept), as a whole run's does: a scoped run whose plan passed
        over names deleted since the last whole read (``runner._names_outdated``)."""
        self._scoped = False
        self._windowed = False
        self._namespace = None

    @property
    def partial_namespace(self) -> bool:
        """Whether the last names() came from the snapshot and the recent CSNs (a scoped
        run), which an entry hiding its entryCSN is missing from (see ``holders``)."""
        return self._windowed

    def forget_snapshot(self) -> None:
        """Remove the kept snapshot, so the next run reads the directory whole (nothing when
        this run only reads it)."""
        if self._delta is not None:
            self._delta.drop()

    @property
    def unreadable_csns(self) -> int:
        """Entries the last whole read found without an ``entryCSN`` the service DN may read:
        the delta read is off while there are any (each run reads everything)."""
        return self._delta.blind if self._delta is not None else 0

    def fingerprint(self) -> str | None:
        """A digest of every entry a whole run reads, as of now (one slim read of DNs and
        entryCSNs, the snapshot's delta): equal to an earlier run's only when nothing in the
        directory changed since (connectors/quiet.py). None without a snapshot (a profile
        that cannot tell, or a scoped run, which never reads the whole base)."""
        if self._delta is None or self._scoped:
            return None
        self._synced()
        return self._delta.fingerprint or None

    @property
    def last_read(self) -> str:
        """How the last snapshot read went (``delta: …`` or ``full: <why>``), "" without."""
        return self._delta.how if self._delta is not None else ""

    def _read_whole(self, named: tuple[str, ...]) -> tuple[list[Name], list[Account]]:
        """A whole run's namespace and accounts in one pass over the snapshot: each row is
        decoded once, and an account's namespace entry shares its strings (at 100,000
        entries, decoding twice and holding two copies of every name cost ~1 s and ~50 MB;
        issue 14). The accounts are kept for the read(Scope()) that follows."""
        namespace: list[Name] = []
        accounts: list[Account] = []
        for dn, a in self._synced():
            if _is_account(a):
                acc = self._account(dn, a)
                accounts.append(acc)
                if any(a.get(n) for n in named):
                    namespace.append(_name_of(acc))
            elif any(a.get(n) for n in named):
                namespace.append(self._name(dn, a))
        return namespace, accounts

    def _synced(self) -> Rows:
        """The snapshot brought up to date once, for the reads that follow (names(), then the
        whole read) until this object next uses its connection. Its rows are decoded as they
        are iterated, never all held at once (the memory of a 100k read, issue 14)."""
        if self._entries is None:
            assert self._delta is not None
            self._entries = self._delta.sync()
        return self._entries

    def _search(self, flt: str, attributes: list[str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """One paged subtree search of the base; a page cut short raises ReadIncomplete."""
        count = 0
        cookie: bytes | None = None
        pages = 0
        while True:
            try:
                self.conn.search(
                    self.base,
                    flt,
                    search_scope=SUBTREE,
                    attributes=attributes,
                    paged_size=self.config.page_size,
                    paged_cookie=cookie,
                )
            except LDAPException as exc:
                self._conn = None
                raise ReadIncomplete(f"reading {self.base}: {exc}", transient=True) from exc
            result = self.conn.result
            pages += 1
            if result.get("result") != 0:
                raise ReadIncomplete(
                    f"reading {self.base} stopped after {count} entries, page {pages}: "
                    f"{result.get('description')} ({result.get('result')}); nothing was changed",
                    transient=result.get("result") in TRANSIENT,
                )
            control = (result.get("controls") or {}).get(PAGED_RESULTS)
            if control is None:
                raise ReadIncomplete(
                    f"reading {self.base}: the server ignored the paging control after "
                    f"{count} entries (a size limit?); nothing was changed"
                )
            for item in self.conn.response or []:
                if item.get("type") == "searchResEntry":
                    count += 1
                    yield item["dn"], item["attributes"]
            cookie = control["value"]["cookie"]
            if not cookie:
                return

    def _csns(self, flt: str) -> Iterator[tuple[str, str]]:
        """Every entry's DN and ``entryCSN`` under the base matching ``flt`` (the delta read's
        slim search), as ``_search`` reads them and with its checks, but its answers decoded
        by :class:`connectors.directory.ber.Searched` on the connection's socket: ldap3's
        decoding and response dicts were ~15 µs an entry, all of a run where nothing changed
        but the start (issue 14). The requests are encoded by ``ber.search_request`` (the
        bytes ldap3 sends, ~15x faster for a batch of 500 terms), by ldap3 for a filter it
        does not take. A page read in part leaves the connection unusable: it is closed, never
        reused."""
        count = pages = 0
        cookie = b""
        while True:
            conn = self.conn
            msgid: int = conn.server.next_message_id()
            size = self.config.page_size
            try:
                request = search_request(msgid, self.base, flt, [CSN], size, cookie)
            except FilterSyntax:  # an extensible match, say: ldap3 encodes it
                request = _paged_search(msgid, self.base, flt, [CSN], size, cookie)
            searched, whole = Searched(msgid), False
            try:
                conn.socket.sendall(request)
                done = None
                while done is None:
                    data = conn.socket.recv(1 << 17)
                    if not data:
                        raise OSError("the connection was closed during the read")
                    entries, done = searched.feed(data)
                    for dn, attrs in entries:
                        count += 1
                        values = next((v for k, v in attrs.items() if k.lower() == "entrycsn"), [])
                        yield dn, values[0].decode("utf-8", "replace") if values else ""
                whole = True
                if searched.references:  # entries on another server: outside syncd's view
                    log.warning(
                        "referrals under the base are not followed: their entries are not "
                        "in syncd's namespace",
                        base=self.base,
                        references=searched.references,
                    )
            except (OSError, ProtocolError, LDAPException) as exc:
                raise ReadIncomplete(f"reading {self.base}: {exc}", transient=True) from exc
            finally:
                if not whole:  # answers left unread on the wire: the connection is spent
                    self._drop_conn()
            pages += 1
            answer = done.answer
            if answer.code != 0:
                raise ReadIncomplete(
                    f"reading {self.base} stopped after {count} entries, page {pages}: "
                    f"{RESULT_CODES.get(answer.code, 'unknown')} ({answer.code}); nothing was "
                    "changed",
                    transient=answer.code in TRANSIENT,
                )
            if PAGED_RESULTS not in done.controls:
                raise ReadIncomplete(
                    f"reading {self.base}: the server ignored the paging control after "
                    f"{count} entries (a size limit?); nothing was changed"
                )
            try:
                cookie = paged_cookie(done.controls[PAGED_RESULTS] or b"")
            except ProtocolError as exc:
                self._drop_conn()
                raise ReadIncomplete(f"reading {self.base}: {exc}", transient=True) from exc
            if not cookie:
                return

    def _drop_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(LDAPException, OSError):
                conn.unbind()

    def _get(self, a: Mapping[str, Any], name: str) -> str | None:
        """The first value of the first of the field's attributes that has one."""
        for attribute in self.FIELD_ATTRIBUTES[name]:
            value = _first(a, attribute)
            if value is not None:
                return value
        return None

    def _all(self, a: Mapping[str, Any], name: str) -> tuple[str, ...]:
        return tuple(str(v) for attr in self.FIELD_ATTRIBUTES[name] for v in a.get(attr) or [])

    def _org(self, dn: str, a: Mapping[str, Any]) -> str | None:
        return self._get(a, "org")

    def _name(self, dn: str, a: Mapping[str, Any]) -> Name:
        return Name(**self._names_of_entry(dn, a))

    def _names_of_entry(self, dn: str, a: Mapping[str, Any]) -> dict[str, Any]:
        """The namespace's fields of an entry (``_name``; ``_account`` adds the others)."""
        return {
            "dn": dn,
            "uid": _lower(self._get(a, "uid") or ""),
            "cn": self._get(a, "cn") or "",
            "mail": self._all(a, "mail"),
            "employee_number": self._get(a, "employee_number"),
            "managed": (self._get(a, "managed") or "TRUE").upper() != "FALSE",
            "kind": _kind(self._get(a, "kind")),
            "aliases": self._all(a, "aliases"),
        }

    def _account(self, dn: str, a: Mapping[str, Any]) -> Account:
        classes = {c.lower() for c in self._all(a, "has_syncd_class")}
        state = (self._get(a, "state") or "active").lower()
        created = _since(self._get(a, "created"))
        must_change = (self._get(a, "must_change_password") or "").upper() == "TRUE"
        # A one-time password given in the add (create's one round trip) gets no
        # pwdChangedTime unless the policy ages passwords: pwdReset without it is that
        # password, issued when the entry was made.
        issued_at_creation = created if must_change else None
        recorded, edited = self._recorded_state(a, state)
        # one Account made, not a namespace one then a replace(): a frozen dataclass of 29
        # fields costs several microseconds to make, 100,000 times a whole read (issue 14)
        return Account(
            **self._names_of_entry(dn, a),
            # values shared by many accounts are held once (100,000 copies of a few titles;
            # a hundred surnames and a few thousand given names: ~10 MB at 100k)
            sn=_shared(self._get(a, "sn")) or "",
            given_name=_shared(self._get(a, "given_name")) or "",
            org=_shared(self._org(dn, a)),
            office=_shared(self._get(a, "office")),
            title=_shared(self._get(a, "title")),
            state=recorded,
            state_since=_since(self._get(a, "state_since")),
            active_since=_since(self._get(a, "active_since")),
            state_reason=(
                _shared(self._get(a, "state_reason"))
                if self.every_reason or recorded is not State.ACTIVE
                else None
            ),
            has_syncd_class="syncdaccount" in classes,
            # the newest of pwdLastSuccess and authTimestamp
            last_login=max((t for t in map(_since, self._all(a, "last_login")) if t), default=None),
            password_changed=_since(self._get(a, "password_changed")) or issued_at_creation,
            created=created,
            must_change_password=must_change,
            drift=(*edited, *self.wire_drift(a, recorded)),
            receives_mail=self.receives(a),
            # None where the profile maps no attribute: not kept, nothing to check
            forwarding=self._all(a, "forwarding") if self.FIELD_ATTRIBUTES["forwarding"] else None,
        )

    def _recorded_state(self, a: Mapping[str, Any], value: str) -> tuple[State, tuple[str, ...]]:
        """The state syncd recorded, and what says ``syncdState`` itself was edited by hand.

        syncd makes an entry active only together with ``syncdActiveSince`` = ``syncdStateSince``
        (create, link, restore: ``set_state``), and a lock or revoke changes the latter only.
        So an active ``syncdState`` whose date differs from ``syncdActiveSince`` was written by
        someone else over a lock or revoke, whose date and reason are still there: it is read
        as locked (the milder of the two; the clocks count on from the kept date and revoke it
        when due), with the drift saying so, and the next run puts the lock back. Kept in the
        entry, not beside syncd (local state, the audit trail), so that every reader of the
        directory (``syncd show``, ``doctor``, a plan on another host) sees the same; editing
        three attributes consistently by hand is a deliberate act this does not try to catch.

        A security lock (its reason ``manual lock: …``, lifted only by ``syncd restore``) set
        active by hand with one of the two dates deleted instead is caught too (found by an
        attack: the compromised mailbox opened again, and no run, ``doctor`` or ``forecast``
        said so). No syncd writes an active state without both dates, and a restore writes
        its own reason.
        """
        state = State(value) if value in State._value2member_map_ else State.ACTIVE
        since = _since(self._get(a, "state_since"))
        active = _since(self._get(a, "active_since"))
        if state is not State.ACTIVE:
            return state, ()
        reason = self._get(a, "state_reason") or ""
        if since and active and since != active:
            return State.LOCKED, (
                f"syncdState set to active outside syncd over the state of {since:%Y-%m-%d} "
                f"({reason[:120]})",
            )
        if (not since or not active) and MANUAL_LOCK in reason:
            when = f" of {(since or active):%Y-%m-%d}" if since or active else ""
            return State.LOCKED, (
                f"syncdState set to active outside syncd over the security lock{when}, "
                f"{'syncdStateSince' if not since else 'syncdActiveSince'} deleted "
                f"({reason[:120]})",
            )
        return state, ()

    def wire_drift(self, a: Mapping[str, Any], state: State) -> tuple[str, ...]:
        """What in the entry no longer enforces ``state``: here the ppolicy lock that a lock
        and a revoke set. A profile with its own login switch adds it."""
        if state in (State.LOCKED, State.REVOKED) and not a.get("pwdAccountLockedTime"):
            return ("pwdAccountLockedTime removed: the password opens the mailbox again",)
        if state is State.ACTIVE and (lock := _first(a, "pwdAccountLockedTime")) is not None:
            # stricter than recorded: set by hand, or ppolicy's own lockout after failed binds
            # (pwdMaxFailure). Named, never undone: the one who locked may know why (drift.py)
            return (f"pwdAccountLockedTime {lock} on an active account: every bind is refused",)
        return ()

    def receives(self, a: Mapping[str, Any]) -> bool | None:
        """Whether the mail server's delivery lookup (``delivery_filter``) finds the entry;
        None (not judged) for a ``directory.delivery_attribute`` other than the one read."""
        if self.config.delivery_attribute not in self.FIELD_ATTRIBUTES["receives_mail"]:
            return None
        return (self._get(a, "receives_mail") or "TRUE").upper() != "FALSE"

    # -- writing ------------------------------------------------------------------------------

    def place_of(self, org: str | None) -> str:
        """The DN under which the accounts of ``org`` are created."""
        if self.per_org and org:
            return f"ou={escape_rdn(org)},{self.base}"
        return self.base

    def dn_for(self, uid: str, org: str | None) -> str:
        return f"uid={escape_rdn(uid)},{self.place_of(org)}"

    def _ensure_ou(self, org: str | None) -> None:
        if not self.per_org or not org or org in self._known_ous:
            return
        dn = f"ou={escape_rdn(org)},{self.base}"
        ok = self.conn.add(dn, ["organizationalUnit"], {"ou": org})
        if not ok and self.conn.result.get("result") != 68:  # 68: already exists
            self._check(False, f"creating {dn}")
        self._known_ous.add(org)

    def create(self, action: Action, password: str, *, since: datetime | None = None) -> str:
        """``since``: when the account enters its state (the plan's ``now``); default: now.

        One add with the final state (password, ``pwdReset``, active) where the server hashes
        a password given in an add (``_hashes_added_passwords``): one round trip instead of
        three (add, password-modify, modify), and no ``provisioning`` entry between them. Else
        the add, then the password-modify operation (the server's hash), then the flags.
        """
        dn, classes, attrs = self._new_entry_for(action, since)
        if self._hashes_added_passwords():
            attrs.update(syncdState=State.ACTIVE.value, userPassword=password, pwdReset="TRUE")
            self._add(dn, classes, attrs)
            return dn
        self._add(dn, classes, attrs)
        try:
            # Only with its password is it a mailbox: a crash before this leaves
            # "provisioning", which the next run finishes (new one-time password and slip).
            self.set_password(dn, password, activate=True)
        except DirectoryError:
            # Never leave a mailbox that nobody can open: undo the add, report the failure.
            self.conn.delete(dn)
            raise
        return dn

    def _add(self, dn: str, classes: list[str], attrs: Mapping[str, Any]) -> None:
        """One add; a connection lost with it sent is ``unanswered`` (it may have been applied:
        the applier reads the entry back rather than take a retry's "already exists" for a
        conflict)."""
        try:
            ok = self.conn.add(dn, classes, attrs)
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"creating {dn}: {exc}", transient=True, unanswered=True) from exc
        self._check(ok, f"creating {dn}")

    def _new_entry_for(
        self, action: Action, since: datetime | None
    ) -> tuple[str, list[str], dict[str, Any]]:
        """The DN, classes and attributes of the entry ``action`` creates (its organisation's
        place made first), in the ``provisioning`` state and without a password."""
        dn = self.dn_for(action.uid, action.org)
        self._ensure_ou(action.org)
        attrs: dict[str, Any] = {k: v for k, v in self.attributes_of(action.attrs).items() if v}
        attrs.update(self._markers(action, since), syncdState=State.PROVISIONING.value)
        classes, extra = self.new_entry(action)
        attrs.update(extra)
        return dn, ["inetOrgPerson", "syncdAccount", *classes], attrs

    def create_many(
        self,
        items: Sequence[tuple[Action, str]],
        *,
        since: datetime | None = None,
        meanwhile: Callable[[], bool] | None = None,
    ) -> list[str | Exception]:
        """Creates in flight together where a create is one add: up to ``PIPELINE`` adds sent
        on a second connection before an answer is awaited, so preparing the next adds
        overlaps slapd's work (and its sync) on the last. The requests are encoded and the
        answers decoded by :mod:`connectors.directory.ber` on that connection's socket (an
        ordinary bound ldap3 connection, kept from call to call while it lives: no bind and
        no receiver thread per batch); the adds freed by one read are sent in one write.
        Each add stands or fails alone, as one :meth:`create` would (an entry already there is
        refused for that action only), whatever order slapd's threads answer them in; the
        entries are independent (distinct DNs, their organisation's place made first). A
        connection lost mid-way fails the adds sent and not answered as transient and
        ``unanswered`` (slapd may have applied them: the applier reads each back) and the
        unsent ones as transient: the applier retries each one by one. ``meanwhile`` runs
        once the first ``PIPELINE`` adds are on the wire (slapd has ~10 ms of work queued; the
        applier's commit of its previous batch takes less), or after the last add sent when
        there are fewer. Else (three-step creates, AD) ``meanwhile``, then one :meth:`create`
        at a time."""
        if (
            len(items) < 2
            or type(self).create is not OpenLdapDirectory.create
            or not self._hashes_added_passwords()
        ):
            if meanwhile is not None and meanwhile():
                return [NotSent() for _ in items]
            return [self._create_one(action, password, since) for action, password in items]
        out: list[str | Exception | None] = [None] * len(items)
        flight: dict[int, tuple[int, str]] = {}  # message id → (item, DN): sent, unanswered
        waiting = [meanwhile] if meanwhile is not None else []

        def once() -> bool:
            """``meanwhile``, the first time only: whether to send no more."""
            return bool(waiting) and waiting.pop()()

        halted = False  # meanwhile asked to send no more: the rest are NotSent
        try:
            pipe = self._pipeline()
            answers = Answers()
            unsent: list[bytes] = []
            for n, (action, password) in enumerate(items):
                if halted:
                    out[n] = NotSent()
                    continue
                try:
                    dn, classes, attrs = self._new_entry_for(action, since)
                except DirectoryError as exc:  # its organisation's place could not be made
                    out[n] = exc
                    continue
                except LDAPException as exc:  # the main connection, not the pipeline's
                    self._conn = None
                    out[n] = DirectoryError(f"creating in {action.org}: {exc}", transient=True)
                    continue
                attrs.update(syncdState=State.ACTIVE.value, userPassword=password, pwdReset="TRUE")
                attrs["objectClass"] = classes
                msgid: int = pipe.server.next_message_id()
                unsent.append(add_request(msgid, dn, attrs))
                flight[msgid] = (n, dn)  # from here on it may be on the wire
                # the first adds of a call go at once (slapd starts while the rest are
                # made); then as many as one read freed, in one write
                if len(flight) >= PIPELINE or len(flight) <= RAMP:
                    pipe.socket.sendall(b"".join(unsent))
                    unsent.clear()
                if len(flight) >= PIPELINE:
                    # while slapd works on the adds sent (every add built so far is)
                    halted = halted or once()
                    self._await(pipe, answers, flight, out, upto=PIPELINE - 1)
            if unsent:
                pipe.socket.sendall(b"".join(unsent))
            once()  # every add is sent: nothing left to hold back
            self._await(pipe, answers, flight, out, upto=0)
        except (LDAPException, OSError, ProtocolError) as exc:
            # the adds sent (the last write perhaps in part) have no answer: slapd may have
            # applied them (the applier reads each back); the others never left
            self._close_pipe()
            why = f"creating: the connection was lost ({exc})"
            in_flight = DirectoryError(f"{why}, the add sent", transient=True, unanswered=True)
            for n, _ in flight.values():
                out[n] = in_flight
            unsent_error = DirectoryError(why, transient=True)
            out = [unsent_error if o is None else o for o in out]
        except DirectoryError as exc:  # the pipeline's connection could not be opened
            out = [exc if o is None else o for o in out]
        once()  # the connection lost, or not opened, before the first wait
        assert all(o is not None for o in out), "every item has its outcome"
        return [o for o in out if o is not None]

    def _pipeline(self) -> Connection:
        """The bound connection the pipelined adds go on: the last call's while it lives (an
        idle connection the server closed, or told it closes, is opened again here, before
        any add is sent on it); its socket waits ``directory.timeout`` at most for an answer."""
        pipe = self._pipe
        if pipe is not None:
            sock = pipe.socket
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending()
            if pipe.closed or sock is None or pending or readable(sock, 0):
                self._close_pipe()  # EOF, or a notice of disconnection: nothing else comes
                pipe = None
        if pipe is None:
            pipe = self._connect(SYNC)
            pipe.socket.settimeout(self.config.timeout)
            # every write is a whole set of adds: send it at once, never held back by Nagle's
            # algorithm until slapd acknowledges the last one (which its answer carries, an
            # add later)
            pipe.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pipe = pipe
        return pipe

    def _close_pipe(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(LDAPException, OSError):  # already gone
                pipe.unbind()

    def _await(
        self,
        pipe: Connection,
        answers: Answers,
        flight: dict[int, tuple[int, str]],
        out: list[str | Exception | None],
        upto: int,
    ) -> None:
        """Read answers until at most ``upto`` adds are in flight, each one its add's outcome
        in whatever order they come. OSError when the connection ends first (EOF, a notice of
        disconnection, no answer within ``directory.timeout``)."""
        while len(flight) > upto:
            data = pipe.socket.recv(65536)
            if not data:
                raise OSError("the connection was closed with adds in flight")
            for answer in answers.feed(data):
                if answer.message_id == 0:  # unsolicited: the server is closing it
                    raise OSError(f"the server ended the connection: {answer.message}")
                got = flight.pop(answer.message_id, None)
                if got is None:
                    raise ProtocolError(f"an answer to message {answer.message_id}, never sent")
                n, dn = got
                if answer.code == 0 and answer.operation == ADD_RESPONSE:
                    out[n] = dn
                    continue
                refs = f" (referred to {', '.join(answer.referrals)})" if answer.referrals else ""
                detail = f"{RESULT_CODES.get(answer.code, 'unknown')} ({answer.code}) "
                hint = ALREADY_THERE if answer.code == 68 else ""
                out[n] = DirectoryError(
                    f"creating {dn}: {detail}{answer.message}{refs}".strip() + hint,
                    transient=answer.code in TRANSIENT,
                )

    def _markers(self, action: Action, since: datetime | None) -> dict[str, str]:
        """What syncd writes in every entry it creates, beside the person's fields: the kind,
        the state's date (the plan's ``now``) and reason (``find_created`` reads them back)."""
        now = _stamp(since)
        return {
            "syncdKind": "organisation" if action.kind.value == "create-org-mailbox" else "person",
            "syncdStateSince": now,
            "syncdActiveSince": now,
            "syncdStateReason": f"{action.reason} [{action.article}]"[:1000],
        }

    def find_created(
        self, action: Action, password: str, *, since: datetime | None = None
    ) -> tuple[Found, str]:
        """What holds the DN of a create whose answer was lost (docs/architecture.md, "Creates
        whose answer was lost").

        This action's entry is told by what no other writer puts there together: the
        employee number, syncd's markers with this plan's ``since`` to the second and this
        action's reason, and ``creatorsName`` the service DN (slapd writes it; nobody can set
        it). ``createTimestamp`` is not used: it is the server's clock, and ``since`` may be
        an operator's ``--now``. Then the password: slapd hashed the value the add carried,
        and every attempt of one action carries the same one, so the stored hash checked
        against it (``hashes.matches``, no bind: a bind is a login) says whether the slip may
        be written with it. A hash that cannot be checked (another scheme, a site whose rules
        hide it from the service DN) is OURS_PASSWORD_UNKNOWN: the caller owes a new one.
        A profile with a create of its own (AD) is judged by the employee number alone, and
        never OURS.
        """
        dn = self._where(self.dn_for(action.uid, action.org))
        wanted = {k.lower(): v for k, v in self._markers(action, since).items()}
        employee = next(iter(self.attributes_of(action.attrs).get("employeeNumber") or []), None)
        entry = self._read_back(dn, [*wanted, "employeeNumber", "creatorsName", "userPassword"])
        if entry is None:
            return Found.ABSENT, dn

        def first(name: str) -> str:
            values = entry.get(name.lower()) or [b""]
            return values[0].decode("utf-8", "replace")

        # an organisation's mailbox has no employee number: then the entry must have none
        same_person = first("employeeNumber").lower() == (employee or "").lower()
        if type(self).create is not OpenLdapDirectory.create:
            keyed = same_person and employee is not None
            return (Found.OURS_PASSWORD_UNKNOWN if keyed else Found.OTHER), dn
        ours = (
            same_person
            and all(first(k) == v for k, v in wanted.items())
            and _dn_key(first("creatorsName")) == _dn_key(self.config.bind_dn)
        )
        if not ours:
            return Found.OTHER, dn
        checked = {hashes.matches(v, password) for v in entry.get("userpassword", [])}
        if checked == {True}:
            return Found.OURS, dn
        if checked == {False}:  # the same markers and another password: not this action's
            return Found.OTHER, dn
        return Found.OURS_PASSWORD_UNKNOWN, dn

    def _read_back(self, dn: str, names: list[str]) -> dict[str, list[bytes]] | None:
        """The entry's raw values (names lower case), None if there is none; a connection
        found dropped is opened again once."""
        for attempt in (0, 1):
            try:
                ok = self.conn.search(dn, "(objectClass=*)", BASE, attributes=names)
            except LDAPException as exc:
                self._conn = None
                if attempt:
                    raise DirectoryError(f"reading back {dn}: {exc}", transient=True) from exc
                continue
            if not ok:
                if self.conn.result.get("result") == 32:  # noSuchObject
                    return None
                self._check(False, f"reading back {dn}")
            found = [r for r in self.conn.response or [] if r.get("type") == "searchResEntry"]
            if not found:
                return None
            return {k.lower(): list(v) for k, v in found[0]["raw_attributes"].items()}
        return None  # not reached: the second attempt returns or raises

    def _create_one(self, action: Action, password: str, since: datetime | None) -> str | Exception:
        try:
            return self.create(action, password, since=since)
        except Exception as exc:  # each create's own outcome, as the applier isolates them
            return exc

    def _hashes_added_passwords(self) -> bool:
        """Whether a password given in an add is stored hashed (ppolicy's
        ``olcPPolicyHashCleartext: TRUE``), found once per connection object by a probe entry
        with a random throwaway password: a real one-time password must never be stored in
        clear, not even for the moment a check would take.

        False, and the three-step create, for a profile that adds to ``set_password`` (Zimbra's
        must-change flag): its one add would not hold what its password step writes.
        """
        if self._one_add is None:
            self._one_add = (
                type(self).set_password is OpenLdapDirectory.set_password and self._probe_hash()
            )
            log.info("create path", one_add=self._one_add)
        return self._one_add

    def _probe_hash(self) -> bool:
        dn = f"cn=syncd-hash-probe-{secrets.token_hex(6)},{self.base}"
        junk = secrets.token_urlsafe(24)
        try:
            if not self.conn.add(dn, ["device", "simpleSecurityObject"], {"userPassword": junk}):
                return False
            try:
                ok = self.conn.search(dn, "(objectClass=*)", BASE, attributes=["userPassword"])
                values = (self.conn.response or [{}])[0].get("raw_attributes", {}) if ok else {}
                stored = (values.get("userPassword") or [b""])[0]
                return stored.startswith(b"{") and junk.encode() not in stored
            finally:
                self.conn.delete(dn)
        except LDAPException:
            self._conn = None
            return False

    def update(
        self,
        dn: str,
        attrs: Mapping[Field, tuple[str, ...]],
        *,
        link: bool = False,
        since: datetime | None = None,
    ) -> str:
        """``link`` makes the entry syncd's, active ``since`` (the plan's ``now``; default now)."""
        dn = self._where(dn)
        changes: dict[str, list[tuple[str, list[str]]]] = {
            k: [(MODIFY_REPLACE, v)] for k, v in self.attributes_of(attrs).items()
        }
        if link:
            now = _stamp(since)
            self._add_class(dn)
            changes.update(
                syncdKind=[(MODIFY_REPLACE, ["person"])],
                syncdState=[(MODIFY_REPLACE, [State.ACTIVE.value])],
                syncdStateSince=[(MODIFY_REPLACE, [now])],
                syncdActiveSince=[(MODIFY_REPLACE, [now])],
            )
            changes.update(self.delivery_changes(dn, True))
        if changes:
            self._modify(dn, changes, f"updating {dn}")
        return dn

    def move(self, dn: str, new_uid: str, attrs: Mapping[Field, tuple[str, ...]]) -> str:
        dn = self._where(dn)
        org = (attrs.get(Field.ORG) or (None,))[0]
        new_dn = self.dn_for(new_uid, org)
        self._rename(dn, new_dn, org)
        self.update(new_dn, attrs)
        return new_dn

    def _rename(self, dn: str, new_dn: str, org: str | None) -> None:
        """modrdn ``dn`` to ``new_dn`` (a new superior when the parent differs)."""
        if new_dn.lower() == dn.lower():
            return
        self._ensure_ou(org)
        rdn, parent = split_rdn(new_dn)
        old_parent = split_rdn(dn)[1]
        self._call(
            f"renaming {dn} to {new_dn}",
            self.conn.modify_dn,
            dn,
            rdn,
            delete_old_dn=True,
            new_superior=parent if parent.lower() != old_parent.lower() else None,
        )

    def set_password(self, dn: str, password: str, *, activate: bool = False) -> None:
        dn = self._where(dn)
        self._call(
            f"setting the one-time password of {dn}",
            self.conn.extend.standard.modify_password,
            dn,
            None,
            password,
        )
        changes = {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]}
        if activate:
            changes["syncdState"] = [(MODIFY_REPLACE, [State.ACTIVE.value])]
        self._call(f"flagging {dn} to change its password", self.conn.modify, dn, changes)

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        dn = self._where(dn)
        stamp = since.astimezone(UTC).strftime(GENERALIZED)
        # slapd only enforces a lock time that has passed: never write one in the future
        locked_at = min(since, datetime.now(UTC)).astimezone(UTC).strftime(GENERALIZED)
        blocked = state is not State.ACTIVE
        changes = {
            "syncdState": [(MODIFY_REPLACE, [state.value])],
            "syncdStateSince": [(MODIFY_REPLACE, [stamp])],
            "syncdStateReason": [(MODIFY_REPLACE, [reason[:1000]])],
            **self.state_changes(dn, state, delivery),
            # a real timestamp: with pwdLockout TRUE and no duration the lock holds and the
            # date is kept (the special value 000001010000Z would lose it)
            "pwdAccountLockedTime": [(MODIFY_REPLACE, [locked_at] if blocked else [])],
        }
        if state is State.ACTIVE:
            changes["syncdActiveSince"] = [(MODIFY_REPLACE, [stamp])]
        self._modify(dn, changes, f"setting {dn} {state.value}")

    # -- what a profile's entries look like (hooks a profile overrides) -----------------------

    def attributes_of(self, values: Mapping[Field, tuple[str, ...]]) -> dict[str, list[str]]:
        """The core's field values as this profile's attributes; a profile that spreads one
        field over several attributes (iRedMail: the primary address in ``mail``, the others
        in ``shadowAddress``) overrides it."""
        return _to_attributes(self.WRITES, values)

    def new_entry(self, action: Action) -> tuple[list[str], dict[str, Any]]:
        """The extra object classes and attributes of the entry ``action`` creates: here what
        makes it receive mail; a mail server's profile adds its own (quota, services)."""
        return self.delivering()

    def state_changes(
        self, dn: str, state: State, delivery: bool
    ) -> dict[str, list[tuple[str, list[str]]]]:
        """The profile's own modifications for a state change (beside syncd's attributes and
        ``pwdAccountLockedTime``): here only delivery on or off."""
        return self.delivery_changes(dn, delivery)

    # -- delivery: what "the mail server delivers to this mailbox" is on the wire -------------

    def delivering(self) -> tuple[list[str], dict[str, Any]]:
        """The extra object classes and the attributes of a new entry that receives mail."""
        return [], {self.config.delivery_attribute: "TRUE"}

    def delivery_changes(self, dn: str, delivery: bool) -> dict[str, list[tuple[str, list[str]]]]:
        """The modifications that turn delivery on or off for the entry ``dn``."""
        return {
            self.config.delivery_attribute: [(MODIFY_REPLACE, ["TRUE" if delivery else "FALSE"])]
        }

    def delivery_filter(self, address: str) -> str:
        """The mail server's delivery lookup for ``address`` with this profile (the
        ``query_filter`` of docs/mail-server.md): it finds the entry only while it receives."""
        return (
            f"(&(objectClass=inetOrgPerson)(mail={escape_filter_chars(address)})"
            f"(!({self.config.delivery_attribute}=FALSE)))"
        )

    def export(self, dn: str) -> str:
        """The entry as RFC 2849 LDIF (ldap3's writer): user and operational attributes."""
        dn = self._where(dn)
        try:
            ok = self.conn.search(
                dn,
                "(objectClass=*)",
                search_scope=BASE,
                attributes=[ALL_ATTRIBUTES, ALL_OPERATIONAL_ATTRIBUTES],
            )
        except LDAPException as exc:
            self._conn = None
            raise DirectoryError(f"exporting {dn}: {exc}", transient=True) from exc
        self._check(ok, f"exporting {dn}")
        entries = [e for e in self.conn.response or [] if e.get("type") == "searchResEntry"]
        if len(entries) != 1:
            raise DirectoryError(f"exporting {dn}: {len(entries)} entries returned")
        # raw values (bytes), objectClass first; base64 and line folding as RFC 2849 says
        lines = operation_to_ldif("searchResponse", entries)
        # its trailing blank line and "# total number of entries" comment are not the record's
        record = add_ldif_header([line for line in lines if line and not line.startswith("#")])
        return "\n".join(record) + "\n"

    def delete(self, dn: str) -> None:
        dn = self._where(dn)
        self._call(f"deleting {dn}", self.conn.delete, dn)


if TYPE_CHECKING:  # what the registry promises of a profile, checked by mypy
    from connectors.directory import Factory

    _: Factory = OpenLdapDirectory
