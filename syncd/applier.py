"""Execute a plan through a Directory, in batches of actions, auditing each action.

Apply does exactly what the plan says: no re-planning, no extra reads. One failed action does
not stop the others; the result lists every outcome. One-time passwords are generated here,
handed to the directory and to the credential slips, and never to the audit log. Batches let
the journal, the slips and the audit log sync once per batch instead of once per action
(group commit; why a crash loses nothing is in docs/architecture.md), and let a profile have
several creates in flight at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any

from syncd.model import Action, ActionKind, Plan, State, as_lists
from syncd.orgs import Catalogue
from syncd.passwords import Context, generate
from syncd.ports import (
    Archive,
    AuditSink,
    Directory,
    DirectoryError,
    Found,
    NotSent,
    RunJournal,
)
from syncd.regulation import Profile

_NEEDS_PASSWORD = {
    ActionKind.CREATE,
    ActionKind.CREATE_ORG_MAILBOX,
    ActionKind.RESET_PASSWORD,
    ActionKind.RESTORE,
}


@dataclass(frozen=True)
class Slip:
    """One line of a credential slip: who, which mailbox, the one-time password."""

    org: str
    uid: str
    mail: str
    full_name: str
    password: str
    why: str

    def __repr__(self) -> str:  # keep the password out of any accidental log line
        return f"Slip(org={self.org!r}, uid={self.uid!r}, password=<hidden>)"


class Result(StrEnum):
    """How one action ended: done, failed for now (the directory was busy, away, timed out:
    the next run plans it again), or failed for good (refused: schema, access, a conflict)."""

    OK = "ok"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Outcome:
    action: Action
    ok: bool
    error: str = ""
    dn: str | None = None
    result: Result | None = None  # None: derived from ``ok`` (OK, or PERMANENT)

    @property
    def status(self) -> Result:
        if self.result is not None:
            return self.result
        return Result.OK if self.ok else Result.PERMANENT


@dataclass
class RunResult:
    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    slips: list[Slip] = field(default_factory=list)
    done_requests: set[str] = field(default_factory=set)
    tombstones: set[str] = field(default_factory=set)  # uids purged: never issued again
    # uids whose create's answer was lost and whose password is not known to be the one this
    # run sent: a new one-time password is owed (a debt the next run pays with a slip)
    owed_passwords: set[str] = field(default_factory=set)
    stopped: bool = False  # asked to stop before the end of the plan

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


def apply_plan(
    plan: Plan,
    directory: Directory,
    audit: AuditSink,
    profile: Profile,
    catalogue: Catalogue,
    domain: str,
    run_id: str,
    clock: Callable[[], datetime],
    rng: random.Random | None = None,
    progress: Callable[[Action], None] | None = None,
    archive: Archive | None = None,
    should_stop: Callable[[], bool] | None = None,
    journal: RunJournal | None = None,
    on_slips: Callable[[Sequence[Slip]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retries: tuple[float, ...] = (0.5, 2.0, 5.0),
    give_up_after: int = 3,
    audit_fields: Mapping[str, Any] | None = None,
    batch: int = 1,
) -> RunResult:
    """Apply every action of ``plan``; refused plans must never reach here.

    Actions go in batches of at most ``batch`` (group commit): the journal records the batch's
    actions before any of them starts, then the directory changes are made (consecutive
    creates together, :meth:`Directory.create_many`, which a profile may pipeline; every other
    action alone, in the plan's order, after the creates before it returned), then the
    batch's slips go to ``on_slips`` (durably), then its audit records are committed, then the
    journal records how each ended. A crash anywhere in a batch leaves its actions started and
    not ended: the next run re-issues the passwords that have no slip on disk and writes the
    audit records that are not in the log (connectors.journal). ``batch=1`` is one action at a
    time. ``audit_fields`` go on every audit record of the run (who ran an operator command).
    """
    if plan.refused:
        raise ValueError(f"refusing to apply a refused plan: {plan.refused}")
    run = _Run(
        plan, directory, audit, profile, catalogue, domain, run_id, rng, archive, sleep,
        retries, give_up_after, audit_fields or {},
    )  # fmt: skip
    actions = plan.actions
    # While a batch's first creates are with the directory (``create_many``'s ``meanwhile``)
    # syncd does the work between two batches that would otherwise leave the directory
    # waiting: the previous batch's commit (slips, audit records, end records) and the next
    # batch's start records and passwords. Each action's steps keep their order (start
    # record, change, slip, audit record, end record); only neighbouring batches' steps
    # interleave. What a crash may leave is unchanged in kind: actions started and not
    # ended, mended by the next run (docs/architecture.md, "The run journal and crash
    # recovery").
    pending: list[Callable[[], None]] = []
    failed: list[BaseException] = []

    def settle() -> None:
        """The commits waiting, oldest first; what one raises is kept until the creates
        ``create_many`` was sending are answered (``meanwhile`` never raises)."""
        while pending and not failed:
            try:
                pending.pop(0)()
            except BaseException as exc:
                failed.append(exc)

    def commit(items: list[tuple[int, Action]], done: list[_Done]) -> None:
        slips = [d.slip for d in done if d.slip is not None]
        if slips and on_slips is not None:
            on_slips(slips)  # durably, before the batch's actions count as done
        for d in done:
            run.audit_record(d)
        audit.commit()
        if journal is not None:
            ended = {d.i: d.status for d in done}
            journal.finished([(n, a, ended.get(n, "skipped")) for n, a in items])
        if progress is not None:
            for d in done:
                progress(d.action)

    def start(items: list[tuple[int, Action]]) -> dict[int, str]:
        """A batch's start records, durable before any of its changes, and its passwords
        (made in the plan's order, whenever the batch is prepared)."""
        if journal is not None:
            journal.started(items)
        return {n: run.password_for(a) for n, a in items}

    i = 0
    ahead: tuple[list[tuple[int, Action]], dict[int, str]] | None = None
    try:
        while (ahead is not None or i < len(actions)) and not run.result.stopped:
            if ahead is not None:
                (items, passwords), ahead = ahead, None
            else:
                items, i = _batch_at(run, actions, i, batch)
                passwords = start(items)
            # The next batch is prepared early only when nothing in this one may rename an
            # entry: its actions' DNs (which the journal records) do not depend on this one.
            early = i < len(actions) and all(a.kind not in _MAY_RENAME for _, a in items)

            def meanwhile(early: bool = early) -> bool:
                """The previous batch's commit and the next one's start; True when one
                failed: then nothing more of this batch is sent (an attack found the whole
                batch made after its predecessor's slips could not be written)."""
                nonlocal ahead, i
                settle()
                if early and not failed and not (should_stop is not None and should_stop()):
                    try:
                        nxt, i = _batch_at(run, actions, i, batch)
                        ahead = (nxt, start(nxt))
                    except BaseException as exc:  # re-raised by apply_plan, unchanged
                        failed.append(exc)
                return bool(failed)

            done = run.execute(items, should_stop, meanwhile, passwords)
            settle()  # a batch stopped before its first action: the commits waiting now
            pending.append(partial(commit, items, done))
            if failed:
                break  # what started and did not end is the next run's to mend
        if ahead is not None and not failed:  # journalled, then the run stopped: skipped
            pending.append(partial(commit, ahead[0], []))
    finally:
        if not failed:
            settle()  # the last batch's, or the one before a batch that raised
    if failed:
        raise failed[0]
    return run.result


def _batch_at(
    run: _Run, actions: Sequence[Action], i: int, size: int
) -> tuple[list[tuple[int, Action]], int]:
    """The batch that starts at action ``i``, and where the next one starts. An action on
    an entry an earlier action of the batch may have renamed (move; an update of a placed
    field) starts the next batch, so the DN the journal records for it is the one it will
    use."""
    items: list[tuple[int, Action]] = []
    renaming: set[str] = set()
    while i < len(actions) and len(items) < max(1, size):
        action = run.follow(actions[i])
        if action.dn is not None and action.dn.lower() in renaming:
            break
        if action.dn is not None and action.kind in _MAY_RENAME:
            renaming.add(action.dn.lower())
        items.append((i, action))
        i += 1
    return items, i


# a change that may leave the entry under another DN (openldap-ou moves on an org change)
_MAY_RENAME = {ActionKind.MOVE, ActionKind.UPDATE, ActionKind.LINK}
_CREATES = {ActionKind.CREATE, ActionKind.CREATE_ORG_MAILBOX}


@dataclass
class _Done:
    """One action of a batch that was carried out (successfully or not)."""

    i: int
    action: Action
    outcome: Outcome
    password: str
    extra: dict[str, str]
    slip: Slip | None
    owed: bool = False  # its password may be set and is not known: a new one is owed

    @property
    def status(self) -> str:
        """The journal's end record: ``owed`` tells a recovering run the password debt."""
        return "owed" if self.owed else "done" if self.outcome.ok else "failed"


@dataclass
class _Run:
    """What one apply carries from batch to batch."""

    plan: Plan
    directory: Directory
    audit: AuditSink
    profile: Profile
    catalogue: Catalogue
    domain: str
    run_id: str
    rng: random.Random | None
    archive: Archive | None
    sleep: Callable[[float], None]
    retries: tuple[float, ...]
    give_up_after: int
    audit_fields: Mapping[str, Any]
    result: RunResult = field(init=False)
    down: int = 0  # actions in a row that failed on a transient error
    # Actions address an entry by the DN the plan read; a move earlier in this run renames
    # it, so later actions on the same entry (a transfer's restore) follow it to its new DN.
    renamed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.result = RunResult(self.run_id)

    def follow(self, action: Action) -> Action:
        if action.dn is not None and action.dn.lower() in self.renamed:
            return replace(action, dn=self.renamed[action.dn.lower()])
        return action

    def password_for(self, action: Action) -> str:
        if action.kind not in _NEEDS_PASSWORD:
            return ""
        org = self.catalogue.orgs.get(action.org or "")
        return generate(
            self.profile.password,
            Context(
                account=action.new_uid or action.uid,
                full_name=action.full_name,
                org_names=(org.name,) if org else (),
            ),
            self.rng,
        )

    def execute(
        self,
        items: Sequence[tuple[int, Action]],
        should_stop: Callable[[], bool] | None,
        meanwhile: Callable[[], bool] | None = None,
        passwords: Mapping[int, str] | None = None,
    ) -> list[_Done]:
        """The batch's directory changes, in order; stops early on SIGTERM (the actions in
        flight finish) or when the directory is gone (``result.stopped``). ``meanwhile`` goes
        to the first ``create_many`` (or runs before the first action that is none); when
        it says it failed, what is not sent yet is not done (``stopped``: ended as skipped).
        ``passwords``: those made when the batch was prepared, by action number."""
        done: list[_Done] = []
        k = 0
        while k < len(items):
            if should_stop is not None and should_stop():
                # SIGTERM: the actions in flight finished and are audited; the rest waits for
                # the next run, which plans again from what the directory then holds.
                self.result.stopped = True
                break
            group = [items[k]]
            if items[k][1].kind in _CREATES:
                while k + len(group) < len(items) and items[k + len(group)][1].kind in _CREATES:
                    group.append(items[k + len(group)])
            k += len(group)
            made = passwords or {}
            issued = [made[n] if n in made else self.password_for(a) for n, a in group]
            first: list[str | Exception | None] = [None] * len(group)
            if len(group) > 1:
                # creates of distinct entries: together, each with its own outcome
                first = list(
                    self.directory.create_many(
                        [(a, pw) for (_, a), pw in zip(group, issued, strict=True)],
                        since=self.plan.now,
                        meanwhile=meanwhile,
                    )
                )
                meanwhile = None
            elif meanwhile is not None:  # nothing to overlap: the previous batch's commit first
                then = meanwhile
                meanwhile = None
                if then():
                    self.result.stopped = True
                    break
            for (n, action), password, got in zip(group, issued, first, strict=True):
                if isinstance(got, NotSent):
                    self.result.stopped = True  # the commit before failed: nothing done
                    continue
                done.append(self.one(n, action, password, got))
            if self.result.stopped:
                break
            if self.down >= self.give_up_after * 2:
                # nothing is lost: the remaining actions are planned again by the next run
                self.result.stopped = True
                break
        return done

    def one(self, i: int, action: Action, password: str, got: str | Exception | None) -> _Done:
        """One action, with its retries; ``got`` is what a pipelined create already returned
        (its DN, or its error: a transient one is retried here as any other)."""
        dn = action.dn
        error = ""
        extra: dict[str, str] = {}
        transient = False
        unanswered = False  # a create sent whose answer never came: it may have been applied
        for attempt, pause in enumerate((*self.retries, None)):
            try:
                if got is None:
                    # States start at the plan's ``now`` (the real time, unless an operator
                    # time-travels with --now), so every later clock counts from when rules
                    # fired.
                    dn = _execute(
                        self.directory, action, password, self.plan.now, self.profile,
                        self.archive, extra,
                    )  # fmt: skip
                elif isinstance(got, Exception):
                    raise got
                else:
                    dn = got
                error, transient = "", False
                break
            except DirectoryError as exc:
                # busy, unavailable, timeouts, a reset connection: wait and try again;
                # schema violations, access denied: this action fails, the others go on
                got = None
                error, transient = str(exc), exc.transient
                unanswered = unanswered or (exc.unanswered and action.kind in _CREATES)
                if not exc.transient or pause is None:
                    break
                if attempt == 0 and self.down >= self.give_up_after:
                    break  # the directory is gone: do not wait on every remaining action
                self.sleep(pause)
            except Exception as exc:  # one action's bug must not stop the others
                error = f"{type(exc).__name__}: {exc}"
                break
        owed = False
        if error and unanswered:
            # A retry refused as "already exists" may be this very add, applied by the server
            # with its answer lost; never a plain failure before the entry is read back.
            found, where, note = self.read_back(action, password, transient)
            extra["answer_lost"] = note
            if found in (Found.OURS, Found.OURS_PASSWORD_UNKNOWN):
                error, transient, dn = "", False, where
            owed = found is Found.OURS_PASSWORD_UNKNOWN or (found is Found.ABSENT and transient)
        ok = not error
        if ok and action.dn and dn and dn.lower() != action.dn.lower():
            self.renamed[action.dn.lower()] = dn
        self.down = self.down + 1 if transient else 0
        status = Result.OK if ok else Result.TEMPORARY if transient else Result.PERMANENT
        outcome = Outcome(action, ok, error, dn, status)
        self.result.outcomes.append(outcome)
        slip = None
        if owed:
            self.result.owed_passwords.add(action.new_uid or action.uid)
        elif ok and password:
            uid = action.new_uid or action.uid
            slip = Slip(
                action.org or "",
                uid,
                f"{uid}@{self.domain}",
                action.full_name,
                password,
                # the slip says why the person gets it; a re-issue after a crash says so
                f"{action.kind.value} (re-issued: an interrupted run)"
                if action.rule == "recovery"
                else action.kind.value,
            )
            self.result.slips.append(slip)
        if ok and action.request_key:
            self.result.done_requests.add(action.request_key)
        if action.kind is ActionKind.PURGE and "archive" in extra:
            # archived and (maybe) deleted: the uid is never given again, even if deletion failed
            self.result.tombstones.add(action.uid)
        return _Done(i, action, outcome, password, extra, slip, owed)

    def read_back(self, action: Action, password: str, transient: bool) -> tuple[Found, str, str]:
        """What the create's DN holds, after its answer was lost: the verdict, the DN, and
        what the audit record says of it. The directory unreachable (or already given up on)
        counts as ABSENT with no answer: whether the add was applied is unknown, so its
        password is owed (a debt on an account that was never made is dropped by the next
        whole read, or paid by the slip of the create the next run plans again)."""
        if transient and self.down >= self.give_up_after:
            return Found.ABSENT, "", "unknown (the directory is gone): a new password is owed"
        try:
            found, dn = self.directory.find_created(action, password, since=self.plan.now)
        except DirectoryError as exc:
            return Found.ABSENT, "", f"unknown ({exc}): a new password is owed"
        note = {
            Found.OURS: "read back: created by this action, with the password it sent",
            Found.OURS_PASSWORD_UNKNOWN: (
                "read back: created by this action; its password cannot be checked: a new "
                "one is owed"
            ),
            Found.ABSENT: "read back: not created"
            + (" yet: a new password is owed in case it still is" if transient else ""),
            Found.OTHER: "read back: another entry holds the DN",
        }[found]
        return found, dn, note

    def audit_record(self, d: _Done) -> None:
        action, ok = d.action, d.outcome.ok
        self.audit.record(
            run_id=self.run_id,
            action=action.kind.value,
            uid=action.uid,
            new_uid=action.new_uid,
            dn=d.outcome.dn,
            org=action.org,
            employee_number=action.employee_number,
            attributes=as_lists(action.attrs),
            before=as_lists(action.before),
            one_time_password_issued=d.slip is not None,
            reason=action.reason,
            article=action.article,
            rule=action.rule or None,  # what triggered it (lock_inactive, …): for the reports
            result="ok" if ok else "failed",
            failure=None if ok else d.outcome.status.value,
            error=d.outcome.error or None,
            **d.extra,
            **self.audit_fields,
        )


def _execute(
    directory: Directory,
    action: Action,
    password: str,
    now: datetime,
    profile: Profile,
    archive: Archive | None,
    extra: dict[str, str],
) -> str | None:
    kind, dn = action.kind, action.dn
    cite = f"{action.reason} [{action.article}]"
    if kind in (ActionKind.CREATE, ActionKind.CREATE_ORG_MAILBOX):
        return directory.create(action, password, since=now)
    assert dn is not None, f"{kind} needs the entry's DN"
    if kind is ActionKind.LINK:
        return directory.update(dn, action.attrs, link=True, since=now)
    if kind is ActionKind.UPDATE:
        return directory.update(dn, action.attrs)
    if kind is ActionKind.MOVE:
        assert action.new_uid
        return directory.move(dn, action.new_uid, action.attrs)
    if kind is ActionKind.RESET_PASSWORD:
        directory.set_password(dn, password)
    elif kind is ActionKind.RESTORE:
        directory.set_state(dn, State.ACTIVE, now, cite, delivery=True)
        directory.set_password(dn, password)
    elif kind is ActionKind.LOCK:
        receives = profile.lifecycle.locked_receives_mail
        extra["delivery"] = f"{'kept' if receives.value else 'blocked'} ({receives.article})"
        directory.set_state(dn, State.LOCKED, action.since or now, cite, delivery=receives.value)
    elif kind is ActionKind.ENFORCE:
        # a change made by hand undone (syncd.plan.drift): the recorded state, its date and
        # its reason written back as they are, through the profile's own state and update paths
        if action.attrs:
            directory.update(dn, action.attrs)
        if action.state is not None:
            opens = action.state is State.LOCKED and profile.lifecycle.locked_receives_mail.value
            extra["delivery"] = "kept" if opens else "blocked"
            directory.set_state(
                dn,
                action.state,
                action.since or now,
                action.state_reason or cite,
                delivery=opens,
            )
    elif kind is ActionKind.REVOKE:
        # revoking a locked account keeps the lock's date: the purge clock counts "locked
        # or revoked continuously" (syncd.plan.states)
        directory.set_state(dn, State.REVOKED, action.since or now, cite, delivery=False)
    elif kind is ActionKind.PURGE:
        if archive is None:
            raise DirectoryError("purge needs an archive: nothing is deleted unexported")
        ldif = directory.export(dn)
        extra["archive"] = archive.store(action.uid, ldif)
        directory.delete(dn)
        archive.after_purge(action.uid, extra["archive"])
    return dn
