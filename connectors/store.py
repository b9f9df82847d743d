"""Files syncd writes: local state and run reports (the audit log: audit.py; credential
slips: slips.py).

Anything that may hold a password (slips) or personal data is created mode 0600 inside 0700
directories, atomically (write to a temporary file, fsync, rename).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncd.errors import SyncdError
from syncd.state import LocalState


def make_dirs(path: Path, mode: int) -> list[Path]:
    """Create ``path`` and any missing parent with exactly ``mode`` (not the umask's idea of
    it); return the folders it created."""
    missing = []
    parent = path
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        folder.mkdir(mode=mode, exist_ok=True)
        os.chmod(folder, mode)
    return missing


def private_dir(path: Path) -> Path:
    """``path`` as a 0700 directory; any parent it has to create is 0700 too."""
    make_dirs(path, 0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically, with ``mode`` (0600) from the first byte."""
    if not path.parent.exists():
        private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_MISSING: Any = object()


def _merge_value(base: Any, ours: Any, theirs: Any) -> Any:
    """Three-way merge of one value: our change wins over theirs only where we changed it."""
    if ours == base:
        return theirs
    if theirs in (base, ours):
        return ours
    if all(isinstance(x, dict) for x in (base, ours, theirs)):
        return _merge_items(base, ours, theirs)
    if all(isinstance(x, list) for x in (base, ours, theirs)):
        items = [*base, *ours, *theirs]
        if all(isinstance(x, dict) and "id" in x for x in items):  # records keyed by id
            merged = _merge_items(*({x["id"]: x for x in v} for v in (base, ours, theirs)))
            return list(merged.values())
        if all(isinstance(x, str | int | float | bool) for x in items):  # sets
            b, o, t = set(base), set(ours), set(theirs)
            return sorted((t | (o - b)) - (b - o))
    return ours  # a real conflict on one value: the later writer wins


def _merge_items(base: dict[Any, Any], ours: dict[Any, Any], theirs: dict[Any, Any]) -> Any:
    """Per key; each key's value is taken whole (a resolution, a decision, a debt)."""
    out = {}
    for key in [*theirs, *(k for k in ours if k not in theirs)]:
        b, o, t = (d.get(key, _MISSING) for d in (base, ours, theirs))
        value = t if o is b or o == b else o
        if value is not _MISSING:
            out[key] = value
    return out


def merge_state(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]) -> Any:
    """What to write when we changed ``base`` into ``ours`` while another process wrote
    ``theirs``: field by field, sets by element, records by key."""
    out = {}
    for key in [*theirs, *(k for k in ours if k not in theirs)]:
        b, o, t = (d.get(key, _MISSING) for d in (base, ours, theirs))
        if b is _MISSING and isinstance(o, dict | list) and type(t) is type(o):
            b = type(o)()  # a field new to both writers: merge from empty
        if _MISSING not in (o, t, b):
            value = _merge_value(b, o, t)
        elif o is b or o == b:
            value = t  # we did not touch it
        else:
            value = o  # we added or removed it
        if value is not _MISSING:
            out[key] = value
    return out


class StateFileError(SyncdError):
    """``state.json`` cannot be read as syncd's state (edited by hand, or damaged): bad input
    (exit 2), naming the file and the value, never an internal error."""


class _SyncedJson:
    """One JSON file in the state directory that several processes update (a run, ``syncd
    decide``, ``syncd lock``…): each writes under ``state.lock`` what it changed since it read,
    merged into what is on disk now, so nobody's update is lost."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name("state.lock")
        # what a later write merges against (the file as read, or as we last wrote it), kept
        # as its JSON text and parsed only by a write: a plan never writes, and the parsed
        # base of 100,000 people is ~40 MB held for nothing (issue 14); parsing it again is
        # also cheaper than the deep copy it replaced (0.10 s against 0.21 s)
        self._base = "{}"
        self.loaded = ""  # the text ``read`` found, "" for no file

    def _read(self, text: str | None = None) -> dict[str, Any]:
        if text is None:
            if not self.path.exists():
                return {}
            text = self.path.read_text(encoding="utf-8")
        data = json.loads(text)
        return data if isinstance(data, dict) else {}

    def read(self) -> dict[str, Any]:
        if not self.path.exists():
            self._base = "{}"
            self.loaded = ""
            return {}
        self._base = self.loaded = self.path.read_text(encoding="utf-8")
        return self._read(self._base)

    @contextmanager
    def locked(self) -> Iterator[None]:
        private_dir(self.path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held for a read and a write: milliseconds
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def write(self, ours: dict[str, Any]) -> None:
        with self.locked():
            merged = merge_state(self._read(self._base), ours, self._read())
            write_private(self.path, json.dumps(merged, ensure_ascii=False, indent=1))
        # what we hold now; later saves add only new changes
        self._base = json.dumps(ours, ensure_ascii=False)


@dataclass
class Debts:
    """What dead runs left owed, kept until each is paid (``connectors.journal``).

    ``passwords``: uid → the run whose password for it may have no slip (a new one-time
    password is owed); ``audit``: ``<run>#<i>`` → the interrupted action, whose audit record
    is owed.
    """

    passwords: dict[str, str] = field(default_factory=dict)
    audit: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.passwords or self.audit)

    def to_dict(self) -> dict[str, Any]:
        return {"passwords": dict(sorted(self.passwords.items())), "audit": dict(self.audit)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Debts:
        return cls(dict(data.get("passwords", {})), dict(data.get("audit", {})))


class StateStore:
    """``state.json`` in the state directory, and ``debts.json`` beside it.

    Saving merges: a process saves what it changed since it loaded, into what is on disk, under
    ``state.lock`` — a ``syncd decide`` during a run is not lost when the run saves.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "state.json"
        self._state = _SyncedJson(self.path)
        self._debts = _SyncedJson(state_dir / "debts.json")

    def load(self) -> LocalState:
        try:
            return LocalState.from_dict(self._state.read())
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # JSON errors too
            raise StateFileError(
                f"{self._state.path}: {exc}; nothing was changed. Fix the value, or put back "
                "a copy of the file (state.json holds decisions, tombstones and listings)"
            ) from exc

    def text(self) -> str:
        """``state.json`` as it is on disk now ("" when there is none): a run compares it
        with what it loaded to know it changed nothing (connectors/quiet.py)."""
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    @property
    def loaded_text(self) -> str:
        """``state.json`` exactly as the last ``load`` read it ("" when there was none)."""
        return self._state.loaded

    def save(self, state: LocalState) -> None:
        self._state.write(state.to_dict())

    def load_debts(self) -> Debts:
        return Debts.from_dict(self._debts.read())

    def save_debts(self, debts: Debts) -> None:
        self._debts.write(debts.to_dict())


def new_run_id(now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-<microseconds><random>``: run ids sort in the order runs started,
    also within one second (debts and "the newest slip wins" compare them)."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + f"-{now.microsecond:06d}{os.urandom(2).hex()}"
