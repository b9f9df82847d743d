"""Which files in the HR inbox are complete and may be taken (pure; the watcher asks).

A file is taken when it is complete, by any of three documented conventions:
- a ``<name>.done`` marker beside it (the sender writes it last);
- it was renamed into place: uploads under a temporary name (``.part``, ``.tmp``, a leading dot,
  Office's ``~$`` lock files) are never taken, so rename-on-completion just works;
- it stopped changing: the same size and mtime at two looks, the last change at least
  ``settle`` seconds ago.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload", ".filepart", ".swp")
OWN_SUFFIXES = (".done", ".report.txt")


@dataclass(frozen=True)
class Seen:
    size: int
    mtime: float


def is_candidate(name: str) -> bool:
    lower = name.lower()
    return not (lower.startswith((".", "~$")) or lower.endswith(TEMPORARY_SUFFIXES + OWN_SUFFIXES))


def ready(
    listing: Mapping[str, Seen], previous: Mapping[str, Seen], now: float, settle: float
) -> list[str]:
    """The names that are complete now, oldest first (the order HR sent them: a newer file
    is HR's later word and must be applied last), names breaking ties."""
    out = []
    for name, seen in sorted(listing.items(), key=lambda kv: (kv[1].mtime, kv[0])):
        if not is_candidate(name):
            continue
        if f"{name}.done" in listing or (previous.get(name) == seen and now - seen.mtime >= settle):
            out.append(name)
    return out
