"""Quiet runs: a whole run whose inputs are exactly those of the last quiet one plans nothing.

Why: issue 14 asks that "a run where nothing changed in the roster or the directory does almost
no work". A whole run (the daemon's nightly reconcile and its lifecycle sweep, ``syncd plan |
reconcile --latest``) otherwise decodes every account, parses every roster and plans them all,
to find the same empty plan as last time: ~10 s and ~370 MiB at 100,000 accounts.

What "quiet" means. An applying whole run is *quiet* when its plan had nothing to do (no
action, decision, held stage, refusal, request or retired name), no roster was rejected, no
dead run left debts, and the run left ``state.json`` byte for byte as it found it. Its
**key** is a digest of everything its plan read except the clock:

- the code (every module and data file of ``syncd`` and ``connectors``, by size and mtime, as
  they were when this process started: an upgrade plans anew, and a daemon left running on
  the old code keys as the old code);
- ``syncd.yaml`` as this process loaded it (a daemon not yet reloaded plans with the old one)
  and the organisation catalogue as bytes;
- the run's kind (full or sweep), its roster files (names and bytes), which organisations each
  speaks for, ``--allow-mass-change``;
- the mail server's activity and the exemptions file, as read this run;
- ``state.json`` as bytes, and the archive's tombstones;
- the directory: a digest of every entry's DN and ``entryCSN`` (``fingerprint()`` of the
  profile, from the snapshot's slim read, ``connectors/directory_snapshot.py``). slapd gives
  an entry a new ``entryCSN`` on every add, modify, rename and (lastbind, ppolicy) login, so an
  equal digest means no entry changed; a deleted entry changes the digest too.

And a **horizon**, ``until``: the earliest time its plan could differ by the clock alone
(``Plan.quiet_until``: a lifecycle step falling due, an alias expiring, a notice's date), or a
lock warning falling due (``connectors.lock_warnings.next_warning_at``).

A later whole run with the same key at a time in ``[since, until)`` is that run again: its plan
is empty, as is what it would apply, learn, warn or save; it reports so, naming the run it
repeats, and touches nothing. Two limits keep the nightly safety net: a run whose directory
read was a full one (the snapshot's last full read older than ``FULL_EVERY``, or no snapshot)
plans in full, and no repeat holds longer than ``FULL_EVERY`` after the quiet run. The
entryCSNs cannot show an entry edited offline (``slapcat``, edit, ``slapadd`` keeps them); the
full read and the plan after it do. Any difference, any debt, another profile (no
fingerprint: Active Directory, or a run without the snapshot) and it plans in full, as before.
A plan (dry run) may repeat a quiet run but never records one: ``syncd plan`` writes nothing.

What it costs when it holds: the slim directory read (DNs and CSNs), hashing the inputs; no
roster parsed, no account decoded, no plan. The file (``quiet-runs.json``, 0600) keeps one
record per kind (the daemon alternates sweeps and reconciles); losing it costs one full plan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from connectors.code_version import CODE
from connectors.config import Config
from connectors.directory_snapshot import FULL_EVERY
from connectors.loading import LifecycleInputs
from connectors.store import write_private
from syncd.model import Plan

log = structlog.get_logger("syncd.quiet")

QUIET_FILE = "quiet-runs.json"


@dataclass(frozen=True)
class Quiet:
    """A quiet run, as recorded: what a run with the same ``key`` in ``[since, until)`` is."""

    kind: str  # "full" (the rosters of every organisation) or "sweep" (no roster)
    key: str
    since: datetime  # the quiet run's ``now``
    until: datetime | None  # None: the clock alone never changes its plan
    run_id: str
    notices: tuple[str, ...]
    accounts_by_state: Mapping[str, int]

    @property
    def ends(self) -> datetime:
        """When a repeat stops holding: the horizon, and at the latest ``FULL_EVERY`` after the
        quiet run, so the plan is made again at least as often as the directory is read in
        full (what repairs drift the entryCSNs cannot show: an entry edited offline with
        ``slapcat``/``slapadd`` keeps its CSN; found by an attack)."""
        cap = self.since + FULL_EVERY
        return cap if self.until is None else min(self.until, cap)

    def holds(self, key: str, now: datetime) -> bool:
        return key == self.key and self.since <= now < self.ends

    def plan(self, now: datetime) -> Plan:
        """The plan a run at ``now`` would make: nothing to do, the same notices."""
        return Plan(now=now, actions=(), notices=self.notices, quiet_until=self.until)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = self.since.isoformat()
        out["until"] = self.until.isoformat() if self.until else None
        out["notices"] = list(self.notices)
        out["accounts_by_state"] = dict(self.accounts_by_state)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quiet:
        return cls(
            kind=str(data["kind"]),
            key=str(data["key"]),
            since=_aware(data["since"]),
            until=_aware(data["until"]) if data.get("until") else None,
            run_id=str(data["run_id"]),
            notices=tuple(str(n) for n in data.get("notices", [])),
            accounts_by_state={str(k): int(v) for k, v in data["accounts_by_state"].items()},
        )


def _aware(text: str) -> datetime:
    """A time of the record; one without its offset is refused (a hand edit: comparing it
    with the run's time would fail every run, found by an attack)."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"{text}: a time without its UTC offset")
    return when


def is_quiet(plan: Plan) -> bool:
    """A plan with nothing to do and nothing to record (notices aside)."""
    return not (
        plan.actions
        or plan.decisions
        or plan.refused
        or plan.held
        or plan.held_actions
        or plan.requests_done
        or plan.requests_withdrawn
        or plan.retired_names
    )


def inputs_key(
    config: Config,
    kind: str,
    files: Iterable[Path],
    restrict: Mapping[Path, set[str]] | None,
    allow_mass_change: bool,
    lifecycle: LifecycleInputs,
    state_text: str,
    tombstones: Iterable[str],
    directory: str,
) -> str:
    """The digest of everything a whole run's plan reads but the clock (the module's list)."""
    h = hashlib.sha256()

    def part(label: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        h.update(f"{label}:{len(raw)}\n".encode())
        h.update(raw)

    part("code", CODE)
    # as loaded: a daemon not yet reloaded plans with that, whatever the file says now
    part("config", config.text or config.source.read_text(encoding="utf-8"))
    part("catalogue", config.orgs.read_bytes())
    part("kind", f"{kind} mass={allow_mass_change}")
    for path in files:
        orgs = sorted(restrict.get(path, ())) if restrict is not None else ["*"]
        part("roster", f"{path.name} {' '.join(orgs)}")
        part("bytes", path.read_bytes())
    part("available", " ".join(sorted(lifecycle.available)))
    for what, seen in sorted(lifecycle.activity.items()):
        part("activity", what)
        part("seen", "\n".join(f"{uid} {when.isoformat()}" for uid, when in sorted(seen.items())))
    part("exemptions", repr(sorted((k, repr(v)) for k, v in lifecycle.exemptions.items())))
    part("state", state_text)
    part("tombstones", "\n".join(sorted(tombstones)))
    part("directory", directory)
    return h.hexdigest()


def recall(state_dir: Path, kind: str, key: str, now: datetime) -> Quiet | None:
    """The quiet run this one repeats, or None (then it plans in full)."""
    quiet = _read(state_dir).get(kind)
    if quiet is None or not quiet.holds(key, now):
        return None
    return quiet


def remember(state_dir: Path, quiet: Quiet | None, kind: str) -> None:
    """Record ``quiet`` as the last quiet run of its kind; None forgets the kind's record (a
    run that was not quiet: the record no longer describes the last run)."""
    records = _read(state_dir)
    if quiet is None:
        if kind not in records:
            return
        del records[kind]
    else:
        records[kind] = quiet
    write_private(
        state_dir / QUIET_FILE,
        json.dumps({k: q.to_dict() for k, q in sorted(records.items())}, ensure_ascii=False),
    )


def _read(state_dir: Path) -> dict[str, Quiet]:
    path = state_dir / QUIET_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): Quiet.from_dict(v) for k, v in data.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        # damaged or from another version: it only ever saves work, so a full plan
        log.warning("quiet-run record unreadable; planning in full", error=str(exc))
        return {}
