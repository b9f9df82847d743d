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

- no snapshot, an unreadable one, or one of another base or attribute list (lost state);
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

The file is the state directory's (0600, written atomically); losing it costs one full read.
A plan (a dry run) reads it and never writes it: ``syncd plan`` changes nothing on disk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from connectors.store import write_private

log = structlog.get_logger("syncd.directory")

FORMAT = 2
SNAPSHOT_FILE = "directory-snapshot.json"
FULL_EVERY = timedelta(hours=20)  # the daemon's nightly run finds the last full read older
BATCH = 500  # exact entryCSN terms per search
# a scoped run's namespace re-reads what changed this long before the newest CSN it knows
OVERLAP = timedelta(minutes=5)
CSN = "entryCSN"

Entries = dict[str, tuple[str, dict[str, list[str]]]]  # DN (lower case) → (DN, attributes)
Search = Callable[[str, list[str]], Iterator[tuple[str, Mapping[str, Any]]]]


class Drift(Exception):
    """The delta cannot be trusted; the message says why (a full read follows)."""


@dataclass
class Snapshot:
    base: str
    attributes: list[str]
    full_at: float  # when the last full read was (epoch seconds, this host's clock)
    entries: Entries = field(default_factory=dict)


def csn_before(csn: str, delta: timedelta) -> str:
    """The CSN ``delta`` earlier than ``csn`` (``20261126074830.891510Z#000000#000#000000``),
    a lower bound for ``(entryCSN>=…)``; "" for what is not a CSN (slapd would match no entry
    with a bound that is not one)."""
    try:
        when = datetime.strptime(csn[:14], "%Y%m%d%H%M%S") - delta
    except ValueError:
        return ""
    return when.strftime("%Y%m%d%H%M%S") + ".000000Z#000000#000#000000"


def _csn(attrs: Mapping[str, Any]) -> str:
    values = attrs.get(CSN) or []
    return str(values[0]) if values else ""


def load(path: Path, base: str, attributes: list[str]) -> Snapshot | None:
    """The snapshot at ``path`` if it is of this base and attribute list, else None."""
    try:
        data = json.loads(path.read_bytes())
        if data.get("format") != FORMAT or data["base"].lower() != base.lower():
            return None
        if data["attributes"] != attributes:
            return None  # another profile or version reads other attributes
        entries = {k.lower(): (k, v) for k, v in data["entries"].items()}
        return Snapshot(base, attributes, float(data["full_at"]), entries)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("directory snapshot unreadable: a full read", path=str(path), error=str(exc))
        return None


def save(path: Path, snap: Snapshot) -> None:
    data = {
        "format": FORMAT,
        "base": snap.base,
        "attributes": snap.attributes,
        "full_at": snap.full_at,
        "entries": {dn: attrs for dn, attrs in snap.entries.values()},
    }
    write_private(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))


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
    how: str = ""

    def sync(self) -> Entries:
        """Every entry the run reads, from the snapshot and what changed since."""
        snap = load(self.path, self.base, self.attributes)
        why = ""
        if snap is None:
            why = "no usable snapshot"
        elif self.clock() - snap.full_at > FULL_EVERY.total_seconds():
            why = f"the last full read is older than {FULL_EVERY}"
        elif self.clock() < snap.full_at:
            why = "the snapshot is from the future (this host's clock went back)"
        if snap is not None and not why:
            try:
                self.how = self._delta(snap)
            except Drift as exc:
                why = str(exc)
        if why:
            snap = self._full()
            self.how = f"full: {why}"
        assert snap is not None
        log.info("directory read", how=self.how, entries=len(snap.entries))
        if self.keep:
            save(self.path, snap)
        return snap.entries

    def names_since(self) -> Entries | None:
        """For a scoped run's namespace: the snapshot plus the entries whose ``entryCSN`` is at
        least its newest less ``OVERLAP`` (an indexed search of DNs and CSNs, then in full only
        those the snapshot does not hold as they are; no whole read). None when the snapshot
        cannot serve (missing, aged, an entry's CSN gone backwards): then ``sync``.

        A name deleted since the snapshot stays in this namespace until the next whole read:
        it is only kept from being given out a little longer, which is always safe. A name
        added or changed is there, unless its writer's clock was more than ``OVERLAP`` behind
        (the whole reads compare every entry's CSN and see it).
        """
        snap = load(self.path, self.base, self.attributes)
        if snap is None or not 0 <= self.clock() - snap.full_at <= FULL_EVERY.total_seconds():
            return None
        newest = max((_csn(a) for _, a in snap.entries.values()), default="")
        since = csn_before(newest, OVERLAP)
        if not since:
            return None  # nothing to count from (an empty snapshot): the whole read
        # the window's DNs and CSNs only; in full only what the snapshot does not hold as is
        window = {
            dn.lower(): _csn(a) for dn, a in self.search(f"(&{self.wanted}({CSN}>={since}))", [CSN])
        }
        try:
            stale = self._stale(snap, window)
            fetched = self._fetch(window, stale)
        except Drift:
            return None  # a restored backup, or a change during the read: the whole read
        entries = {**snap.entries, **fetched}
        self.how = f"recent: {len(stale)} changed of {len(window)} since {since[:14]}"
        log.info("directory names", how=self.how, entries=len(entries))
        return entries

    def _full(self) -> Snapshot:
        snap = Snapshot(self.base, self.attributes, self.clock())
        snap.entries = self._entries(self.search(self.wanted, self.attributes))
        return snap

    def _delta(self, snap: Snapshot) -> str:
        """Bring ``snap`` up to date; what happened (for the log and the tests)."""
        now = {dn.lower(): _csn(a) for dn, a in self.search(self.wanted, [CSN])}
        stale = self._stale(snap, now)
        if len(stale) > max(len(now), 1) / 4:
            raise Drift(f"{len(stale)} of {len(now)} entries changed")
        fetched = self._fetch(now, stale)
        gone = sum(1 for k in snap.entries if k not in now)
        snap.entries = {k: fetched.get(k) or snap.entries[k] for k in now}
        return f"delta: {len(stale)} changed, {gone} gone, {len(now)} checked"

    @staticmethod
    def _stale(snap: Snapshot, csns: Mapping[str, str]) -> list[str]:
        """The entries of ``csns`` (DN → its entryCSN now) the snapshot lacks or holds at
        another CSN; Drift if one went backwards (a directory restored from a backup)."""
        stale: list[str] = []
        for key, csn in csns.items():
            old = snap.entries.get(key)
            if old is None:
                stale.append(key)
            elif csn != _csn(old[1]):
                if csn < _csn(old[1]):
                    raise Drift(f"the entryCSN of {old[0]} went backwards (a restored backup?)")
                stale.append(key)
        return stale

    def _fetch(self, csns: Mapping[str, str], stale: list[str]) -> Entries:
        """The ``stale`` entries in full, by exact entryCSN terms in batches; Drift if one
        changed again since its CSN was read."""
        terms = sorted({f"({CSN}={csns[k]})" for k in stale if csns[k]})
        fetched: Entries = {}
        for i in range(0, len(terms), BATCH):
            flt = f"(&{self.wanted}(|{''.join(terms[i : i + BATCH])}))"
            fetched.update(self._entries(self.search(flt, self.attributes)))
        if any(k not in fetched for k in stale):
            raise Drift("entries changed again during the read")
        return fetched

    @staticmethod
    def _entries(found: Iterable[tuple[str, Mapping[str, Any]]]) -> Entries:
        return {dn.lower(): (dn, {k: list(v) for k, v in a.items() if v}) for dn, a in found}
