"""The audit log: one JSON line per action, chained so that tampering shows.

Why each part is there:

- **Keyed chain.** Every record carries ``seq`` (its number, 1, 2, … across files), ``prev``
  (the MAC of the record before it) and ``mac``: HMAC-SHA256 of ``prev`` and the record, with a
  key kept in the state directory (``audit.key``, 0600, the service user's). The log itself is
  0640 for the log readers' group; somebody who can read, or even rewrite, the log cannot
  recompute the chain (a plain sha256 chain, as syncd wrote before, can be recomputed by
  anybody who edits it).
- **Head outside the log.** ``audit.head`` in the state directory holds the sequence number
  and MAC of the newest record, replaced (fsync'd, then its folder) after each record, which is
  itself ``fdatasync``'d first, as the run journal syncs. Verification compares the log's end
  with it, so a missing, emptied or shortened log, or deleted newest records, are found. A
  crash between the record and the head leaves the head one record behind: that record must
  chain from the head and carry a good MAC, and the next writer moves the head on (never more
  than one record, or one group: each writer holds ``audit.lock`` for one record, or one group
  of at most ``GROUP_MAX`` records a run's apply commits at once, and its head).
- **Group commit.** A run's apply writes the records of a batch of actions together
  (:meth:`AuditLog.grouped`, :meth:`AuditLog.commit`): one ``write``, one ``fdatasync`` and
  one head for the batch instead of three syncs per record. Nothing a crash may lose changes:
  a record was never acknowledged before its sync, and the run journal still owes every record
  of the batch until the batch's end records are synced after it.
- **Syncd owns rotation and retention.** A new month starts a new file (the old one becomes
  ``<log>.YYYY-MM``); rotated files whose newest record is older than ``audit.keep_months``
  are deleted, after an **anchor** (the number and MAC of the last deleted record, and when) is
  added to ``audit.anchors``: verification starts from it, so retention never breaks the chain.
  Files renamed by something else (logrotate's ``.1``, ``.2.gz``, ``-YYYYMMDD``) are still read,
  in the order of their sequence numbers; a file deleted by something else is a gap.
- **Migration.** A log written before the chain was keyed (records with ``hash``, a sha256
  chain) is sealed by the first keyed record: its ``prev`` is the old chain's last hash, so its
  MAC fixes the legacy part; verification checks the legacy part as a sha256 chain up to it.

The records are written directly (not through structlog, whose global configuration must never
be able to drop a record). Records never hold a secret.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.crashpoints import crash_point
from connectors.store import make_dirs, private_dir, write_private
from syncd.errors import SyncdError

if TYPE_CHECKING:
    from connectors.config import Config

GENESIS = "0" * 64
KEY_FILE = "audit.key"
HEAD_FILE = "audit.head"
ANCHORS_FILE = "audit.anchors"
LOCK_FILE = "audit.lock"
LOG_MODE = 0o640  # the log readers' group may read it; the key stays 0600
MIN_KEEP_MONTHS = 6  # Tuyên Quang Đ9.1: logs kept at least 6 months
MAX_PROBLEMS = 50
# the most records one commit writes before it moves the head: a crash may leave the head that
# many records behind (mended on opening, a note in verify); more past it is a rolled-back head
GROUP_MAX = 256
# names a rotated file may have: syncd's <log>.YYYY-MM[.N], logrotate's <log>.N[.gz] and
# <log>-YYYYMMDD[HH][.gz]
_ROTATED = r"(?:\.\d{4}-\d{2}(?:\.\d+)?|\.\d+|-\d{8}(?:\d{2})?)(?:\.gz)?"


class AuditError(SyncdError):
    """The audit key or head cannot be used: nothing can be recorded or verified."""


@dataclass(frozen=True)
class Point:
    """A place in the chain: a record's number and its MAC (or legacy hash)."""

    seq: int
    mac: str


# what commit() writes into every record: never a caller's field
CHAIN_FIELDS = frozenset({"seq", "prev", "mac", "hash"})


def _keyed_line(body: bytes, mac: str) -> bytes:
    """The line of a keyed record (since 694bc7f): the canonical form the MAC covers
    (``body``), the MAC added last; one encoding per record."""
    return body[:-1] + b',"mac":"' + mac.encode() + b'"}'


def _line_as_written(rec: dict[str, Any]) -> set[str]:
    """The lines syncd writes for the keyed record ``rec``: :func:`_keyed_line`, or (before
    694bc7f) the whole record with sorted keys and spaces."""
    body = _canonical({k: v for k, v in rec.items() if k != "mac"})
    compact = _keyed_line(body, str(rec["mac"])).decode()
    return {compact, json.dumps(rec, ensure_ascii=False, sort_keys=True)}


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _digest(prev: str, record: dict[str, Any]) -> str:
    """The legacy (unkeyed) chain: sha256 of the previous hash and the record."""
    return hashlib.sha256(prev.encode() + b"\n" + _canonical(record)).hexdigest()


def _mac(key: bytes, record: dict[str, Any]) -> str:
    """The keyed chain: HMAC-SHA256 over the record without its ``mac`` (``prev`` included)."""
    return _sign(key, _canonical({k: v for k, v in record.items() if k != "mac"}))


def _sign(key: bytes, body: bytes) -> str:
    """HMAC-SHA256 of a record's canonical form."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def fsync_dir(folder: Path) -> None:
    """A rename is durable only once its folder is synced."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(fd: int, data: bytes, path: Path | str) -> None:
    """``os.write`` until every byte is written (a short write is rare on a file, not
    impossible: a signal, a full disk's last blocks), then ``fdatasync`` (the data and what
    reading it back needs: an appended file's new size). An error names ``path``: "No space left on
    device" alone does not tell the operator which disk filled (the state directory, the
    outbox and the audit log may each be on its own)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fdatasync(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _replace(path: Path, data: str) -> None:
    write_private(path, data)
    fsync_dir(path.parent)


# -- the key, the head, the anchors (state directory) ------------------------------------------


def read_key(state_dir: Path) -> bytes | None:
    """The chain's key, or None when there is none yet; an unusable key is an AuditError."""
    path = state_dir / KEY_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not text"
        raise AuditError(
            f"{path}: the audit key cannot be read ({why}); it must belong to the service user "
            "that runs syncd, mode 0600 — run syncd as that user"
        ) from None
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise AuditError(f"{path}: not an audit key (64 hexadecimal digits expected)")
    return bytes.fromhex(text)


def _create_key(state_dir: Path) -> bytes:
    key = secrets.token_bytes(32)
    path = state_dir / KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(state_dir)
    return key


def read_head(state_dir: Path) -> Point | None:
    path = state_dir / HEAD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Point(int(data["seq"]), str(data["mac"]))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"{path}: the audit head cannot be read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise AuditError(f"{path}: not an audit head (damaged or edited)") from None


def _write_head(state_dir: Path, point: Point) -> None:
    _replace(state_dir / HEAD_FILE, json.dumps({"seq": point.seq, "mac": point.mac}) + "\n")


def read_anchors(state_dir: Path) -> list[dict[str, Any]]:
    """Where retention cut the log: ``seq`` and ``mac`` of each last deleted record, and when."""
    path = state_dir / ANCHORS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AuditError(f"{path}: the audit anchors cannot be read ({exc.strerror})") from None
    except ValueError:
        raise AuditError(f"{path}: not a list of audit anchors (damaged or edited)") from None
    if not isinstance(data, list) or not all(
        isinstance(a, dict) and isinstance(a.get("seq"), int) and isinstance(a.get("mac"), str)
        for a in data
    ):
        raise AuditError(f"{path}: not a list of audit anchors (damaged or edited)")
    return data


def _add_anchor(state_dir: Path, anchor: dict[str, Any]) -> None:
    anchors = [*read_anchors(state_dir), anchor]
    _replace(state_dir / ANCHORS_FILE, json.dumps(anchors, ensure_ascii=False, indent=1) + "\n")


# -- the log's files -----------------------------------------------------------------------------


def _lines(file: Path) -> list[str]:
    """The file's lines, split at ``\n`` only: a record may hold U+2028, U+0085 or a form
    feed raw (``ensure_ascii=False``), which ``str.splitlines`` would cut it at (found by an
    attack: an untouched log then failed to verify, and the record left `syncd history`)."""
    if file.name.endswith(".gz"):
        with gzip.open(file, "rt", encoding="utf-8", newline="") as fh:
            text = fh.read()
    else:
        text = file.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _first_record(file: Path) -> dict[str, Any] | None:
    try:
        opener = gzip.open if file.name.endswith(".gz") else open
        with opener(file, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    data = json.loads(line)
                    return data if isinstance(data, dict) else None
    except (OSError, ValueError, EOFError):
        return None
    return None


def _tail_lines(
    file: Path, enough: Callable[[list[bytes]], bool], chunk: int = 8192
) -> list[bytes]:
    """The complete lines at the end of a plain file, oldest first, reading it backwards in
    chunks four times larger each time until ``enough`` says the lines suffice, the file is
    read whole, or the chunk passes 64 MiB. A last line without its newline (cut by a crash)
    is not a line, nor is the part of a line a chunk starts in."""
    with file.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        while True:
            start = max(0, size - chunk)
            fh.seek(start)
            lines = fh.read(size - start).split(b"\n")[1 if start else 0 : -1]
            if start == 0 or enough(lines) or chunk > 1 << 26:
                return lines
            chunk *= 4


def _last_line(file: Path) -> str | None:
    """The last complete line of a plain file, reading only its tail."""
    try:
        lines = _tail_lines(file, bool)
        return lines[-1].decode("utf-8").strip() or None if lines else None
    except (OSError, UnicodeDecodeError):
        return None


def _last_record(file: Path) -> dict[str, Any] | None:
    try:
        line = _lines(file)[-1] if file.name.endswith(".gz") else _last_line(file)
        data = json.loads(line) if line else None
    except (OSError, ValueError, IndexError, EOFError):
        return None
    return data if isinstance(data, dict) else None


def _tail_records(file: Path, after: int) -> list[dict[str, Any]]:
    """The complete records of a plain file numbered past ``after``, oldest first, reading
    only the tail that can hold ``GROUP_MAX`` of them (a head behind after a crash)."""

    def records(lines: list[bytes]) -> list[dict[str, Any]]:
        out = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("seq"), int):
                out.append(rec)
        return out

    def reaches(lines: list[bytes]) -> bool:  # holds the record right after ``after``
        recs = records(lines[:1]) or records(lines)
        return bool(recs) and recs[0]["seq"] <= after + 1

    try:
        return [r for r in records(_tail_lines(file, reaches, 65536)) if r["seq"] > after]
    except OSError:
        return []


def audit_files(path: Path) -> list[Path]:
    """The log's files in chain order: rotated ones (syncd's or another tool's names), then the
    current one. Keyed files are ordered by their first record's number (which nobody can
    forge); legacy ones (before keying) by their first record's time."""
    folder = path.parent
    pattern = re.compile(re.escape(path.name) + _ROTATED)
    try:
        rotated = [p for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file()]
    except OSError:
        rotated = []

    def order(p: Path) -> tuple[int, int, str, str]:
        first = _first_record(p)
        if first is None:
            return (2, 0, "", p.name)  # empty or unreadable: nothing to order by
        if "mac" in first and isinstance(first.get("seq"), int):
            return (1, first["seq"], "", p.name)
        return (0, 0, str(first.get("time", "")), p.name)

    files = sorted(rotated, key=order)
    if path.exists():
        first = _first_record(path)
        legacy_current = first is not None and "mac" not in first
        # the current file is the newest; while it still starts with legacy records, it
        # comes right after the other legacy files
        if legacy_current:
            at = next((i for i, p in enumerate(files) if order(p)[0] > 0), len(files))
            files.insert(at, path)
        else:
            files.append(path)
    return files


# -- checking the chain ------------------------------------------------------------------------


@dataclass
class Verification:
    """What ``syncd audit verify`` reports: counts, notes, and every problem found."""

    log: Path
    records: int = 0
    legacy: int = 0
    files: int = 0
    first: int | None = None  # the number of the oldest record kept
    anchor: dict[str, Any] | None = None  # the anchor the chain starts from, if any
    head: Point | None = None
    last: Point = field(default_factory=lambda: Point(0, GENESIS))
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) == MAX_PROBLEMS:
            self.problems.append("… more problems not listed")
        elif len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def summary(self) -> str:
        """One line: what was checked, from where to where."""
        if not self.ok:
            return (
                f"{self.log}: NOT intact — {len(self.problems)} problem(s) above "
                f"({self.records} records in {self.files} file(s) read)"
            )
        if not self.records:
            return f"{self.log}: ok — no records yet"
        start = (
            f"from the retention anchor at record {self.anchor['seq']} "
            f"({str(self.anchor.get('time', ''))[:10]})"
            if self.anchor
            else "from the first record"
        )
        legacy = (
            f", of which {self.legacy} unkeyed (written before the chain was keyed)"
            if self.legacy
            else ""
        )
        head = f"; head at record {self.head.seq}" if self.head else "; no head yet"
        return (
            f"{self.log}: ok — {self.records} records (numbers {self.first}–{self.last.seq}) in "
            f"{self.files} file(s){legacy}, {start}{head}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": str(self.log),
            "ok": self.ok,
            "records": self.records,
            "legacy_records": self.legacy,
            "files": self.files,
            "first_record": self.first,
            "anchor": self.anchor,
            "head": None if self.head is None else self.head.seq,
            "last_record": self.last.seq,
            "problems": self.problems,
            "notes": self.notes,
        }


class _Chain:
    """Walks records in order, checking each against the one before it."""

    def __init__(self, key: bytes | None, anchors: list[dict[str, Any]], out: Verification):
        self.key = key
        self.anchors = {a["mac"]: a for a in anchors}
        self.by_seq = {a["seq"]: a for a in anchors}
        self.out = out
        self.expect: Point | None = None  # (next seq, prev MAC); None before the first record
        self.keyed_seen = False
        self.values: dict[int, str] = {}  # seq → mac of the last GROUP_MAX + 1 records

    def _start(self, where: str, seq: int | None, prev: str) -> Point:
        """Where the kept chain begins: the genesis, or an anchor retention wrote."""
        # the chain's start is a point a head may name too (a crash before the first head)
        if prev == GENESIS:
            self.values[0] = GENESIS
            return Point(1, GENESIS)
        anchor = self.anchors.get(prev)
        if anchor is not None:
            self.out.anchor = anchor
            self.values[anchor["seq"]] = prev
            return Point(anchor["seq"] + 1, prev)
        self.out.problem(
            f"{where}: the records before record {seq if seq is not None else '?'} are missing "
            "(deleted, and no retention anchor covers them)"
        )
        return Point(seq if seq is not None else 1, prev)

    def feed(self, where: str, rec: dict[str, Any]) -> None:
        keyed = "mac" in rec
        raw_seq = rec.get("seq") if keyed else None
        seq = raw_seq if isinstance(raw_seq, int) else None
        prev = rec.get("prev")
        if (keyed and seq is None) or not isinstance(prev, str):
            self.out.problem(f"{where}: not a chained audit record")
            return
        if not keyed and "hash" not in rec:
            self.out.problem(f"{where}: not a chained audit record")
            return
        if self.expect is None:
            self.expect = self._start(where, seq, prev)
            self.out.first = self.expect.seq
        number = seq if seq is not None else self.expect.seq
        label = f"{where} (record {number})"
        if seq is not None:
            if self.key is None:
                raise AuditError("keyed records but no key")  # read_key's callers check first
            if seq != self.expect.seq:
                if seq > self.expect.seq:
                    self.out.problem(
                        f"{label}: {_span(self.expect.seq, seq - 1)} missing (deleted)"
                    )
                else:
                    self.out.problem(
                        f"{label}: out of order or repeated (record {self.expect.seq} expected)"
                    )
            elif prev != self.expect.mac:
                self.out.problem(f"{label}: chain broken (does not follow record {seq - 1})")
            if not hmac.compare_digest(_mac(self.key, rec), str(rec["mac"])):
                self.out.problem(
                    f"{label}: record edited or not written by syncd (MAC does not match)"
                )
            value = str(rec["mac"])
            self.keyed_seen = True
        else:
            if self.keyed_seen:
                self.out.problem(
                    f"{label}: an unkeyed record after the keyed chain began (rewritten?)"
                )
            elif prev != self.expect.mac:
                self.out.problem(
                    f"{label}: chain broken (a record before it was removed or inserted)"
                )
            body = {k: v for k, v in rec.items() if k != "hash"}
            if _digest(prev, body) != rec.get("hash"):
                self.out.problem(f"{label}: record was edited (hash mismatch)")
            value = str(rec.get("hash"))
            self.out.legacy += 1
        anchor = self.by_seq.get(number)
        if anchor is not None and anchor["mac"] != value:
            self.out.problem(f"{label}: not the record the retention anchor of {number} names")
        self.out.records += 1
        # the MACs of the last GROUP_MAX + 1 records: a head a group behind is checked by them
        self.values[number] = value
        self.values.pop(number - GROUP_MAX - 1, None)
        self.expect = Point(number + 1, value)

    @property
    def last(self) -> Point:
        if self.expect is None:
            return Point(0, GENESIS)
        return Point(self.expect.seq - 1, self.expect.mac)


def verify_audit(path: Path, state_dir: Path) -> Verification:
    """Check the whole log: every record's MAC (or legacy hash) and its place in the chain, the
    start (genesis or a retention anchor) and the end (the head in the state directory)."""
    out = Verification(path)
    head = read_head(state_dir)
    key = read_key(state_dir)
    anchors = read_anchors(state_dir)
    out.head = head
    files = audit_files(path)
    chain = _Chain(key, anchors, out)
    for file in files:
        try:
            raw = file.read_bytes() if not file.name.endswith(".gz") else None
            lines = _lines(file)
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            out.problem(f"{file.name}: cannot be read ({exc})")
            continue
        if any(line.strip() for line in lines):
            out.files += 1
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError
            except ValueError:
                torn = file == path and n == len(lines) and raw is not None and raw[-1:] != b"\n"
                if torn:
                    out.notes.append(
                        f"{file.name}:{n}: an unfinished last line (a write cut by a crash), "
                        "not counted; the next record removes it"
                    )
                else:
                    out.problem(f"{file.name}:{n}: not an audit record (not JSON)")
                continue
            if key is None and "mac" in rec:
                raise AuditError(
                    f"{state_dir / KEY_FILE}: the audit key is missing, so the log cannot be "
                    "checked; restore it from the state directory's backup"
                )
            chain.feed(f"{file.name}:{n}", rec)
            if "mac" in rec and isinstance(rec.get("seq"), int):
                try:
                    exact = line in _line_as_written(rec)
                except (TypeError, ValueError):
                    exact = False
                if not exact:
                    # its values may be intact (the MAC says so) but the bytes are not what
                    # syncd wrote: a key given twice shows a grep the forged value first
                    out.problem(
                        f"{file.name}:{n} (record {rec['seq']}): line edited (spaces, order, "
                        "escapes or a key given twice: not as syncd writes it)"
                    )
    out.last = chain.last
    _check_end(out, path, state_dir, head, key, chain)
    return out


def _check_end(
    out: Verification,
    path: Path,
    state_dir: Path,
    head: Point | None,
    key: bytes | None,
    chain: _Chain,
) -> None:
    """The log's end against the head kept outside it."""
    last = chain.last
    head_path = state_dir / HEAD_FILE
    if head is None:
        if key is not None:
            out.problem(
                f"{head_path}: the audit head is missing; the newest records cannot be checked "
                "(deleted with it?)"
            )
        elif out.records:
            out.notes.append(
                f"an unkeyed log written before syncd keyed its chain ({out.legacy} records): "
                "not tamper-evident until the next record seals it"
            )
        return
    if head.seq > last.seq:
        if not path.exists():
            where = f"{path}: missing"
        elif path.stat().st_size == 0 and out.records == 0:
            where = f"{path}: empty"
        else:
            where = f"{path}: ends at record {last.seq}"
        out.problem(
            f"{where}, but the head ({head_path}) is at record {head.seq}: "
            f"{_span(last.seq + 1, head.seq)} missing (deleted, or the log cut or replaced)"
        )
    elif head.seq == last.seq:
        if head.mac != last.mac:
            out.problem(
                f"{path}: record {last.seq} is not the record the head ({head_path}) names "
                "(replaced)"
            )
    elif head.seq == last.seq - 1 and chain.values.get(head.seq) == head.mac:
        out.notes.append(
            f"record {last.seq} is one past the head: a crash between writing it and the head "
            "(its MAC is good); the next record moves the head on"
        )
    elif last.seq - head.seq <= GROUP_MAX and chain.values.get(head.seq) == head.mac:
        # a group commit's records chain from the head with good MACs (the chain above
        # checked each): only the key's holder wrote them, a crash came before the head
        out.notes.append(
            f"{_span(head.seq + 1, last.seq)} past the head: a crash between writing a group "
            "of records and the head (their MACs are good); the next record moves the head on"
        )
    else:
        out.problem(
            f"{path}: {_span(head.seq + 1, last.seq)} past the head ({head_path}, record "
            f"{head.seq}): the head was rolled back or the log does not belong to it"
        )


# -- writing -------------------------------------------------------------------------------------


def _span(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first}–{last}"


def _month_index(stamp: str) -> int | None:
    m = re.match(r"(\d{4})-(\d{2})", stamp)
    return int(m[1]) * 12 + int(m[2]) - 1 if m else None


class AuditLog:
    """Appends audit records to the keyed chain; rotates and prunes the log on opening.

    One record (or one group, see :meth:`grouped`) at a time under ``audit.lock`` (a ``syncd
    decide`` may write while the daemon's run does): the head is re-read, the records appended
    and ``fdatasync``'d, then the head replaced. Opening mends what a crash left: an unfinished
    last line is cut, a head a record or a group behind is moved on.
    """

    def __init__(
        self,
        path: Path,
        state_dir: Path,
        keep_months: int = 24,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        make_dirs(path.parent, 0o750)
        private_dir(state_dir)
        self.path = path
        self.state_dir = state_dir
        self.clock = clock
        self.keep_months = max(keep_months, MIN_KEEP_MONTHS)
        self._fd: int | None = None
        self._pending: list[dict[str, Any]] = []  # recorded, not yet written (see grouped)
        self._grouping = False
        pending: list[dict[str, Any]] = []
        with self._locked():
            self._cut_torn_tail()
            self.key = self._open_chain(pending)
            self._catch_up()
            self._rotate()
            pending += self._prune()
        for meta in pending:
            self.record(**meta)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one record and its head: milliseconds
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _cut_torn_tail(self) -> None:
        """A record cut by a crash was never acknowledged (its journal still owes it): remove
        the unfinished line so the next record starts on a line of its own."""
        try:
            with self.path.open("r+b") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size == 0:
                    return
                fh.seek(max(0, size - 65536))
                tail = fh.read()
                if tail.endswith(b"\n"):
                    return
                cut = tail.rfind(b"\n")
                if cut < 0 and size > 65536:
                    return  # one huge line: leave it for verify to report
                fh.truncate(size - len(tail) + cut + 1)
                os.fsync(fh.fileno())
        except FileNotFoundError:
            return

    def _open_chain(self, pending: list[dict[str, Any]]) -> bytes:
        """The key, creating it (and sealing a legacy log) on first use."""
        head = read_head(self.state_dir)
        key = read_key(self.state_dir)
        if key is not None:
            if head is None:  # only a lost head gets here: continue from the log's end
                last = self._last_keyed() or self._legacy_end()
                _write_head(self.state_dir, last)
                pending.append(
                    {
                        "event": "audit-chain",
                        "action": "head-missing",
                        "reason": f"{HEAD_FILE} was missing; the chain continues from record "
                        f"{last.seq}, the last the log holds",
                    }
                )
            return key
        sealed = self._last_keyed()
        if sealed is None and head is not None and head.seq and head != self._legacy_end():
            sealed = head
        if sealed is not None:
            raise AuditError(
                f"{self.state_dir / KEY_FILE}: the audit key is missing, but {sealed.seq} "
                "records were sealed with it; restore it from the state directory's backup (a "
                "new key would make every record so far fail verification)"
            )
        # first use: the head first, then the key (a head without a key is mended above; a key
        # without a head can then only mean a lost head)
        legacy = self._legacy_end()
        _write_head(self.state_dir, legacy)
        key = _create_key(self.state_dir)
        if legacy.seq:
            pending.append(
                {
                    "event": "audit-chain",
                    "action": "keyed-chain-start",
                    "legacy_records": legacy.seq,
                    "legacy_head": legacy.mac,
                    "reason": "the records before this one were written before the chain was "
                    "keyed (sha256 chain); this record seals them",
                }
            )
            self.path.with_name(self.path.name + ".head").unlink(missing_ok=True)
        return key

    def _legacy_end(self) -> Point:
        """The end of an unkeyed (legacy) log: its record count and last hash. A legacy log
        whose oldest files were pruned before anchors existed gets an anchor for its start."""
        files = audit_files(self.path)
        count, last, first_prev = 0, GENESIS, None
        for file in files:
            for line in _lines(file):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(rec, dict) or "hash" not in rec or "mac" in rec:
                    continue
                if first_prev is None:
                    first_prev = str(rec.get("prev", GENESIS))
                count += 1
                last = str(rec["hash"])
        if first_prev not in (None, GENESIS) and not read_anchors(self.state_dir):
            _add_anchor(
                self.state_dir,
                {
                    "seq": 0,
                    "mac": first_prev,
                    "time": self.clock().isoformat(),
                    "reason": "the legacy log's older files were deleted before syncd kept "
                    "anchors; its records are numbered from the oldest kept",
                },
            )
        return Point(count, last)

    def _last_keyed(self) -> Point | None:
        """The newest keyed record the log holds, if any."""
        for file in reversed(audit_files(self.path)):
            rec = _last_record(file)
            if rec is not None and "mac" in rec and isinstance(rec.get("seq"), int):
                return Point(rec["seq"], str(rec["mac"]))
        return None

    def _catch_up(self) -> Point:
        """The head, moved on by the record, or the group of records (``GROUP_MAX`` at most),
        a crash may have left past it: each must chain from the one before and carry a good
        MAC, or the head stays (verify then reports why)."""
        head = read_head(self.state_dir) or Point(0, GENESIS)
        rec = _last_record(self.path)
        if rec is None or not isinstance(rec.get("seq"), int) or rec["seq"] <= head.seq:
            return head
        if rec["seq"] - head.seq > GROUP_MAX:
            return head
        past = [rec] if rec["seq"] == head.seq + 1 else _tail_records(self.path, head.seq)
        moved = head
        for r in past:
            if not (
                "mac" in r
                and r.get("seq") == moved.seq + 1
                and r.get("prev") == moved.mac
                and hmac.compare_digest(_mac(self.key, r), str(r["mac"]))
            ):
                break
            moved = Point(moved.seq + 1, str(r["mac"]))
        if moved != head:
            _write_head(self.state_dir, moved)
        return moved

    def _rotate(self) -> None:
        """A new month starts a new file; the old one is kept as ``<log>.YYYY-MM``."""
        first = _first_record(self.path)
        month = str(first.get("time", ""))[:7] if first else ""
        if not month or month == self.clock().strftime("%Y-%m"):
            return
        target = self.path.with_name(f"{self.path.name}.{month}")
        n = 0
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.{month}.{n}")
        os.replace(self.path, target)
        fsync_dir(self.path.parent)

    def _prune(self) -> list[dict[str, Any]]:
        """Delete the oldest rotated files whose newest record is older than ``keep_months``,
        after an anchor for their last record is kept. Files whose chain does not verify are
        kept (they are evidence)."""
        now = _month_index(self.clock().strftime("%Y-%m"))
        assert now is not None
        old: list[Path] = []
        for file in audit_files(self.path):
            if file == self.path:
                break
            newest = _last_record(file)
            month = _month_index(str(newest.get("time", ""))) if newest else None
            if month is None or month >= now - self.keep_months:
                break
            old.append(file)
        if not old:
            return []
        check = Verification(self.path)
        chain = _Chain(self.key, read_anchors(self.state_dir), check)
        for file in old:
            for n, line in enumerate(_lines(file), start=1):
                try:
                    chain.feed(f"{file.name}:{n}", json.loads(line))
                except (ValueError, AttributeError):
                    check.problem(f"{file.name}:{n}: not JSON")
        if check.problems or chain.last.seq == 0:
            return []  # kept: `syncd audit verify` reports why
        last = chain.last
        when = self.clock().isoformat()
        names = [f.name for f in old]
        _add_anchor(
            self.state_dir,
            {
                "seq": last.seq,
                "mac": last.mac,
                "time": when,
                "files": names,
                "records": check.records,
            },
        )
        for file in old:
            file.unlink()
        fsync_dir(self.path.parent)
        return [
            {
                "event": "audit-chain",
                "action": "retention",
                "pruned_files": names,
                "pruned_through": last.seq,
                "keep_months": self.keep_months,
                "reason": f"records up to {last.seq} older than {self.keep_months} months "
                "deleted; the chain continues from their anchor",
            }
        ]

    def _append_fd(self) -> int:
        """The current file, reopened if it was rotated or removed since."""
        try:
            same = self._fd is not None and os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            if self._fd is not None:
                os.close(self._fd)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_MODE)
            if os.fstat(fd).st_size == 0:
                os.fchmod(fd, LOG_MODE)  # whatever the umask (the unit's is 0077)
            self._fd = fd
        assert self._fd is not None
        return self._fd

    def record(self, **fields: Any) -> None:
        """Append one record, synced with its head before this returns; inside
        :meth:`grouped`, kept until :meth:`commit` (its time is taken now)."""
        taken = CHAIN_FIELDS.intersection(fields)
        if taken:  # the chain's own: a caller's would be overwritten or doubled
            raise ValueError(f"audit record fields {sorted(taken)} are the chain's own")
        event = fields.pop("event", "audit")
        record: dict[str, Any] = {"time": self.clock().isoformat(), "event": event, **fields}
        self._pending.append(record)
        if not self._grouping or len(self._pending) >= GROUP_MAX:
            self.commit()

    @contextmanager
    def grouped(self) -> Iterator[AuditLog]:
        """Records are kept until :meth:`commit` (a run's apply commits once per batch of
        actions); what is left is committed on leaving, also on an error."""
        self._grouping = True
        try:
            yield self
        finally:
            self._grouping = False
            self.commit()

    def commit(self) -> None:
        """Write the kept records: one write, one ``fdatasync``, then the head once."""
        if not self._pending:
            return
        records, self._pending = self._pending, []
        with self._locked():
            head = self._catch_up()
            fd = self._append_fd()
            lines = []
            for record in records:
                record.update(seq=head.seq + 1, prev=head.mac)
                # the line is the canonical form the MAC covers, the MAC added last: one
                # encoding per record (this runs once per create, on slapd's time); readers
                # parse the line, and verify() encodes the record without its mac again
                body = _canonical(record)
                mac = _sign(self.key, body)
                record["mac"] = mac
                head = Point(record["seq"], mac)
                lines.append(_keyed_line(body, mac) + b"\n")
            write_synced(fd, b"".join(lines), self.path)
            for _ in records:  # each record is on disk; a crash here leaves the head behind
                crash_point("audit written")
            _write_head(self.state_dir, head)

    def close(self) -> None:
        self.commit()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def open_audit(config: Config, clock: Callable[[], datetime] | None = None) -> AuditLog:
    """The configured audit log (``paths.audit_log``, ``audit.keep_months``)."""
    return AuditLog(
        config.paths.audit_log,
        config.paths.state,
        config.audit.keep_months,
        **({"clock": clock} if clock else {}),
    )


# -- reading -------------------------------------------------------------------------------------


def _records(path: Path) -> Iterator[dict[str, Any]]:
    for file in audit_files(path):
        try:
            lines = _lines(file)
        except (OSError, UnicodeDecodeError, EOFError):
            continue
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # an unfinished last line
            if isinstance(rec, dict):
                yield rec


def recorded(path: Path, run_ids: set[str]) -> set[tuple[str, str, str]]:
    """(run, action, uid) of every record of these runs in the log's last two files."""
    out: set[tuple[str, str, str]] = set()
    for file in audit_files(path)[-2:]:
        try:
            lines = _lines(file)
        except (OSError, UnicodeDecodeError, EOFError):
            continue
        for line in lines:
            if not any(r in line for r in run_ids):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("run_id") in run_ids:
                for uid in (rec.get("uid"), rec.get("new_uid")):
                    if uid:
                        out.add((rec["run_id"], str(rec.get("action")), uid))
    return out


def audit_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every audit record of every kept file, oldest first (the reports count them): changes
    to accounts only (``event`` "audit"), not the log's own bookkeeping."""
    return (r for r in _records(path) if r.get("event", "audit") == "audit")


def history(path: Path, uid: str) -> list[dict[str, Any]]:
    """Every audit record of one account, following renames (transfers) both ways."""
    records = [r for r in _records(path) if r.get("event", "audit") == "audit"]
    names: set[Any] = {uid.lower()}
    changed = True
    while changed:
        changed = False
        for r in records:
            pair = {r.get("uid"), r.get("new_uid")} - {None}
            if pair & names and not pair <= names:
                names |= pair
                changed = True
    return [r for r in records if r.get("uid") in names or r.get("new_uid") in names]
