"""The report on mailbox use each organisation owes, and the province's summary.

Cao Bằng 2025 Đ11.3 (yearly, before 30 November), Hưng Yên Đ11.8 (yearly, before 15
November) and Cao Bằng 2011 Đ17 (every six months) ask each organisation to report how its
official mailboxes are used. What the report says comes from two independent records: the
directory as it is now (accounts by state, who never logged in, who is inactive) and the audit
log for the period (what was created, moved, locked and why, revoked, deleted, restored). The
audit log is the evidence: a count here is a count of audited, successful changes, never a
guess from the directory's present state.

Pure: the records, accounts and catalogue are given; rendering lives in the connectors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from syncd.model import Account, Kind, State
from syncd.orgs import Catalogue
from syncd.plan.lifecycle import activity_reference
from syncd.regulation import Profile
from syncd.regulation.profile import ReportRule

# what a lock record's rule (or a manual lock's reason) means, in the regulation's words
LOCK_LABELS = {
    "lock_inactive": "không sử dụng quá thời hạn quy định",
    "lock_default_password": "không đổi mật khẩu mặc định",
    "compromised": "bị lộ mật khẩu, nhiễm virus, bị chiếm quyền",
    "spam": "phát tán thư rác",
    "malware": "phát tán mã độc",
    "misuse": "sử dụng sai quy định",
}
STATE_LABELS = {
    State.ACTIVE: "đang hoạt động",
    State.LOCKED: "tạm khóa",
    State.REVOKED: "thu hồi",
    State.PROVISIONING: "đang khởi tạo",
}


@dataclass(frozen=True)
class Period:
    """The days a report covers, both ends included."""

    start: date
    end: date

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def label(self) -> str:
        return f"{self.start:%d/%m/%Y} – {self.end:%d/%m/%Y}"


def period_of(year: int, half: int | None, today: date) -> Period:
    """A calendar year (or its first / second half), cut at ``today`` when it is not over:
    a report made before the deadline covers the year so far."""
    if half is None:
        start, end = date(year, 1, 1), date(year, 12, 31)
    elif half == 1:
        start, end = date(year, 1, 1), date(year, 6, 30)
    else:
        start, end = date(year, 7, 1), date(year, 12, 31)
    return Period(start, min(end, today) if today >= start else end)


@dataclass
class Counts:
    """One organisation's (or office's, or the province's) figures."""

    by_state: Counter[State] = field(default_factory=Counter)
    created: int = 0
    moved_in: int = 0
    moved_out: int = 0
    locked: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, article)
    revoked: int = 0
    purged: int = 0
    restored: int = 0
    resets: int = 0
    never_logged_in: int = 0
    inactive: int = 0

    @property
    def accounts(self) -> int:
        return sum(self.by_state.values())

    @property
    def locks(self) -> int:
        return sum(self.locked.values())

    def add(self, other: Counts) -> None:
        self.by_state.update(other.by_state)
        self.locked.update(other.locked)
        for name in (
            "created",
            "moved_in",
            "moved_out",
            "revoked",
            "purged",
            "restored",
            "resets",
            "never_logged_in",
            "inactive",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class OrgReport:
    code: str
    name: str
    counts: Counts
    offices: list[tuple[str, Counts]]  # (office name, figures); "" for people in no office


@dataclass
class Report:
    profile: str
    title: str
    articles: tuple[str, ...]
    period: Period
    made: datetime
    inactive_days: int
    orgs: list[OrgReport]
    total: Counts
    notes: list[str] = field(default_factory=list)

    def org(self, code: str) -> OrgReport | None:
        return next((o for o in self.orgs if o.code == code), None)


def _lock_reason(rec: Mapping[str, Any]) -> str:
    rule = str(rec.get("rule") or "")
    if rule in LOCK_LABELS:
        return LOCK_LABELS[rule]
    reason = str(rec.get("reason") or "")
    if reason.startswith("manual lock:"):
        word = reason.removeprefix("manual lock:").strip().split(" ")[0].rstrip(";,")
        return LOCK_LABELS.get(word, f"khóa theo yêu cầu ({word})")
    if "inactiv" in reason or "no login" in reason or "no activity" in reason:
        return LOCK_LABELS["lock_inactive"]
    if "password" in reason:
        return LOCK_LABELS["lock_default_password"]
    return "khác"


_SIMPLE = {
    "create": "created",
    "revoke": "revoked",
    "purge": "purged",
    "restore": "restored",
    "reset-password": "resets",
}


def _office_name(catalogue: Catalogue, org: str, office: str) -> str:
    """An office's name from the catalogue; its code when the catalogue does not know it."""
    if not office:
        return ""
    known = catalogue.offices.get((org, office.lower()))
    return known.name if known else office


def _first(values: Any) -> str | None:
    if isinstance(values, list) and values:
        return str(values[0])
    return None


def _when(rec: Mapping[str, Any]) -> date | None:
    try:
        return datetime.fromisoformat(str(rec["time"])).date()
    except (KeyError, ValueError):
        return None


def build(
    *,
    profile: Profile,
    articles: Sequence[str],
    catalogue: Catalogue,
    accounts: Iterable[Account],
    records: Iterable[Mapping[str, Any]],
    activity: Mapping[str, Mapping[str, datetime]],
    period: Period,
    made: datetime,
    inactive_days: int = 90,
) -> Report:
    """The report for ``period``: the directory now, the audit log's changes in the period."""
    figures: dict[str, Counts] = {}
    offices: dict[tuple[str, str], Counts] = {}
    notes: list[str] = []

    def org_counts(org: str | None) -> Counts:
        return figures.setdefault(org or "", Counts())

    def office_counts(org: str | None, office: str | None) -> Counts:
        return offices.setdefault((org or "", office or ""), Counts())

    cutoff = made - timedelta(days=inactive_days)
    sources = profile.lifecycle.activity.sources
    where: dict[str, tuple[str | None, str | None]] = {}  # uid → (org, office) today
    for acc in accounts:
        if acc.kind is not Kind.PERSON or not acc.managed:
            continue
        where[acc.uid.lower()] = (acc.org, acc.office)
        here = (org_counts(acc.org), office_counts(acc.org, acc.office))
        for c in here:
            c.by_state[acc.state] += 1
        if acc.state is State.REVOKED:
            continue
        if acc.last_login is None and not any(m.lower() in activity for m in acc.mail):
            for c in here:
                c.never_logged_in += 1
        if acc.state is State.ACTIVE:
            when, _ = activity_reference(acc, activity, sources)
            if when is None or when < cutoff:
                for c in here:
                    c.inactive += 1

    for rec in records:
        if rec.get("event", "audit") != "audit" or rec.get("result", "ok") != "ok":
            continue
        day = _when(rec)
        if day is None or day not in period:
            continue
        action, org = rec.get("action"), rec.get("org")
        before = rec.get("before") or {}
        uid = str(rec.get("new_uid") or rec.get("uid") or "").lower()
        now_org, now_office = where.get(uid, (None, None))
        # the office: the account's today, when it is still in the same organisation
        office = now_office if now_org == org else None
        targets = (org_counts(org), office_counts(org, office))
        if action in ("move", "update") and isinstance(before, dict) and before.get("org"):
            was = _first(before.get("org"))
            if was and was != org:
                org_counts(was).moved_out += 1
                for c in targets:
                    c.moved_in += 1
        elif action == "lock":
            key = (_lock_reason(rec), str(rec.get("article") or ""))
            for c in targets:
                c.locked[key] += 1
        elif action in _SIMPLE:
            for c in targets:
                setattr(c, _SIMPLE[action], getattr(c, _SIMPLE[action]) + 1)

    orgs: list[OrgReport] = []
    for code in sorted(set(catalogue.orgs) | set(figures) - {""}):
        org = catalogue.orgs.get(code)
        if org is None:
            notes.append(f"{code}: accounts of an organisation not in the catalogue")
        rows = sorted(
            (
                (_office_name(catalogue, code, office), c)
                for (o, office), c in offices.items()
                if o == code
            ),
            key=lambda x: (x[0] == "", x[0]),
        )
        orgs.append(OrgReport(code, org.name if org else code, figures.get(code, Counts()), rows))
    total = Counts()
    for o in orgs:
        total.add(o.counts)
    if "" in figures:
        notes.append(f"{figures[''].accounts} account(s) carry no organisation")
        total.add(figures[""])
    return Report(
        profile=profile.id,
        title=profile.title,
        articles=tuple(articles),
        period=period,
        made=made,
        inactive_days=inactive_days,
        orgs=orgs,
        total=total,
        notes=notes,
    )


def report_days(rule: ReportRule, days_before: int) -> list[tuple[int, int]]:
    """The (month, day) each year a scheduled report is made: ``days_before`` the deadline of
    a yearly report; the day after each half-year ends for a half-yearly one (Cao Bằng 2011
    Đ17 names no deadline: the report follows the period it covers)."""
    if rule.every.unit == "m" and rule.every.amount == 6:
        return [(1, 1), (7, 1)]
    month, day = rule.due or (12, 31)
    made = date(2001, month, min(day, 28 if month == 2 else day)) - timedelta(days=days_before)
    return [(made.month, made.day)]


def period_due(rule: ReportRule, today: date) -> tuple[int, int | None]:
    """The (year, half) a report made on ``today`` by the schedule covers: the year so far
    for a yearly report; the half-year just ended for a half-yearly one."""
    if rule.every.unit == "m" and rule.every.amount == 6:
        return (today.year, 1) if today.month >= 7 else (today.year - 1, 2)
    return (today.year, None)


def catch_up(
    rule: ReportRule, days_before: int, today: date
) -> tuple[date, int, int | None] | None:
    """The report a daemon should make now because its scheduled day passed while it was not
    running (installed late, down that night, or the run failed): (the scheduled day, year,
    half), while the deadline has not passed — a yearly report between its scheduled day and
    its deadline, a half-yearly one within the two months after its half-year. None when
    nothing is owed today."""
    for month, day in report_days(rule, days_before):
        for year in (today.year, today.year - 1):
            scheduled = date(year, month, day)
            if scheduled > today:
                continue
            if rule.every.unit == "m" and rule.every.amount == 6:
                deadline = scheduled + timedelta(days=60)
            else:
                m, d = rule.due or (12, 31)
                deadline = date(year, m, d)
            if scheduled <= today <= deadline:
                return (scheduled, *period_due(rule, scheduled))
    return None
