"""Apply a plan durably: the audit log, the run journal and fsync'd credential slips around
the core's applier, so a crash at any point is recovered by the next run.

Group commit: the applier goes through the plan in batches of ``BATCH`` actions, and each of
the journal's start records, the slips, the audit records and the journal's end records is
synced once per batch, in that order, instead of once per action (six syncs per created
account before). Why a crash at any point of a batch loses nothing: docs/architecture.md, "The
run journal and crash recovery".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.audit import open_audit
from connectors.config import Config
from connectors.journal import Journal, pay_password_debts
from connectors.journal import with_crash_points as journal_crash_points
from connectors.outcome import RunOutcome
from connectors.slips import SlipWriter, holders
from connectors.store import StateStore
from syncd.applier import RunResult, apply_plan
from syncd.model import Action, ActionKind, Plan
from syncd.orgs import Catalogue
from syncd.ports import Directory

# Actions per batch. Bigger batches sync less often; what a crash costs grows with them (the
# passwords of a batch whose slips were not synced are issued again, its audit records are
# written by the next run as "interrupted"), and so does the time a SIGTERM waits for the
# batch in flight: 64 creates are ~0.1 s on a durable slapd.
BATCH = 64


class _Intents:
    """The run journal; the creates, moves and links of the plan were told to the directory
    before the first change (``OpenLdapDirectory.remember_planned``: their names kept beside
    the snapshot until a whole read holds them), and those a batch skipped (never sent: the
    run was asked to stop) are taken back as it ends. Found by an attack: a run killed
    mid-apply had recorded none of the mailboxes it made, and one deleted by hand afterwards
    had its name given to a namesake. One write for the whole plan, not one per batch (that
    cost 3-4 % of a run of 20,000 creates); a kill at any point leaves every one recorded, and
    one never made is then taken for vanished, its name kept for the same person."""

    def __init__(self, journal: Journal, forget: Callable[[Sequence[Action]], None]) -> None:
        self.journal, self.forget = journal, forget

    def started(self, batch: Sequence[tuple[int, Action]]) -> None:
        self.journal.started(batch)

    def finished(self, batch: Sequence[tuple[int, Action, str]]) -> None:
        self.journal.finished(batch)
        skipped = [a for _, a, how in batch if how == "skipped" and a.kind in _NAMING]
        if skipped:
            self.forget(skipped)


_NAMING = (ActionKind.CREATE, ActionKind.MOVE, ActionKind.LINK)


def apply_durably(
    config: Config,
    plan: Plan,
    directory: Directory,
    catalogue: Catalogue,
    outcome: RunOutcome,
    keep: Callable[[RunResult], None] | None = None,
    *,
    mass_change: bool = False,
    **apply_kwargs: Any,
) -> None:
    """Apply ``plan`` with the audit log, the run journal and durable slips around it.

    ``keep`` saves what the run learnt before the journal is removed, so a crash in between
    is still recovered from the journal. Password debts of dead runs that this apply paid (a
    slip written for the account) are settled before the journal goes, too.
    """
    profile = config.effective
    audit = open_audit(config)
    journal = Journal(config.paths.state, outcome.run_id)
    slips = SlipWriter(
        config.paths.outbox,
        outcome.run_id,
        holders(plan, outcome.snapshots, outcome.accounts),  # employee number, office
    )
    remember = getattr(directory, "remember_planned", None)
    forget = getattr(directory, "forget_planned", None)
    directory = journal_crash_points(directory)
    journal.begin(plan)
    if callable(remember):
        remember([a for a in plan.actions if a.kind in _NAMING and a.employee_number])
    try:
        if mass_change:
            audit.record(
                run_id=outcome.run_id,
                action="allow-mass-change",
                reason="operator override of the safety limits for this run",
            )
        with audit.grouped():  # the applier commits once per batch
            outcome.result = apply_plan(
                plan,
                directory,
                audit,
                profile,
                catalogue,
                config.domain,
                outcome.run_id,
                clock=lambda: datetime.now(UTC),
                journal=_Intents(journal, forget) if callable(forget) else journal,
                on_slips=slips.add_many,
                retries=config.directory.retry_delays,
                batch=BATCH,
                **apply_kwargs,
            )
    finally:
        audit.close()
    journal.flush()  # the last batch's end records ('owed' ones among them) before anything
    outcome.applied = True
    if slips.slips:
        outcome.slip_files = slips.finish(config, catalogue)
        outcome.warnings += slips.warnings
    pay_password_debts(StateStore(config.paths.state), outcome.result)
    if keep is not None:
        keep(outcome.result)
    journal.end()  # the run is whole: its actions are in the audit log
