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
from datetime import date, datetime, timedelta, tzinfo
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
    notes: list[str] = field(default_factory=list)  # the operator's (CLI, JSON)
    notes_vi: list[str] = field(default_factory=list)  # the same, as the leadership reads them

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


# what the directory shows when an interrupted action had happened before its run died
_DONE_WHEN_FOUND = {"revoke": "revoked", "lock": "locked", "restore": "active", "purge": "absent"}


def _happened(rec: Mapping[str, Any]) -> bool:
    """Whether a record is a change the report counts. A run killed mid-action leaves it to
    the next run to write "interrupted" with what the directory shows (``found``): a create
    whose entry is there was a creation; and that run's finishing of it (rule ``recovery``: a
    one-time password again) is no reset or restore anybody asked for. Found by an attack: a
    crash mid-create showed as one creation fewer and one password reset more."""
    result = rec.get("result", "ok")
    if result == "ok":
        return rec.get("rule") != "recovery"
    if result != "interrupted":
        return False
    found, action = rec.get("found"), rec.get("action")
    if action == "create":
        return found not in (None, "absent")
    if action in ("move", "update"):  # made when the entry has its new uid or organisation
        new_uid = str(rec.get("new_uid") or "").lower()
        renamed = bool(new_uid) and str(rec.get("found_uid") or "").lower() == new_uid
        there = rec.get("found_org") not in (None, "") and rec.get("found_org") == rec.get("org")
        return renamed or (action == "update" and there)
    return found is not None and found == _DONE_WHEN_FOUND.get(str(action))


def _when(rec: Mapping[str, Any], zone: tzinfo) -> date | None:
    """The province's day of a record: the audit keeps UTC, and 00:30 on 1 January in Cao
    Bằng (17:30 on 31 December UTC) belongs to the new year's report (found by an attack)."""
    try:
        when = datetime.fromisoformat(str(rec["time"]))
    except (KeyError, ValueError):
        return None
    return (when if when.tzinfo is None else when.astimezone(zone)).date()


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
    zone: tzinfo,
    inactive_days: int = 90,
) -> Report:
    """The report for ``period``: the directory now, the audit log's changes in the period,
    each on its day in ``zone`` (the province's)."""
    figures: dict[str, Counts] = {}
    offices: dict[tuple[str, str], Counts] = {}
    notes: list[str] = []
    notes_vi: list[str] = []

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
        if rec.get("event", "audit") != "audit" or not _happened(rec):
            continue
        action = str(rec.get("action"))
        before = rec.get("before") or {}
        moved = action in ("move", "update") and isinstance(before, dict) and before.get("org")
        if not (moved or action == "lock" or action in _SIMPLE):
            continue  # not a figure of the report (names kept, slips deleted, …): no bucket
        day = _when(rec, zone)
        if day is None or day not in period:
            continue
        org = rec.get("org")
        uid = str(rec.get("new_uid") or rec.get("uid") or "").lower()
        now_org, now_office = where.get(uid, (None, None))
        # the office: the account's today, when it is still in the same organisation
        office = now_office if now_org == org else None
        if moved:
            was = _first(before.get("org"))
            if was and was != org:
                # the office left: the record's before; an update that did not change it
                # left today's; a move recorded before moves named it, no office ("")
                left: str | None = office if action == "update" else None
                if "office" in before:  # none ([]): the organisation's unnamed row
                    left = _first(before["office"]) or ""
                for c in (org_counts(was), office_counts(was, left)):
                    c.moved_out += 1
                for c in (org_counts(org), office_counts(org, office)):
                    c.moved_in += 1
        elif action == "lock":
            key = (_lock_reason(rec), str(rec.get("article") or ""))
            for c in (org_counts(org), office_counts(org, office)):
                c.locked[key] += 1
        else:
            for c in (org_counts(org), office_counts(org, office)):
                setattr(c, _SIMPLE[action], getattr(c, _SIMPLE[action]) + 1)

    orgs: list[OrgReport] = []
    for code in sorted(set(catalogue.orgs) | set(figures) - {""}):
        org = catalogue.orgs.get(code)
        if org is None:
            notes.append(f"{code}: accounts of an organisation not in the catalogue")
            notes_vi.append(f"{code}: hộp thư của một cơ quan, đơn vị không có trong danh mục")
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
        notes_vi.append(f"{figures[''].accounts} hộp thư không thuộc cơ quan, đơn vị nào")
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
        notes_vi=notes_vi,
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
