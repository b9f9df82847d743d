"""Lifecycle clocks: lock, revoke and purge, each on its regulation's period (DIGEST §3).

For one account, :func:`timeline` projects every event the rules will bring from its current
state — lock after inactivity or a kept default password, revoke after a lock period or long
inactivity, purge after a long continuous lock — each with its reason and article. A plan at
``now`` applies only the *first* due event (one step per run; the next step is projected again
from the real new state), and ``forecast`` lists what falls in a coming window.

The activity reference is the newest sign of life that the profile counts (``lifecycle.activity``:
directory login times ``pwdLastSuccess``/``authTimestamp``, and the mail server's send/receive
records); without any, the password's set time, then the creation. A state change to active
(create, link, restore) restarts the clock. An exemption (the regulations' "notified reason":
leave, study, illness) inside the window restarts the clock on the day after it ends.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo

from syncd.model import Account, ActionKind, Exemption, Kind, State, emp_key
from syncd.regulation import Clock, Duration, Lifecycle


@dataclass(frozen=True)
class Event:
    when: datetime
    kind: ActionKind  # LOCK, REVOKE or PURGE
    rule: str  # the lifecycle key, e.g. "lock_inactive"
    reason: str
    article: str


# address → kind (login/send/receive/mail), optionally with its source: "receive (mail log …)"
# → the newest seen
Activity = Mapping[str, Mapping[str, datetime]]


def activity_key(kind: str, source: str | None) -> str:
    """The key of imported activity: its kind, and where it was seen when the importer knows.

    The source rides along in the key so that every reader of :data:`Activity` (the clocks'
    reasons, ``syncd show``, the forecast) can say where the last sign of life came from,
    without a second mapping to keep in step.
    """
    return f"{kind} ({source})" if source else kind


def kind_of(key: str) -> tuple[str, str]:
    """``(kind, source)`` of an :func:`activity_key` (the source empty when not known)."""
    kind, _, source = key.partition(" (")
    return kind, source.removesuffix(")")


def not_after(activity: Activity, limit: datetime) -> tuple[Activity, set[str]]:
    """The activity up to ``limit``, and the addresses that had records after it."""
    ahead = {a for a, kinds in activity.items() if any(w > limit for w in kinds.values())}
    if not ahead:
        return activity, ahead
    kept = {a: {k: w for k, w in kinds.items() if w <= limit} for a, kinds in activity.items()}
    return kept, ahead


def counts(kind: str, sources: Sequence[str]) -> bool:
    """Whether imported activity of ``kind`` is a sign of life for a profile counting
    ``sources``; ``mail`` (a mail log that does not say the direction) is send or receive."""
    kind = kind_of(kind)[0]
    if kind == "mail":
        return "send" in sources or "receive" in sources
    return kind in sources


def activity_reference(
    acc: Account, imported: Activity, sources: Sequence[str] = ("login",)
) -> tuple[datetime | None, str]:
    """The newest sign of life of ``acc`` that its profile counts, and what it was."""
    seen: list[tuple[datetime, str]] = []
    if acc.last_login and "login" in sources:
        seen.append((acc.last_login, "last login"))
    for mail in acc.mail:
        for key, when in imported.get(mail.lower(), {}).items():
            kind, source = kind_of(key)
            if counts(kind, sources):
                label = f"last {kind}" if kind != "mail" else "mail activity"
                seen.append((when, f"{label} ({source})" if source else label))
    # creation, adoption and restore start the clocks again, also for a lock that followed
    # (Hưng Yên's 6-month revoke after a restore counts from the restore); a password reset
    # does not: it is neither a login nor mail
    active = acc.active_since or (acc.state_since if acc.state is State.ACTIVE else None)
    if active:
        seen.append((active, "made active by syncd"))
    if seen:
        return max(seen)
    if acc.password_changed:  # an entry syncd never stamped: its password's issue, then creation
        return (acc.password_changed, "password issued, never used")
    if acc.created:
        return (acc.created, "created, never used")
    return (None, "")


def effective(lc: Lifecycle, available: Collection[str]) -> tuple[Lifecycle, str | None]:
    """The clocks that can be applied with the activity sources at hand.

    A clock that counts only activity nobody reports (Hưng Yên's send/receive without the
    mail server's records) would lock every user on the same day: it is switched off, and
    the returned notice says why and what to configure.
    """
    wanted = lc.activity.sources
    known = [k for k in wanted if k in available]
    if known:
        return lc, None
    off_lock = replace(lc.lock_inactive, after=None)
    off_revoke = replace(lc.revoke_inactive, after=None)
    notice = (
        f"{lc.activity.article} counts {' / '.join(wanted)} activity and no source of it is "
        "configured (lifecycle.activity_sources: the mail server's logs or records): the "
        "inactivity lock and revoke are not applied"
    )
    if lc.lock_inactive.after is None and lc.revoke_inactive.after is None:
        return lc, None
    return replace(lc, lock_inactive=off_lock, revoke_inactive=off_revoke), notice


def _restarted(
    clock: Duration, ref: datetime, exemptions: Sequence[Exemption]
) -> tuple[datetime, str]:
    """The inactivity reference once notified absences are taken into account.

    An absence (leave, study, illness) that falls inside the inactivity window restarts the
    clock on the day after it ends: a person back from six months of leave gets a full
    period to log in again, not a lock the morning after.
    """
    note = ""
    moved = True
    while moved:
        moved = False
        deadline = clock.after(ref)
        for ex in sorted(exemptions, key=lambda e: e.start):
            back = datetime.combine(ex.until + timedelta(days=1), datetime.min.time(), UTC)
            if ex.start <= deadline.date() and back > ref:
                ref, moved = back, True
                note = f"; clock restarted after a notified absence until {ex.until} ({ex.reason})"
    return ref, note


def _day(when: datetime, zone: tzinfo) -> str:
    """``when``'s day as the province reads it (``timezone``): a reason says "locked since
    2027-01-01" for a lock at 00:30 on 1 January there, as ``syncd show`` prints the time
    two lines above it. The clocks themselves count in exact time; only what a person reads
    is on the province's day (found by an attack: "locked since 2026-12-31" under "locked
    since 2027-01-01 00:30:00")."""
    return f"{when.astimezone(zone):%Y-%m-%d}"


def _days(a: datetime, b: datetime) -> int:
    return (b - a).days


def _inactivity(
    clock: Clock,
    kind: ActionKind,
    rule: str,
    ref: datetime,
    src: str,
    exemptions: Sequence[Exemption],
    zone: tzinfo,
) -> Event | None:
    if clock.after is None:
        return None
    start, note = _restarted(clock.after, ref, exemptions)
    reason = f"no activity since {_day(ref, zone)} ({src}), limit {clock.after}{note}"
    return Event(clock.after.after(start), kind, rule, reason, clock.article)


def timeline(
    acc: Account,
    lc: Lifecycle,
    imported: Activity,
    exemptions: Sequence[Exemption],
    now: datetime,
    *,
    zone: tzinfo,
) -> list[Event]:
    """Every lifecycle event ahead of ``acc``, projected in order from its current state; the
    dates in the reasons on the province's day (``zone``)."""
    if not acc.managed or acc.kind is not Kind.PERSON:
        return []
    ref, src = activity_reference(acc, imported, lc.activity.sources)
    events: list[Event] = []
    state = acc.state
    since = acc.state_since or acc.created or now

    if state is State.ACTIVE:
        options: list[Event] = []
        if ref is not None:
            for clock, kind, rule in (
                (lc.lock_inactive, ActionKind.LOCK, "lock_inactive"),
                (lc.revoke_inactive, ActionKind.REVOKE, "revoke_inactive"),
            ):
                ev = _inactivity(clock, kind, rule, ref, src, exemptions, zone)
                if ev:
                    options.append(ev)
        dp = lc.lock_default_password
        if dp.after is not None and acc.must_change_password:
            issued = acc.password_changed or acc.created or since
            options.append(
                Event(
                    dp.after.after(issued),
                    ActionKind.LOCK,
                    "lock_default_password",
                    f"default password issued {_day(issued, zone)} never changed, limit {dp.after}",
                    dp.article,
                )
            )
        if not options:
            return []
        first = min(options, key=lambda e: (e.when, e.kind is not ActionKind.LOCK))
        events.append(first)
        since = max(first.when, now)
        state = State.REVOKED if first.kind is ActionKind.REVOKE else State.LOCKED

    locked_since = since
    if state is State.LOCKED:
        options = []
        rl = lc.revoke_locked
        if rl.after is not None:
            options.append(
                Event(
                    rl.after.after(since),
                    ActionKind.REVOKE,
                    "revoke_locked",
                    f"locked since {_day(since, zone)} with no restore request, limit {rl.after}",
                    rl.article,
                )
            )
        if ref is not None:
            ev = _inactivity(
                lc.revoke_inactive,
                ActionKind.REVOKE,
                "revoke_inactive",
                ref,
                src,
                exemptions,
                zone,
            )
            if ev:
                options.append(Event(max(ev.when, since), ev.kind, ev.rule, ev.reason, ev.article))
        pl = lc.purge_locked
        if pl.after is not None:
            options.append(_purge(pl, since, zone))
        if options:
            first = min(options, key=lambda e: (e.when, e.kind is ActionKind.PURGE))
            events.append(first)
            state = State.REVOKED if first.kind is ActionKind.REVOKE else state
            if first.kind is ActionKind.PURGE:
                return events

    if state is State.REVOKED and lc.purge_locked.after is not None:
        events.append(_purge(lc.purge_locked, locked_since, zone))
    return events


def _purge(clock: Clock, since: datetime, zone: tzinfo) -> Event:
    assert clock.after is not None
    return Event(
        clock.after.after(since),
        ActionKind.PURGE,
        "purge_locked",
        f"locked or revoked continuously since {_day(since, zone)}, limit {clock.after}; "
        "entry archived, then deleted",
        clock.article,
    )


def due(events: Iterable[Event], now: datetime) -> Event | None:
    """The one event to apply at ``now``: the first that is due."""
    for ev in events:
        if ev.when <= now:
            return ev
        break
    return None


def forecast(
    accounts: Iterable[Account],
    lc: Lifecycle,
    imported: Activity,
    exemptions: Mapping[str, Sequence[Exemption]],
    now: datetime,
    days: int,
    *,
    zone: tzinfo,
) -> list[tuple[Event, Account]]:
    """Locks, revokes and purges expected in ``(now, now + days]``, soonest first.

    Events already due at ``now`` are listed too (they happen at the next run).
    """
    end = now + timedelta(days=days)
    imported, _ = not_after(imported, now + timedelta(days=1))  # as a plan at ``now`` counts
    out: list[tuple[Event, Account]] = []
    for acc in accounts:
        for ev in timeline(
            acc, lc, imported, exemptions.get(emp_key(acc.employee_number), ()), now, zone=zone
        ):
            if ev.when <= end:
                out.append((ev, acc))
    out.sort(key=lambda pair: (pair[0].when, pair[1].org or "", pair[1].uid))
    return out


@dataclass(frozen=True)
class LockWarnings:
    """What ``lock_warnings`` finds: the warnings due now, and when the next one falls due."""

    due: list[tuple[Account, Event, str]]  # (account, its lock, the key state records)
    next_at: datetime | None  # None: no other inactivity lock is coming


def lock_warnings(
    accounts: Iterable[Account],
    lc: Lifecycle,
    imported: Activity,
    exemptions: Mapping[str, Sequence[Exemption]],
    now: datetime,
    days_before: int,
    already: Iterable[str],
    *,
    zone: tzinfo,
) -> LockWarnings:
    """Accounts whose inactivity lock falls within ``days_before`` days and were not warned;
    and when the next warning falls due (the earliest later lock not warned of, less
    ``days_before``): a run that repeats a quiet one holds only until then
    (connectors/quiet.py).

    The key (uid and lock date) is what state records, so each warning is sent once; a new
    lock date (the person logged in, then went quiet again) earns a new warning.
    """
    sent = set(already)
    imported, _ = not_after(imported, now + timedelta(days=1))
    before = timedelta(days=days_before)
    due: list[tuple[Account, Event, str]] = []
    next_at: datetime | None = None
    for acc in accounts:
        exempt = exemptions.get(emp_key(acc.employee_number), ())
        events = timeline(acc, lc, imported, exempt, now, zone=zone)
        if not events or events[0].rule != "lock_inactive":
            continue
        ev = events[0]
        key = f"{acc.uid}|{ev.when:%Y-%m-%d}"
        if ev.when <= now or key in sent:
            continue
        if ev.when <= now + before:
            due.append((acc, ev, key))
        elif next_at is None or ev.when - before < next_at:
            next_at = ev.when - before
    return LockWarnings(due, next_at)
