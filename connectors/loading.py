"""What a run reads before the directory: the configuration, the catalogue, the roster
files (each validated into a snapshot or rejected with its errors), and the lifecycle inputs
(the mail server's activity, the notified absences).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import yaml

from connectors import activity as activity_sources
from connectors.config import Config, ConfigError, parse_config
from connectors.lifecycle_files import read_exemptions
from connectors.roster import read_table
from syncd.errors import SyncdError
from syncd.intake import read_roster
from syncd.model import Exemption, emp_key
from syncd.orgs import Catalogue, CatalogueError, parse_catalogue
from syncd.plan.lifecycle import effective as effective_clocks
from syncd.regulation import Lifecycle
from syncd.roster import RosterError, RowError, Snapshot
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
        data = yaml.safe_load(text)
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
) -> tuple[list[Snapshot], list[Rejected]]:
    """Read and validate each file; ``restrict`` keeps only some organisations of a file."""
    snapshots: list[Snapshot] = []
    rejected: list[Rejected] = []
    for path in files:
        try:
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


def inbox_files(config: Config) -> list[Path]:
    inbox = config.paths.inbox
    if not inbox.is_dir():
        return []
    return sorted(p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() in ROSTER_SUFFIXES)


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
