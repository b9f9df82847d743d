"""Execute a plan through a Directory, one action at a time, auditing each.

Apply does exactly what the plan says: no re-planning, no extra reads. One failed action does
not stop the others; the result lists every outcome. One-time passwords are generated here,
handed to the directory and to the credential slips, and never to the audit log.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from syncd.model import Action, ActionKind, Plan, State, as_lists
from syncd.orgs import Catalogue
from syncd.passwords import Context, generate
from syncd.ports import Archive, AuditSink, Directory, DirectoryError, RunJournal
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
    on_slip: Callable[[Slip], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retries: tuple[float, ...] = (0.5, 2.0, 5.0),
    give_up_after: int = 3,
    audit_fields: Mapping[str, Any] | None = None,
) -> RunResult:
    """Apply every action of ``plan``; refused plans must never reach here.

    ``audit_fields`` go on every audit record of the run (who ran an operator command).
    """
    if plan.refused:
        raise ValueError(f"refusing to apply a refused plan: {plan.refused}")
    result = RunResult(run_id)
    down = 0  # actions in a row that failed on a transient error
    # Actions address an entry by the DN the plan read; a move earlier in this run renames
    # it, so later actions on the same entry (a transfer's restore) follow it to its new DN.
    renamed: dict[str, str] = {}
    for i, action in enumerate(plan.actions):
        if should_stop is not None and should_stop():
            # SIGTERM: the action in flight finished and was audited; the rest waits for the
            # next run, which plans again from what the directory then holds.
            result.stopped = True
            break
        password = ""
        if action.kind in _NEEDS_PASSWORD:
            org = catalogue.orgs.get(action.org or "")
            password = generate(
                profile.password,
                Context(
                    account=action.new_uid or action.uid,
                    full_name=action.full_name,
                    org_names=(org.name,) if org else (),
                ),
                rng,
            )
        if action.dn is not None and action.dn.lower() in renamed:
            action = replace(action, dn=renamed[action.dn.lower()])
        dn = action.dn
        error = ""
        extra: dict[str, str] = {}
        if journal is not None:
            journal.started(i, action)
        transient = False
        for attempt, pause in enumerate((*retries, None)):
            try:
                # States start at the plan's ``now`` (the real time, unless an operator
                # time-travels with --now), so every later clock counts from when rules fired.
                dn = _execute(directory, action, password, plan.now, profile, archive, extra)
                error, transient = "", False
                break
            except DirectoryError as exc:
                # busy, unavailable, timeouts, a reset connection: wait and try again;
                # schema violations, access denied: this action fails, the others go on
                error, transient = str(exc), exc.transient
                if not exc.transient or pause is None:
                    break
                if attempt == 0 and down >= give_up_after:
                    break  # the directory is gone: do not wait on every remaining action
                sleep(pause)
            except Exception as exc:  # one action's bug must not stop the others
                error = f"{type(exc).__name__}: {exc}"
                break
        ok = not error
        if ok and action.dn and dn and dn.lower() != action.dn.lower():
            renamed[action.dn.lower()] = dn
        down = down + 1 if transient else 0
        status = Result.OK if ok else Result.TEMPORARY if transient else Result.PERMANENT
        result.outcomes.append(Outcome(action, ok, error, dn, status))
        if ok and password:
            uid = action.new_uid or action.uid
            slip = Slip(
                action.org or "",
                uid,
                f"{uid}@{domain}",
                action.full_name,
                password,
                # the slip says why the person gets it; a re-issue after a crash says so
                f"{action.kind.value} (re-issued: an interrupted run)"
                if action.rule == "recovery"
                else action.kind.value,
            )
            result.slips.append(slip)
            if on_slip is not None:
                on_slip(slip)  # durably, before the action counts as done
        if ok and action.request_key:
            result.done_requests.add(action.request_key)
        if action.kind is ActionKind.PURGE and "archive" in extra:
            # archived and (maybe) deleted: the uid is never given again, even if deletion failed
            result.tombstones.add(action.uid)
        audit.record(
            run_id=run_id,
            action=action.kind.value,
            uid=action.uid,
            new_uid=action.new_uid,
            dn=dn,
            org=action.org,
            employee_number=action.employee_number,
            attributes=as_lists(action.attrs),
            before=as_lists(action.before),
            one_time_password_issued=bool(password) and ok,
            reason=action.reason,
            article=action.article,
            rule=action.rule or None,  # what triggered it (lock_inactive, …): for the reports
            result="ok" if ok else "failed",
            failure=None if ok else status.value,
            error=error or None,
            **extra,
            **(audit_fields or {}),
        )
        if journal is not None:
            journal.finished(i, action, ok)
        if progress is not None:
            progress(action)
        if down >= give_up_after * 2:
            # nothing is lost: the remaining actions are planned again by the next run
            result.stopped = True
            break
    return result


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
