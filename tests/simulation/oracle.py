"""The province simulation's oracle: what must hold after every simulated day.

Written from the regulations' digest (shared/regulations/DIGEST.md) and the simulation's own
record of what HR said and what people did — it shares no code with the planner, the lifecycle
clocks or the naming code of syncd, and reads the directory as the admin with plain ldap3
searches (``['*', '+']``). Every violation carries the day, the profile, the account, the
invariant and what was seen, so it can be reproduced (the simulation is seeded).

Invariants (numbers as in the issue "A province over the years"):

1. each active HR person (latest word from their organisation) has exactly one non-revoked
   mailbox carrying their employee number, once a run saw them (a pending decision excuses
   none yet; a lifecycle revoke excuses none until a restore request); ``1-org``: it is in the
   organisation HR names; ``1-leaver``: a person HR says has left keeps no live mailbox;
2. no duplicate uid, mail (aliases included) or employeeNumber in the whole directory;
3. nobody who logged in within the profile's threshold is locked or revoked for inactivity,
   everybody past it (no exemption over the period, not locked for another reason) is, with the
   article in ``syncdStateReason``; one day of slack for the daily sweep;
4. every one-time password set is on exactly one slip, opens the mailbox until it is changed,
   and is on no other slip;
5. every directory change (entry added or removed, syncdState, mail) has exactly one audit
   record, and every ok audit record one change;
6. a manual security lock is lifted only by a newer restore request or an operator restore.
"""

from __future__ import annotations

import calendar
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ldap3 import Connection

SLACK = timedelta(days=1)


# -- the rules, from the digest (not from syncd's profiles) ----------------------------------


@dataclass(frozen=True)
class Clock:
    amount: int
    unit: str  # "d" days, "m" calendar months, "y" years
    article: str

    def after(self, start: datetime) -> datetime:
        if self.unit == "d":
            return start + timedelta(days=self.amount)
        months = self.amount * (12 if self.unit == "y" else 1)
        y, m = divmod(start.month - 1 + months, 12)
        y, m = start.year + y, m + 1
        return start.replace(year=y, month=m, day=min(start.day, calendar.monthrange(y, m)[1]))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit} ({self.article})"


@dataclass(frozen=True)
class Rules:
    lock_inactive: Clock | None = None
    default_password: Clock | None = None  # one-time password kept too long → lock
    revoke_inactive: Clock | None = None
    revoke_locked: Clock | None = None  # locked this long → revoke
    purge_locked: Clock | None = None


RULES: dict[str, Rules] = {
    "caobang-2025": Rules(
        lock_inactive=Clock(90, "d", "caobang-2025 Đ8.2a"),
        revoke_locked=Clock(30, "d", "caobang-2025 Đ8.1"),
    ),
    "caobang-2011": Rules(revoke_inactive=Clock(6, "m", "caobang-2011 Đ8.3")),
    "hungyen-2025": Rules(
        lock_inactive=Clock(3, "m", "hungyen-2025 Đ7.2a"),
        default_password=Clock(1, "m", "hungyen-2025 Đ7.2d"),
        revoke_inactive=Clock(6, "m", "hungyen-2025 Đ6.2c"),
    ),
    "tuyenquang-2025": Rules(
        lock_inactive=Clock(6, "m", "tuyenquang-2025 Đ8.2a"),
        default_password=Clock(1, "m", "tuyenquang-2025 Đ8.2d"),
        purge_locked=Clock(3, "y", "tuyenquang-2025 Đ8.4"),
    ),
}


# -- what the oracle records -----------------------------------------------------------------


@dataclass
class Violation:
    day: date
    profile: str
    invariant: str
    subject: str  # uid (or employee number, password hash…)
    detail: str

    def __str__(self) -> str:
        return f"{self.day} {self.profile} [{self.invariant}] {self.subject}: {self.detail}"


@dataclass
class Incident:
    """One violation that lasts: first and last day seen, and on how many days."""

    first: Violation
    last_day: date
    days: int = 1


@dataclass
class Word:
    """The latest word about a person from their organisation."""

    org: str
    active: bool
    said: str  # the status as HR wrote it
    day: date
    seen: bool = False  # a run of syncd read the file that said it


@dataclass
class ManualLock:
    profile: str
    emp: str
    uuid: str
    uid: str
    at: datetime
    lifted: datetime | None = None
    lifted_by: str = ""


def gt(value: str | None) -> datetime | None:
    """A GeneralizedTime (``20270304100000Z``, maybe with fractions) as an aware datetime."""
    if not value:
        return None
    try:
        return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _interrupted_change(action: str, found: str) -> bool:
    """Whether an interrupted action's recovery record shows the change was made."""
    if action == "purge":
        return found == "absent"
    target = {"lock": "locked", "revoke": "revoked", "restore": "active", "link": "active"}
    if action in target:
        return found == target[action]
    return found != "absent"  # create, update, move, reset: the entry is there


def one(entry: dict[str, Any], name: str) -> str | None:
    values = entry.get(name) or []
    return str(values[0]) if values else None


def state_of(entry: dict[str, Any]) -> str:
    return (one(entry, "syncdState") or "active").lower()


def is_person(entry: dict[str, Any]) -> bool:
    return (one(entry, "syncdKind") or "person").lower() != "organisation"


def mails(entry: dict[str, Any]) -> frozenset[str]:
    return frozenset(str(m).lower() for m in entry.get("mail", []))


class Oracle:
    def __init__(self, people_dn: str, profiles: dict[str, Path], sweep_every: int = 1) -> None:
        """``profiles``: profile id → its state directory (for the audit log and decisions);
        ``sweep_every``: days between lifecycle sweeps, the slack for a clock falling due."""
        self.slack = timedelta(days=sweep_every)
        self.people_dn = people_dn
        self.state_dirs = profiles
        self.words: dict[str, dict[str, Word]] = {p: {} for p in profiles}
        self.exemptions: dict[tuple[str, str], list[tuple[date, date]]] = defaultdict(list)
        self.restore_requests: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        self.logins: dict[str, datetime] = {}  # entryUUID → last successful bind
        self.self_changes: dict[str, datetime] = {}  # entryUUID → last change by the person
        self.slip_issued: dict[str, datetime] = {}  # entryUUID → last one-time password slip
        self.restarted: dict[str, datetime] = {}  # entryUUID → last create / restore slip
        self.revoked_at: dict[str, datetime] = {}  # entryUUID → when seen revoked
        self.slips_today: dict[str, list[str]] = defaultdict(list)  # entryUUID → whys
        self.self_changed_today: set[str] = set()
        self.passwords: dict[str, str] = {}  # password → where it was first seen
        self.manual_locks: list[ManualLock] = []
        self.entries: dict[str, dict[str, Any]] = {}  # entryUUID → attributes, last check
        self.locked_since: dict[str, datetime] = {}  # entryUUID → start of a lock (observed)
        self.audit_seen: dict[str, int] = {p: 0 for p in profiles}
        self.incidents: dict[tuple[str, str, str, str], Incident] = {}
        self.log: list[Violation] = []
        self.day: date | None = None
        self.last_check: datetime | None = None
        self.audit_size: dict[str, int] = {p: 0 for p in profiles}
        self.checks = 0

    # -- what happened (told by the simulation) ------------------------------------------------

    def hr_file(
        self,
        profile: str,
        org: str,
        rows: list[tuple[str, bool, str, str]],
        day: date,
        when: datetime,
    ) -> None:
        """HR of ``org`` sent a file: rows (employee number, active?, status, request).

        A leave status counts only from the person's current organisation (the source half of
        a transfer that arrives after the destination's is old news); a person the file no
        longer lists is gone from that organisation if it was theirs."""
        words = self.words[profile]
        listed = set()
        for emp, active, said, request in rows:
            listed.add(emp)
            current = words.get(emp)
            if active or current is None or current.org == org:
                words[emp] = Word(org, active, said, day)
            if request == "restore":
                self.restore_requests[(profile, emp)].append(when)
        for emp, w in words.items():
            if w.org == org and emp not in listed and w.active:
                words[emp] = Word(org, False, "(gone from the roster)", day)

    def run_saw(self, profile: str, emps: set[str]) -> None:
        for emp in emps:
            w = self.words[profile].get(emp)
            if w is not None:
                w.seen = True

    def exemption(self, profile: str, emp: str, start: date, until: date) -> None:
        if (start, until) not in self.exemptions[(profile, emp)]:
            self.exemptions[(profile, emp)].append((start, until))

    def login(self, uuid: str, when: datetime) -> None:
        self.logins[uuid] = when

    def password_changed(self, uuid: str, when: datetime) -> None:
        self.self_changes[uuid] = when
        self.self_changed_today.add(uuid)

    def manual_lock(self, profile: str, emp: str, uuid: str, uid: str, when: datetime) -> None:
        self.manual_locks.append(ManualLock(profile, emp, uuid, uid, when))

    def operator_restore(self, uuid: str, when: datetime) -> None:
        for lock in self.manual_locks:
            if lock.uuid == uuid and lock.lifted is None and when >= lock.at:
                lock.lifted, lock.lifted_by = when, "syncd restore"
                # the operator restores the mailbox where it is (hungyen-2025 Đ7.3b,
                # caobang-2025 Đ8.3 → Đ7.2); a transfer HR asked for while it was locked is
                # carried out by the next run that reads the roster (hungyen-2025 Đ6.2b: the
                # request is handled within 3 working days), not by the restore
                self.unseen(lock.profile, lock.emp)

    def unseen(self, profile: str, emp: str) -> None:
        """The latest word about ``emp`` holds again only once a run has read it (after a
        change no roster asked for: an operator's restore, a purge by the clocks)."""
        w = self.words[profile].get(emp)
        if w is not None:
            w.seen = False

    def security_locked(self, profile: str, emp: str) -> bool:
        """A compromised-mailbox lock on ``emp`` that nothing has lifted yet: no operator
        restore, no restore request (khôi phục) newer than it."""
        return any(
            lock.profile == profile
            and lock.emp == emp
            and lock.lifted is None
            and not any(t > lock.at for t in self.restore_requests[(profile, emp)])
            for lock in self.manual_locks
        )

    def slip(
        self,
        profile: str,
        where: str,
        mail: str,
        password: str,
        why: str,
        uuid: str | None,
        when: datetime,
    ) -> None:
        """A line of a credential slip (invariant 4: no password on two slips)."""
        first = self.passwords.get(password)
        if first is not None:
            self.violation(
                profile, "4-password-on-two-slips", mail, f"{where} repeats the password of {first}"
            )
        else:
            self.passwords[password] = f"{where} ({mail}, {why})"
        if uuid is None:
            self.violation(profile, "4-slip-without-mailbox", mail, f"{where}: no entry has it")
            return
        self.slip_issued[uuid] = when
        if "cấp lại" not in why and "reset" not in why:  # a reset is no sign of life
            self.restarted[uuid] = when
        self.slips_today[uuid].append(why)

    def slip_refused(self, profile: str, uid: str, detail: str) -> None:
        self.violation(profile, "4-slip-password-refused", uid, detail)

    # -- violations ----------------------------------------------------------------------------

    def violation(
        self, profile: str, invariant: str, subject: str, detail: str, key: str = ""
    ) -> None:
        assert self.day is not None
        v = Violation(self.day, profile, invariant, subject, detail)
        k = (invariant, profile, subject, key)
        inc = self.incidents.get(k)
        if inc is None:
            self.incidents[k] = Incident(v, self.day)
            self.log.append(v)
        elif inc.last_day != self.day:
            inc.last_day = self.day
            inc.days += 1

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """invariant → (incidents, violation-days)."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (inv, *_), inc in self.incidents.items():
            out[inv][0] += 1
            out[inv][1] += inc.days
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    # -- the daily check -----------------------------------------------------------------------

    def _search(self, admin: Connection, flt: str, attributes: list[str]) -> dict[str, Any]:
        admin.search(self.people_dn, f"(&(objectClass=inetOrgPerson){flt})", attributes=attributes)
        out = {}
        for e in admin.response or []:
            if e.get("type") == "searchResEntry":
                attrs = dict(e["attributes"])
                attrs["dn"] = e["dn"]
                out[str(attrs["entryUUID"][0])] = attrs
        return out

    def read(self, admin: Connection, since: datetime | None) -> dict[str, dict[str, Any]]:
        """The directory now: every entry's ``['*', '+']``. Entries not modified since the last
        check (``modifyTimestamp``/``createTimestamp``, stamped by the server's simulated clock)
        are taken from the last read; ``since=None`` reads everything again."""
        if since is None:
            return self._search(admin, "", ["*", "+"])
        stamp = since.strftime("%Y%m%d%H%M%SZ")
        admin.search(self.people_dn, "(objectClass=inetOrgPerson)", attributes=["1.1"])
        dns = {
            str(e["dn"]).lower() for e in admin.response or [] if e.get("type") == "searchResEntry"
        }
        changed = self._search(
            admin, f"(|(modifyTimestamp>={stamp})(createTimestamp>={stamp}))", ["*", "+"]
        )
        out = dict(changed)
        for u, e in self.entries.items():
            if u not in changed and str(e["dn"]).lower() in dns:
                out[u] = e
        if {str(e["dn"]).lower() for e in out.values()} != dns:
            return self._search(admin, "", ["*", "+"])  # something unstamped: read it all
        return out

    def profile_of(self, entry: dict[str, Any]) -> str:
        dn = str(entry["dn"]).lower()
        for p in self.state_dirs:
            if f",ou={p}," in dn:
                return p
        return "?"

    def check(
        self, day: date, now: datetime, admin: Connection, pending: dict[str, set[str]]
    ) -> None:
        """After a simulated day; ``pending``: profile → employee numbers with a decision."""
        self.day = day
        self.checks += 1
        before = self.entries
        after = self.read(admin, None if self.checks % 30 == 1 else self.last_check)
        by_profile: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for uuid, e in after.items():
            by_profile[self.profile_of(e)][uuid] = e
        self._duplicates(after)
        for profile in self.state_dirs:
            mine_before = {u: e for u, e in before.items() if self.profile_of(e) == profile}
            mine = by_profile.get(profile, {})
            records = self._audit(profile)
            self._audit_vs_directory(profile, mine_before, mine, records)
            self._slips_vs_audit(profile, records)
            self._passwords_set(profile, mine_before, mine)
            self._transitions(profile, mine_before, mine, now)
            self._lifecycle(profile, mine, now)
            self._hr(profile, mine, pending.get(profile, set()))
            self._manual_locks(profile, mine, records)
        self.entries = after
        self.last_check = now
        self.slips_today.clear()
        self.self_changed_today.clear()

    # 2 -------------------------------------------------------------------------------------

    def _duplicates(self, after: dict[str, dict[str, Any]]) -> None:
        for what, values in (
            ("uid", lambda e: {str(v).lower() for v in e.get("uid", [])}),
            ("mail", mails),
            ("employeeNumber", lambda e: {str(v) for v in e.get("employeeNumber", [])}),
        ):
            holders: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for e in after.values():
                for v in values(e):
                    holders[v].append(e)
            for v, es in holders.items():
                if len(es) > 1:
                    desc = ", ".join(
                        f"{one(e, 'uid')} ({state_of(e)}, ou={one(e, 'ou')})" for e in es
                    )
                    self.violation(
                        self.profile_of(es[0]), f"2-duplicate-{what}", v, f"held by {desc}"
                    )

    # 5 -------------------------------------------------------------------------------------

    def _audit(self, profile: str) -> list[dict[str, Any]]:
        log = self.state_dirs[profile] / "audit.jsonl"
        files = [*sorted(log.parent.glob("audit*.jsonl.????-??")), log]
        size = sum(f.stat().st_size for f in files if f.exists())
        if size == self.audit_size[profile]:
            return []
        self.audit_size[profile] = size
        lines: list[str] = []
        for f in files:
            if f.exists():
                lines += [x for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
        new = lines[self.audit_seen[profile] :]
        self.audit_seen[profile] = len(lines)
        return [json.loads(x) for x in new]

    def _audit_vs_directory(
        self,
        profile: str,
        before: dict[str, dict[str, Any]],
        after: dict[str, dict[str, Any]],
        records: list[dict[str, Any]],
    ) -> None:
        """Replay the day's ok audit records on yesterday's directory; compare with today's."""
        # model: uuid → (uid, state, mails); new entries are keyed by their uid until matched
        model: dict[str, tuple[str, str, frozenset[str]]] = {
            u: ((one(e, "uid") or "").lower(), state_of(e), mails(e)) for u, e in before.items()
        }
        by_uid = {v[0]: u for u, v in model.items()}
        created: dict[str, dict[str, Any]] = {}  # uid → record
        renamed: dict[str, str] = {}  # a uid renamed today → its entry (records may use it)
        for r in records:
            action = r.get("action")
            uid = (r.get("uid") or "").lower()
            if action in (None, "allow-mass-change", "warn") or not uid:
                continue
            if r.get("result") == "interrupted":
                # docs/architecture.md: a change a killed run made without its record is
                # recorded by the recovering run (result "interrupted", found = what the
                # directory shows); it is that change's one record when it says so
                if not _interrupted_change(action, str(r.get("found"))):
                    continue
                if action in ("restore", "link") and uid in by_uid:
                    # the restore happened (its slip was lost; the re-issue says "reset"):
                    # the clock restarted that day, at the earliest at midnight
                    start = datetime.combine(self.day, datetime.min.time(), UTC)
                    old = self.restarted.get(by_uid[uid])
                    self.restarted[by_uid[uid]] = max(start, old) if old else start
            elif r.get("result") != "ok":
                continue
            if action in ("create", "create-org-mailbox"):
                if uid in by_uid or uid in created:
                    self.violation(
                        profile, "5-audit-without-change", uid, f"{action} of an existing entry"
                    )
                created[uid] = r
                continue
            key = by_uid.get(uid, renamed.get(uid))
            if key is None and uid in created:
                key = f"new:{uid}"
                if key not in model:
                    attrs = created[uid].get("attributes") or {}
                    model[key] = (
                        uid,
                        "active",
                        frozenset(m.lower() for m in attrs.get("mail", [])),
                    )
                by_uid[uid] = key
            if key is None:
                self.violation(
                    profile, "5-audit-without-change", uid, f"{action}: no such entry yesterday"
                )
                continue
            cur_uid, state, ms = model[key]
            attrs = r.get("attributes") or {}
            new = {
                "lock": "locked",
                "revoke": "revoked",
                "restore": "active",
                "link": "active",
            }.get(action)
            if new is not None:
                if new == state and action != "link":
                    self.violation(
                        profile,
                        "5-audit-without-change",
                        uid,
                        f"{action} recorded but the entry was already {state} (run "
                        f"{r.get('run_id')}, reason {r.get('reason')!r})",
                        key=str(r.get("run_id")),
                    )
                state = new
            if action == "purge":
                del model[key]
                by_uid.pop(cur_uid, None)
                continue
            if action == "move" and r.get("new_uid"):
                by_uid.pop(cur_uid, None)
                renamed[cur_uid] = key
                cur_uid = str(r["new_uid"]).lower()
                by_uid[cur_uid] = key
            if "mail" in attrs:
                ms = frozenset(m.lower() for m in attrs["mail"])
            model[key] = (cur_uid, state, ms)
        # compare
        seen_keys = set()
        for u, e in after.items():
            uid = (one(e, "uid") or "").lower()
            key = u if u in model else f"new:{uid}" if f"new:{uid}" in model else None
            if key is None and u not in before and uid in created:
                key = f"new:{uid}"
                attrs = created[uid].get("attributes") or {}
                model[key] = (uid, "active", frozenset(m.lower() for m in attrs.get("mail", [])))
            if key is None:
                self.violation(
                    profile,
                    "5-unaudited-change",
                    uid,
                    f"entry {e['dn']} appeared with no create record (state {state_of(e)})",
                )
                continue
            seen_keys.add(key)
            m_uid, m_state, m_mails = model[key]
            if u in before and m_uid != uid:
                self.violation(
                    profile, "5-unaudited-change", uid, f"renamed from {m_uid} with no record"
                )
            if m_state != state_of(e) and not (
                m_state == "active" and state_of(e) == "provisioning"
            ):
                was = state_of(before[u]) if u in before else "(new)"
                self.violation(
                    profile,
                    "5-unaudited-change" if was != state_of(e) else "5-audit-without-change",
                    uid,
                    f"syncdState {was} → {state_of(e)} but the audit records say {m_state} "
                    f"(reason now {one(e, 'syncdStateReason')!r})",
                )
            if m_mails and m_mails != mails(e):
                self.violation(
                    profile,
                    "5-unaudited-change",
                    uid,
                    f"mail {sorted(mails(e))} but the audit records say {sorted(m_mails)}",
                )
        for key, (m_uid, _, _) in model.items():
            if key not in seen_keys:
                if key.startswith("new:"):
                    self.violation(
                        profile, "5-audit-without-change", m_uid, "created per audit, not there"
                    )
                else:
                    self.violation(
                        profile, "5-unaudited-change", m_uid, "entry vanished with no purge record"
                    )

    # 4 -------------------------------------------------------------------------------------

    def _slips_vs_audit(self, profile: str, records: list[dict[str, Any]]) -> None:
        """Each one-time password the audit log says was issued is on one slip line."""
        outbox = self.state_dirs[profile].parent / "outbox"
        issued: Counter[tuple[str, str]] = Counter()
        for r in records:
            if r.get("one_time_password_issued") and r.get("result") == "ok":
                uid = str(r.get("new_uid") or r.get("uid") or "").lower()
                issued[(str(r.get("run_id")), uid)] += 1
        for run_id in {k[0] for k in issued}:
            on_slips: Counter[str] = Counter()
            folder = outbox / run_id
            for f in folder.glob("*.csv") if folder.is_dir() else []:
                for line in f.read_text(encoding="utf-8-sig").splitlines()[1:]:
                    cells = line.split(",")
                    if len(cells) >= 2:
                        on_slips[cells[1].split("@")[0].lower()] += 1
            for (rid, uid), n in issued.items():
                if rid == run_id and on_slips.get(uid, 0) != n:
                    self.violation(
                        profile,
                        "4-password-not-on-a-slip",
                        uid,
                        f"run {run_id}: {n} one-time password(s) audited, "
                        f"{on_slips.get(uid, 0)} slip line(s)",
                    )

    def _passwords_set(
        self, profile: str, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
    ) -> None:
        """A password changed today is the person's own change or is on a slip today."""
        for u, e in after.items():
            changed = one(e, "pwdChangedTime")
            was = one(before[u], "pwdChangedTime") if u in before else None
            explained = u in self.slips_today or u in self.self_changed_today
            if changed and changed != was and not explained:
                self.violation(
                    profile,
                    "4-password-set-without-slip",
                    one(e, "uid") or u,
                    f"pwdChangedTime {changed}: no slip and no change by the person today",
                )

    # 3 -------------------------------------------------------------------------------------

    def _reference(self, profile: str, uuid: str, e: dict[str, Any]) -> datetime:
        """Since when the account counts as unused: its last login, its last one-time
        password (a restore restarts the clock), or its creation."""
        times = [
            self.logins.get(uuid),
            self.restarted.get(uuid),
            gt(one(e, "createTimestamp")),
        ]
        return max(t for t in times if t is not None)

    def _after_absences(
        self, profile: str, e: dict[str, Any], ref: datetime, now: datetime
    ) -> datetime:
        """A notified absence inside the window restarts the clock the day after it ends."""
        emp = one(e, "employeeNumber")
        for s, u in sorted(self.exemptions[(profile, emp or "")]):
            end = datetime(u.year, u.month, u.day, tzinfo=UTC) + timedelta(days=1)
            if s <= now.date() and end > ref:
                ref = end
        return ref

    def _unused_since(self, profile: str, u: str, e: dict[str, Any], when: datetime) -> datetime:
        """Where the inactivity clock starts at ``when``: the last use, moved past each notified
        absence that ended since (the same reading as Part B's; a lock counted from before an
        absence the person came back from is too early: caobang-2025 Đ8.2a, hungyen-2025
        Đ7.2a, tuyenquang-2025 Đ8.2a)."""
        ref = self._reference(profile, u, e)
        return min(when, self._after_absences(profile, e, ref, when)) if ref < when else ref

    def _exempt(self, profile: str, e: dict[str, Any], start: datetime, end: datetime) -> bool:
        emp = one(e, "employeeNumber")
        if emp is None:
            return False
        return any(
            s <= end.date() and u >= start.date() for s, u in self.exemptions[(profile, emp)]
        )

    def _transitions(
        self,
        profile: str,
        before: dict[str, dict[str, Any]],
        after: dict[str, dict[str, Any]],
        now: datetime,
    ) -> None:
        """Each new lock or revoke for a clock reason must have been due (Part A)."""
        rules = RULES[profile]
        for u, e in after.items():
            new, old = state_of(e), state_of(before[u]) if u in before else "active"
            if new in ("locked", "revoked") and old == "active":
                self.locked_since[u] = gt(one(e, "syncdStateSince")) or now
            if new == "revoked" and old != "revoked":
                self.revoked_at[u] = max(
                    gt(one(e, "syncdStateSince")) or now, self.last_check or now
                )
            if new == "active":
                self.locked_since.pop(u, None)
            if not is_person(e) or new == old or new not in ("locked", "revoked"):
                continue
            reason = one(e, "syncdStateReason") or ""
            # when it happened: today (syncdStateSince may keep the start of an earlier lock)
            since = max(gt(one(e, "syncdStateSince")) or now, self.last_check or now)
            uid = one(e, "uid") or u
            for clock in (rules.lock_inactive, rules.revoke_inactive):
                if clock is None or clock.article not in reason:
                    continue
                last = self.logins.get(u)
                if last is not None and clock.after(last) - SLACK > since:
                    self.violation(
                        profile,
                        "3-locked-although-active",
                        uid,
                        f"{new} at {since:%Y-%m-%d} citing {clock}, but logged in "
                        f"{last:%Y-%m-%d %H:%M} ({(since - last).days} days before)",
                    )
                elif self._exempt(profile, e, since, since):
                    self.violation(
                        profile,
                        "3-locked-on-notified-leave",
                        uid,
                        f"{new} at {since:%Y-%m-%d} citing {clock} during a notified absence "
                        f"{self.exemptions[(profile, one(e, 'employeeNumber') or '')]}",
                    )
                elif (
                    clock.after(self._unused_since(profile, u, before.get(u, e), since)) - (SLACK)
                    > since
                ):
                    ref = self._unused_since(profile, u, before.get(u, e), since)
                    self.violation(
                        profile,
                        "3-locked-too-early",
                        uid,
                        f"{new} at {since:%Y-%m-%d} citing {clock}; unused only since "
                        f"{ref:%Y-%m-%d}",
                    )
            dp = rules.default_password
            if dp is not None and dp.article in reason:
                issued = self.slip_issued.get(u) or gt(one(e, "createTimestamp"))
                changed = self.self_changes.get(u)
                if changed is not None and issued is not None and changed >= issued:
                    self.violation(
                        profile,
                        "3-locked-although-active",
                        uid,
                        f"locked at {since:%Y-%m-%d} citing {dp}, but the person changed the "
                        f"one-time password on {changed:%Y-%m-%d}",
                    )
                elif issued is not None and dp.after(issued) - SLACK > since:
                    self.violation(
                        profile,
                        "3-locked-too-early",
                        uid,
                        f"locked at {since:%Y-%m-%d} citing {dp}; password issued "
                        f"{issued:%Y-%m-%d}",
                    )

    def _lifecycle(self, profile: str, after: dict[str, dict[str, Any]], now: datetime) -> None:
        """Everybody past a threshold is locked / revoked / purged (Part B)."""
        rules = RULES[profile]
        today = now.date()

        def late(due: datetime) -> bool:
            return today > due.date() + self.slack

        for u, e in after.items():
            if not is_person(e):
                continue
            state, uid = state_of(e), one(e, "uid") or u
            if state == "provisioning":
                continue
            ref = self._reference(profile, u, e)
            exempt = self._exempt(profile, e, now, now)
            if ref < now:
                ref = min(now, self._after_absences(profile, e, ref, now))
            reason = one(e, "syncdStateReason") or ""
            if state == "active" and not exempt:
                c = rules.lock_inactive
                if c is not None and late(c.after(ref)):
                    self.violation(
                        profile,
                        "3-not-locked-when-due",
                        uid,
                        f"unused since {ref:%Y-%m-%d}: lock due {c.after(ref):%Y-%m-%d} ({c}), "
                        "still active",
                    )
                c = rules.default_password
                issued = self.slip_issued.get(u) or gt(one(e, "createTimestamp"))
                changed = self.self_changes.get(u)
                kept = issued is not None and (changed is None or changed < issued)
                if c is not None and kept and issued is not None and late(c.after(issued)):
                    self.violation(
                        profile,
                        "3-not-locked-when-due",
                        uid,
                        f"one-time password of {issued:%Y-%m-%d} never changed: lock due "
                        f"{c.after(issued):%Y-%m-%d} ({c}), still active",
                    )
            if state in ("active", "locked") and not exempt:
                c = rules.revoke_inactive
                if c is not None and late(c.after(ref)):
                    self.violation(
                        profile,
                        "3-not-revoked-when-due",
                        uid,
                        f"unused since {ref:%Y-%m-%d}: revoke due {c.after(ref):%Y-%m-%d} ({c}), "
                        f"still {state} ({reason!r})",
                    )
            if state == "locked":
                start = self.locked_since.get(u) or gt(one(e, "syncdStateSince"))
                c = rules.revoke_locked
                if c is not None and start is not None and late(c.after(start)):
                    self.violation(
                        profile,
                        "3-not-revoked-when-due",
                        uid,
                        f"locked since {start:%Y-%m-%d}: revoke due {c.after(start):%Y-%m-%d} "
                        f"({c}), still locked",
                    )
                c = rules.purge_locked
                if c is not None and start is not None and late(c.after(start)):
                    self.violation(
                        profile,
                        "3-not-purged-when-due",
                        uid,
                        f"locked since {start:%Y-%m-%d}: purge due {c.after(start):%Y-%m-%d} ({c})",
                    )

    # 1 -------------------------------------------------------------------------------------

    def _hr(self, profile: str, after: dict[str, dict[str, Any]], pending: set[str]) -> None:
        rules = RULES[profile]
        lifecycle_articles = [
            c.article for c in (rules.revoke_inactive, rules.revoke_locked) if c is not None
        ]
        by_emp: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in after.values():
            emp = one(e, "employeeNumber")
            if emp is not None and is_person(e):
                by_emp[emp].append(e)
        for emp, w in self.words[profile].items():
            if not w.seen:
                continue
            es = by_emp.get(emp, [])
            live = [e for e in es if state_of(e) != "revoked"]
            desc = ", ".join(f"{one(e, 'uid')} ({state_of(e)}, ou={one(e, 'ou')})" for e in es)
            if not w.active:
                for e in live:
                    self.violation(
                        profile,
                        "1-leaver-keeps-mailbox",
                        one(e, "uid") or emp,
                        f"{emp}: {w.org} said {w.said!r} on {w.day}; mailbox still {state_of(e)}",
                    )
                continue
            if len(live) == 1:
                if (one(live[0], "ou") or "") != w.org:
                    self.violation(
                        profile,
                        "1-wrong-org",
                        one(live[0], "uid") or emp,
                        f"{emp}: {w.org} listed them on {w.day}; mailbox has ou="
                        f"{one(live[0], 'ou')}",
                    )
                continue
            if len(live) > 1:
                self.violation(
                    profile, "1-several-mailboxes", emp, f"{w.org} listed them; held: {desc}"
                )
                continue
            if emp in pending:
                continue
            asked = [t for t in self.restore_requests[(profile, emp)]]
            lifecycle = [
                e
                for e in es
                if any(a in (one(e, "syncdStateReason") or "") for a in lifecycle_articles)
                and not any(
                    t > self.revoked_at.get(str(one(e, "entryUUID")), t - SLACK) for t in asked
                )
            ]
            if lifecycle:
                continue
            if self.security_locked(profile, emp):
                # a compromised mailbox stays locked (then revoked by HR or the clocks, the
                # lock carried along) until the organisation asks for it back and the manager
                # restores it: hungyen-2025 Đ7.2b, Đ7.3; caobang-2025 Đ8.2b, Đ8.3;
                # tuyenquang-2025 Đ8.2b, Đ8.3. A transfer is no restore request: the person
                # waits for one (invariant 6)
                continue
            self.violation(
                profile,
                "1-no-mailbox",
                emp,
                f"{w.org} listed them {w.said!r} on {w.day}; directory: {desc or 'nothing'}; "
                "no pending decision for them in state.json",
            )

    # 6 -------------------------------------------------------------------------------------

    def _manual_locks(
        self, profile: str, after: dict[str, dict[str, Any]], records: list[dict[str, Any]]
    ) -> None:
        for lock in self.manual_locks:
            if lock.profile != profile or lock.lifted is not None:
                continue
            asked = [t for t in self.restore_requests[(profile, lock.emp)] if t > lock.at]
            if asked:
                lock.lifted, lock.lifted_by = asked[0], "restore request"
                continue
            e = after.get(lock.uuid)
            if e is None:
                continue
            if state_of(e) == "active":
                uid = (one(e, "uid") or "").lower()
                why = [
                    f"{r.get('action')} by run {r.get('run_id')}: {r.get('reason')!r}"
                    for r in records
                    if (r.get("uid") or "").lower() in (uid, lock.uid)
                ]
                self.violation(
                    profile,
                    "6-security-lock-undone",
                    uid,
                    f"locked (compromised) on {lock.at:%Y-%m-%d}, active again with no newer "
                    f"restore request nor operator restore; audit: {why or 'nothing'}",
                )
                lock.lifted, lock.lifted_by = lock.at, "undone (violation)"
