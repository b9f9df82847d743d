"""One reconcile run, as the CLI (and later the daemon) performs it.

Reads the configuration, catalogue and roster files, reads the directory once, plans with the
pure core, and — unless it is a dry run or a safety limit refuses the plan — applies it, writes
the audit log, the credential slips and the run report, and saves local state.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from connectors.audit import open_audit
from connectors.config import Config
from connectors.directory import OpenedDirectory
from connectors.directory import open_directory as open_profile
from connectors.directory_snapshot import SNAPSHOT_FILE
from connectors.durable import apply_durably
from connectors.journal import pay_audit_debts, take_over
from connectors.lifecycle_files import FileArchive
from connectors.loading import (
    LifecycleInputs,
    all_exemptions,
    lifecycle_inputs,
    load_catalogue,
    read_inbox,
    read_snapshots,
)
from connectors.lock_warnings import next_warning_at, send_warnings
from connectors.outcome import RunOutcome, report_text
from connectors.quiet import Quiet, inputs_key, is_quiet, recall, remember
from connectors.runlock import ChangedMeanwhile, RunLock, held_elsewhere, looking
from connectors.secrets import bind_password
from connectors.snapshots import SnapshotRegistry
from connectors.store import (
    Debts,
    StateStore,
    new_run_id,
    write_private,
)
from syncd.applier import RunResult
from syncd.errors import SyncdError
from syncd.model import (
    Account,
    Action,
    ActionKind,
    Named,
    Plan,
    emp_key,
    given_out,
    names_held,
)
from syncd.orgs import Catalogue
from syncd.plan import PlanInput, make_plan
from syncd.plan.lifecycle import Event
from syncd.plan.lifecycle import forecast as lifecycle_forecast
from syncd.plan.states import MANUAL_LOCK, TransitionRefused, manual_lock, transition
from syncd.ports import Directory, Mailer, ReadIncomplete, Scope
from syncd.roster import Snapshot
from syncd.state import LocalState


def open_directory(config: Config, warnings: list[str]) -> OpenedDirectory:
    """The directory of the configured profile (connectors.directory.PROFILES)."""
    return open_profile(config.directory, bind_password(config.directory, warnings), config.domain)


@dataclass(frozen=True)
class RunRequest:
    """What one reconcile is asked to do.

    ``rosters`` None: the inbox; ``sweep``: no roster (organisation mailboxes and the clocks);
    ``full``: the rosters given stand for every organisation (the nightly run), otherwise a
    run is scoped to the organisations its files name. ``restrict`` keeps only some
    organisations of a file (the daemon's latest accepted roster per organisation).
    """

    rosters: Sequence[Path] | None = None
    sweep: bool = False
    full: bool = False
    restrict: Mapping[Path, set[str]] | None = None
    now: datetime | None = None
    dry_run: bool = False
    allow_mass_change: bool = False

    @property
    def scoped(self) -> bool:
        return self.rosters is not None and not self.sweep and not self.full


@dataclass
class RunHooks:
    """How the caller follows or steers a run (the daemon, the CLI, tests)."""

    directory: Directory | None = None  # None: open the configured one
    should_stop: Callable[[], bool] | None = None
    progress: Callable[[Action], None] | None = None
    on_plan: Callable[[Plan], None] | None = None
    mailer: Mailer | None = None


def run(
    config: Config,
    *,
    rosters: Sequence[Path] | None = None,
    sweep: bool = False,
    full: bool = False,
    restrict: Mapping[Path, set[str]] | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    allow_mass_change: bool = False,
    directory: Directory | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[Action], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    mailer: Mailer | None = None,
    lock_timeout: float = 300.0,
    what: str = "syncd reconcile",
) -> RunOutcome:
    """Plan and (unless ``dry_run``) apply one reconcile, holding the run lock to apply.

    A plan alone takes no lock: it changes nothing.
    """
    req = RunRequest(rosters, sweep, full, restrict, now, dry_run, allow_mass_change)
    hooks = RunHooks(directory, should_stop, progress, on_plan, mailer)
    run_id = new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)  # on every log line of the run
    try:
        if dry_run:
            return _run(config, req, hooks, run_id)
        with RunLock(config.paths.state, what, lock_timeout):
            return _run(config, req, hooks, run_id)
    finally:
        structlog.contextvars.unbind_contextvars("run_id")


log = structlog.get_logger("syncd.run")


@dataclass
class Inputs:
    """Everything a run reads before the directory: files, catalogue, clocks, local state.

    The rosters are parsed by ``_parse_rosters``, after ``_quiet`` found this run is not a
    repeat of the last quiet one (connectors/quiet.py)."""

    files: list[Path]
    contents: dict[Path, bytes]  # the inbox's files as taken (read once, never by path again)
    catalogue: Catalogue
    lifecycle: LifecycleInputs
    store: StateStore
    state: LocalState
    debts: Debts
    dead_runs: int  # journals of dead runs taken over this run
    snapshots: list[Snapshot] = field(default_factory=list)
    org_scope: frozenset[str] | None = None
    scope: Scope = field(default_factory=Scope)


def _read_inputs(config: Config, req: RunRequest, outcome: RunOutcome) -> Inputs:
    catalogue = load_catalogue(config.orgs)
    # a plan saves nothing, not even how far it read the mail logs
    lifecycle = lifecycle_inputs(config, remember=not req.dry_run)
    contents: dict[Path, bytes] = {}
    if req.sweep:
        files: list[Path] = []
    elif req.rosters is not None:
        files = list(req.rosters)
    else:  # the inbox as the daemon reads it: never through a link HR made there
        contents = read_inbox(config, outcome.warnings)
        files = list(contents)
    store = StateStore(config.paths.state)
    state = store.load()
    state.tombstones |= FileArchive(config.archive_dir).tombstones()
    # Dead runs' journals become debts kept until paid (a plan only looks: it saves nothing).
    if req.dry_run:
        # a run applying has its journal open: a plan would take its actions for a dead run's
        # and plan their passwords again (found by an attack: HR's check said the two people
        # being created would get new passwords); no run starts while the journals are read
        with looking(config.paths.state) as holder:
            if holder is not None:
                raise ChangedMeanwhile(holder)
            debts, dead = take_over(config, store, state, save=False)
    else:
        debts, dead = take_over(config, store, state, save=True)
    if dead.files:
        outcome.warnings.append(
            f"{len(dead.files)} earlier run(s) died with {dead.unfinished} action(s) "
            "unfinished; re-planned from the directory"
        )
    return Inputs(files, contents, catalogue, lifecycle, store, state, debts, len(dead.files))


def _parse_rosters(config: Config, req: RunRequest, inp: Inputs, outcome: RunOutcome) -> None:
    """The run's roster files parsed and checked, and the scope they give a scoped run."""
    inp.snapshots, outcome.rejected = read_snapshots(
        inp.files, inp.catalogue, config, req.restrict, inp.contents
    )
    outcome.snapshots = inp.snapshots
    log.info(
        "run started",
        files=[p.name for p in inp.files],
        dry_run=req.dry_run,
        rejected=[r.source for r in outcome.rejected],
    )
    if req.scoped:
        snapshots = inp.snapshots
        inp.org_scope = frozenset(
            {p.org for s in snapshots for p in s.people}
            | {o for s in snapshots for o in s.authoritative}
        )
        inp.scope = Scope(
            orgs=inp.org_scope,
            employee_numbers={p.employee_number for s in snapshots for p in s.people},
        )


@dataclass
class Seen:
    """What the directory holds for this run: the accounts in scope and the whole namespace."""

    accounts: list[Account]
    namespace: Sequence[Named]


def _some(uids: Iterable[str], shown: int = 10) -> str:
    """The first ``shown`` uids and how many more: one line of a report, not 190 uids (each
    owed password is named again on the slip of the run that pays it)."""
    every = sorted(uids)
    more = f" and {len(every) - shown} more" if len(every) > shown else ""
    return ", ".join(every[:shown]) + more


def _read_directory(
    config: Config,
    req: RunRequest,
    inp: Inputs,
    directory: Directory,
    run_id: str,
    outcome: RunOutcome,
) -> Seen:
    # every uid and address of the whole base, whatever the scope: no run may give out a
    # name held elsewhere (a scoped read sees only its organisations). Read first: a scoped
    # read finds the unkeyed accounts and old addresses of its organisations in it.
    namespace = directory.names()
    accounts = directory.read(inp.scope) if not req.scoped or inp.org_scope else []
    blind = int(getattr(directory, "unreadable_csns", 0))
    if blind:
        outcome.warnings.append(
            f"{blind} directory entries have no entryCSN the service DN may read: every run "
            "reads the whole directory (correct, slower); give it read access to entryCSN "
            "(config/ldap/acl.ldif; syncd doctor names them)"
        )
    debts = inp.debts
    if debts.audit and not req.dry_run:
        # audit records owed by dead runs, from what the directory shows now (whole base)
        seen = accounts if inp.scope.orgs is None else directory.read(Scope())
        pay_audit_debts(config, inp.store, debts, seen, run_id)
    if debts.passwords and inp.scope.orgs is None:
        # a whole read: an owed account that is gone has no password left to re-issue
        present = {a.uid for a in accounts}
        for uid in [u for u in debts.passwords if u not in present]:
            del debts.passwords[uid]
        if not req.dry_run:
            inp.store.save_debts(debts)
    if debts.passwords:
        outcome.owed = set(debts.passwords)
        outcome.warnings.append(
            "new one-time passwords owed (an interrupted run may have set them without a "
            f"slip) for {_some(debts.passwords)}"
        )
    for a in accounts:
        if a.managed and a.kind.value == "person":
            outcome.accounts_by_state[a.state.value] = (
                outcome.accounts_by_state.get(a.state.value, 0) + 1
            )
    return Seen(accounts, namespace)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the directory is read and planned.

    Reading 100,000 entries allocates millions of objects that all stay alive; each time a
    generation fills, the collector walks everything alive so far to find no garbage (28 % of
    a no-op run at 100k, measured with py-spy; issue 14). Nothing read or planned forms
    cycles that must be freed during the run, and the collector is re-enabled whatever
    happens (a failed read included).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _make_plan(config: Config, req: RunRequest, inp: Inputs, seen: Seen, now: datetime) -> Plan:
    plan = make_plan(
        PlanInput(
            snapshots=inp.snapshots,
            catalogue=inp.catalogue,
            profile=config.effective,
            scheme=config.scheme,
            domain=config.domain,
            accounts=seen.accounts,
            now=now,
            namespace=seen.namespace,
            state=inp.state,
            safety=config.safety,
            adoption=config.adoption,
            alias_days=config.alias_days,
            org_scope=inp.org_scope,
            allow_mass_change=req.allow_mass_change,
            activity=inp.lifecycle.activity,
            activity_available=inp.lifecycle.available,
            exemptions=all_exemptions(inp.lifecycle, inp.state),
            recover_passwords=frozenset(inp.debts.passwords),
            zone=config.zone,
        )
    )
    log.info(
        "planned",
        accounts=len(seen.accounts),
        counts=plan.counts(),
        refused=plan.refused,
        held=len(plan.held_actions),
        decisions=len(plan.decisions),
    )
    return plan


def _learn(
    state: LocalState, plan: Plan, result: RunResult | None, snapshots: Sequence[Snapshot]
) -> None:
    """What a run that was allowed to apply keeps: requests done or spent, tombstones, the
    notified absences its rosters declare."""
    if result is not None:
        state.done_requests |= result.done_requests
        state.tombstones |= result.tombstones
    state.done_requests |= plan.requests_done
    state.done_requests -= plan.requests_withdrawn
    for name, employee in plan.retired_names.items():
        # an old address whose alias ended: its person's again if they move back, nobody
        # else's (a tombstone, before: moving back gave a numbered name); with no employee
        # number, nobody's
        if employee.strip():
            state.former.setdefault(name, employee)
        else:
            state.tombstones.add(name)
    state.remember_exemptions((p for snap in snapshots for p in snap.people), plan.now.date())
    state.remember_listings(
        ((org, snap.people) for snap in snapshots for org in snap.authoritative), plan.now
    )


def _run(config: Config, req: RunRequest, hooks: RunHooks, run_id: str) -> RunOutcome:
    """Plan and (unless ``dry_run``) apply one reconcile: inputs, directory, plan, apply."""
    now = req.now or datetime.now(UTC)
    outcome = RunOutcome(run_id)
    inp = _read_inputs(config, req, outcome)
    directory = hooks.directory or open_directory(config, outcome.warnings)
    if hooks.directory is None:
        use_snapshot(directory, config.paths.state, keep=not req.dry_run, scoped=req.scoped)
    try:
        with _cyclic_gc_paused():
            key = _quiet_key(config, req, inp, directory)
            # a run that read the directory in full (the nightly one) plans in full: that read
            # is what repairs drift the entryCSNs cannot show
            full_read = str(getattr(directory, "last_read", "")).startswith("full")
            repeated = (
                recall(config.paths.state, _kind(req), key, now) if key and not full_read else None
            )
            if repeated is None:
                _parse_rosters(config, req, inp, outcome)
                seen = _read_directory(config, req, inp, directory, run_id, outcome)
                outcome.accounts = seen.accounts
                _remember_vanished(config, directory, inp, outcome, seen, keep=not req.dry_run)
                plan = outcome.plan = _make_plan(config, req, inp, seen, now)
                if _names_outdated(directory, plan, seen):
                    # the plan passed over names deleted since the last whole read: read the
                    # names whole and plan again (the scope's accounts with them)
                    namespace = directory.names()
                    seen = Seen(directory.read(inp.scope) if inp.org_scope else [], namespace)
                    outcome.accounts = seen.accounts
                    _remember_vanished(config, directory, inp, outcome, seen, keep=not req.dry_run)
                    plan = outcome.plan = _make_plan(config, req, inp, seen, now)
                _check_given_out(directory, plan)
        if repeated is not None:
            _repeat(config, repeated, req, inp, outcome, hooks, now)
        else:
            # what was read stays until the run ends: the apply's collections need not walk it
            gc.freeze()
            _after_plan(config, req, inp, directory, hooks, outcome, seen, plan, now, key)
    finally:
        # what a daemon job leaves is collected after the job (connectors/daemon.py)
        gc.unfreeze()
        if hooks.directory is None:
            close_directory(directory)
    if req.dry_run:
        # A plan holds no run lock. A run that applied meanwhile saved the state after this
        # plan loaded it, and the directory it read since may be that run's (found by an
        # attack: a name kept for a departed person, saved by that run, looked free to a plan
        # that had loaded the state before it and read the snapshot after); a run still
        # applying has not saved it yet (found by the next attack: a purged uid, deleted and
        # not yet tombstoned, was planned back for its person).
        holder = held_elsewhere(config.paths.state)
        if holder is not None:
            raise ChangedMeanwhile(holder)
        if inp.store.text() != inp.store.loaded_text:
            raise ChangedMeanwhile()
    outcome.report_path = config.paths.state / "reports" / f"{outcome.run_id}.txt"
    write_private(outcome.report_path, report_text(outcome, inp.files))
    res = outcome.result
    log.info(
        "run finished",
        exit_code=outcome.exit_code,
        applied=outcome.applied,
        failed=len(res.failed) if res else 0,
        report=str(outcome.report_path),
    )
    return outcome


def _remember_vanished(
    config: Config,
    directory: Directory,
    inp: Inputs,
    outcome: RunOutcome,
    seen: Seen,
    *,
    keep: bool,
) -> None:
    """Whose the names of the entries this run found gone were (``LocalState.former``): the
    plan gives each back to that person only, never to another; a run that applies keeps
    them (state.json). Found by attacks: a mailbox deleted by hand gave its address to the
    next person of the same name (in another organisation under caobang-2011), and two
    people whose mailboxes were deleted swapped addresses by their order in the roster; an
    entry an access rule hid got a second mailbox its address. Each is "a uid that belonged
    to someone is never given to someone else" (DESIGN.md). ``keep`` (a run that may apply):
    saved at once, since the read has already written the snapshot without those entries."""
    vanished = getattr(directory, "vanished_names", None)
    if not callable(vanished):
        return
    state, loaded = inp.state, dict(inp.state.former)
    gone: list[tuple[str, list[str], str]] = []  # DN, the names it held, whose
    for name in vanished():
        owner = (name.employee_number or "").strip()  # "": an entry without one, nobody's
        held = names_held(name, config.domain)
        for n in sorted(held):
            if not state.former.get(n):  # a known holder never gives way to an unknown one
                state.former[n] = owner
        gone.append((name.dn, sorted(held), owner))
    if not gone:
        # nothing found gone: no name to keep, nothing to say. Never the namespace walked
        # below: in a scoped run it is the snapshot's, and walking it decoded every name of
        # the directory (one organisation's file at 100k: 0.48 s -> 0.81 s, 87 -> 144 MiB)
        return
    # where each holder is now: the whole namespace (a scoped run of another organisation's
    # file has the mover outside its accounts: found by an attack), the accounts read in full
    # (never the gone entries themselves, should a namespace kept from before still hold them)
    gone_dns = {dn.lower() for dn, _, _ in gone}
    present = {
        emp_key(a.employee_number): a.uid
        for a in (*seen.namespace, *seen.accounts)
        if a.employee_number and a.dn.lower() not in gone_dns
    }
    new = sorted(
        n for n, who in state.former.items() if n not in loaded and emp_key(who) not in present
    )
    if new:  # the report says so: an auditor sees why a name is no longer given out
        outcome.warnings.append(
            f"{len(new)} name(s) of mailboxes gone from the directory since the last read "
            f"(deleted or hidden by hand?) are kept for the people who held them: {_some(new)}"
        )
    if not keep:
        return
    if state.former != loaded:
        inp.store.save(state)
        # and the audit log: who held what, found gone when (found by an attack: `syncd
        # history` showed two creates of one name for two people, nothing between)
        audit = open_audit(config)
        try:
            for dn, names, owner in gone:
                if any(loaded.get(n) != state.former.get(n) for n in names):
                    now_at = present.get(emp_key(owner)) if owner else None
                    audit.record(
                        run_id=outcome.run_id,
                        action="names-kept",
                        uid=names[0] if names else None,
                        dn=dn,
                        names=names,
                        employee_number=owner or None,
                        reason=(
                            # found by an attack: syncd's own transfer, read by the next
                            # whole run, was told "deleted or hidden by hand?"
                            f"the entry is gone from this DN and its holder {owner} has the "
                            f"mailbox {now_at} (moved by syncd, or renamed by hand): its "
                            "former names stay theirs only"
                            if now_at
                            else "the mailbox vanished from the directory without syncd "
                            "(deleted or hidden by hand?): its names go to "
                            + (f"the person {owner} only" if owner else "nobody (holder unknown)")
                        ),
                    )
        finally:
            audit.close()
    kept = getattr(directory, "vanished_kept", None)
    if callable(kept):  # saved: the snapshot need not tell them again
        kept()


def _names_outdated(directory: Directory, plan: Plan, seen: Seen) -> bool:
    """Whether a scoped run's plan passed over names that nobody holds on the server: the
    namespace, the snapshot of the last whole read and the recent changes, still held an
    entry deleted since (by hand). Then the directory reads its names whole from now on
    (``read_names_whole``) and the caller plans again. Found by an attack: a person whose
    pre-syncd mailbox (no employee number) was deleted by hand got ``sonlv1.tgg`` from a
    scoped run, ``sonlv.tgg`` from a whole one, for good and with a false reason ("sonlv.tgg
    is taken"). One batched search of the names passed over, in the runs that gave out a
    name past a taken one, none otherwise (``OpenLdapDirectory.deleted_names``)."""
    deleted = getattr(directory, "deleted_names", None)
    widen = getattr(directory, "read_names_whole", None)
    if not getattr(directory, "partial_namespace", False) or not plan.passed_over:
        return False
    if not callable(deleted) or not callable(widen):
        return False
    free = deleted(plan.passed_over, seen.namespace)
    if not free:
        return False
    log.warning(
        "directory names: names the snapshot holds are free on the server (deleted since "
        "the last whole read?); reading the names whole and planning again",
        names=free[:10],
        count=len(free),
    )
    widen()
    return True


def _check_given_out(directory: Directory, plan: Plan) -> None:
    """Ask the server whether any uid or address the plan gives out is held by another
    entry, before anything is applied, when the namespace came from the snapshot and the
    entries whose CSN is recent (a scoped run): an entry whose entryCSN the service DN
    cannot read matches no such search (found by an attack: a second mailbox got an
    address another held). Then nothing is applied, the snapshot is dropped and the next
    run reads the directory whole. A whole read needs no such check: it compares every
    entry's CSN, and reads in full when any is hidden."""
    holders = getattr(directory, "holders", None)
    if not getattr(directory, "partial_namespace", False) or not callable(holders):
        return  # a namespace read whole (or by the delta, which compares every entry's CSN)
    wanted = given_out(plan.actions)
    if not wanted:
        return
    clash = {n: dn for n, dn in holders(wanted).items() if dn != wanted[n]}
    if not clash:
        return
    forget = getattr(directory, "forget_snapshot", None)
    if callable(forget):
        forget()
    some = ", ".join(f"{n} (held by {dn})" for n, dn in sorted(clash.items())[:5])
    raise ReadIncomplete(
        f"{len(clash)} names this plan would give out are already held in the directory by "
        f"entries its read missed: {some}; nothing was changed, and the next run reads the "
        "directory whole (an entry whose entryCSN the service DN cannot read, one written "
        "during the run, or one the directory server dated before the last whole read: its "
        "clock behind this host's; syncd doctor). A plan, which never changes the snapshot, "
        "says so until a reconcile has read the directory whole",
        transient=True,
    )


def _kind(req: RunRequest) -> str:
    return "sweep" if req.sweep else "full"


def _quiet_key(config: Config, req: RunRequest, inp: Inputs, directory: Directory) -> str:
    """The key of this run's inputs (connectors/quiet.py), or "" when it may not repeat a
    quiet run: not a whole run of every organisation (a scoped run, the inbox), debts or dead
    runs to settle, or a directory that cannot tell whether anything changed."""
    if not (req.full or req.sweep) or inp.debts or inp.dead_runs:
        return ""
    fingerprint = getattr(directory, "fingerprint", None)
    digest = fingerprint() if callable(fingerprint) else None
    if not digest:
        return ""
    return inputs_key(
        config,
        _kind(req),
        inp.files,
        req.restrict,
        req.allow_mass_change,
        inp.lifecycle,
        inp.store.loaded_text,
        inp.state.tombstones,
        digest,
    )


def _repeat(
    config: Config,
    quiet: Quiet,
    req: RunRequest,
    inp: Inputs,
    outcome: RunOutcome,
    hooks: RunHooks,
    now: datetime,
) -> None:
    """This run is ``quiet`` again: nothing to plan, apply, learn, warn or save."""
    plan = outcome.plan = quiet.plan(now)
    outcome.repeats = quiet.run_id
    outcome.repeat_ends = quiet.ends.astimezone(config.zone).isoformat(timespec="minutes")
    outcome.accounts_by_state = dict(quiet.accounts_by_state)
    log.info(
        "run started",
        files=[p.name for p in inp.files],
        dry_run=req.dry_run,
        repeats=quiet.run_id,
        until=quiet.ends.isoformat(),
    )
    if hooks.on_plan is not None:
        hooks.on_plan(plan)


def _after_plan(
    config: Config,
    req: RunRequest,
    inp: Inputs,
    directory: Directory,
    hooks: RunHooks,
    outcome: RunOutcome,
    seen: Seen,
    plan: Plan,
    now: datetime,
    key: str,
) -> None:
    """Apply ``plan`` (unless a dry run or refused), learn, warn and save; then record whether
    the run was quiet (connectors/quiet.py)."""
    state, store = inp.state, inp.store
    if hooks.on_plan is not None:
        hooks.on_plan(plan)
    # Pending decisions are kept for `syncd decisions`: this plan's replace those of the
    # organisations its rosters speak for; the others stay (a sweep reads no roster).
    covered = {p.org for snap in inp.snapshots for p in snap.people} | {
        o for snap in inp.snapshots for o in snap.authoritative
    }
    kept = {k: d for k, d in state.decisions.items() if d.org not in covered}
    state.decisions = {**kept, **{d.id: d for d in plan.decisions}}
    applies = not req.dry_run and not plan.refused
    if applies and plan.actions:

        def keep(result: RunResult) -> None:
            _learn(state, plan, result, inp.snapshots)
            store.save(state)  # before the journal goes: requests done are never redone

        apply_durably(
            config,
            plan,
            directory,
            inp.catalogue,
            outcome,
            keep,
            mass_change=req.allow_mass_change,
            progress=hooks.progress,
            archive=FileArchive(config.archive_dir, config.lifecycle.purge_hook),
            should_stop=hooks.should_stop,
        )
        owed = outcome.result.owed_passwords if outcome.result else set()
        if owed:  # created (or perhaps created) with a password nobody can be told
            outcome.warnings.append(
                "the directory's answer to a create was lost and its password could not be "
                "confirmed; the next run issues a new one-time password for " + _some(owed)
            )
    elif applies:
        _learn(state, plan, None, inp.snapshots)
    if applies and (req.scoped or req.rosters is None):
        # the CLI's run of the inbox's files (no daemon to file them): they are HR's latest
        # word too, else the nightly run (`--latest`) re-applies an older file and revokes
        # the people they added (found by an attack)
        remember_rosters(config, inp.files, inp.snapshots, read=inp.contents)
    if applies and config.lifecycle.warn_days_before:
        outcome.warned = send_warnings(
            config,
            seen.accounts,
            inp.lifecycle,
            now,
            state,
            inp.catalogue,
            outcome,
            hooks.mailer,
        )
    if req.dry_run:  # a plan changes nothing, not even the pending decisions
        return
    store.save(state)
    if key:  # a whole run that may be repeated: record whether it was quiet
        kind = _kind(req)
        remember(config.paths.state, _quiet(config, inp, outcome, seen, plan, now, key, kind), kind)


def _quiet(
    config: Config,
    inp: Inputs,
    outcome: RunOutcome,
    seen: Seen,
    plan: Plan,
    now: datetime,
    key: str,
    kind: str,
) -> Quiet | None:
    """This applied run as a quiet run to repeat, or None when it was not one: it did or
    recorded something, a roster was rejected, or ``state.json`` is not as it was loaded."""
    if not is_quiet(plan) or outcome.rejected or outcome.warned:
        return None
    if inp.store.text() != inp.store.loaded_text:
        return None
    until = min(
        (
            t
            for t in (
                plan.quiet_until,
                next_warning_at(config, seen.accounts, inp.lifecycle, now, inp.state),
            )
            if t is not None
        ),
        default=None,
    )
    if until is not None and until <= now:
        return None
    return Quiet(
        kind=kind,
        key=key,
        since=now,
        until=until,
        run_id=outcome.run_id,
        notices=plan.notices,
        accounts_by_state=dict(outcome.accounts_by_state),
    )


def remember_rosters(
    config: Config,
    files: Sequence[Path],
    snapshots: Sequence[Snapshot],
    *,
    read: Mapping[Path, bytes] | None = None,
) -> None:
    """An operator's ``reconcile --roster`` is HR's latest word for the organisations its
    files speak for, exactly as a file filed through the inbox: the nightly full run must
    re-apply it, not an older inbox file (which would re-arm requests the newer file dropped,
    revoke people it added, forget its absences). A copy is kept in the state directory: the
    operator's file may be edited or deleted later. The copy is of the bytes applied: the file
    is read again and kept only when its sha256 is that of a snapshot this run applied.
    ``read``: the bytes the run read of files lying in the inbox (`syncd reconcile` without
    ``--roster``, which takes them where they lie, never through a link); those count too,
    from those bytes (the daemon files what it takes itself)."""
    inbox = config.paths.inbox.resolve()
    by_sha = {snap.sha256: snap for snap in snapshots if snap.authoritative}
    registry = SnapshotRegistry(config.paths.state)
    for path in files:
        if read and path in read:
            data = read[path]  # as the run read it: the inbox's file is not opened again
        elif inbox in path.resolve().parents:
            continue  # the inbox keeps a copy of what it takes itself (connectors/inbox.py)
        else:
            data = path.read_bytes()
        snap = by_sha.get(hashlib.sha256(data).hexdigest())
        if snap is None:
            continue
        registry.accept(data, path.name, snap.authoritative)


def use_snapshot(
    directory: Directory, state: Path, *, keep: bool = True, scoped: bool = False
) -> None:
    """Read the directory through the local snapshot in the state directory where the profile
    can (``connectors/directory_snapshot.py``): a run reads only what changed since the last,
    and everything when the last full read is older than a day's run. ``keep`` False (a
    plan) reads the snapshot without writing it; ``scoped`` takes the namespace from it and
    what changed lately."""
    attach = getattr(directory, "use_snapshot", None)
    if callable(attach):
        attach(state / SNAPSHOT_FILE, keep=keep, scoped=scoped)


def close_directory(directory: Directory) -> None:
    """Close a directory this module opened (profiles that hold a connection have close())."""
    close = getattr(directory, "close", None)
    if callable(close):
        close()


def forecast(
    config: Config, now: datetime, days: int, directory: Directory | None = None
) -> list[tuple[Event, Account]]:
    """What the lifecycle clocks will do in the next ``days`` days."""
    inputs = lifecycle_inputs(config, remember=False)
    owned = directory is None
    directory = directory or open_directory(config, [])
    try:
        accounts = directory.read(Scope())
    finally:
        if owned:
            close_directory(directory)
    return lifecycle_forecast(
        accounts,
        inputs.lifecycle(config),
        inputs.activity,
        all_exemptions(inputs, StateStore(config.paths.state).load()),
        now,
        days,
        zone=config.zone,
    )


def operator_action(
    config: Config,
    uid: str,
    kind: ActionKind,
    reason: str,
    article: str,
    *,
    now: datetime | None = None,
    operator: Mapping[str, Any] | None = None,
) -> RunOutcome:
    """One operator action on one account (lock, restore), applied and audited like a run.

    The account state machine (:func:`syncd.plan.states.transition`) decides, as it does for
    the planner: a change it refuses raises :class:`TransitionRefused` (which says why) before
    anything is written. ``operator`` (who ran the command) goes into the audit log, in a
    record of its own with the run id of the action.
    """
    now = now or datetime.now(UTC)
    outcome = RunOutcome(new_run_id())
    catalogue = load_catalogue(config.orgs)
    lock = RunLock(config.paths.state, f"syncd {kind.value} {uid}").acquire()
    directory = open_directory(config, outcome.warnings)
    try:
        found = [a for a in directory.read(Scope()) if a.uid == uid.lower()]
        if not found:
            raise SyncdError(f"no account {uid!r} under {config.directory.base_dn}")
        acc = found[0]
        if not acc.managed:
            raise SyncdError(f"{uid} is marked unmanaged (syncdManaged: FALSE); not touched")
        try:
            step = transition(acc.state, kind)
            held = manual_lock(acc)
            if kind is ActionKind.LOCK and held:
                raise TransitionRefused(f"is already locked by an operator ({held})")
        except TransitionRefused as exc:
            raise TransitionRefused(f"{kind.value} refused: {acc.uid} {exc}") from exc
        who = dict(operator or {})
        if kind is ActionKind.LOCK and not reason.startswith(MANUAL_LOCK):
            reason = MANUAL_LOCK + reason  # what keeps it from being lifted by anything else
        action = Action(
            kind,
            acc.uid,
            acc.org,
            reason,
            article,
            dn=acc.dn,
            employee_number=acc.employee_number,
            full_name=acc.cn,
            # a security lock over a clock's lock keeps its date (the purge clock runs on)
            since=acc.state_since if step.keeps_since and kind is ActionKind.LOCK else None,
        )
        outcome.plan = Plan(now=now, actions=(action,))
        # who ran it goes on the action's own audit record
        fields = {"operator": who} if who else None
        apply_durably(config, outcome.plan, directory, catalogue, outcome, audit_fields=fields)
    finally:
        directory.close()
        lock.release()
    outcome.report_path = config.paths.state / "reports" / f"{outcome.run_id}.txt"
    write_private(outcome.report_path, report_text(outcome, []))
    return outcome
