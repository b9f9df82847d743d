"""The run journal: the plan and each action's start and end, fsync'd, so a crash is mended.

Before applying, a run writes its plan to ``state/journal/<run_id>.jsonl``; each action is
recorded when it starts (with what its audit record needs) and when it ends. A clean end
removes the journal (the audit log is the lasting record). A journal left behind means the run
died (``kill -9``, power loss). The next run that applies turns it into debts kept in the state
directory until each is paid, whatever that run's scope (``connectors.store.Debts``):

- a new one-time password for every account whose password an interrupted action may have set
  without its slip being safely written (paid when a slip for that account is written);
- an audit record for every action that started and has none (paid by a record
  ``result: interrupted`` saying what the directory shows now).

Creations, moves and state changes need no debt: the next plan redoes them from what the
directory holds. Requests a dead run did are counted as done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.audit import fsync_dir, open_audit, recorded, write_synced
from connectors.config import Config
from connectors.crashpoints import armed, crash_point
from connectors.slips import SlipWriter
from connectors.store import Debts, StateStore, private_dir
from syncd.applier import RunResult
from syncd.model import Account, Action, ActionKind, Named, Plan, State, emp_key
from syncd.ports import Directory, Found, Scope
from syncd.state import LocalState

PASSWORD_KINDS = {
    ActionKind.CREATE.value,
    ActionKind.CREATE_ORG_MAILBOX.value,
    ActionKind.RESET_PASSWORD.value,
    ActionKind.RESTORE.value,
}


class Journal:
    """One run's journal. Actions are journalled a batch at a time (group commit): the
    batch's start records in one write and one ``fdatasync`` before any of its changes, its
    end records after its slips and audit records are durable. The order within a batch, and
    why a crash anywhere in it is still recovered, is in docs/architecture.md.

    A batch's end records are written with the next batch's start records, in the same write
    and sync (or by :meth:`flush` after the last batch): one sync less per batch, and every
    sync syncd makes during the creates is one a durable slapd's commits wait behind on the
    same disk. Nothing a crash may leave changes: until they are synced, the batch's actions
    are those whose slips and audit records are durable and whose end is not, which the
    recovery already finds whole (nothing re-issued, nothing rewritten), and the next batch's
    starts are on disk only once the ends are."""

    def __init__(self, state_dir: Path, run_id: str) -> None:
        self.run_id = run_id
        self.path = private_dir(state_dir / "journal") / f"{run_id}.jsonl"
        self._fd: int | None = None
        self._ended: list[dict[str, Any]] = []  # the last batch's end records, not written

    def _write(self, records: Sequence[dict[str, Any]]) -> None:
        assert self._fd is not None
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        write_synced(self._fd, lines.encode(), self.path)

    def begin(self, plan: Plan) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fsync_dir(self.path.parent)  # the journal's name must survive a power loss too
        self._write(
            [
                {
                    "time": datetime.now(UTC).isoformat(),
                    "run_id": self.run_id,
                    "planned": [
                        {"i": i, "kind": a.kind.value, "uid": a.uid}
                        for i, a in enumerate(plan.actions)
                    ],
                }
            ]
        )
        crash_point("journal started")

    def started(self, batch: Sequence[tuple[int, Action]]) -> None:
        ended, self._ended = self._ended, []
        self._write(
            ended
            + [
                {
                    "i": i,
                    "s": "start",
                    "kind": action.kind.value,
                    "uid": action.new_uid or action.uid,
                    # an HR request it carries out: done once its slip is on disk, even if
                    # the run dies before the end record (else it is done twice)
                    **({"request": action.request_key} if action.request_key else {}),
                    # what an audit record of this action needs, if the run dies before
                    # writing it
                    "action": {
                        "uid": action.uid,
                        "new_uid": action.new_uid,
                        "dn": action.dn,
                        "org": action.org,
                        "employee_number": action.employee_number,
                        # Field keys are str, tuples are JSON arrays: written as they are
                        # (no copy per action: this runs once per create, on slapd's time)
                        "attributes": action.attrs,
                        "before": action.before,
                        "reason": action.reason,
                        "article": action.article,
                    },
                }
                for i, action in batch
            ]
        )
        if ended:
            crash_point("batch finished")
        crash_point("batch journalled")

    def finished(self, batch: Sequence[tuple[int, Action, str]]) -> None:
        """The batch's end records, written with the next batch's start records or by
        :meth:`flush`. ``skipped``: never started (SIGTERM, or the directory gone): nothing is
        owed for it, the next run plans it again. Added to those not written yet: a batch
        commits while the next one's creates are out, so two batches may end before the next
        start record."""
        self._ended += [{"i": i, "s": s, "request": a.request_key} for i, a, s in batch]

    def flush(self) -> None:
        """Write the last batch's end records (the apply is over)."""
        if self._ended:
            ended, self._ended = self._ended, []
            self._write(ended)
            crash_point("batch finished")

    def end(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.unlink(missing_ok=True)
        crash_point("journal finished")


@dataclass
class Unfinished:
    """One action a dead run started and did not finish."""

    run_id: str
    i: int
    kind: str
    uid: str  # the uid it leaves (new_uid for a move)
    slipped: bool  # its slip line is on disk (the dead run's CSV): the password is known
    action: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.run_id}#{self.i}"


@dataclass
class Interrupted:
    files: list[Path] = field(default_factory=list)
    actions: list[Unfinished] = field(default_factory=list)
    done_requests: set[str] = field(default_factory=set)
    # (run, uid) of the creates that ended ``owed`` (their answer lost, the password unknown)
    owed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def unfinished(self) -> int:
        return len(self.actions)

    @property
    def recover_passwords(self) -> set[str]:
        """Accounts whose password may have been set with no slip on disk."""
        return {u.uid for u in self.actions if u.kind in PASSWORD_KINDS and not u.slipped}


def interrupted(state_dir: Path, outbox: Path | None = None) -> Interrupted:
    """What journals left by dead runs say, and their slips in ``outbox`` (reads only)."""
    out = Interrupted()
    folder = state_dir / "journal"
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.jsonl")):
        out.files.append(path)
        run_id = path.stem
        started: dict[int, dict[str, Any]] = {}
        # at "\n" only: a reason may hold U+2028 raw, which splitlines() would cut it at
        for line in path.read_bytes().decode("utf-8").split("\n"):
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line: the action it describes counts as unfinished
            if rec.get("s") == "start":
                started[rec["i"]] = rec
            elif rec.get("s") in ("done", "failed", "skipped", "owed"):
                begun = started.pop(rec["i"], None)
                if rec.get("s") == "owed" and begun is not None:
                    out.owed.append((run_id, begun["uid"]))
                if rec.get("s") == "done" and rec.get("request"):
                    out.done_requests.add(rec["request"])
        slipped = (
            {s.uid for s in SlipWriter.resume(outbox, run_id).slips}
            if outbox and started
            else set()
        )
        for i, rec in sorted(started.items()):
            if rec.get("request") and rec["kind"] in PASSWORD_KINDS and rec["uid"] in slipped:
                # its password was set and its slip is on disk: the request is done (an attack
                # found a reset request carried out again, its first slip then stale)
                out.done_requests.add(rec["request"])
            out.actions.append(
                Unfinished(
                    run_id,
                    i,
                    rec["kind"],
                    rec["uid"],
                    rec["uid"] in slipped,
                    rec.get("action") or {"uid": rec["uid"]},
                )
            )
    return out


def settle(info: Interrupted) -> None:
    """The dead runs are taken over (as debts): keep their journals aside for the record."""
    for path in info.files:
        if path.exists():
            path.rename(path.with_suffix(".recovered"))


def found(owed: Mapping[str, Any], accounts: list[Account]) -> tuple[str, Account | None]:
    """What the directory shows now for an interrupted action: its state (or ``absent``) and
    the entry. ``accounts`` must be a read of the whole base."""
    uids = {owed.get("new_uid"), owed.get("uid")} - {None}
    key = owed.get("employee_number")
    by_uid = [a for a in accounts if a.uid in uids]
    hits = by_uid or [a for a in accounts if key and emp_key(a.employee_number) == emp_key(key)]
    if not hits:
        return "absent", None
    acc = next((a for a in hits if a.uid == owed.get("new_uid")), hits[0])
    return acc.state.value if isinstance(acc.state, State) else str(acc.state), acc


class CrashPoints:
    """The Directory a run applies through, with the ``directory call`` crash point after
    every change that returned (tests only: see connectors.crashpoints). Arguments are passed
    through as given, whatever the Directory protocol's signatures become."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner

    def read(self, scope: Scope) -> list[Account]:
        return self.inner.read(scope)

    def names(self) -> Sequence[Named]:
        return self.inner.names()

    def export(self, dn: str) -> str:
        return self.inner.export(dn)

    def create(self, *args: Any, **kwargs: Any) -> str:
        dn = self.inner.create(*args, **kwargs)
        crash_point("directory call")
        return dn

    def create_many(self, *args: Any, **kwargs: Any) -> list[str | Exception]:
        out = self.inner.create_many(*args, **kwargs)
        for got in out:  # each change that returned passes the point once
            if not isinstance(got, Exception):
                crash_point("directory call")
        return out

    def find_created(self, *args: Any, **kwargs: Any) -> tuple[Found, str]:
        return self.inner.find_created(*args, **kwargs)  # a read: no crash point

    def update(self, *args: Any, **kwargs: Any) -> str:
        dn = self.inner.update(*args, **kwargs)
        crash_point("directory call")
        return dn

    def move(self, *args: Any, **kwargs: Any) -> str:
        new_dn = self.inner.move(*args, **kwargs)
        crash_point("directory call")
        return new_dn

    def set_password(self, *args: Any, **kwargs: Any) -> None:
        self.inner.set_password(*args, **kwargs)
        crash_point("directory call")

    def set_state(self, *args: Any, **kwargs: Any) -> None:
        self.inner.set_state(*args, **kwargs)
        crash_point("directory call")

    def delete(self, *args: Any, **kwargs: Any) -> None:
        self.inner.delete(*args, **kwargs)
        crash_point("directory call")


def with_crash_points(directory: Directory) -> Directory:
    """``directory`` itself, unless a crash point is armed (tests)."""
    return CrashPoints(directory) if armed() else directory


def take_over(
    config: Config, store: StateStore, state: LocalState, *, save: bool
) -> tuple[Debts, Interrupted]:
    """The debts kept in the state directory, plus what dead runs' journals add to them.

    With ``save`` (a run that applies, holding the run lock) the debts and the requests the
    dead runs did are saved, the dead runs' slip pages finished and their journals set aside;
    without it (a plan) nothing is written.
    """
    debts = store.load_debts()
    dead = interrupted(config.paths.state, config.paths.outbox)
    state.done_requests |= dead.done_requests
    for path in dead.files:  # oldest first
        run_id = path.stem
        written = SlipWriter.resume(config.paths.outbox, run_id)
        for slip in written.slips:  # a slip on disk pays what an older run owed that account
            if debts.passwords.get(slip.uid, run_id) < run_id:
                del debts.passwords[slip.uid]
        for u in (u for u in dead.actions if u.run_id == run_id):
            debts.audit.setdefault(
                u.key, {**u.action, "run_id": u.run_id, "kind": u.kind, "slipped": u.slipped}
            )
            if u.kind in PASSWORD_KINDS and not u.slipped:
                debts.passwords[u.uid] = u.run_id
        for owner, uid in dead.owed:  # a lost answer the dead run recorded, not yet a debt
            if owner == run_id:
                debts.passwords[uid] = run_id
        if save:
            written.tidy()
        if save and written.slips and not any(written.folder.glob("*.html")):
            written.finish(config)
    if save and dead.files:
        store.save(state)
        store.save_debts(debts)
        settle(dead)
    return debts, dead


def pay_audit_debts(
    config: Config, store: StateStore, debts: Debts, accounts: list[Account], run_id: str
) -> int:
    """Write each owed audit record once, saying what the directory shows now; ``accounts``
    is a read of the whole base. A record already in the log (the run died after writing it)
    is not written again."""
    if not debts.audit:
        return 0
    owed = sorted(debts.audit.items(), key=lambda kv: (kv[1]["run_id"], int(kv[0].split("#")[1])))
    there = recorded(config.paths.audit_log, {o["run_id"] for _, o in owed})
    audit = open_audit(config)
    written = 0
    try:
        for key, o in owed:
            if (o["run_id"], o["kind"], o["uid"]) not in there:
                state, acc = found(o, accounts)
                audit.record(
                    run_id=o["run_id"],
                    action=o["kind"],
                    uid=o["uid"],
                    new_uid=o.get("new_uid"),
                    dn=acc.dn if acc else o.get("dn"),
                    # where the entry is now, for the usage report: a move or transfer whose
                    # run died was made when the entry has its new uid or organisation
                    found_uid=acc.uid if acc else None,
                    found_org=acc.org if acc else None,
                    org=o.get("org"),
                    employee_number=o.get("employee_number"),
                    attributes=o.get("attributes", {}),
                    before=o.get("before", {}),
                    # its slip reached the disk: that password was handed out
                    one_time_password_issued=bool(o.get("slipped")),
                    reason=o.get("reason", ""),
                    article=o.get("article", ""),
                    result="interrupted",
                    found=state,
                    recovered_by=run_id,
                    error="the run died during this action; the directory shows it " + state,
                )
                written += 1
            del debts.audit[key]
    finally:
        audit.close()
    store.save_debts(debts)
    return written


def pay_password_debts(store: StateStore, result: RunResult | None) -> None:
    """Settle owed passwords this apply paid: a slip written for the account (a move carries
    a debt to the account's new uid); and record those it owes: a create whose answer was lost
    and whose password is not known (``RunResult.owed_passwords``), before its journal goes."""
    if result is None:
        return
    debts = store.load_debts()
    if not debts.passwords and not result.owed_passwords:
        return
    before = dict(debts.passwords)
    for o in result.outcomes:
        a = o.action
        if o.ok and a.kind is ActionKind.MOVE and a.new_uid and a.uid in debts.passwords:
            debts.passwords[a.new_uid] = debts.passwords.pop(a.uid)
    for slip in result.slips:
        debts.passwords.pop(slip.uid, None)
    for uid in result.owed_passwords:
        debts.passwords[uid] = result.run_id
    if debts.passwords != before:
        store.save_debts(debts)
