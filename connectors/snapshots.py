"""Accepted rosters per organisation: the latest file HR sent for each, kept for full runs.

The inbox files one file at a time; the nightly full run re-applies, for every organisation,
the latest accepted file that covered it (so a change made by hand in the directory is put
right), each file authoritative only for the organisations it is still the latest for.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from connectors.store import write_private


class SnapshotRegistry:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "snapshots.json"

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            return dict(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def record(self, file: Path, orgs: Iterable[str]) -> None:
        data = self._load()
        when = datetime.now(UTC).isoformat(timespec="seconds")
        for org in orgs:
            data[org] = {"file": str(file), "when": when}
        write_private(self.path, json.dumps(data, indent=1, sort_keys=True))

    def latest(self) -> dict[Path, set[str]]:
        """file → the organisations it is the latest accepted roster of (files that exist)."""
        out: dict[Path, set[str]] = defaultdict(set)
        for org, entry in self._load().items():
            path = Path(entry["file"])
            if path.exists():
                out[path].add(org)
        return dict(out)
