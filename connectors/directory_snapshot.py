"""A local snapshot of the directory's entries, so that a run reads only what changed.

Why: a run needs every account and every name of the base, but between two runs a province's
directory barely changes; reading (and decoding, in ldap3) 100,000 entries each time is most of
a run's cost (issue 14). The anchors do the same: Entra Connect reads deltas by uSNChanged,
midPoint by changelog/syncrepl.

How (OpenLDAP): the snapshot keeps, for every entry the run reads (the namespace: any entry
with a uid or a mail, and every account), the attributes the profile reads plus its
``entryCSN`` (slapd's change sequence number: a new one on every add, modify and rename and,
with lastbind/ppolicy, on every login). A run then reads:

- every entry's DN and ``entryCSN`` only (a slim read, about a ninth of a full one in ldap3);
  an entry of the snapshot that is not there any more was deleted (or renamed);
- in full, only the entries whose ``entryCSN`` differs from the snapshot's, or that it never
  had, by exact ``(entryCSN=…)`` terms in batches (``olcDbIndex: entryCSN eq``).

Each entry's CSN is compared with its own copy's, never with a high-water mark, so a writer
whose clock is behind (a replica stamping its change before the newest CSN seen) cannot hide a
change: no overlap window is needed. When the delta cannot be trusted it reads everything and
rewrites the snapshot:

- no snapshot, an unreadable one, one of an older format, or one of another base or attribute
  list (lost state);
- the last full read is older than ``FULL_EVERY`` (the nightly run reads everything, and
  repairs any drift the delta could not see), or newer than this host's clock;
- an entry's ``entryCSN`` is older than its copy's: a directory restored from a backup;
- more than a quarter of the entries changed (one full read is cheaper), or an entry changed
  again between the two searches.

A scoped run (one organisation's file) needs the whole namespace but reads its own accounts
with indexed searches: its namespace is the snapshot plus the entries whose ``entryCSN`` is at
least the newest one known less ``OVERLAP`` (``names_since``), one indexed search, so its cost
follows its file, not the directory. A name deleted since stays reserved until the next whole
read (safe); a writer whose clock is more than ``OVERLAP`` behind is seen by the next whole read.

The form on disk (format 3, ``directory-snapshot.sqlite``, 0600): a SQLite file, one row per
entry (its DN, its CSN, the namespace's attributes, the others), each group of values one
string (``_encode``). Why not the JSON document of format 2: held as dicts of lists of every
entry, it cost 650-990 MiB at 100,000 entries, and it was rewritten whole by every run. Now the
rows are decoded one at a time while the profile turns them into accounts (``Rows``), so
nothing holds the whole directory as attributes; a delta writes only what changed, in one
transaction; a scoped run decodes only the namespace's column. A format-2 file left by an older
syncd is ignored (one full read) and removed by the next snapshot written.

The file is the state directory's; losing it costs one full read. A plan (a dry run) opens it
read-only and never writes it: ``syncd plan`` changes nothing on disk (what it read since is
laid over the file's rows in memory; a plan without a usable snapshot reads into a database in
memory).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from connectors.store import private_dir
from syncd.ports import DirectoryError

log = structlog.get_logger("syncd.directory")

FORMAT = 3
SNAPSHOT_FILE = "directory-snapshot.sqlite"
# format 2 (JSON dicts of every entry): never read, removed when a new snapshot is written
OLD_FILES = ("directory-snapshot.json",)
FULL_EVERY = timedelta(hours=20)  # the daemon's nightly run finds the last full read older
BATCH = 500  # exact entryCSN terms per search
# a scoped run's window in which more than this share changed is read again in one search of
# its names rather than by exact entryCSN terms (DeltaReader._names_since)
MOSTLY_CHANGED = 0.2
# a scoped run's namespace re-reads what changed this long before the newest CSN it knows
OVERLAP = timedelta(minutes=5)
CSN = "entryCSN"
BUSY_MS = 60_000  # a plan reading while a run commits its delta waits that long at most

Attrs = dict[str, list[str]]
Entries = dict[str, tuple[str, Attrs]]  # DN (lower case) → (DN, attributes)
Search = Callable[[str, list[str]], Iterator[tuple[str, Mapping[str, Any]]]]
# the slim search: every matching entry's DN and entryCSN ("" when it has none)
Csns = Callable[[str], Iterator[tuple[str, str]]]

# One group of attribute values as one string: the attributes in their fixed order separated
# by RS, the values of one by US; "" for an absent attribute. A value that holds a separator,
# JSON's marker or is empty (which the form could not tell from absent) makes the whole group
# JSON after the marker GS instead: always right, the short form only when it is.
_RS, _US, _GS = "\x1e", "\x1f", "\x1d"


def _encode(attrs: Mapping[str, Any], names: Sequence[str]) -> str:
    """``attrs``' values of the attributes ``names`` as one string (``_decode`` reverses it)."""
    groups: list[list[str] | None] = []
    parts: list[str] = []
    values = 0
    for name in names:
        found = attrs.get(name)
        vals = [str(v) for v in found] if found else None
        groups.append(vals)
        if vals:
            values += len(vals) - 1
            parts.append(_US.join(vals))
            if "" in vals:
                values = -1
        else:
            parts.append("")
    text = _RS.join(parts)
    # a separator inside a value shows as one more than the form put there
    if (
        values < 0
        or text.count(_US) != values
        or text.count(_RS) != max(len(names) - 1, 0)
        or _GS in text
    ):
        return _GS + json.dumps(groups, ensure_ascii=False, separators=(",", ":"))
    return text


def _decode(text: str, names: Sequence[str]) -> Attrs:
    """The attributes ``_encode`` wrote, absent ones left out."""
    if text.startswith(_GS):
        groups = json.loads(text[1:])
        return {n: list(v) for n, v in zip(names, groups, strict=True) if v}
    return {n: p.split(_US) for n, p in zip(names, text.split(_RS), strict=True) if p}


class SnapshotDamaged(DirectoryError):
    """A page of the snapshot found damaged while its rows were decoded, after the checks of
    the read had gone well: the file is removed (the next read is whole; a plan removes
    nothing, and the next run that may apply finds the damage in its own read); a scoped run
    that finds it while decoding its namespace reads whole at once
    (``OpenLdapDirectory.names``)."""

    def __init__(self, cause: str, *, removed: bool = True) -> None:
        then = "removed: the next run reads" if removed else "the next run that applies reads"
        super().__init__(
            f"the directory snapshot is damaged ({cause}); {then} the directory whole",
            transient=True,
        )
        self.cause = cause


def busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is another connection holding the file past the wait (SQLITE_BUSY,
    SQLITE_LOCKED), not a damaged file: both are ``sqlite3.OperationalError``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


class Drift(Exception):
    """The delta cannot be trusted; the message says why (a full read follows)."""


def csn_before(csn: str, delta: timedelta) -> str:
    """The CSN ``delta`` earlier than ``csn`` (``20261126074830.891510Z#000000#000#000000``),
    a lower bound for ``(entryCSN>=…)``; "" for what is not a CSN (slapd would match no entry
    with a bound that is not one)."""
    try:
        when = datetime.strptime(csn[:14], "%Y%m%d%H%M%S") - delta
    except ValueError:
        return ""
    return when.strftime("%Y%m%d%H%M%S") + ".000000Z#000000#000#000000"


def _csn_time(csn: str) -> float:
    """When ``csn`` was written (epoch seconds, UTC); 0 for what is not a CSN."""
    try:
        return datetime.strptime(csn[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _csn(attrs: Mapping[str, Any]) -> str:
    values = attrs.get(CSN) or []
    return str(values[0]) if values else ""


@dataclass
class Layout:
    """Which attributes a snapshot keeps, and which of them the namespace needs: a scoped
    run decodes only those (``names``), a whole read both groups."""

    attributes: list[str]  # what the profile reads, entryCSN included
    names: list[str]  # the namespace's part of it

    @property
    def rest(self) -> list[str]:
        return [a for a in self.attributes if a not in self.names and a != CSN]

    @property
    def named(self) -> list[str]:
        return [a for a in self.names if a != CSN]


# The rows by CSN: what a scoped run's window check asks for (``Snapshot.newest_entries``).
# Made by the whole read after its rows (one sort rather than 100,000 index updates), and by
# the next whole run that keeps the names cache in a file an older syncd wrote without it.
# Partial, so that SQLite never answers any other read from them: a covering index of the
# whole table was taken for ``count(*)`` and full scans, and one damaged page of it then
# failed every run and plan (found by an attack); these serve only the queries that name
# their conditions, each inside the window check's fallback to a whole read.
CSN_INDEX = "entries_csn"
BLANK_INDEX = "entries_blank"
_INDEXES = {
    CSN_INDEX: f"CREATE INDEX {CSN_INDEX} ON entries (csn) WHERE csn > ''",
    BLANK_INDEX: f"CREATE INDEX {BLANK_INDEX} ON entries (key) WHERE csn = ''",
}


def _indexed(db: sqlite3.Connection) -> bool:
    """Whether the file holds the CSN indexes exactly as this syncd makes them."""
    marks = ",".join("?" * len(_INDEXES))
    held = db.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN ({marks})",  # noqa: S608
        tuple(_INDEXES),
    ).fetchall()
    return dict(held) == _INDEXES


def _index(db: sqlite3.Connection) -> None:
    """The CSN indexes made (again, if one of another definition holds a name), in the
    caller's transaction."""
    if not _indexed(db):
        for name, sql in _INDEXES.items():
            db.execute(f"DROP INDEX IF EXISTS {name}")
            db.execute(sql)


_SCHEMA = (
    f"PRAGMA user_version = {FORMAT}",
    "CREATE TABLE meta (base TEXT NOT NULL, attributes TEXT NOT NULL, names TEXT NOT NULL,"
    " full_at REAL NOT NULL)",
    # key: the DN in lower case; names / rest: the two groups of values (``_encode``)
    "CREATE TABLE entries (key TEXT PRIMARY KEY, dn TEXT NOT NULL, csn TEXT NOT NULL,"
    " names TEXT NOT NULL, rest TEXT NOT NULL) WITHOUT ROWID",
)


@dataclass
class Snapshot:
    """An open snapshot database and what it is of."""

    db: sqlite3.Connection
    base: str
    layout: Layout
    full_at: float  # when the last full read was (epoch seconds, this host's clock)
    readonly: bool = False  # a plan's: never written, never removed

    def csns(self) -> dict[str, str]:
        """Every entry's CSN by its key (DN, lower case). From the table itself, never the
        CSN index that holds the same pairs: this read of every page is what finds a damaged
        page before a whole run counts on the rows (``DeltaReader.sync``)."""
        # in the key's order: SQLite then scans the table (NOT INDEXED still lets it take a
        # covering index of a WITHOUT ROWID table, SQLite 3.40)
        return dict(self.db.execute("SELECT key, csn FROM entries ORDER BY key"))

    def newest_entries(self, n: int = 3) -> tuple[str, list[tuple[str, str]]]:
        """The newest CSN the rows hold and the ``n`` entries with the newest CSNs (key,
        CSN); "" and none when there is no row, or when a row has no CSN (an entry whose
        entryCSN the service DN could not read: no window can be counted from the rest, so a
        scoped run reads the namespace whole).

        From the CSN index (``CSN_INDEX``) when the file has it: a few pages, where a scan
        of the table read every row (~90 MB at 100,000 entries: ~0.05 s of one organisation's
        run warm, far more when the file had left the page cache). A file without it (an
        older syncd's, until the next whole run adds it) is scanned once, a row without a
        CSN first. A damaged page the index does not cover is found by the reads that need
        it (``DeltaReader.names_since`` reads the window's rows, and every read after it
        falls back to the server on a damaged snapshot)."""
        if _indexed(self.db):
            if self.db.execute("SELECT 1 FROM entries WHERE csn = '' LIMIT 1").fetchone():
                return "", []
            sql = "SELECT key, csn FROM entries WHERE csn > '' ORDER BY csn DESC LIMIT ?"
            top = [(str(key), str(csn)) for key, csn in self.db.execute(sql, (n,)).fetchall()]
            # the index's answer against the table's own rows: an index that disagrees with
            # them (forged by hand, a page gone wrong) would move the window and hide entries
            # from it (found by an attack); the caller reads whole
            rows = dict(_rows_of(self.db, (k for k, _ in top), "csn"))
            if any(rows.get(k, ("",))[0] != csn for k, csn in top):
                raise sqlite3.DatabaseError("the CSN index disagrees with the rows it indexes")
        else:
            sql = "SELECT key, csn FROM entries ORDER BY csn = '' DESC, csn DESC LIMIT ?"
            top = [(str(key), str(csn)) for key, csn in self.db.execute(sql, (n,)).fetchall()]
        if top and not top[0][1]:
            return "", []
        return (top[0][1] if top else ""), top

    def rows(self, overlay: Entries | None = None, gone: Iterable[str] = ()) -> Rows:
        return Rows(self.db, self.layout, overlay or {}, frozenset(gone), not self.readonly)


def load(path: Path, base: str, layout: Layout, *, readonly: bool = False) -> Snapshot | None:
    """The snapshot at ``path`` if it is one of this format, base and layout, else None (a
    format-2 JSON file, another profile's attribute list, a file that is no SQLite database:
    the caller reads everything)."""
    if not path.exists():
        return None
    if path.is_symlink():
        # the snapshot is the state directory's own file: a link is never followed (the full
        # read's rename replaces the link itself, never its target)
        log.warning("directory snapshot is a symbolic link: a full read", path=str(path))
        return None
    if not readonly and path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a copy restored or chmod'ed by hand: private again
    try:
        if readonly:
            db = _connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        else:
            db = _connect(str(path))
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version != FORMAT:
            db.close()
            return None
        row = db.execute("SELECT base, attributes, names, full_at FROM meta").fetchone()
        if row is None or str(row[0]).lower() != base.lower():
            db.close()
            return None
        if json.loads(row[1]) != layout.attributes or json.loads(row[2]) != layout.names:
            db.close()
            return None  # another profile or version reads other attributes
        return Snapshot(db, base, layout, float(row[3]), readonly)
    except (sqlite3.Error, ValueError, TypeError) as exc:
        log.warning("directory snapshot unreadable: a full read", path=str(path), error=str(exc))
        return None


def _connect(where: str, *, uri: bool = False) -> sqlite3.Connection:
    """A connection usable from whichever thread runs the read (the daemon's runs are not on
    its main thread; one run's reads never overlap)."""
    db = sqlite3.connect(where, uri=uri, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    return db


def digest(pairs: Iterable[tuple[str, str]]) -> str:
    """The digest of (key, entryCSN) pairs in key order: what the directory held (the
    fingerprint of a read, connectors/quiet.py). The CSN is the server's own mark of a
    change, so equal digests mean the same entries, as they were."""
    return hashlib.sha256("\n".join(f"{k}\0{c}" for k, c in pairs).encode()).hexdigest()


def _rows_digest(db: sqlite3.Connection) -> str:
    return digest(db.execute("SELECT key, csn FROM entries ORDER BY key"))


def _generation(db: sqlite3.Connection) -> int:
    """How many times the rows were written since the names cache's tables were made: the
    triggers below count every insert, update and delete of ``entries``, by any writer of the
    file (syncd, an older syncd, a hand edit with sqlite3), in the writer's own transaction.
    sqlite3.Error when there is no count yet (no cache ever written in this file)."""
    row = db.execute("SELECT n FROM generation").fetchone()
    if row is None:
        raise sqlite3.OperationalError("no generation row")
    return int(row[0])


_TRIGGERS = ("entries_insert", "entries_update", "entries_delete")


def _cache_key(db: sqlite3.Connection, shape: str) -> str:
    """What a names cache is valid for: its shape (the profile's encoding, which another
    version of syncd may change) and the rows' generation when it was made. A count, not a
    digest of every row's key and CSN: the digest read 100,000 rows at every scoped run
    (~60 ms of a one-organisation run at 100k, issue 14)."""
    marks = ",".join("?" * len(_TRIGGERS))
    (held,) = db.execute(
        f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})",  # noqa: S608
        _TRIGGERS,
    ).fetchone()
    if held != len(_TRIGGERS):  # dropped by hand: the count may have missed writes since
        raise sqlite3.OperationalError("the names cache's triggers are missing")
    return f"{shape}:{_generation(db)}"


# A profile's namespace of the snapshot's rows, as they were when it was made (``rows``: the
# shape and the rows' generation): a scoped run takes it instead of decoding every row's
# names (issue 14). Tables of their own, made when first written: the snapshot's format is
# unchanged, and an older syncd that writes rows without rewriting the cache still moves the
# generation (the triggers are the file's), which the key shows.
_NAMES_CACHE = (
    "CREATE TABLE name_parts (rows TEXT NOT NULL, part INTEGER NOT NULL, blob BLOB NOT NULL)",
    # written last, in the same transaction: what the parts must add up to when read
    "CREATE TABLE name_count (rows TEXT NOT NULL, parts INTEGER NOT NULL, names INTEGER NOT NULL,"
    " terms INTEGER NOT NULL)",
    # what a scoped read asks for by uid, by what it is found for (``suffix``: "" for an entry
    # without an employee number, else an organisation whose addresses it carries): the
    # profile's own encoding, so a scoped run reads a few of them and decodes no Name at all
    # (``n``: the entries its blob holds; name_count.terms: how many rows; both checked)
    "CREATE TABLE name_terms (rows TEXT NOT NULL, suffix TEXT NOT NULL, n INTEGER NOT NULL,"
    " blob BLOB NOT NULL)",
)
# Entries whose vanishing must not go unseen (``DeltaReader.vanished``): those runs made, moved
# or linked since the last whole read (``record_made``: the snapshot holds them as they are only
# after it), and those a read found gone, kept until the run has saved whose their names were
# (``acknowledge``: a run killed in between tells them again). A row whose entry is there at a
# whole read that keeps the snapshot goes (the entry is in the rows then).
_MADE = "CREATE TABLE IF NOT EXISTS made (key TEXT PRIMARY KEY, dn TEXT NOT NULL, names TEXT)"


def _made_rows(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
    try:
        return [(str(k), str(d), str(n)) for k, d, n in db.execute("SELECT * FROM made")]
    except sqlite3.OperationalError:  # none recorded (or an older snapshot): no such table
        return []


_GENERATION = (
    "CREATE TABLE IF NOT EXISTS generation (n INTEGER NOT NULL)",
    "INSERT INTO generation SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM generation)",
    "CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries "
    "BEGIN UPDATE generation SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS entries_update AFTER UPDATE ON entries "
    "BEGIN UPDATE generation SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries "
    "BEGIN UPDATE generation SET n = n + 1; END",
)


def _row(key: str, dn: str, attrs: Mapping[str, Any], layout: Layout) -> tuple[str, ...]:
    return (
        key,
        dn,
        _csn(attrs),
        _encode(attrs, layout.named),
        _encode(attrs, layout.rest),
    )


def _create(db: sqlite3.Connection, base: str, layout: Layout, full_at: float) -> None:
    for statement in _SCHEMA:
        db.execute(statement)
    db.execute(
        "INSERT INTO meta VALUES (?, ?, ?, ?)",
        (base, json.dumps(layout.attributes), json.dumps(layout.names), full_at),
    )


@dataclass
class Rows:
    """The entries of a snapshot (with what was read since laid over them: ``overlay`` newer
    copies, ``gone`` deleted), decoded one at a time as they are iterated: the caller turns
    each into an account and drops it, so the whole directory is never held as attributes.
    Iterable more than once (the namespace, then the accounts)."""

    db: sqlite3.Connection
    layout: Layout
    overlay: Entries = field(default_factory=dict)
    gone: frozenset[str] = frozenset()
    removable: bool = True  # a damaged file may be removed (not by a plan: it writes nothing)

    def __iter__(self) -> Iterator[tuple[str, Attrs]]:
        named, rest = self.layout.named, self.layout.rest
        skip = self.gone.union(self.overlay)
        with self._damage():
            for key, dn, names, others in self.db.execute(
                "SELECT key, dn, names, rest FROM entries"
            ):
                if key not in skip:
                    attrs = _decode(names, named)
                    attrs.update(_decode(others, rest))
                    yield dn, attrs
        for dn, attrs in self.overlay.values():  # as the file's rows: without the CSN
            yield dn, {k: v for k, v in attrs.items() if k != CSN}

    def names(self) -> Iterator[tuple[str, Attrs]]:
        """Each entry with the namespace's attributes only (a cheaper decode)."""
        named = self.layout.named
        skip = self.gone.union(self.overlay)
        with self._damage():
            for key, dn, names in self.db.execute("SELECT key, dn, names FROM entries"):
                if key not in skip:
                    yield dn, _decode(names, named)
        wanted = set(named)
        for dn, attrs in self.overlay.values():
            yield dn, {k: v for k, v in attrs.items() if k in wanted}

    def __len__(self) -> int:
        with self._damage():  # an index SQLite counts from may be damaged (an attack's)
            (count,) = self.db.execute("SELECT count(*) FROM entries").fetchone()
        present = sum(1 for k in self.gone if self._has(k))
        return int(count) - present + sum(1 for k in self.overlay if not self._has(k))

    @contextlib.contextmanager
    def _damage(self) -> Iterator[None]:
        """A page found damaged while the rows are read (after the delta's own read went
        well): the file is removed, so the next run reads the directory whole and writes a
        new one, and this run stops as a directory read that failed (it is retried). A plan
        removes nothing (the next run that may apply meets the damage in its own read). A
        file another process held locked past the wait is not damaged (found by an attack:
        it was removed): the read stops, retried."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if busy(exc):
                raise DirectoryError(
                    f"the directory snapshot is in use by another syncd ({exc}): retried",
                    transient=True,
                ) from None
            removed = False
            if self.removable:
                files = [Path(r[2]) for r in self.db.execute("PRAGMA database_list") if r[2]]
                for path in files:
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed = True
            raise SnapshotDamaged(str(exc), removed=removed) from None

    def _has(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None


@dataclass
class DeltaReader:
    """Keeps ``path`` in step with the directory through ``search`` (the profile's paged,
    checked search of its base) and says how it read (``how``)."""

    path: Path
    base: str
    search: Search
    wanted: str  # the filter of every entry a run reads
    attributes: list[str]  # what the profile reads, entryCSN included
    clock: Callable[[], float] = time.time
    keep: bool = True  # False: a plan (``syncd plan`` writes nothing in the state directory)
    # the slim search, where the profile has a cheaper one than ``search(flt, [entryCSN])``
    csns: Csns | None = field(default=None, repr=False)
    how: str = ""
    # what the last sync() found, as a digest of every entry's key and entryCSN: equal only
    # when no entry was added, changed, renamed or deleted since (connectors/quiet.py)
    fingerprint: str = ""
    # entries the last sync() found without a readable entryCSN: the delta read is then off
    # (every run reads in full) until the service DN may read them (docs/architecture.md)
    blind: int = 0
    names: list[str] = field(default_factory=list)  # the namespace's attributes (see Layout)
    # the snapshot the last sync() or names_since() read (``current`` looks entries up in it)
    db: sqlite3.Connection | None = field(default=None, repr=False)
    _names_key: str = field(default="", repr=False)  # the cache cached_names found valid
    _damaged: str = field(default="", repr=False)  # what names_since found damaged
    # the entries the snapshot held that the last sync() found gone (DN, the namespace's
    # attributes): what LocalState.former remembers of whom their names were
    vanished: list[tuple[str, Attrs]] = field(default_factory=list, repr=False)
    _vanished_rows: list[tuple[str, str, str]] = field(default_factory=list, repr=False)
    # every connection this reader opened, closed by ``close`` (found by the province
    # simulation: left to the garbage collector, a daemon kept one open file per run, a
    # replaced snapshot's disk space with it, and reached the service's 1,024 descriptors)
    _opened: list[sqlite3.Connection] = field(default_factory=list, repr=False)

    def _opening(self, snap: Snapshot | None) -> Snapshot | None:
        if snap is not None:
            self._opened.append(snap.db)
        return snap

    def close(self) -> None:
        """Close every connection to the snapshot this reader opened (the end of a run: the
        rows it read are not read again)."""
        opened, self._opened, self.db = self._opened, [], None
        for db in opened:
            db.close()

    @property
    def layout(self) -> Layout:
        return Layout(self.attributes, [a for a in self.names if a in self.attributes])

    def _load(self) -> Snapshot | None:
        return self._opening(load(self.path, self.base, self.layout, readonly=not self.keep))

    def sync(self, damaged: str = "") -> Rows:
        """Every entry the run reads, from the snapshot and what changed since; the entries
        the snapshot held that are gone in ``vanished``. ``damaged``: why the rows of a
        scoped read could not be decoded (the file is gone then): the whole read."""
        self._told([])
        snap = self._load()
        why = ""
        damaged, self._damaged = damaged or self._damaged, ""
        if damaged:
            why = f"the snapshot is damaged ({damaged})"
        elif snap is None:
            why = "no usable snapshot"
        elif self.clock() - snap.full_at > FULL_EVERY.total_seconds():
            why = f"the last full read is older than {FULL_EVERY}"
        elif self.clock() < snap.full_at:
            why = "the snapshot is from the future (this host's clock went back)"
        rows: Rows | None = None
        if snap is not None and not why:
            try:
                rows, self.how = self._delta(snap)
            except Drift as exc:
                why = str(exc)
            except sqlite3.DatabaseError as exc:
                # a damaged file (found by an attack: pages overwritten in its middle made
                # every run fail until someone deleted it): a full read writes a new one; the
                # same when another process held it locked past the wait (a plan reading it:
                # a new file replaces it, and that plan keeps reading its own)
                what = "in use by another process" if busy(exc) else "damaged"
                why = f"the snapshot is {what} ({exc})"
                log.warning(f"directory snapshot {what}: a full read", error=str(exc))
        if rows is None:
            rows = self._full()
            if snap is not None:
                # the old snapshot (its file may be replaced: the open handle still reads it)
                with contextlib.suppress(sqlite3.DatabaseError):  # damaged: nothing to tell
                    self._told(self._gone_from(snap.db, rows.db))
                snap.db.close()
                if self.keep and self._vanished_rows:  # kept until acknowledged
                    with rows.db:
                        rows.db.execute(_MADE)
                        rows.db.executemany(
                            "INSERT OR REPLACE INTO made VALUES (?, ?, ?)", self._vanished_rows
                        )
            self.how = f"full: {why}"
            (self.blind,) = rows.db.execute(
                "SELECT count(*) FROM entries WHERE csn = ''"
            ).fetchone()
        if self.blind:
            log.warning(
                "entries without a readable entryCSN: every run reads the directory whole",
                entries=self.blind,
            )
        log.info("directory read", how=self.how, entries=len(rows))
        self.db, self._names_key = rows.db, ""
        return rows

    def blinded(self, count: int) -> DirectoryError:
        """What a scoped read that found ``count`` entries without a readable entryCSN raises.
        Its namespace came from the snapshot and the entries whose CSN is recent, and a CSN
        the service DN cannot read matches no such search: a name written since the last
        whole run may be missing, so the run stops (found by an attack). A kept snapshot is
        removed, so the next run reads the directory whole, and keeps doing so while any row
        lacks a CSN (``Snapshot.newest``)."""
        self.blind = count
        removed = ""
        if self.drop():
            removed = "; the snapshot is removed: the next run reads the directory whole"
        return DirectoryError(
            f"{count} directory entries have no entryCSN the service DN may read, so this "
            f"scoped run cannot trust its namespace{removed}; give the service DN read access "
            "to entryCSN (config/ldap/acl.ldif; syncd doctor names them)",
            transient=True,
        )

    def drop(self) -> bool:
        """Remove the snapshot when this run keeps it (the next run then reads the directory
        whole); whether it did."""
        if not self.keep:
            return False
        if self.db is not None:
            self.db.close()
            self.db = None
        self.path.unlink(missing_ok=True)
        return True

    def record_made(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Keep beside the snapshot the entries this run made, moved or linked (DN, the
        namespace's attributes, the employee number among them), until the next whole read
        holds them: one that vanishes before then is told like any other (``vanished``).
        Found by an attack: a mailbox an inbox run made, deleted by hand the same day, was in
        no snapshot, and its name went to a namesake in another organisation. Only a run that
        keeps the snapshot, and only when there is one (without, nothing vanishes: the next
        read is whole)."""
        named = self.layout.named
        rows = [(dn.lower(), dn, _encode(attrs, named)) for dn, attrs in entries]
        self._write_made("INSERT OR REPLACE INTO made VALUES (?, ?, ?)", rows)

    def forget_made(self, dns: Iterable[str]) -> None:
        """The ``made`` rows of ``dns``: entries recorded before they were made that never
        were (a run asked to stop skipped them)."""
        self._write_made("DELETE FROM made WHERE key = ?", [(dn.lower(),) for dn in dns])

    def _write_made(self, sql: str, rows: Sequence[tuple[str, ...]]) -> None:
        """``sql`` for each of ``rows`` on the kept snapshot's ``made`` table, in one
        transaction of a connection of its own (a scoped run reads the snapshot read-only);
        nothing for a plan, or without a snapshot."""
        if not self.keep or not rows or not self.path.exists():
            return
        db = _connect(str(self.path))
        try:
            with db:
                db.execute(_MADE)
                db.executemany(sql, rows)
        finally:
            db.close()

    def keep_names(
        self,
        parts: Iterable[bytes],
        names: int,
        shape: str,
        terms: Iterable[tuple[str, int, bytes]] = (),
    ) -> None:
        """Keep ``parts``, the profile's namespace of the snapshot as this whole run synced it
        (``Rows`` without overlay), ``names`` Names in all, for the scoped runs that follow
        (``cached_names``). Only a run that keeps the snapshot; rewritten only when the rows
        changed since, in one transaction. In parts, so neither writing nor reading it holds
        the whole namespace twice."""
        if not self.keep or self.db is None:
            return
        db = self.db
        if not _indexed(db):  # a file an older syncd wrote (or one edited by hand)
            with db:
                db.execute("BEGIN IMMEDIATE")
                _index(db)  # no row written: the cache's key stays as it was
        try:
            rows = _cache_key(db, shape)
            if db.execute("SELECT 1 FROM name_count WHERE rows = ?", (rows,)).fetchone():
                return
        except sqlite3.Error:  # none yet (or of another shape): made anew
            pass
        with db:
            db.execute("BEGIN IMMEDIATE")  # DDL included: Python's sqlite3 only opens one for DML
            db.execute("DROP TABLE IF EXISTS name_parts")
            db.execute("DROP TABLE IF EXISTS name_count")
            db.execute("DROP TABLE IF EXISTS name_terms")
            for statement in (*_GENERATION, *_NAMES_CACHE):
                db.execute(statement)
            rows = _cache_key(db, shape)
            count = 0
            for count, blob in enumerate(parts, 1):
                db.execute("INSERT INTO name_parts VALUES (?, ?, ?)", (rows, count - 1, blob))
            db.executemany(
                "INSERT INTO name_terms VALUES (?, ?, ?, ?)", ((rows, k, n, b) for k, n, b in terms)
            )
            (kept,) = db.execute("SELECT count(*) FROM name_terms").fetchone()
            db.execute("INSERT INTO name_count VALUES (?, ?, ?, ?)", (rows, count, names, kept))

    def cached_names(self, shape: str) -> tuple[Iterator[bytes], int] | None:
        """The parts ``keep_names`` kept and how many Names they hold, when they are of the
        rows the last ``names_since`` read (their digest checked, so a cache of other rows is
        never used) and all there, else None. The caller checks the count as it reads (a part
        emptied by hand); a part that cannot be read raises sqlite3.Error as it is iterated."""
        db = self.db
        if db is None:
            return None
        try:
            row = db.execute("SELECT rows, parts, names FROM name_count").fetchone()
            if row is None or row[0] != _cache_key(db, shape):
                return None
            held = db.execute(
                "SELECT count(*), count(DISTINCT part), min(part), max(part) FROM name_parts "
                "WHERE rows = ?",
                (row[0],),
            ).fetchone()
            if held != (row[1], row[1], 0 if row[1] else None, row[1] - 1 if row[1] else None):
                return None
        except sqlite3.Error:  # no such table (not written yet), or damaged: decode the rows
            return None
        self._names_key = str(row[0])
        return self._parts(db, self._names_key), int(row[2])

    def rewritten_since_checked(self, shape: str) -> bool:
        """Whether the rows or the names cache were written since ``cached_names`` found the
        cache valid (a whole run's delta, by another process): what a plan, which holds no
        run lock and reads the cache's parts only when it decodes them, asks before decoding
        the rows instead (they are newer than the check then). A file that can no longer be
        read counts as rewritten."""
        if self.db is None or not self._names_key:
            return True
        try:
            return _cache_key(self.db, shape) != self._names_key
        except sqlite3.Error:
            return True

    def cached_terms(self, suffixes: Iterable[str]) -> list[tuple[int, bytes]] | None:
        """The blobs ``keep_names`` kept under "" and each of ``suffixes``, each with the
        number of entries it must hold, of the cache the last ``cached_names`` found valid
        (none unless it did); None if they cannot be read, or if rows are missing (found by
        an attack: the "" row deleted by hand let a scoped run miss an unkeyed mailbox)."""
        if self.db is None or not self._names_key:
            return None
        wanted = ["", *sorted(set(suffixes))]
        marks = ",".join("?" * len(wanted))
        try:
            (written,) = self.db.execute(
                "SELECT terms FROM name_count WHERE rows = ?", (self._names_key,)
            ).fetchone()
            (held,) = self.db.execute(
                "SELECT count(*) FROM name_terms WHERE rows = ?", (self._names_key,)
            ).fetchone()
            if held != written:
                return None
            found = self.db.execute(
                f"SELECT n, blob FROM name_terms WHERE rows = ? AND suffix IN ({marks})",  # noqa: S608
                (self._names_key, *wanted),
            ).fetchall()
        except (sqlite3.Error, TypeError):  # no such row or table: the caller scans the names
            return None
        return [(int(n), bytes(b)) for n, b in found]

    @staticmethod
    def _parts(db: sqlite3.Connection, key: str) -> Iterator[bytes]:
        """The parts of the cache checked under ``key``, read when first iterated (most
        scoped runs never decode the namespace: reading ~10 MB of parts anyway was a sixth of
        one organisation's run at 100k); parts rewritten since under another key are none,
        and the caller decodes the rows instead (their count no longer matches)."""
        sql = "SELECT blob FROM name_parts WHERE rows = ? ORDER BY part"
        for (blob,) in db.execute(sql, (key,)):
            yield bytes(blob)

    def current(self, csns: Mapping[str, str]) -> list[tuple[str, Attrs]]:
        """The entries a slim search found (``csns``: key → its entryCSN on the server now):
        from the snapshot those it holds at that very CSN, from the server in full the others
        (by exact entryCSN terms). What a scoped run reads of its organisations: the same
        indexed searches, asking each entry's CSN only, so an unchanged account costs a
        lookup here instead of a decode in ldap3 (about nine tenths of a scoped read at
        100,000 entries). Drift when there is no snapshot, an entry's CSN went backwards or
        it changed again meanwhile: the caller then reads those entries in full."""
        if self.db is None:
            raise Drift("no snapshot")
        held: dict[str, tuple[str, ...]] = {}
        try:
            held.update(_rows_of(self.db, csns, "csn, dn, names, rest"))
        except sqlite3.DatabaseError as exc:
            raise Drift(f"the snapshot is damaged ({exc})") from None
        stale = _stale({k: row[0] for k, row in held.items()}, csns)
        fetched = self._fetch(csns, stale)
        named, rest = self.layout.named, self.layout.rest
        found: list[tuple[str, Attrs]] = []
        for key in csns:
            if key in fetched:
                dn, attrs = fetched[key]
                found.append((dn, {k: v for k, v in attrs.items() if k != CSN}))
            else:
                _, dn, names, others = held[key]
                attrs = _decode(names, named)
                attrs.update(_decode(others, rest))
                found.append((dn, attrs))
        return found

    def names_since(self) -> Rows | None:
        """For a scoped run's namespace: the snapshot plus the entries whose ``entryCSN`` is at
        least its newest less ``OVERLAP`` (an indexed search of DNs and CSNs, then in full only
        those the snapshot does not hold as they are; no whole read). None when the snapshot
        cannot serve (missing, aged, an entry's CSN gone backwards): then ``sync``. Never
        written back: the next whole read brings the snapshot up to date.

        A name deleted since the snapshot stays in this namespace until the next whole read:
        it is only kept from being given out a little longer, which is always safe. A name
        added or changed is there, unless its writer's clock was more than ``OVERLAP`` behind
        (the whole reads compare every entry's CSN and see it).
        """
        self._told([])
        snap = self._opening(load(self.path, self.base, self.layout, readonly=True))
        if snap is None or not 0 <= self.clock() - snap.full_at <= FULL_EVERY.total_seconds():
            return None
        try:
            return self._names_since(snap)
        except sqlite3.DatabaseError as exc:
            log.warning("directory snapshot damaged: a whole read", error=str(exc))
            snap.db.close()
            if not busy(exc):  # the whole read that follows reads everything anew
                self._damaged = str(exc)
            return None

    def _names_since(self, snap: Snapshot) -> Rows | None:
        newest, newest_rows = snap.newest_entries()
        since = csn_before(newest, OVERLAP)
        if not since:
            return None  # nothing to count from (an empty snapshot): the whole read
        ahead = _csn_time(newest) - self.clock()
        if ahead > OVERLAP.total_seconds():
            # Found by an attack: slapd run once with its clock a day ahead left an entry
            # dated tomorrow; every entry written since, at the right time, fell before the
            # window, and a scoped run gave a second mailbox to a person an older one was
            # waiting for. The whole read compares every entry's CSN: nothing escapes it.
            log.warning(
                "directory names: the newest change the snapshot holds is dated ahead of this "
                "host's clock (was the directory server's clock ahead?); read whole until then",
                newest=newest[:14],
                ahead_seconds=int(ahead),
            )
            return None
        # the window's DNs and CSNs only; then the names of what the snapshot does not hold as
        # is (a namespace needs no more: Rows.names reads only them from the overlay)
        in_window = f"(&{self.wanted}({CSN}>={since}))"
        window = {dn.lower(): csn for dn, csn in self._slim(in_window)}
        # The snapshot's newest entries dated within the window are in it unless they are
        # gone or older now: a directory restored from a backup (found by an attack: an entry
        # the backup brought back, older than the window, was missing from a scoped run's
        # namespace), or the newest entries deleted. Either way the whole read, which sees
        # every entry. Only those dated within it: the second newest of a quiet directory
        # (one change this morning, the one before it yesterday) is rightly not in the
        # window, and every scoped run read whole, warning of a restored backup.
        if any(key not in window for key, csn in newest_rows if csn >= since):
            log.warning(
                "directory names: the newest entries the snapshot holds are gone or older "
                "(deleted by hand, or a directory restored from a backup?); read whole"
            )
            return None
        known = {key: row[0] for key, row in _rows_of(snap.db, window, "csn")}
        # entries runs made since the snapshot are in the window while they exist (written
        # since its newest CSN): one not in it vanished, and its names are told
        # (not one the snapshot holds: a link's entry, there before, may be unchanged and out
        # of the window; the whole read tells whether it is gone)
        made = _made_rows(snap.db)
        held = {k for k, _ in _rows_of(snap.db, (m[0] for m in made), "csn")}
        self._told([m for m in made if m[0] not in window and m[0] not in held])
        names = [*self.layout.names, CSN]
        try:
            stale = _stale(known, window)
            if len(stale) > len(window) * MOSTLY_CHANGED:
                # Most of the window changed since the snapshot: with lastbind and ppolicy
                # every login writes a new entryCSN, so late in a working day the window is
                # everyone who logged in. One search of the window's names then beats fetching
                # each by an exact entryCSN term: ldap3 builds a filter of 500 such terms at
                # ~0.1 ms a term, and decodes ~8 µs per attribute value (issue 14; an entry
                # added or renamed meanwhile is in it too, a name more is always safe).
                fetched = _entries(self.search(in_window, names))
            else:
                fetched = self._fetch(window, stale, names)
        except Drift:
            return None  # a restored backup, or a change during the read: the whole read
        self.how = f"recent: {len(stale)} changed of {len(window)} since {since[:14]}"
        log.info("directory names", how=self.how)
        self.db, self._names_key = snap.db, ""
        return snap.rows(fetched)

    def _full(self) -> Rows:
        """Everything read into a new snapshot: a file replacing the old one atomically when
        it is kept (entries streamed from the search into it), else a database in memory."""
        layout = self.layout
        rows = (
            _row(dn.lower(), dn, a, layout) for dn, a in self.search(self.wanted, self.attributes)
        )
        if not self.keep:
            db = _connect(":memory:")
            self._opened.append(db)
            _create(db, self.base, layout, self.clock())
            db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", rows)
            self.fingerprint = _rows_digest(db)
            return Rows(db, layout)
        if not self.path.parent.exists():
            private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.new")
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            db = _connect(str(tmp))
            try:
                with db:
                    _create(db, self.base, layout, self.clock())
                    db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", rows)
                    _index(db)
                self.fingerprint = _rows_digest(db)
            finally:
                db.close()
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        for old in OLD_FILES:
            if old != self.path.name:
                with contextlib.suppress(OSError):
                    (self.path.parent / old).unlink(missing_ok=True)
        db = _connect(str(self.path))
        self._opened.append(db)
        return Rows(db, layout)

    def _delta(self, snap: Snapshot) -> tuple[Rows, str]:
        """``snap`` brought up to date (written back when kept), and what happened."""
        now = {dn.lower(): csn for dn, csn in self._slim(self.wanted)}
        blind = [k for k, csn in now.items() if not csn]
        self.blind = len(blind)
        if blind:
            # an access rule hiding entryCSN from the service DN (found by an attack: every
            # CSN read as "", so no change was ever seen and whole runs were "quiet")
            raise Drift(
                f"{len(blind)} of {len(now)} entries have no entryCSN the service DN can read "
                f"(e.g. {blind[0]})"
            )
        self.fingerprint = digest(sorted(now.items()))
        csns = snap.csns()
        stale = _stale(csns, now)
        if len(stale) > max(len(now), 1) / 4:
            raise Drift(f"{len(stale)} of {len(now)} entries changed")
        fetched = self._fetch(now, stale)
        gone = [k for k in csns if k not in now]
        made = _made_rows(snap.db)
        gone_rows = [(k, row[0], row[1]) for k, row in _rows_of(snap.db, gone, "dn, names")]
        self._told([*(m for m in made if m[0] not in now), *gone_rows])
        there = [(m[0],) for m in made if m[0] in now]
        how = f"delta: {len(stale)} changed, {len(gone)} gone, {len(now)} checked"
        del csns, now  # a 100,000 keys each: not kept while the accounts are made
        if not self.keep:
            return snap.rows(fetched, gone), how
        layout = snap.layout
        with snap.db:
            if there:  # in the rows now as they are
                snap.db.executemany("DELETE FROM made WHERE key = ?", there)
            if gone_rows:  # told until acknowledged
                snap.db.execute(_MADE)
                snap.db.executemany("INSERT OR REPLACE INTO made VALUES (?, ?, ?)", gone_rows)
            snap.db.executemany("DELETE FROM entries WHERE key = ?", ((k,) for k in gone))
            snap.db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)",
                (_row(k, dn, a, layout) for k, (dn, a) in fetched.items()),
            )
        return snap.rows(), how

    def _gone_from(
        self, old: sqlite3.Connection, new: sqlite3.Connection
    ) -> list[tuple[str, str, str]]:
        """The entries ``old`` (the last snapshot, its ``made`` rows too) holds and ``new`` (a
        full read's) does not: a full read (the nightly one, once the last is 20 hours old)
        sees deletions too. (key, DN, the names' text) each."""
        now = {str(k) for (k,) in new.execute("SELECT key FROM entries")}
        made = [m for m in _made_rows(old) if m[0] not in now]
        return made + [
            (str(key), str(dn), str(names))
            for key, dn, names in old.execute("SELECT key, dn, names FROM entries")
            if key not in now
        ]

    def _told(self, rows: list[tuple[str, str, str]]) -> None:
        """``rows`` (key, DN, names' text) are the entries this read found vanished."""
        named = self.layout.named
        self._vanished_rows = rows
        self.vanished = [(dn, _decode(names, named)) for _, dn, names in rows]

    def acknowledge(self) -> None:
        """The run saved whose the names of ``vanished`` were: their rows are not told again
        (nothing for a plan, which writes nothing)."""
        rows, self._vanished_rows = self._vanished_rows, []
        self._write_made("DELETE FROM made WHERE key = ?", [(k,) for k, _, _ in rows])

    def _slim(self, flt: str) -> Iterator[tuple[str, str]]:
        if self.csns is not None:
            return self.csns(flt)
        return ((dn, _csn(a)) for dn, a in self.search(flt, [CSN]))

    def _fetch(
        self, csns: Mapping[str, str], stale: list[str], attributes: list[str] | None = None
    ) -> Entries:
        """The ``stale`` entries in full (or their ``attributes``), by exact entryCSN terms in
        batches; Drift if one changed again since its CSN was read."""
        terms = sorted({f"({CSN}={csns[k]})" for k in stale if csns[k]})
        fetched: Entries = {}
        for i in range(0, len(terms), BATCH):
            flt = f"(&{self.wanted}(|{''.join(terms[i : i + BATCH])}))"
            fetched.update(_entries(self.search(flt, attributes or self.attributes)))
        if any(k not in fetched for k in stale):
            raise Drift("entries changed again during the read")
        return fetched


def _rows_of(
    db: sqlite3.Connection, keys: Iterable[str], columns: str
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """The snapshot's ``columns`` of the entries ``keys`` it holds, by key: a query per 500
    keys, not one per key (a third of the time for the 20,000 entries of a scoped run's
    window after a bulk write)."""
    batch: list[str] = []
    for key in (*keys, None):
        if key is not None:
            batch.append(key)
        if batch and (key is None or len(batch) == BATCH):
            marks = ",".join("?" * len(batch))
            sql = f"SELECT key, {columns} FROM entries WHERE key IN ({marks})"  # noqa: S608
            for row in db.execute(sql, batch):
                yield str(row[0]), tuple(row[1:])
            batch = []


def _stale(known: Mapping[str, str], csns: Mapping[str, str]) -> list[str]:
    """The entries of ``csns`` (key → its entryCSN now) that ``known`` (key → the snapshot's
    CSN) lacks or holds at another CSN; Drift if one went backwards (a directory restored from
    a backup)."""
    stale: list[str] = []
    for key, csn in csns.items():
        old = known.get(key)
        if old is None:
            stale.append(key)
        elif csn != old:
            if csn < old:
                raise Drift(f"the entryCSN of {key} went backwards (a restored backup?)")
            stale.append(key)
    return stale


def _entries(found: Iterable[tuple[str, Mapping[str, Any]]]) -> Entries:
    return {dn.lower(): (dn, {k: list(v) for k, v in a.items() if v}) for dn, a in found}
