"""A province over the years: a seeded, day-by-day simulation of syncd against a real slapd.

Four profiles (caobang-2025, caobang-2011, hungyen-2025, tuyenquang-2025), each with its own
configuration, subtree, domain and catalogue, share one slapd whose clock the simulation moves
(libfaketime, see conftest.py). Each simulated day:

- 01:00 the daily lifecycle sweep of every profile (``sweep=True``, as the daemon's sweep job);
- 02:00 every ``full_every`` days the full reconcile, re-applying the latest accepted roster of
  every organisation (``SnapshotRegistry(...).latest()``, as the daemon's reconcile job);
- 09:00 on: HR drops through the inbox watcher (the daemon's path: a scoped run of one file,
  filed, recorded as the organisation's latest), operator actions (``syncd lock --reason
  compromised`` / ``syncd restore`` via ``runner.operator_action``), decisions answered;
- 12:00 on: people log in — a real simple bind with the password from their credential slip
  (read from the outbox as HR would hand it over); a first login changes the one-time password
  with RFC 3062 password-modify as the person;
- 23:00 the oracle (oracle.py) reads the directory as the admin and checks the invariants.

What syncd writes to disk is dated on the simulated days (``stamp``, before each sweep: the
file system's clock follows the simulation, as slapd's does), so the daemon's retention sweep
(after the 01:00 sweep, ``connectors/retention.py``) sees years pass; ``retention.months``
is 6 or 12 by profile, and the simulation checks, by its own arithmetic on its own dates,
that nothing went early, nothing stayed months too long, and every organisation's latest
accepted roster is still there.

kill -9 at chosen points: about one HR drop in ``Size.crash_every`` (seeded, deterministic) is
applied by a ``syncd reconcile --roster <file in processing/> --now <simulated time>`` process
with ``SYNCD_CRASH_AT=<point>:<n>`` (connectors/crashpoints.py), cycling through the five points
and n = 1, 2, 3: the daemon died mid-file. It must die by SIGKILL, or finish normally when the
run passed the point fewer than n times. Then, as after a restart, the inbox takes the file
left in processing/ again (in-process, same simulated time), and that run recovers the dead
run's journal. The oracle checks nothing between the kill and the recovery (both happen before
23:00) and knows nothing of crashes.

People are hired, leave (retired, resigned, deceased), come back (``khôi phục``), transfer
between organisations (the two halves, source file "chuyển công tác" and destination file
listing them, reach syncd in either order), forget passwords (``cấp lại mật khẩu``), announce
leaves (exemption columns), get their mailbox locked as compromised; some log in every few
days, some rarely, some never.

syncd's clock is the ``now=`` passed to the runner: every time syncd writes comes from it
(state dates, ``syncdActiveSince``); ``pwdAccountLockedTime`` is the earlier of it and the
wall clock, in the server's past either way, so the simulated years may lie before or after
the real date.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ldap3 import NONE, Connection, Server
from ldap3.utils.conv import escape_filter_chars

from connectors import crashpoints, retention, runner
from connectors.config import Config
from connectors.inbox import InboxWatcher
from connectors.journal import PASSWORD_KINDS
from connectors.loading import load_config
from connectors.outcome import EXIT_REFUSED, RunOutcome
from connectors.snapshots import SnapshotRegistry
from connectors.store import StateStore, write_private
from syncd.model import ActionKind
from syncd.state import Resolution, Resolve
from tests.helpers import HEADER, write_roster
from tests.simulation.conftest import FakeTimeSandbox
from tests.simulation.oracle import Oracle, one, state_of

ROSTER_HEADER = HEADER.rstrip("\n") + ",Lý do nghỉ,Nghỉ từ ngày,Nghỉ đến ngày\n"

# retention.months by profile: short, so that three simulated years see many deletions
RETENTION_MONTHS = {"caobang-2025": 6, "caobang-2011": 12, "hungyen-2025": 6, "tuyenquang-2025": 12}
SLIP_DAYS = 30  # slips.retention_days, the default

# profile → (domain, [(code, name, org mailbox, kind)])
CATALOGUES: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    "caobang-2025": (
        "caobang.gov.vn",
        [
            ("skhcn", "Sở Khoa học và Công nghệ", "sokhcn", "department"),
            ("syt", "Sở Y tế", "soyte", "department"),
            ("tgg", "Phường Tân Giang", "ubndtangiang", "commune"),
        ],
    ),
    "caobang-2011": (
        "cb2011.caobang.gov.vn",
        [
            ("stc", "Sở Tài chính", "sotaichinh", "department"),
            ("sgd", "Sở Giáo dục và Đào tạo", "sogiaoduc", "department"),
            ("xbl", "Thị trấn Bảo Lạc", "ttbaolac", "commune"),
        ],
    ),
    "hungyen-2025": (
        "hungyen.gov.vn",
        [
            ("khcn", "Sở Khoa học và Công nghệ Hưng Yên", "sokhcnhy", "department"),
            ("hytc", "Sở Tài chính Hưng Yên", "sotaichinhhy", "department"),
            ("vlam", "Phường Văn Lâm", "ubndvanlam", "commune"),
        ],
    ),
    "tuyenquang-2025": (
        "tuyenquang.gov.vn",
        [
            ("stnmt", "Sở Tài nguyên và Môi trường", "sotnmt", "department"),
            ("sxd", "Sở Xây dựng", "soxaydung", "department"),
            ("xmq", "Xã Minh Quang", "ubndminhquang", "commune"),
        ],
    ),
}
PREFIX = {"caobang-2025": "CB", "caobang-2011": "CO", "hungyen-2025": "HY", "tuyenquang-2025": "TQ"}

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Đàm", "Nông", "Ngô", "Lục"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thu", "Ngọc", "Hoàng", "Hồng"]
GIVEN = ["Hùng", "Phúc", "Đạt", "Mai", "Lan", "An", "Tám", "Hoa", "Dũng", "Hương", "Linh"]
GIVEN += ["Nam", "Sơn", "Tuấn", "Thảo", "Bình", "Cường", "Giang", "Khánh", "Quỳnh", "Yến"]
# Profiles whose clocks count sending and receiving mail (DIGEST §3): the mail server's log job
# writes each address's last activity; in the simulation a person who logs in also sends mail.
MAIL_LOG = {"hungyen-2025", "tuyenquang-2025"}
ACTIVITY = "lifecycle: {activity_file: activity.csv}\n"
LEAVE_WORDS = ["Nghỉ hưu", "Nghỉ việc", "Từ trần"]
ABSENCES = ["nghỉ thai sản", "đi học", "ốm dài ngày", "công tác nước ngoài"]
# (share of people, days between logins, days from a slip to the first login or None: never)
HABITS: dict[str, tuple[float, tuple[int, int], tuple[int, int] | None]] = {
    "regular": (0.55, (2, 20), (0, 3)),
    "occasional": (0.2, (25, 75), (0, 20)),
    "lapsing": (0.15, (60, 260), (0, 45)),
    "never": (0.1, (0, 0), None),
}
# kill -9 at chosen points (connectors/crashpoints.py): the crashes cycle through the points,
# and through the n-th pass of each (1, 2, 3)
CRASH_POINTS = (
    "journal started",
    "directory call",
    "slip written",
    "audit written",
    "journal finished",
)
CRASH_PATIENCE = 6  # drops a crash waits for a plan that passes its point n times
SYNCD = [sys.executable, "-m", "connectors.cli"]
REPO = Path(__file__).resolve().parents[2]
# the warnings of a run that took over dead runs' journals (connectors/runner.py)
DIED = re.compile(r"(\d+) earlier run\(s\) died with (\d+) action\(s\) unfinished")


@dataclass
class Size:
    people: int = 30  # per profile at the start
    years: int = 3
    full_every: int = 7  # days between full reconciles (the daemon: every night)
    sweep_every: int = 1  # days between lifecycle sweeps (the daemon: every night)
    seed: int = 20270104
    # about one HR drop in this many (0: none) is applied by a ``syncd reconcile`` process that
    # kills itself at a crash point; the inbox then takes the file again, as after a restart
    crash_every: int = 40


@dataclass
class Person:
    profile: str
    emp: str
    name: str
    birth: date
    org: str
    habit: str
    active: bool = True  # what HR truly says (its files may lag)
    password: str | None = None  # what the person knows
    must_change: bool = False
    next_login: date | None = None
    request: str = ""  # "Cấp lại mật khẩu" / "Khôi phục" for the next file of their org
    exempt: list[tuple[date, date, str]] = field(default_factory=list)
    waiting_operator: bool = False  # a compromised lock the operator will resolve
    hired: date | None = None


@dataclass
class Figures:
    days: int = 0
    runs: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    failed_actions: int = 0
    logins: int = 0
    refused_logins: int = 0
    first_logins: int = 0
    transfers: int = 0
    hires: int = 0
    leavers: int = 0
    returns: int = 0
    resets: int = 0
    exemptions: int = 0
    manual_locks: int = 0
    operator_restores: int = 0
    restore_requests: int = 0
    decisions_answered: int = 0
    drops: Counter[str] = field(default_factory=Counter)  # processed / rejected / duplicate
    refusals: Counter[str] = field(default_factory=Counter)
    overrides: int = 0
    crashes: Counter[str] = field(default_factory=Counter)  # "point:n" → runs killed there
    # this process's open descriptors every 30 days: syncd's runs happen in it, as in the daemon
    descriptors: list[int] = field(default_factory=list)
    # what the retention sweeps deleted: "True" the outbox's slip folders, "False" the rest
    retention: Counter[str] = field(default_factory=Counter)
    survived: Counter[str] = field(default_factory=Counter)  # fewer than n passes: finished
    crash_log: list[str] = field(default_factory=list)  # day, profile, file, point, outcome
    recoveries: int = 0  # runs that found dead runs' journals
    unfinished: int = 0  # actions those journals left unfinished
    owed: set[tuple[str, str]] = field(default_factory=set)  # (profile, uid): a password re-issued
    slips: int = 0
    errors: list[str] = field(default_factory=list)  # exceptions from syncd, kept going
    seconds: float = 0.0


def audit_lines(config: Config) -> list[str]:
    """Every record of the profile's audit log, rotated months first."""
    log = config.paths.audit_log
    files = [*sorted(log.parent.glob(f"{log.stem}*{log.suffix}.????-??")), log]
    return [x for f in files if f.exists() for x in f.read_text("utf-8").splitlines() if x.strip()]


def slip_lines(config: Config) -> int:
    """Slip lines on disk (credential CSVs of every run, headers not counted)."""
    outbox = config.paths.outbox
    files = sorted(outbox.glob("*/*.csv")) if outbox.is_dir() else []
    return sum(max(0, len(f.read_text("utf-8-sig").splitlines()) - 1) for f in files)


def held(outcome: RunOutcome | None) -> bool:
    plan = outcome.plan if outcome is not None else None
    return plan is not None and bool(plan.refused or getattr(plan, "held", ()))


class Province:
    def __init__(self, root: Path, slapd: FakeTimeSandbox, size: Size) -> None:
        assert slapd.clock is not None
        self.root = root
        self.slapd = slapd
        self.clock = slapd.clock
        self.size = size
        self.rng = random.Random(size.seed)
        self.figures = Figures()
        self.admin = slapd.admin()
        self.configs: dict[str, Any] = {}
        self.watchers: dict[str, InboxWatcher] = {}
        self.people: dict[str, list[Person]] = defaultdict(list)
        self.drop_due: dict[tuple[str, str], date] = {}
        self.announce: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)  # leave words
        self.consumed_slips: dict[Path, int] = {}
        self.stamped: dict[str, dict[str, tuple[int, datetime]]] = {}  # profile → path → when
        self.operator_todo: list[tuple[date, str, Person]] = []
        self.returns: list[tuple[date, Person, str]] = []
        self.seq = 0
        self.mail_log: dict[str, dict[str, datetime]] = defaultdict(dict)
        self.start = self.clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
        # the crash schedule has a generator of its own: it draws nothing from the day's life
        self.crash_rng = random.Random(size.seed + 1)
        self.crash_seq = 0
        self.crash_waited = 0
        self.drops_to_crash = self._crash_gap()
        for profile in CATALOGUES:
            self._setup(profile)
        self.oracle = Oracle(
            slapd.people_dn,
            {p: c.paths.state for p, c in self.configs.items()},
            sweep_every=size.sweep_every,
        )

    # -- set-up -----------------------------------------------------------------------------

    def _setup(self, profile: str) -> None:
        domain, orgs = CATALOGUES[profile]
        home = self.root / profile
        home.mkdir(parents=True)
        base = f"ou={profile},{self.slapd.people_dn}"
        assert self.admin.add(base, ["organizationalUnit"], {"ou": profile}), self.admin.result
        (home / "orgs.yaml").write_text(
            "orgs:\n"
            + "".join(
                f"  - {{code: {c}, name: {n}, mailbox: {m}, kind: {k}}}\n" for c, n, m, k in orgs
            ),
            encoding="utf-8",
        )
        write_private(home / "bind.pw", self.slapd.service_password + "\n")
        (home / "syncd.yaml").write_text(
            f"""profile: {profile}
domain: {domain}
directory:
  url: {self.slapd.url}
  bind_dn: {self.slapd.service_dn}
  bind_password_file: bind.pw
  base_dn: {base}
paths:
  inbox: inbox
  state: state
  outbox: outbox
  audit_log: state/audit.jsonl
orgs: orgs.yaml
retention:
  months: {RETENTION_MONTHS[profile]}
{ACTIVITY if profile in MAIL_LOG else ""}""",
            encoding="utf-8",
        )
        if profile in MAIL_LOG:
            self.write_activity(profile)
        config = load_config(home / "syncd.yaml")
        self.configs[profile] = config
        self.watchers[profile] = InboxWatcher(config, settle=0)
        for _ in range(self.size.people):
            self._hire(profile, self.start.date(), announce=False)
        for code, *_ in orgs:  # the first rosters come in over the first weeks
            self.drop_due[(profile, code)] = self.start.date() + timedelta(
                days=self.rng.randrange(0, 21)
            )

    def write_activity(self, profile: str) -> None:
        rows = sorted(self.mail_log[profile].items())
        (self.root / profile / "activity.csv").write_text(
            "address,last_activity,kind\n"
            + "".join(f"{a},{w.isoformat()},send\n" for a, w in rows),
            encoding="utf-8",
        )

    def _new_person(self, profile: str, org: str, day: date) -> Person:
        self.seq += 1
        r = self.rng
        name = f"{r.choice(FAMILY)} {r.choice(MIDDLE)} {r.choice(GIVEN)}"
        colleagues = [p.name for p in self.people[profile] if p.org == org and p.active]
        if colleagues and r.random() < 0.15:  # a namesake, or the same initials (Hồng/Hoàng)
            family, middle, given = r.choice(colleagues).split(" ", 2)
            same = [m for m in MIDDLE if m[0] == middle[0]]
            name = f"{family} {r.choice(same)} {given}"
        habit = r.choices(list(HABITS), weights=[h[0] for h in HABITS.values()])[0]
        birth = date(r.randrange(1965, 2003), r.randrange(1, 13), r.randrange(1, 29))
        return Person(
            profile, f"{PREFIX[profile]}{self.seq:05d}", name, birth, org, habit, hired=day
        )

    def _hire(self, profile: str, day: date, announce: bool = True) -> Person:
        org = self.rng.choice(CATALOGUES[profile][1])[0]
        p = self._new_person(profile, org, day)
        self.people[profile].append(p)
        if announce:
            self.figures.hires += 1
            self._schedule(profile, org, day, 0, 6)
        return p

    def _schedule(self, profile: str, org: str, day: date, lo: int, hi: int) -> None:
        when = day + timedelta(days=self.rng.randint(lo, hi))
        cur = self.drop_due.get((profile, org))
        if cur is None or when < cur:
            self.drop_due[(profile, org)] = when

    # -- the clock ----------------------------------------------------------------------------

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        self.clock.set(when)
        return when

    # -- syncd runs ---------------------------------------------------------------------------

    def _after_run(self, profile: str, outcome: RunOutcome | None, kind: str) -> None:
        self.figures.runs[kind] += 1
        if outcome is None:
            return
        if held(outcome):
            assert outcome.plan is not None
            why = outcome.plan.refused or "; ".join(outcome.plan.held)
            self.figures.refusals[f"{kind}: {why.split(' of ')[0][:60]}"] += 1
        if outcome.result is not None:
            for o in outcome.result.outcomes:
                self.figures.actions[o.action.kind.value] += o.ok
                self.figures.failed_actions += not o.ok
        self.oracle.run_saw(
            profile, {p.employee_number for s in outcome.snapshots for p in s.people}
        )
        for o in outcome.result.outcomes if outcome.result is not None else ():
            if o.ok and o.action.kind is ActionKind.PURGE and o.action.employee_number:
                # tuyenquang-2025 Đ8.4: locked 3 years → deleted, unrecoverable; a person HR
                # still lists gets a mailbox again from a later run that reads the roster
                self.oracle.unseen(profile, o.action.employee_number)
        for warning in outcome.warnings:  # what a run tells about the dead runs it took over
            died = DIED.match(warning)
            if died:
                self.figures.recoveries += 1
                self.figures.unfinished += int(died[2])
        self.figures.owed |= {(profile, uid) for uid in outcome.owed}

    def _guard(self, label: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # syncd failing is a finding, not the end of the simulation
            self.figures.errors.append(f"{self.today}: {label}: {type(exc).__name__}: {exc}")
            return None

    def reconcile(self, profile: str, when: datetime, sweep: bool) -> None:
        """The daemon's nightly jobs (connectors/daemon.py reconcile_job), with ``now``."""
        config = self.configs[profile]
        latest = {} if sweep else SnapshotRegistry(config.paths.state).latest()
        before = self.unanswered(profile) if sweep else set()
        for release in (False, True):
            outcome = self._guard(
                f"{profile} {'sweep' if sweep else 'full run'}",
                runner.run,
                config,
                rosters=sorted(latest),
                restrict=latest,
                full=True,
                sweep=sweep,
                now=when,
                allow_mass_change=release,
                what="simulation sweep" if sweep else "simulation reconcile",
            )
            self._after_run(profile, outcome, "sweep" if sweep else "full")
            self.collect_slips(profile, when)
            if sweep:
                for lost in sorted(before - self.unanswered(profile)):
                    self.oracle.violation(
                        profile,
                        "1-decision-dropped",
                        lost,
                        "an unanswered decision (syncd decisions) vanished from state.json in a "
                        "lifecycle sweep, which reads no roster and cannot have settled it",
                    )
            if release or not held(outcome):
                break
            # the operator reads the report, checks the plan and releases it the same night
            self.figures.overrides += 1
            when = self.at(when.date(), when.hour, 30)
        if sweep and outcome is not None:  # as the daemon's sweep job: what is past its
            self.stamp(profile, when)  # retention goes
            gone = self._guard(f"{profile} retention", retention.sweep, config, when, "sweep")
            self.check_retention(profile, when, gone or [])

    def drop(self, profile: str, org: str, day: date, when: datetime) -> None:
        """HR of ``org`` sends its roster; the daemon's inbox takes it."""
        config = self.configs[profile]
        rows, oracle_rows = [], []
        announced = self.announce.pop((profile, org), {})
        for p in self.people[profile]:
            if p.hired is not None and p.hired > day:
                continue
            said = ""
            if p.org == org and p.active:
                said = "Đang công tác"
            elif p.emp in announced:
                said = announced[p.emp]
            else:
                continue
            request = p.request if p.org == org and p.active else ""
            if request:
                p.request = ""
                if request == "Khôi phục":
                    self.figures.restore_requests += 1
            ex = next(((s, u, why) for s, u, why in p.exempt if u >= day and p.org == org), None)
            cols = [ex[2], f"{ex[0]:%d/%m/%Y}", f"{ex[1]:%d/%m/%Y}"] if ex else ["", "", ""]
            rows.append(
                ",".join(
                    [
                        p.emp,
                        p.name,
                        org,
                        "",
                        "Chuyên viên",
                        f"{p.birth:%d/%m/%Y}",
                        said,
                        request,
                        *cols,
                    ]
                )
            )
            oracle_rows.append(
                (p.emp, said == "Đang công tác", said, "restore" if request == "Khôi phục" else "")
            )
            if ex:
                self.oracle.exemption(profile, p.emp, ex[0], ex[1])
        if not rows:
            return
        path = config.paths.inbox / f"{org}-{day:%Y%m%d}-{when:%H%M}.csv"
        config.paths.inbox.mkdir(parents=True, exist_ok=True)
        write_roster(path, rows, header=ROSTER_HEADER)
        self.oracle.hr_file(profile, org, oracle_rows, day, when)
        crash_at = self._crash_due(profile, path, when)
        if crash_at is not None:
            # CRASH POINT: the daemon took the file and died at a crash point (kill -9); after
            # the restart the inbox takes it again from processing/ and recovers the dead run
            path = self.crash(profile, path, when, *crash_at)
        result = self._guard(
            f"{profile} drop {path.name}",
            self.watchers[profile].process,
            path,
            now=when,
        )
        where, outcome = result if result is not None else ("error", None)
        self.figures.drops[where] += 1
        self._after_run(profile, outcome, "drop")
        if where == "duplicate":  # same content as an earlier file: that run saw it
            self.oracle.run_saw(profile, {r[0] for r in oracle_rows})
        self.collect_slips(profile, when)
        if where == "processed" and held(outcome):
            # the report says: syncd reconcile --roster <filed file> --allow-mass-change; the
            # operator checks the plan and does so an hour later
            filed = sorted((config.paths.inbox.parent / "processed").rglob(path.name))
            if filed:
                self.figures.overrides += 1
                later = self.at(day, when.hour + 1, when.minute)
                outcome = self._guard(
                    f"{profile} release {path.name}",
                    runner.run,
                    config,
                    rosters=[filed[-1]],
                    now=later,
                    allow_mass_change=True,
                )
                self._after_run(profile, outcome, "release")
                self.collect_slips(profile, later)

    # -- kill -9 at chosen points --------------------------------------------------------------

    def _crash_gap(self) -> int:
        every = self.size.crash_every
        return self.crash_rng.randint(max(1, every // 2), every + every // 2) if every else 0

    def _crash_due(self, profile: str, path: Path, when: datetime) -> tuple[str, int] | None:
        """The crash point and n for this drop's run, if it is the next to be killed.

        One drop in about ``crash_every``: the first, once the countdown ran out, whose run can
        pass the next point of the cycle (points in turn, n = 1, 2, 3 in turn). ``syncd plan``
        (a dry run: it saves nothing) tells what the run would do: a copy of the roster filed
        last is filed as a duplicate without a run, most re-sends change nothing, and a run
        passes each journal point once; n is lowered to what the plan allows (a run may still
        pass a point fewer times than planned: it then finishes, counted apart). A plan too
        small for the n wanted waits for a bigger one, ``CRASH_PATIENCE`` drops at most."""
        if not self.size.crash_every:
            return None
        self.drops_to_crash -= 1
        if self.drops_to_crash > 0:
            return None
        watcher = self.watchers[profile]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if watcher._duplicate(watcher._hashes(), digest):
            return None
        config = self.configs[profile]
        outcome = self._guard(
            f"{profile} plan {path.name}",
            runner.run,
            config,
            rosters=[path],
            now=when,
            dry_run=True,
        )
        plan = outcome.plan if outcome is not None else None
        if plan is None or plan.refused or not plan.actions:
            return None
        point = CRASH_POINTS[self.crash_seq % len(CRASH_POINTS)]
        kinds = [a.kind.value for a in plan.actions]
        most = {
            "journal started": 1,  # one journal per run
            "directory call": len(kinds),  # at least one per action
            "slip written": sum(k in PASSWORD_KINDS for k in kinds),
            "audit written": len(kinds),
            "journal finished": 1,
        }[point]
        want = 1 + (self.crash_seq // len(CRASH_POINTS)) % 3
        if most == 0 or (most < want and self.crash_waited < CRASH_PATIENCE):
            self.crash_waited += 1
            return None
        self.crash_seq += 1
        self.crash_waited = 0
        self.drops_to_crash = self._crash_gap()
        return point, min(want, most)

    def crash(self, profile: str, path: Path, when: datetime, point: str, n: int) -> Path:
        """The daemon takes ``path`` (into processing/, as ``InboxWatcher.process`` does) and
        its run is a ``syncd reconcile`` process with ``SYNCD_CRASH_AT=<point>:<n>``, at the
        simulated ``when`` (slapd's clock stands there too). Returns the file left in
        processing/."""
        config = self.configs[profile]
        watcher = self.watchers[profile]
        spec = f"{point}:{n}"
        watcher.processing.mkdir(parents=True, exist_ok=True)
        taken = watcher.processing / path.name
        shutil.move(str(path), taken)
        assert self.clock.now == when, (self.clock.now, when)
        audit_before, slips_before = len(audit_lines(config)), slip_lines(config)
        env = {k: v for k, v in os.environ.items() if k != crashpoints.ENV}
        env[crashpoints.ENV] = spec
        cmd = [*SYNCD, "-c", str(config.source), "reconcile", "--roster", str(taken)]
        proc = subprocess.run(
            [*cmd, "--now", when.isoformat()],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=300,
            check=False,
        )
        err = proc.stderr.decode(errors="replace")[-3000:]
        label = f"{self.today} {profile} {path.name} {spec}"
        if proc.returncode == -signal.SIGKILL:
            self.figures.crashes[spec] += 1
            self.figures.crash_log.append(f"{label}: killed")
            return taken
        # it finished: only when the run passed the point fewer than n times
        records = [json.loads(x) for x in audit_lines(config)[audit_before:]]
        changes = [r for r in records if r.get("result") in ("ok", "failed")]
        passes = {
            "journal started": 1 if changes else 0,  # a journal per apply, one apply per run
            "directory call": sum(r.get("result") == "ok" for r in changes),  # at least
            "slip written": slip_lines(config) - slips_before,
            "audit written": len(records),
            "journal finished": 1 if changes else 0,
        }[point]
        assert 0 <= proc.returncode <= EXIT_REFUSED, (
            f"{label}: syncd exited with {proc.returncode}, neither killed nor finished:\n{err}"
        )
        assert passes < n, f"{label}: {passes} pass(es) of {point!r} and not killed:\n{err}"
        self.figures.survived[spec] += 1
        self.figures.crash_log.append(f"{label}: finished (exit {proc.returncode})")
        return taken

    # -- slips: how a person gets a one-time password ----------------------------------------

    # -- what syncd keeps on disk, dated on the simulated days ---------------------------------

    def _kept(self, config: Config) -> dict[str, int]:
        """What the retention judges by its modification time, and that time (ns): the files
        of the state's reports and rosters, of processed/ and rejected/ (any depth), and the
        outbox's run folders."""
        base = config.paths.inbox.parent
        out: dict[str, int] = {}

        def scan(folder: Path, files: bool, depth: int) -> None:
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                return
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if not files:
                        out[e.path] = e.stat(follow_symlinks=False).st_mtime_ns
                    elif depth:
                        scan(Path(e.path), files, depth - 1)
                elif files:
                    out[e.path] = e.stat(follow_symlinks=False).st_mtime_ns

        for folder in (config.paths.state / "reports", config.paths.state / "rosters"):
            scan(folder, True, 0)
        for folder in (base / "processed", base / "rejected"):
            scan(folder, True, 3)
        scan(config.paths.outbox, False, 0)
        return out

    def stamp(self, profile: str, when: datetime) -> None:
        """Date on ``when`` what syncd wrote since the last stamp: new, or rewritten (its
        modification time is no longer the one set here)."""
        stamped = self.stamped.setdefault(profile, {})
        ns = int(when.timestamp()) * 1_000_000_000
        for path, mtime in self._kept(self.configs[profile]).items():
            if stamped.get(path, (None, when))[0] != mtime:
                os.utime(path, ns=(ns, ns), follow_symlinks=False)
                stamped[path] = (ns, when)

    def check_retention(self, profile: str, when: datetime, gone: list[Path]) -> None:
        """Invariant 6, by the simulation's own dates and day counts: nothing deleted before
        its retention (``retention.months``; slips 30 days), nothing kept more than a sweep
        past it, and the latest accepted roster of every organisation never deleted."""
        config = self.configs[profile]
        stamped = self.stamped.setdefault(profile, {})
        months = RETENTION_MONTHS[profile]
        registry = config.paths.state / "snapshots.json"
        entries = json.loads(registry.read_text("utf-8")).values() if registry.exists() else []
        latest = {Path(e["file"]) for e in entries}
        for path in sorted(latest):
            if not path.exists():
                self.oracle.violation(
                    profile, "6-latest-roster-deleted", path.name, "the nightly run needs it"
                )
        journals = config.paths.state / "journal"

        def days(path: Path) -> int:
            return SLIP_DAYS if path.parent == config.paths.outbox else months * 28

        for path in gone:
            self.figures.retention[str(path.parent == config.paths.outbox)] += 1
            was = stamped.pop(str(path), None)
            if was is not None and when - was[1] < timedelta(days=days(path)):
                self.oracle.violation(
                    profile,
                    "6-deleted-early",
                    path.name,
                    f"written {was[1]:%Y-%m-%d}, deleted {when:%Y-%m-%d}",
                )
        # stamped at each sweep, a file may look up to sweep_every days younger than it is
        slack = timedelta(days=self.size.sweep_every + 1)
        for name, (_, written) in sorted(stamped.items()):
            path = Path(name)
            longest = timedelta(days=SLIP_DAYS if days(path) == SLIP_DAYS else months * 31)
            if when - written <= longest + slack:
                continue
            if path in latest or (journals / f"{path.name}.jsonl").exists():
                continue  # still needed: the nightly run, or a dead run's recovery reads it
            if not os.path.lexists(path):  # gone with its run folder, or renamed
                del stamped[name]
                continue
            self.oracle.violation(
                profile,
                "6-kept-too-long",
                path.name,
                f"written {written:%Y-%m-%d}, still there {when:%Y-%m-%d}",
            )

    def collect_slips(self, profile: str, when: datetime) -> None:
        outbox = self.configs[profile].paths.outbox
        if not outbox.is_dir():
            return
        by_emp = {p.emp: p for p in self.people[profile]}
        for path in sorted(outbox.glob("*/*.csv")):
            lines = path.read_text(encoding="utf-8-sig").splitlines()
            start = self.consumed_slips.get(path, 1)
            self.consumed_slips[path] = len(lines)
            for row in csv.reader(lines[start:]):
                if len(row) < 4:
                    continue
                _, mail, password, why = row[:4]
                if password[:2] in {"'=", "'+", "'-", "'@"}:
                    password = password[1:]  # the spreadsheet guard, not part of the password
                self.figures.slips += 1
                entry = self.lookup(f"(mail={escape_filter_chars(mail)})", prefer_mail=mail)
                uuid = one(entry, "entryUUID") if entry else None
                self.oracle.slip(
                    profile, f"{path.parent.name}/{path.name}", mail, password, why, uuid, when
                )
                if entry is None:
                    continue
                emp = one(entry, "employeeNumber")
                person = by_emp.get(emp or "")
                if person is None:  # an organisation mailbox: its clerk tries it once
                    if not self.bind(str(entry["dn"]), password):
                        self.oracle.slip_refused(
                            profile, mail, f"organisation mailbox slip {path.parent.name} refused"
                        )
                    continue
                person.password, person.must_change = password, True
                person.waiting_operator = False
                first = HABITS[person.habit][2]
                person.next_login = (
                    None
                    if first is None
                    else when.date() + timedelta(days=self.rng.randint(*first))
                )

    # -- the directory as the mail server sees it ---------------------------------------------

    def lookup(self, flt: str, prefer_mail: str = "") -> dict[str, Any] | None:
        self.admin.search(
            self.slapd.people_dn,
            f"(&(objectClass=inetOrgPerson){flt})",
            attributes=["*", "+"],
        )
        found = [
            {**e["attributes"], "dn": e["dn"]}
            for e in self.admin.response or []
            if e.get("type") == "searchResEntry"
        ]
        found.sort(
            key=lambda e: (
                prefer_mail.lower() not in {m.lower() for m in e.get("mail", [])},
                state_of(e) == "revoked",
            )
        )
        return found[0] if found else None

    def bind(self, dn: str, password: str) -> bool:
        conn = Connection(Server(self.slapd.url, get_info=NONE), dn, password)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    def new_password(self) -> str:
        r = self.rng
        return f"Kt{r.randrange(10**6):06d}#Qz{r.choice('ABCDEFGH')}"

    def login(self, p: Person, when: datetime) -> None:
        entry = self.lookup(f"(employeeNumber={escape_filter_chars(p.emp)})")
        if entry is None or p.password is None:
            p.next_login = when.date() + timedelta(days=1)
            return
        dn, uuid, uid = str(entry["dn"]), str(one(entry, "entryUUID")), one(entry, "uid") or ""
        conn = Connection(Server(self.slapd.url, get_info=NONE), dn, p.password)
        try:
            ok = bool(conn.bind())
            if ok:
                self.figures.logins += 1
                self.oracle.login(uuid, when)
                if p.profile in MAIL_LOG:  # and sends a mail: the mail log sees it
                    self.mail_log[p.profile][f"{uid}@{CATALOGUES[p.profile][0]}"] = when
                if p.must_change:
                    new = self.new_password()
                    changed = conn.extend.standard.modify_password(dn, p.password, new)
                    if changed:
                        p.password, p.must_change = new, False
                        self.figures.first_logins += 1
                        self.oracle.password_changed(uuid, when)
                    else:
                        self.figures.errors.append(
                            f"{when:%Y-%m-%d} {p.profile} {uid}: own password change refused: "
                            f"{conn.result.get('description')}"
                        )
        finally:
            conn.unbind()
        lo, hi = HABITS[p.habit][1]
        if ok:
            p.next_login = when.date() + timedelta(days=self.rng.randint(max(lo, 1), max(hi, 1)))
            return
        self.figures.refused_logins += 1
        blocked = state_of(entry) != "active" or bool(entry.get("pwdAccountLockedTime"))
        if not blocked and p.must_change:
            self.oracle.slip_refused(
                p.profile, uid, f"{p.emp}'s one-time password from the slip does not open {dn}"
            )
        p.next_login = None  # until a new slip
        if p.waiting_operator:
            return
        p.request = "Khôi phục" if blocked else "Cấp lại mật khẩu"
        self._schedule(p.profile, p.org, when.date(), 1, 10)

    # -- life ---------------------------------------------------------------------------------

    def life(self, profile: str, day: date) -> None:
        r = self.rng
        n = max(1, len([p for p in self.people[profile] if p.active]))
        orgs = [c for c, *_ in CATALOGUES[profile][1]]
        active = [p for p in self.people[profile] if p.active and p.hired and p.hired <= day]
        if r.random() < 0.012 * n / 10:
            self._hire(profile, day)
        if active and r.random() < 0.008 * n / 10:
            p = r.choice(active)
            word = r.choice(LEAVE_WORDS)
            p.active = False
            self.announce[(profile, p.org)][p.emp] = word
            self._schedule(profile, p.org, day, 0, 8)
            self.figures.leavers += 1
            if word == "Nghỉ việc" and r.random() < 0.4:
                self.returns.append((day + timedelta(days=r.randint(60, 300)), p, r.choice(orgs)))
        if active and r.random() < 0.006 * n / 10:
            p = r.choice(active)
            new_org = r.choice([o for o in orgs if o != p.org])
            self.announce[(profile, p.org)][p.emp] = "Chuyển công tác"
            self._schedule(profile, p.org, day, 0, 12)
            p.org = new_org
            self._schedule(profile, new_org, day, 0, 12)
            self.figures.transfers += 1
        if active and r.random() < 0.004 * n / 10:
            p = r.choice(active)
            if p.password is not None and not p.request:
                p.password, p.next_login = None, None
                p.request = "Cấp lại mật khẩu"
                self._schedule(profile, p.org, day, 1, 10)
                self.figures.resets += 1
        if active and r.random() < 0.004 * n / 10:
            p = r.choice(active)
            start = day + timedelta(days=r.randint(0, 10))
            until = start + timedelta(days=r.randint(60, 200))
            p.exempt.append((start, until, r.choice(ABSENCES)))
            if p.next_login is not None and p.next_login >= start:
                p.next_login = until + timedelta(days=r.randint(1, 10))
            self._schedule(profile, p.org, day, 0, 3)
            self.figures.exemptions += 1
        if active and r.random() < 0.002 * n / 10:
            self.security_lock(profile, r.choice(active), day)
        for _, p, org in [x for x in self.returns if x[0] == day and x[1].profile == profile]:
            p.active, p.org, p.request = True, org, "Khôi phục"
            p.password, p.next_login = None, None
            self._schedule(profile, org, day, 0, 5)
            self.figures.returns += 1

    def security_lock(self, profile: str, p: Person, day: date) -> None:
        entry = self.lookup(f"(employeeNumber={escape_filter_chars(p.emp)})")
        if entry is None or state_of(entry) != "active" or p.waiting_operator:
            return
        config = self.configs[profile]
        when = self.at(day, 9, 30)
        article = config.effective.lifecycle.manual_lock["compromised"]
        uid = one(entry, "uid") or ""
        outcome = self._guard(
            f"{profile} lock {uid}",
            runner.operator_action,
            config,
            uid,
            ActionKind.LOCK,
            f"manual lock: compromised — ticket {self.figures.manual_locks + 1}",
            article,
            now=when,
        )
        if outcome is None:
            return
        self._after_run(profile, outcome, "operator")
        self.figures.manual_locks += 1
        self.oracle.manual_lock(profile, p.emp, str(one(entry, "entryUUID")), uid, when)
        p.waiting_operator = True
        p.next_login = None
        later = day + timedelta(days=self.rng.randint(3, 25))
        self.operator_todo.append((later, "restore" if self.rng.random() < 0.5 else "ask", p))

    def operator(self, profile: str, day: date) -> None:
        for item in [x for x in self.operator_todo if x[0] == day and x[2].profile == profile]:
            self.operator_todo.remove(item)
            _, how, p = item
            if not p.active:
                continue
            if how == "ask":  # the organisation sends a restore request
                p.request, p.waiting_operator = "Khôi phục", False
                self._schedule(profile, p.org, day, 0, 4)
                continue
            entry = self.lookup(f"(employeeNumber={escape_filter_chars(p.emp)})")
            if entry is None:
                continue
            config, when = self.configs[profile], self.at(day, 10, 0)
            rules = config.effective
            outcome = self._guard(
                f"{profile} restore {one(entry, 'uid')}",
                runner.operator_action,
                config,
                one(entry, "uid") or "",
                ActionKind.RESTORE,
                "restored on request (khôi phục) — ticket closed",
                f"{rules.request_article}; {rules.must_change_article}",
                now=when,
            )
            if outcome is not None:
                self.figures.operator_restores += 1
                self.oracle.operator_restore(str(one(entry, "entryUUID")), when)
                self._after_run(profile, outcome, "operator")
                self.collect_slips(profile, when)

    def answer_decisions(self, profile: str, day: date) -> None:
        """The operator answers pending uid collisions with the first candidate (``syncd
        decide ID --uid UID``), then reconciles so the answer is applied today."""
        store = StateStore(self.configs[profile].paths.state)
        state = store.load()
        changed = False
        for d in state.decisions.values():
            if d.id in state.resolutions or not d.candidates:
                continue
            if d.kind.value == "uid-collision":
                state.resolutions[d.id] = Resolution(
                    Resolve.UID, d.candidates[0], by="simulation", at=f"{day}"
                )
                changed = True
                self.figures.decisions_answered += 1
        if changed:
            store.save(state)
            # before the day's logins (from 12:00): the server's clock never goes backwards
            self.reconcile(profile, self.at(day, 11), sweep=False)

    def unanswered(self, profile: str) -> set[str]:
        """Decisions waiting for the operator: "id (employee number)"."""
        state = StateStore(self.configs[profile].paths.state).load()
        return {
            f"{d.id} ({d.employee_number})"
            for d in state.decisions.values()
            if d.id not in state.resolutions
        }

    def pending_decisions(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for profile, config in self.configs.items():
            try:
                data = json.loads((config.paths.state / "state.json").read_text("utf-8"))
            except (OSError, ValueError):
                data = {}
            out[profile] = {
                str(d.get("employee_number"))
                for d in data.get("decisions", [])
                if d.get("employee_number")
            }
        return out

    # -- the days -----------------------------------------------------------------------------

    today: date = date.min

    def run(self, verify_clock: Callable[[Province], None] | None = None) -> Figures:
        t0 = time.monotonic()
        days = self.size.years * 365
        for n in range(days):
            day = self.start.date() + timedelta(days=n)
            self.today = day
            self.oracle.day = day
            if n % self.size.sweep_every == 0:
                for profile in self.configs:
                    self.reconcile(profile, self.at(day, 1), sweep=True)
            if n % self.size.full_every == self.size.full_every - 1:
                for profile in self.configs:
                    self.reconcile(profile, self.at(day, 2), sweep=False)
            for profile in self.configs:
                self.life(profile, day)
                self.operator(profile, day)
            due = sorted(k for k, d in self.drop_due.items() if d <= day)
            self.rng.shuffle(due)
            for i, (profile, org) in enumerate(due):
                del self.drop_due[(profile, org)]
                self.drop(profile, org, day, self.at(day, 9, min(59, i)))
            for profile in self.configs:  # the operator looks at `syncd decisions` daily
                self.answer_decisions(profile, day)
            if n % 30 == 29:  # routine monthly re-sends, in no particular order
                for profile, (_, orgs) in CATALOGUES.items():
                    for code, *_ in orgs:
                        self._schedule(profile, code, day, 1, 25)
            logins = [
                p
                for ps in self.people.values()
                for p in ps
                if p.active
                and p.next_login is not None
                and p.next_login <= day
                and not any(s <= day <= u for s, u, _ in p.exempt)
            ]
            for i, p in enumerate(logins):
                self.login(p, self.at(day, 12 + i // 60, i % 60))
            for profile in MAIL_LOG:
                self.write_activity(profile)
            if n == 45 and verify_clock is not None:
                verify_clock(self)
            if n % 30 == 0:
                self.figures.descriptors.append(len(os.listdir("/proc/self/fd")))
            self.oracle.check(day, self.at(day, 23), self.admin, self.pending_decisions())
            self.figures.days += 1
        self.figures.seconds = time.monotonic() - t0
        return self.figures

    def interrupted_records(self) -> Counter[str]:
        """Audit records that recovering runs wrote for dead runs' actions: action → found."""
        out: Counter[str] = Counter()
        for config in self.configs.values():
            for line in audit_lines(config):
                r = json.loads(line)
                if r.get("result") == "interrupted":
                    out[f"{r.get('action')} (found {r.get('found')})"] += 1
        return out

    def report(self) -> str:
        f, o = self.figures, self.oracle
        lines = [
            f"simulated days: {f.days} (seed {self.size.seed}, {self.size.people} people per "
            f"profile at the start, sweep every {self.size.sweep_every} day(s), full run every "
            f"{self.size.full_every} days) in "
            f"{f.seconds:.0f} s",
            f"people: {sum(len(v) for v in self.people.values())} (hires {f.hires}, leavers "
            f"{f.leavers}, returns {f.returns}, transfers {f.transfers}, exemptions "
            f"{f.exemptions})",
            f"runs: {dict(f.runs)}; drops: {dict(f.drops)}; operator overrides: {f.overrides}",
            f"actions applied: {sum(f.actions.values())} {dict(f.actions)}; failed "
            f"{f.failed_actions}",
            f"logins: {f.logins} ok, {f.refused_logins} refused, {f.first_logins} first-login "
            f"password changes; slips: {f.slips}; resets asked {f.resets}; restore requests "
            f"{f.restore_requests}; security locks {f.manual_locks}; operator restores "
            f"{f.operator_restores}; decisions answered {f.decisions_answered}",
            f"kill -9 of syncd at crash points: {sum(f.crashes.values())} killed "
            f"{dict(sorted(f.crashes.items()))}; {sum(f.survived.values())} finished, the "
            f"run passing the point fewer than n times {dict(sorted(f.survived.items()))}; "
            f"recoveries {f.recoveries} ({f.unfinished} unfinished actions taken over); "
            f"one-time passwords owed after a crash, re-issued: {len(f.owed)}; audit records "
            f"written by a recovery: {dict(self.interrupted_records())}",
            *(f"  {line}" for line in f.crash_log),
            f"refusals / held: {dict(f.refusals)}",
            f"open descriptors of the process every 30 days: {f.descriptors}",
            f"deleted by the retention sweeps: {f.retention['False']} files past "
            f"retention.months, {f.retention['True']} slip folders past 30 days",
            f"oracle checks: {o.checks}; violations (incidents, violation-days) by invariant:",
        ]
        for kind, (incidents, vdays) in o.by_kind().items():
            lines.append(f"  {kind}: {incidents} incidents, {vdays} violation-days")
        lines.append("first example of each kind:")
        shown = set()
        for v in o.log:
            if v.invariant not in shown:
                shown.add(v.invariant)
                lines.append(f"  {v}")
        if f.errors:
            lines.append(f"syncd exceptions ({len(f.errors)}), first: {f.errors[:3]}")
        return "\n".join(lines)
