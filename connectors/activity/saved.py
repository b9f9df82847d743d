"""What an activity source has seen so far, kept in the state directory between runs.

A mail log is read once: the lines already read are not read again, so what they said (the
newest login, send and receive per address) must be kept beside the position reached, in the
same file, written in one atomic replace. A crash between reading and saving only means the
next run reads the same lines again; a position is never saved without what it covered.
The file is 0600 in a 0700 folder: addresses and times of people's mail are personal data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.store import private_dir, write_private
from syncd.plan.lifecycle import activity_key, kind_of

Seen = dict[str, dict[str, datetime]]  # address → activity key → newest


def record(seen: Seen, address: str, kind: str, source: str, when: datetime) -> None:
    """Keep ``when`` if it is the newest ``kind`` of ``address`` (one key per kind)."""
    per = seen.setdefault(address.lower(), {})
    old = next((k for k in per if kind_of(k)[0] == kind), None)
    if old is None or when > per[old]:
        if old is not None:
            del per[old]
        per[activity_key(kind, source)] = when


def merge(into: Seen, other: Seen) -> None:
    """Per address and kind, the newest of both wins, with the source that saw it."""
    for address, kinds in other.items():
        for key, when in kinds.items():
            kind, source = kind_of(key)
            record(into, address, kind, source, when)


@dataclass
class Saved:
    """One source's position (``where``: whatever the source needs) and what it has seen."""

    path: Path
    where: dict[str, Any] = field(default_factory=dict)
    seen: Seen = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path, source_id: str) -> Saved:
        """The saved progress of ``source_id``; an unreadable file starts over (a full
        re-read), which costs time but never skips a line."""
        digest = hashlib.sha256(source_id.encode("utf-8")).hexdigest()[:16]
        path = folder / f"{digest}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            seen = {
                a: {k: datetime.fromisoformat(w) for k, w in kinds.items()}
                for a, kinds in data["seen"].items()
            }
            return cls(path, dict(data["where"]), seen)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls(path)

    def save(self, source_id: str) -> None:
        private_dir(self.path.parent)
        data = {
            "source": source_id,
            "where": self.where,
            "seen": {
                a: {k: w.isoformat() for k, w in sorted(kinds.items())}
                for a, kinds in sorted(self.seen.items())
            },
        }
        write_private(self.path, json.dumps(data, ensure_ascii=False, indent=0))
