"""What a run reads before the directory: the configuration, the catalogue, the roster
files (each validated into a snapshot or rejected with its errors), and the lifecycle inputs
(the mail server's activity, the notified absences).
"""

from __future__ import annotations

import csv
import errno
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import yaml

from connectors import activity as activity_sources
from connectors.config import Config, ConfigError, parse_config
from connectors.lifecycle_files import read_exemptions
from connectors.regulations import safe_load
from connectors.roster import read_table
from connectors.roster.files import MAX_BYTES
from syncd.errors import SyncdError
from syncd.inbox import kind_problem, safe_name
from syncd.intake import read_roster
from syncd.model import Exemption, emp_key
from syncd.orgs import Catalogue, CatalogueError, parse_catalogue
from syncd.plan.lifecycle import effective as effective_clocks
from syncd.regulation import Lifecycle
from syncd.roster import RosterError, RowError, Snapshot, Table
from syncd.state import LocalState

ROSTER_SUFFIXES = {".csv", ".txt", ".xlsx", ".xlsm", ".tsv"}


def load_config(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SyncdError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [
                f"{path}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                "save the file as UTF-8"
            ]
        ) from None
    return parse_config(text, path)


def load_catalogue(path: Path) -> Catalogue:
    """The organisation catalogue from YAML (a list, or ``orgs:`` list) or CSV."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CatalogueError([f"{path}: cannot read: {exc.strerror}"]) from exc
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        return parse_catalogue((f"{path.name}:{i}", r) for i, r in enumerate(rows, start=2))
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError([f"{path}: not valid YAML: {exc}"]) from exc
    if isinstance(data, dict):
        data = data.get("orgs")
    if not isinstance(data, list):
        raise CatalogueError([f"{path}: expected a list of organisations (or orgs: [...])"])
    entries = []
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise CatalogueError([f"{path.name}: entry {i}: must be a mapping"])
        entries.append((f"{path.name}: entry {i} ({item.get('code', '?')})", item))
    return parse_catalogue(entries)


@dataclass
class Rejected:
    """A file's errors as lines, and its row errors as data (``problems``: the HR result
    groups them by column and message, with the rows and values)."""

    source: str
    errors: list[str]
    problems: tuple[RowError, ...] = ()


def read_snapshots(
    files: Sequence[Path],
    catalogue: Catalogue,
    config: Config,
    restrict: Mapping[Path, set[str]] | None = None,
    contents: Mapping[Path, bytes] | None = None,
) -> tuple[list[Snapshot], list[Rejected]]:
    """Read and validate each file; ``restrict`` keeps only some organisations of a file.
    A file in ``contents`` is parsed from those bytes (read through ``read_checked``), never
    opened again by its path: the entry may have been replaced by a link since."""
    snapshots: list[Snapshot] = []
    rejected: list[Rejected] = []
    for path in files:
        try:
            if contents is not None and path in contents:
                table = _table_of(contents[path], path.name, config.roster.sheet)
            else:
                table = read_table(path, config.roster.sheet)
            snap = read_roster(
                table, catalogue, config.roster.columns, config.roster.accept_valid_rows
            )
        except RosterError as exc:
            rejected.append(Rejected(path.name, [str(exc)]))
            continue
        if snap.rejected:
            rejected.append(
                Rejected(
                    path.name,
                    [
                        *map(str, snap.errors),
                        f"{path.name}: rejected whole; nothing from it was applied",
                    ],
                    snap.errors,
                )
            )
            continue
        if snap.errors:
            rejected.append(Rejected(path.name, [*map(str, snap.errors)], snap.errors))
        if restrict is not None and path in restrict:
            keep = restrict[path]
            snap = replace(
                snap,
                people=tuple(p for p in snap.people if p.org in keep),
                authoritative=snap.authoritative & frozenset(keep),
            )
        snapshots.append(snap)
    return snapshots, rejected


class NotRead(Exception):
    """An entry syncd does not read, and why (content-free: what it is, never what it holds)."""


def too_big(size: int) -> str | None:
    if size > MAX_BYTES:
        return f"{size} bytes, more than the {MAX_BYTES} a roster may be: not read"
    return None


def read_checked(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path``, read from a descriptor opened without following a link and
    checked with ``fstat`` (the file checked is the file read: only a regular file with one
    name, ``syncd.inbox.kind_problem``), and that ``fstat``. The one rule for reading what HR
    put in the inbox, for the daemon and the CLI alike: HR can make a link there to a secret
    the service user (or root) can read. Raises ``NotRead`` for an entry that is not read, and
    ``OSError`` when it cannot be opened or read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRead("symbolic link: not read") from None
        if exc.errno == errno.ENXIO:
            raise NotRead("socket: not read") from None
        raise
    try:
        st = os.fstat(fd)
        why = kind_problem(st.st_mode, st.st_nlink) or too_big(st.st_size)
        if why is not None:
            raise NotRead(why)
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_BYTES:
                raise NotRead(too_big(total) or "too big: not read")
        return b"".join(chunks), st
    finally:
        os.close(fd)


def _table_of(raw: bytes, name: str, sheet: str | None) -> Table:
    """``read_table`` of exactly ``raw``: through a private copy under the file's own name
    (its errors cite it, its suffix decides CSV or XLSX) in a fresh 0700 folder, removed at
    once. ``read_table`` takes a path only; the copy is what makes the bytes parsed the bytes
    checked and read."""
    with tempfile.TemporaryDirectory(prefix="syncd-roster-") as folder:
        copy = Path(folder) / name
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
        return read_table(copy, sheet)


def inbox_files(config: Config, notices: list[str] | None = None) -> list[Path]:
    """The roster files in the inbox as ``lstat`` sees them: regular files with one name
    (the daemon's rule); any other entry with a roster's name is left out, with a one-line
    notice naming it in ``notices``."""
    inbox = config.paths.inbox
    try:
        entries = sorted(os.scandir(inbox), key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for entry in entries:
        if Path(entry.name).suffix.lower() not in ROSTER_SUFFIXES:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        why = kind_problem(st.st_mode, st.st_nlink)
        if why is None:
            out.append(inbox / entry.name)
        elif notices is not None:
            notices.append(f"inbox: {safe_name(entry.name)} skipped ({why})")
    return out


def read_inbox(config: Config, notices: list[str]) -> dict[Path, bytes]:
    """Each roster file of the inbox → its bytes, read by ``read_checked`` (what a run
    without ``--roster`` reads); an entry not read gets a one-line notice in ``notices``."""
    out: dict[Path, bytes] = {}
    for path in inbox_files(config, notices):
        try:
            out[path] = read_checked(path)[0]
        except NotRead as exc:
            notices.append(f"inbox: {safe_name(path.name)} skipped ({exc})")
        except OSError as exc:
            notices.append(
                f"inbox: {safe_name(path.name)} skipped (cannot be read: {exc.strerror}): not read"
            )
    return out


@dataclass(frozen=True)
class LifecycleInputs:
    """What the clocks read besides the directory: activity by kind, its sources, leaves."""

    activity: dict[str, dict[str, datetime]]
    available: frozenset[str]  # kinds some source reports; the directory reports logins
    exemptions: dict[str, list[Exemption]]

    def lifecycle(self, config: Config) -> Lifecycle:
        """The profile's clocks that these sources can drive (see plan.lifecycle.effective)."""
        return effective_clocks(config.effective.lifecycle, self.available)[0]


def all_exemptions(inputs: LifecycleInputs, state: LocalState) -> dict[str, list[Exemption]]:
    """The exemptions file's absences and those the rosters declared (kept in state)."""
    out: dict[str, list[Exemption]] = {}
    for source in (inputs.exemptions, state.exemptions):
        for emp, items in source.items():
            out.setdefault(emp_key(emp), []).extend(items)
    return out


def lifecycle_inputs(config: Config, remember: bool = True) -> LifecycleInputs:
    """The mail server's activity (``lifecycle.activity_sources``, ``activity_file``) and the
    exemptions file, when configured; ``remember`` False keeps no reading progress (for a
    command that must save nothing)."""
    lc = config.lifecycle
    sources = activity_sources.configured(config, remember)
    activity, kinds = activity_sources.collect(sources)
    exemptions = read_exemptions(lc.exemptions_file) if lc.exemptions_file else {}
    return LifecycleInputs(activity, frozenset({"login"} | kinds), exemptions)
