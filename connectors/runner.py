"""One reconcile run, as the CLI (and later the daemon) performs it.

Reads the configuration, catalogue and roster files, reads the directory once, plans with the
pure core, and — unless it is a dry run or a safety limit refuses the plan — applies it, writes
the audit log, the credential slips and the run report, and saves local state.
"""

from __future__ import annotations

import csv
import hashlib
import io
import smtplib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
import yaml

from connectors.config import Config, parse_config
from connectors.directory import OpenedDirectory
from connectors.directory import open_directory as open_profile
from connectors.journal import Journal, pay_audit_debts, pay_password_debts, take_over
from connectors.journal import with_crash_points as journal_crash_points
from connectors.lifecycle_files import CsvActivitySource, FileArchive, read_exemptions
from connectors.mailer import SmtpMailer
from connectors.roster import read_table
from connectors.runlock import RunLock
from connectors.secrets import bind_password
from connectors.snapshots import SnapshotRegistry
from connectors.store import (
    AuditLog,
    Debts,
    SlipWriter,
    StateStore,
    new_run_id,
    write_private,
)
from syncd.applier import RunResult, apply_plan
from syncd.errors import SyncdError
from syncd.intake import read_roster
from syncd.model import Account, Action, ActionKind, Exemption, Plan, emp_key
from syncd.notices import lock_warning
from syncd.orgs import Catalogue, CatalogueError, parse_catalogue
from syncd.plan import PlanInput, make_plan
from syncd.plan.lifecycle import Event, warnings_due
from syncd.plan.lifecycle import effective as effective_clocks
from syncd.plan.lifecycle import forecast as lifecycle_forecast
from syncd.plan.states import MANUAL_LOCK, TransitionRefused, manual_lock, transition
from syncd.ports import ActivitySource, Directory, Mailer, Scope
from syncd.regulation import Lifecycle
from syncd.report import counts_line, decisions_text
from syncd.roster import RosterError, Snapshot
from syncd.state import LocalState

ROSTER_SUFFIXES = {".csv", ".txt", ".xlsx", ".xlsm", ".tsv"}
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SyncdError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
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
    source: str
    errors: list[str]


@dataclass
class RunOutcome:
    run_id: str
    plan: Plan | None = None
    result: RunResult | None = None
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    slip_files: list[Path] = field(default_factory=list)
    report_path: Path | None = None
    applied: bool = False
    warned: int = 0  # lock warnings mailed this run
    accounts_by_state: dict[str, int] = field(default_factory=dict)  # managed persons read
    snapshots: list[Snapshot] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """README "Exit codes"; when several apply, the first of: 3 a safety limit refused the
        run or held a stage back (the rest applied), 1 actions failed, 2 input rejected."""
        if self.plan is not None and (self.plan.refused or self.plan.held):
            return EXIT_REFUSED
        if self.result is not None and self.result.failed:
            return EXIT_FAILED
        if self.rejected:
            return EXIT_BAD_INPUT
        return EXIT_OK


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
                )
            )
            continue
        if snap.errors:
            rejected.append(Rejected(path.name, [*map(str, snap.errors)]))
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
    """Everything a run reads before the directory: files, catalogue, clocks, local state."""

    files: list[Path]
    catalogue: Catalogue
    snapshots: list[Snapshot]
    lifecycle: LifecycleInputs
    org_scope: frozenset[str] | None
    scope: Scope
    store: StateStore
    state: LocalState
    debts: Debts


def _read_inputs(config: Config, req: RunRequest, outcome: RunOutcome) -> Inputs:
    catalogue = load_catalogue(config.orgs)
    lifecycle = lifecycle_inputs(config)
    files = (
        [] if req.sweep else list(req.rosters) if req.rosters is not None else inbox_files(config)
    )
    snapshots, outcome.rejected = read_snapshots(files, catalogue, config, req.restrict)
    outcome.snapshots = snapshots
    log.info(
        "run started",
        files=[p.name for p in files],
        dry_run=req.dry_run,
        rejected=[r.source for r in outcome.rejected],
    )
    org_scope: frozenset[str] | None = None
    scope = Scope()
    if req.scoped:
        org_scope = frozenset(
            {p.org for s in snapshots for p in s.people}
            | {o for s in snapshots for o in s.authoritative}
        )
        scope = Scope(
            orgs=org_scope,
            employee_numbers={p.employee_number for s in snapshots for p in s.people},
        )
    store = StateStore(config.paths.state)
    state = store.load()
    state.tombstones |= FileArchive(config.archive_dir).tombstones()
    # Dead runs' journals become debts kept until paid (a plan only looks: it saves nothing).
    debts, dead = take_over(config, store, state, save=not req.dry_run)
    if dead.files:
        outcome.warnings.append(
            f"{len(dead.files)} earlier run(s) died with {dead.unfinished} action(s) "
            "unfinished; re-planned from the directory"
        )
    return Inputs(files, catalogue, snapshots, lifecycle, org_scope, scope, store, state, debts)


@dataclass
class Seen:
    """What the directory holds for this run: the accounts in scope and the whole namespace."""

    accounts: list[Account]
    namespace: list[Account]


def _read_directory(
    config: Config,
    req: RunRequest,
    inp: Inputs,
    directory: Directory,
    run_id: str,
    outcome: RunOutcome,
) -> Seen:
    accounts = directory.read(inp.scope) if not req.scoped or inp.org_scope else []
    # every uid and address of the whole base, whatever the scope: no run may give out a
    # name held elsewhere (a scoped read sees only its organisations)
    namespace = directory.names()
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
        outcome.warnings.append(
            "new one-time passwords owed (an interrupted run may have set them without a "
            f"slip) for {', '.join(sorted(debts.passwords))}"
        )
    for a in accounts:
        if a.managed and a.kind.value == "person":
            outcome.accounts_by_state[a.state.value] = (
                outcome.accounts_by_state.get(a.state.value, 0) + 1
            )
    return Seen(accounts, namespace)


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
    state.tombstones |= plan.retired_names
    state.remember_exemptions(p for snap in snapshots for p in snap.people)


def _run(config: Config, req: RunRequest, hooks: RunHooks, run_id: str) -> RunOutcome:
    """Plan and (unless ``dry_run``) apply one reconcile: inputs, directory, plan, apply."""
    now = req.now or datetime.now(UTC)
    outcome = RunOutcome(run_id)
    inp = _read_inputs(config, req, outcome)
    state, store = inp.state, inp.store
    directory = hooks.directory or open_directory(config, outcome.warnings)
    try:
        seen = _read_directory(config, req, inp, directory, run_id, outcome)
        plan = outcome.plan = _make_plan(config, req, inp, seen, now)
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
        elif applies:
            _learn(state, plan, None, inp.snapshots)
        if applies and req.scoped:
            remember_rosters(config, inp.files, inp.snapshots)
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
        if not req.dry_run:  # a plan changes nothing, not even the pending decisions
            store.save(state)
    finally:
        if hooks.directory is None:
            close_directory(directory)
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


def remember_rosters(config: Config, files: Sequence[Path], snapshots: Sequence[Snapshot]) -> None:
    """An operator's ``reconcile --roster`` is HR's latest word for the organisations its
    files speak for, exactly as a file filed through the inbox: the nightly full run must
    re-apply it, not an older inbox file (which would re-arm requests the newer file dropped,
    revoke people it added, forget its absences). A copy is kept in the state directory: the
    operator's file may be edited or deleted later."""
    inbox = config.paths.inbox.resolve()
    by_sha = {snap.sha256: snap for snap in snapshots if snap.authoritative}
    registry = SnapshotRegistry(config.paths.state)
    keep = config.paths.state / "rosters"
    for path in files:
        if inbox in path.resolve().parents:
            continue  # the inbox files what it takes (processed/YYYY/MM) itself
        data = path.read_bytes()
        snap = by_sha.get(hashlib.sha256(data).hexdigest())
        if snap is None:
            continue
        copy = keep / f"{snap.sha256[:16]}-{path.name}"
        if not copy.exists():
            write_private(copy, data)
        registry.record(copy, snap.authoritative)


def close_directory(directory: Directory) -> None:
    """Close a directory this module opened (profiles that hold a connection have close())."""
    close = getattr(directory, "close", None)
    if callable(close):
        close()


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
    audit = AuditLog(config.paths.audit_log)
    journal = Journal(config.paths.state, outcome.run_id)
    slips = SlipWriter(config.paths.outbox, outcome.run_id)
    directory = journal_crash_points(directory)
    journal.begin(plan)
    try:
        if mass_change:
            audit.record(
                run_id=outcome.run_id,
                action="allow-mass-change",
                reason="operator override of the safety limits for this run",
            )
        outcome.result = apply_plan(
            plan,
            directory,
            audit,
            profile,
            catalogue,
            config.domain,
            outcome.run_id,
            clock=lambda: datetime.now(UTC),
            journal=journal,
            on_slip=slips.add,
            retries=config.directory.retry_delays,
            **apply_kwargs,
        )
    finally:
        audit.close()
    outcome.applied = True
    if slips.slips:
        outcome.slip_files = slips.finish(profile.must_change_article)
    pay_password_debts(StateStore(config.paths.state), outcome.result)
    if keep is not None:
        keep(outcome.result)
    journal.end()  # the run is whole: its actions are in the audit log


def send_warnings(
    config: Config,
    accounts: Sequence[Account],
    inputs: LifecycleInputs,
    now: datetime,
    state: LocalState,
    catalogue: Catalogue,
    outcome: RunOutcome,
    mailer: Mailer | None,
) -> int:
    """Mail each person (and their organisation) once before an inactivity lock."""
    assert config.lifecycle.warn_days_before
    due = warnings_due(
        accounts,
        inputs.lifecycle(config),
        inputs.activity,
        all_exemptions(inputs, state),
        now,
        config.lifecycle.warn_days_before,
        state.warned,
    )
    if not due:
        return 0
    mailer = mailer or SmtpMailer(config.smtp)
    sent = 0
    audit = AuditLog(config.paths.audit_log)
    try:
        for acc, ev, key in due:
            to = [f"{acc.uid}@{config.domain}"]
            org = catalogue.orgs.get(acc.org or "")
            if config.smtp.notify_org and org is not None:
                to.append(f"{org.mailbox}@{config.domain}")
            subject, body = lock_warning(acc, ev, config.domain)
            try:
                mailer.send(to, subject, body)
            except (OSError, smtplib.SMTPException) as exc:
                outcome.warnings.append(f"warning to {acc.uid} not sent: {exc}")
                audit.record(
                    run_id=outcome.run_id,
                    action="warn",
                    uid=acc.uid,
                    to=to,
                    result="failed",
                    error=str(exc),
                    article=ev.article,
                )
                continue
            state.warned.add(key)
            sent += 1
            audit.record(
                run_id=outcome.run_id,
                action="warn",
                uid=acc.uid,
                to=to,
                result="ok",
                reason=f"inactivity lock due {ev.when:%Y-%m-%d}: {ev.reason}",
                article=ev.article,
            )
    finally:
        audit.close()
    return sent


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


def lifecycle_inputs(config: Config) -> LifecycleInputs:
    """Imported mail activity and the exemptions file, when configured."""
    lc = config.lifecycle
    sources: list[ActivitySource] = (
        [CsvActivitySource(lc.activity_file)] if lc.activity_file else []
    )
    activity: dict[str, dict[str, datetime]] = {}
    available = {"login"}
    for source in sources:  # per kind, the newest of all sources wins
        available |= source.kinds()
        for address, kinds in source.last_activity().items():
            seen = activity.setdefault(address, {})
            for kind, when in kinds.items():
                seen[kind] = max(when, seen.get(kind, when))
    exemptions = read_exemptions(lc.exemptions_file) if lc.exemptions_file else {}
    return LifecycleInputs(activity, frozenset(available), exemptions)


def forecast(
    config: Config, now: datetime, days: int, directory: Directory | None = None
) -> list[tuple[Event, Account]]:
    """What the lifecycle clocks will do in the next ``days`` days."""
    inputs = lifecycle_inputs(config)
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


def report_text(outcome: RunOutcome, files: Sequence[Path]) -> str:
    """The run report: Vietnamese and English headings, what was done, what was not and why."""
    plan = outcome.plan
    lines = [f"syncd — báo cáo lần chạy / run report {outcome.run_id}"]
    lines.append(f"Tệp / files: {', '.join(p.name for p in files) or '(none)'}")
    for w in outcome.warnings:
        lines.append(f"Cảnh báo / warning: {w}")
    for r in outcome.rejected:
        lines.append(f"Lỗi dữ liệu / input errors in {r.source}:")
        lines += [f"  {e}" for e in r.errors]
    if plan is not None:
        if plan.refused:
            lines.append(f"TỪ CHỐI / REFUSED by a safety limit: {plan.refused}")
            lines.append("Nothing was changed. Re-run with --allow-mass-change if this is meant.")
        if plan.held:
            rest = "was applied" if outcome.applied else "would apply"
            lines.append(
                f"TẠM GIỮ / HELD BACK by a safety limit ({len(plan.held)}); "
                f"the rest of the run {rest}:"
            )
            lines += [f"  {h}" for h in plan.held]
        lines.append(f"Kế hoạch / plan: {counts_line(plan.counts())}")
        for n in plan.notices:
            lines.append(f"Ghi chú / notice: {n}")
        if plan.decisions:
            lines.append(f"Chờ quyết định / pending decisions ({len(plan.decisions)}):")
            lines += ["  " + x for x in decisions_text(plan.decisions).splitlines()]
    res = outcome.result
    if res is not None:
        done = len(res.outcomes) - len(res.failed)
        lines.append(f"Đã thực hiện / applied: {done} ok, {len(res.failed)} failed")
        for o in res.failed:
            lines.append(f"  FAILED {o.action.kind.value} {o.action.uid}: {o.error}")
    elif plan is not None and not plan.refused:
        lines.append("Chưa áp dụng / not applied (plan only)" if plan.actions else "Nothing to do.")
    if outcome.warned:
        lines.append(f"Cảnh báo sắp khóa / lock warnings mailed: {outcome.warned}")
    if outcome.slip_files:
        folder = outcome.slip_files[0].parent
        orgs = sorted({p.stem for p in outcome.slip_files})
        lines.append(
            f"Phiếu mật khẩu / credential slips (CSV + HTML, mode 0600): {folder}/ "
            f"for {', '.join(orgs)}"
        )
    return "\n".join(lines) + "\n"


def summary_dict(outcome: RunOutcome) -> dict[str, Any]:
    res = outcome.result
    return {
        "run_id": outcome.run_id,
        "applied": outcome.applied,
        "exit_code": outcome.exit_code,
        "refused": outcome.plan.refused if outcome.plan else None,
        "held": list(outcome.plan.held) if outcome.plan else [],
        "rejected": [{"source": r.source, "errors": r.errors} for r in outcome.rejected],
        "failed": [
            {"action": o.action.kind.value, "uid": o.action.uid, "error": o.error}
            for o in (res.failed if res else [])
        ],
        "slips": [str(p) for p in outcome.slip_files],
        "report": str(outcome.report_path) if outcome.report_path else None,
    }
