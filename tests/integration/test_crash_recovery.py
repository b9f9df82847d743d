"""syncd killed at chosen points of a real reconcile, and slapd killed between two changes.

``SYNCD_CRASH_AT=<point>:<n>`` (connectors/crashpoints.py) makes ``syncd reconcile`` SIGKILL
itself right after the n-th pass of a seam: the plan journalled, a directory change returned,
a slip line written, an audit record written, the journal removed. After the crash (and after
a crash of the recovering run itself) a clean re-run must converge: 0 accounts sharing an
employeeNumber, 0 people without a usable mailbox (the password on their newest slip opens
it), 0 actions lost (the next plan is empty), 0 passwords on two slips, and every change the
directory holds with exactly one audit record. One randomised wall-clock ``kill -9`` variant
is kept behind ``-m long``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import Connection

from connectors import runner
from connectors.audit import verify_audit
from connectors.directory.openldap import OpenLdapDirectory
from connectors.loading import load_config
from connectors.outcome import EXIT_FAILED, report_text
from connectors.secrets import bind_password
from connectors.store import write_private
from devtools.slapd_sandbox import Sandbox, find_slapd
from tests.conftest import ORGS_YAML
from tests.helpers import HEADER

PEOPLE = 6
SYNCD = [sys.executable, "-m", "connectors.cli"]
PASSWORD_ACTIONS = {"create", "create-org-mailbox", "reset-password", "restore"}


@pytest.fixture(scope="module")
def own_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if find_slapd() is None:
        pytest.skip("Debian slapd is not installed")
    sandbox = Sandbox(tmp_path_factory.mktemp("crash") / "slapd", suffix="dc=crash,dc=gov,dc=vn")
    sandbox.start()
    yield sandbox
    sandbox.stop()


_runs = iter(range(1, 10_000))


def _setup(root: Path, slapd: Sandbox, people: int = PEOPLE) -> tuple[Path, Path]:
    root.mkdir(parents=True)
    n = next(_runs)
    base = f"ou=run{n},{slapd.people_dn}"
    conn = slapd.admin()
    conn.add(base, ["organizationalUnit"], {"ou": f"run{n}"})
    conn.unbind()
    (root / "orgs.yaml").write_text(ORGS_YAML, "utf-8")
    write_private(root / "bind.pw", slapd.service_password)
    (root / "syncd.yaml").write_text(
        f"profile: caobang-2025\ndomain: test.gov.vn\ndirectory: {{url: '{slapd.url}', "
        f"bind_dn: '{slapd.service_dn}', bind_password_file: bind.pw, base_dn: '{base}', "
        "retry_delays: [0.1]}\n"
        "paths: {inbox: inbox, state: state, outbox: outbox, audit_log: state/audit.jsonl}\n"
        "orgs: orgs.yaml\n",
        "utf-8",
    )
    roster = root / "r.csv"
    roster.write_text(
        HEADER + "".join(f"E{i:04d},Trần Văn Người{i:04d},skhcn,,,,,\n" for i in range(people)),
        "utf-8",
    )
    return root / "syncd.yaml", roster


def _syncd(cfg: Path, roster: Path, crash_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCD_CRASH_AT"}
    if crash_at:
        env["SYNCD_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [*SYNCD, "-c", str(cfg), "reconcile", "--roster", str(roster), "--wait", "30"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def slips_of(outbox: Path) -> list[tuple[str, str, str]]:
    """(run, uid, password) of every slip line, oldest run first."""
    out = []
    for path in sorted(outbox.rglob("*.csv")):
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))[1:]
        out += [(path.parent.name, r[1].split("@")[0], r[2]) for r in rows]
    return out


def audit_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_converged(cfg_path: Path, slapd: Sandbox, people: int) -> dict[str, int]:
    """The invariants after a clean re-run; returns figures for the summary line."""
    cfg = load_config(cfg_path)
    again = runner.run(cfg, rosters=[cfg_path.parent / "r.csv"], dry_run=True)
    assert again.plan is not None
    assert again.plan.actions == (), again.plan.counts()  # 0 actions lost
    conn = slapd.admin()
    conn.search(
        cfg.directory.base_dn,
        "(employeeNumber=*)",
        attributes=["uid", "employeeNumber", "syncdState", "pwdChangedTime"],
    )
    entries = [
        (e["dn"], e["attributes"]) for e in conn.response if e.get("type") == "searchResEntry"
    ]
    conn.unbind()
    per_key = Counter(a["employeeNumber"][0] for _, a in entries)
    assert [k for k, n in per_key.items() if n > 1] == []  # 0 accounts sharing a key
    assert len(per_key) == people  # 0 people missing
    assert [a["uid"] for _, a in entries if a["syncdState"] != ["active"]] == []
    slips = slips_of(cfg.paths.outbox)
    newest = {uid: pw for _, uid, pw in slips}  # runs sort by time: the last one wins
    for dn, attrs in entries:  # the newest slip opens the mailbox: nobody is left without one
        uid = attrs["uid"][0]
        assert uid in newest, f"{uid} has no slip"
        assert Connection(slapd.url, dn, newest[uid]).bind(), f"{uid}: newest slip is stale"
    assert [pw for pw, n in Counter(pw for *_, pw in slips).items() if n > 1] == []
    # a dead run's printable pages are finished from its CSV lines by the recovering run
    pages = [p for p in cfg.paths.outbox.rglob("*.csv") if not p.with_suffix(".html").exists()]
    assert pages == []

    # every change in the directory has exactly one audit record, across the crashes
    records = audit_of(cfg.paths.audit_log)
    assert verify_audit(cfg.paths.audit_log, cfg.paths.state).ok
    changes = Counter(
        (r["run_id"], r["action"], r["uid"]) for r in records if r.get("event") == "audit"
    )
    assert [k for k, n in changes.items() if n > 1] == []  # each change recorded once
    for _, attrs in entries:
        uid = attrs["uid"][0]
        mine = [r for r in records if r.get("uid") == uid]
        created = [
            r
            for r in mine
            if r["action"] == "create"
            and (r["result"] == "ok" or (r["result"] == "interrupted" and r["found"] != "absent"))
        ]
        assert len(created) == 1, (uid, mine)
        # each password handed out is in the audit log as issued, and only those
        issued = [
            r for r in mine if r["action"] in PASSWORD_ACTIONS and r.get("one_time_password_issued")
        ]
        assert len(issued) == sum(1 for _, u, _ in slips if u == uid), (uid, mine)
    return {
        "interrupted records": sum(1 for r in records if r.get("result") == "interrupted"),
        "slips": len(slips),
    }


# (crash of the first run, crash of the recovering run or None): each then a clean re-run
SCENARIOS = [
    ("journal started:1", None),
    ("directory call:1", None),
    ("directory call:4", None),
    ("slip written:1", None),
    ("slip written:5", None),
    ("audit written:2", None),
    ("audit written:6", None),
    ("journal finished:1", None),
    ("directory call:3", "directory call:1"),  # the recovery's own reset dies too
    ("slip written:2", "audit written:1"),
    ("directory call:2", "journal started:1"),
]


@pytest.mark.parametrize(
    ("first", "second"), SCENARIOS, ids=[" then ".join(filter(None, s)) for s in SCENARIOS]
)
def test_syncd_killed_at_a_crash_point_converges(
    tmp_path: Path, own_slapd: Sandbox, first: str, second: str | None
) -> None:
    cfg, roster = _setup(tmp_path / "k", own_slapd)
    for crash in (first, second):
        if crash is None:
            continue
        proc = _syncd(cfg, roster, crash)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, (crash, err.decode()[-2000:])
    proc = _syncd(cfg, roster)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    figures = check_converged(cfg, own_slapd, PEOPLE)
    print(f"\n{first} / {second}: {figures}")


# Crashes inside a batch (connectors.durable.BATCH = 64 actions): 140 people and the two
# organisation mailboxes are three batches (64, 64, 14). While a batch's first creates are
# with slapd (``create_many``'s ``meanwhile``: 16 of 64, all 14 of batch 3), syncd commits
# the batch before (slips, audit records, end records) and journals the batch after. Each
# point then means the whole of the batch before it:
# "slip written:70" is batch 2's slips synced, none of its audit records; "audit written:70"
# is batch 2's records on disk with the head still at record 64.
BATCHED_PEOPLE = 140
# slapd finishes the adds it was sent before syncd died, or drops those not begun when the
# connection closes: those out are made or not, in any number
WHILE_BATCH_1_IS_OUT = range(0, 17)
WHILE_BATCH_2_IS_OUT = range(64, 81)
WHILE_BATCH_3_IS_OUT = range(128, 143)
BATCH_SCENARIOS: list[tuple[str, str | None, tuple[int | range, int, int, int]]] = [
    # (first crash, crash of the recovering run or None, what the first crash leaves on disk:
    # entries made, slip lines, audit records, the audit head's record number)
    ("batch journalled:2", None, (WHILE_BATCH_1_IS_OUT, 0, 0, 0)),  # batch 2's intent synced
    ("directory call:100", None, (128, 64, 64, 64)),  # batch 2 made, none of its slips
    ("slip written:70", None, (WHILE_BATCH_3_IS_OUT, 128, 64, 64)),  # none of its records
    ("audit written:70", None, (WHILE_BATCH_3_IS_OUT, 128, 128, 64)),  # the head behind
    ("batch finished:1", None, (WHILE_BATCH_2_IS_OUT, 64, 64, 64)),  # batch 1 whole
    ("directory call:130", "batch journalled:1", (142, 128, 128, 128)),  # the recovery dies
    ("slip written:100", "audit written:3", (WHILE_BATCH_3_IS_OUT, 128, 64, 64)),
]


def on_disk(cfg: Path, slapd: Sandbox) -> tuple[int, int, int, int]:
    conn = slapd.admin()
    made = list(
        conn.extend.standard.paged_search(
            load_config(cfg).directory.base_dn, "(uid=*)", attributes=["1.1"], generator=True
        )
    )
    conn.unbind()
    log = cfg.parent / "state" / "audit.jsonl"
    head = json.loads((cfg.parent / "state" / "audit.head").read_text("utf-8"))["seq"]
    return (
        sum(1 for e in made if e.get("type") == "searchResEntry"),
        len(slips_of(cfg.parent / "outbox")),
        len(audit_of(log)) if log.exists() else 0,
        head,
    )


@pytest.mark.parametrize(
    ("first", "second", "left"),
    BATCH_SCENARIOS,
    ids=[f"{a} then {b}" if b else a for a, b, _ in BATCH_SCENARIOS],
)
def test_syncd_killed_inside_a_batch_converges_with_no_lost_slip_or_audit_record(
    tmp_path: Path,
    own_slapd: Sandbox,
    first: str,
    second: str | None,
    left: tuple[int | range, int, int, int],
) -> None:
    """Group commit: the crash points inside a batch. The first crash leaves whole batches
    on disk (slips, records: a batch's or none of it); after the clean re-run no account is
    without a slip that opens it, none is created twice, every change is audited once."""
    cfg, roster = _setup(tmp_path / "b", own_slapd, BATCHED_PEOPLE)
    for crash in (first, second):
        if crash is None:
            continue
        proc = _syncd(cfg, roster, crash)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (crash, err.decode()[-2000:])
        if crash == first:
            made, *rest = on_disk(cfg, own_slapd)
            expected, *expected_rest = left
            assert made in expected if isinstance(expected, range) else made == expected, made
            assert rest == expected_rest
    proc = _syncd(cfg, roster)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    figures = check_converged(cfg, own_slapd, BATCHED_PEOPLE)
    print(f"\n{first} / {second}: {figures}")


def test_a_batch_is_journalled_whole_before_any_of_its_changes(
    tmp_path: Path, own_slapd: Sandbox
) -> None:
    """Killed right after the second batch's start records: all 64 are in the journal, none
    of their entries exists. They are journalled while the first batch's first adds are out
    (at most ``PIPELINE``), so the first batch has no slip, record or end record yet."""
    cfg, roster = _setup(tmp_path / "j", own_slapd, BATCHED_PEOPLE)
    proc = _syncd(cfg, roster, "batch journalled:2")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    [journal] = (cfg.parent / "state" / "journal").glob("*.jsonl")
    records = [json.loads(line) for line in journal.read_text("utf-8").splitlines()]
    starts = [r for r in records if r.get("s") == "start"]
    assert [r["i"] for r in starts] == list(range(128))  # two batches of 64 journalled
    assert [r["i"] for r in records if r.get("s") == "done"] == []
    conn = own_slapd.admin()
    base = load_config(cfg).directory.base_dn
    for r in starts[64:]:  # batch 2: journalled, not made
        conn.search(base, f"(uid={r['uid']})", attributes=["1.1"])
        assert conn.entries == [], r["uid"]
    conn.unbind()
    made, *rest = on_disk(cfg, own_slapd)
    assert made in WHILE_BATCH_1_IS_OUT and rest == [0, 0, 0]


class KillsSlapd:
    """The real directory; slapd is killed just before the n-th change reaches it."""

    def __init__(self, inner: OpenLdapDirectory, slapd: Sandbox, n: int) -> None:
        self.inner, self.slapd, self.left = inner, slapd, n

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in {
            "create",
            "create_many",
            "update",
            "move",
            "set_password",
            "set_state",
            "delete",
        }:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            many = len(args[0]) if name == "create_many" else 1  # creates sent together
            if 0 < self.left <= many:
                self.slapd.kill()
            self.left -= many
            return attr(*args, **kwargs)

        return call


@pytest.mark.parametrize("n", [1, 4])
def test_kill_9_of_slapd_between_two_changes_converges(
    tmp_path: Path, own_slapd: Sandbox, n: int
) -> None:
    cfg_path, roster = _setup(tmp_path / "s", own_slapd)
    cfg = load_config(cfg_path)
    real = OpenLdapDirectory(cfg.directory, bind_password(cfg.directory, []), cfg.domain)
    try:
        dying = runner.run(cfg, rosters=[roster], directory=KillsSlapd(real, own_slapd, n))
    finally:
        real.close()
        own_slapd.start()
    assert dying.exit_code == EXIT_FAILED  # the directory went away mid-run
    rerun = runner.run(cfg, rosters=[roster], lock_timeout=30)
    assert rerun.exit_code == 0, report_text(rerun, [roster])
    check_converged(cfg_path, own_slapd, PEOPLE)


def _duration(tmp_path: Path, slapd: Sandbox, people: int) -> float:
    cfg, roster = _setup(tmp_path / "timing", slapd, people)
    start = time.monotonic()
    assert _syncd(cfg, roster).wait(timeout=120) == 0
    return time.monotonic() - start


@pytest.mark.long
def test_kill_9_of_syncd_at_random_wall_clock_points_converges(
    tmp_path: Path, own_slapd: Sandbox
) -> None:
    """The wall-clock variant: kills land anywhere, also inside a directory call."""
    people, points = 300, int(os.environ.get("SYNCD_CRASH_POINTS", "20"))
    rng = random.Random(20261125)
    full = _duration(tmp_path, own_slapd, people)
    for k in range(points):
        cfg, roster = _setup(tmp_path / f"k{k}", own_slapd, people)
        proc = _syncd(cfg, roster)
        time.sleep(rng.uniform(0.05, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _syncd(cfg, roster).wait(timeout=120) == 0
        check_converged(cfg, own_slapd, people)


@pytest.mark.parametrize("crash", ["slip written:2", "audit written:2"])
def test_a_reset_request_whose_slip_reached_the_disk_is_not_carried_out_again(
    tmp_path: Path, own_slapd: Sandbox, crash: str
) -> None:
    """Found by an attack: syncd killed after a batch's slips (or audit records) reached the
    disk and before its end records; the recovering run reset the same passwords again, so
    the slips HR had were stale and one request was audited twice."""
    cfg, roster = _setup(tmp_path / "r", own_slapd)
    proc = _syncd(cfg, roster)
    assert proc.wait(timeout=300) == 0
    rows = roster.read_text("utf-8").splitlines()
    asked = [1, 3]  # E0001, E0003: "cấp lại mật khẩu"
    for k in asked:
        rows[1 + k] = rows[1 + k].rstrip(",") + ",,,,,cấp lại mật khẩu"
        assert rows[1 + k].count(",") == 7, rows[1 + k]
    roster.write_text("\n".join(rows) + "\n", "utf-8")
    proc = _syncd(cfg, roster, crash)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    proc = _syncd(cfg, roster)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    resets = [
        r
        for r in audit_of(cfg.parent / "state" / "audit.jsonl")
        if r.get("action") == "reset-password"
    ]
    assert sorted(r["employee_number"] for r in resets) == ["E0001", "E0003"], resets
    per_uid = Counter(uid for _, uid, _ in slips_of(cfg.parent / "outbox"))
    # a create's slip each (people and organisation mailboxes), one reset's each for the two
    assert Counter(per_uid.values()) == {1: len(per_uid) - 2, 2: 2}, per_uid
    check_converged(cfg, own_slapd, PEOPLE)


def test_a_dead_runs_torn_and_empty_slip_files_are_tidied_for_hr(
    tmp_path: Path, own_slapd: Sandbox
) -> None:
    """Found by an attack: a crash in the middle of a slip write left a line cut mid-address,
    or an empty file, in the run's outbox folder HR works from. The recovering run removes
    the cut line (that password is issued again) and the empty file."""
    cfg, roster = _setup(tmp_path / "t", own_slapd)
    proc = _syncd(cfg, roster, "directory call:3")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    [journal] = (cfg.parent / "state" / "journal").glob("*.jsonl")
    folder = cfg.parent / "outbox" / journal.stem
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    header = "\ufeffHọ và tên,Hộp thư,Mật khẩu tạm thời,Lý do,Mã cán bộ,Phòng/Ban\n"
    torn = folder / "skhcn.csv"
    torn.write_text(header + "Trần Văn Người0001,nguoi0001tv.skhcn@test.gov", "utf-8")
    empty = folder / "syt.csv"
    empty.write_bytes(b"")
    proc = _syncd(cfg, roster)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert not torn.exists() and not empty.exists()  # no slip left in either
    check_converged(cfg, own_slapd, PEOPLE)
