"""Deterministic crash points for the crash tests: die like ``kill -9`` at a chosen seam.

``SYNCD_CRASH_AT=<point>:<n>`` makes the process SIGKILL itself right after the n-th
occurrence of ``<point>`` in this process (no cleanup, no flush: exactly what ``kill -9`` does).
Unset (always, outside tests), :func:`crash_point` costs one environment lookup.

- ``journal started``  — the run's plan is written to its journal, nothing applied yet
- ``batch journalled`` — a batch's start records are synced, none of its changes made yet
- ``directory call``   — a change returned from the directory (create, update, move, password,
  state, delete), before its batch's slips, audit records and journal end records
- ``slip written``     — a credential slip line is on disk (a batch's lines are synced
  together, then this point is passed once per line)
- ``audit written``    — an action's audit record is on disk, its journal end record is not (a
  batch's records are synced together, then passed once per record, before the head moves)
- ``batch finished``   — a batch's end records are synced (the batch is whole)
- ``journal finished`` — the run's journal is removed (the run is whole)
- ``inbox filing kept`` — an inbox file's run ended and what is left to do for it (its place,
  report, HR's result) is kept in ``processing/``, nothing of it done yet
- ``inbox filed``      — syncd's copy of an inbox file and its text report are in place, HR's
  result is not, the entry is still in ``processing/``

Actions are applied in batches (:mod:`connectors.durable`): the n-th ``directory call`` may
come before the first ``slip written`` of its batch, and the n-th ``slip written`` or ``audit
written`` comes with the rest of its batch on disk.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "SYNCD_CRASH_AT"
POINTS = frozenset(
    {
        "journal started",
        "batch journalled",
        "directory call",
        "slip written",
        "audit written",
        "batch finished",
        "journal finished",
        "inbox filing kept",
        "inbox filed",
    }
)
_seen: Counter[str] = Counter()


def parse(spec: str) -> tuple[str, int]:
    point, _, count = spec.rpartition(":")
    if point not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"{ENV}={spec!r}: expected '<point>:<n>' with n ≥ 1 and a point among "
            f"{', '.join(sorted(POINTS))}"
        )
    return point, int(count)


def armed() -> bool:
    return bool(os.environ.get(ENV))


def crash_point(name: str) -> None:
    """Die here (SIGKILL) if ``SYNCD_CRASH_AT`` names this point and this is its n-th pass."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    assert name in POINTS, name
    point, count = parse(spec)
    if point != name:
        return
    _seen[name] += 1
    if _seen[name] == count:
        os.kill(os.getpid(), signal.SIGKILL)
