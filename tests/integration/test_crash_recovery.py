"""kill -9 of syncd, and separately of slapd, at random points of a real reconcile.

After each kill a clean re-run must converge: 0 accounts sharing an employeeNumber, 0 people
without their mailbox (or with a mailbox whose password nobody was given), 0 actions lost (a
plan after the re-run is empty) and no password on two slips. The figures are printed
(`pytest -s`) and asserted.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import runner
from connectors.slapd_sandbox import Sandbox, find_slapd
from connectors.store import write_private
from tests.conftest import ORGS_YAML
from tests.helpers import HEADER

POINTS = int(os.environ.get("SYNCD_CRASH_POINTS", "20"))
PEOPLE = 300


@pytest.fixture(scope="module")
def own_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if find_slapd() is None:
        pytest.skip("Debian slapd is not installed")
    sandbox = Sandbox(tmp_path_factory.mktemp("crash") / "slapd", suffix="dc=crash,dc=gov,dc=vn")
    sandbox.start()
    yield sandbox
    sandbox.stop()


def _setup(root: Path, slapd: Sandbox, n: int) -> tuple[Path, Path]:
    root.mkdir(parents=True)
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
        HEADER + "".join(f"E{i:04d},Trần Văn Người{i:04d},skhcn,,,,,\n" for i in range(PEOPLE)),
        "utf-8",
    )
    return root / "syncd.yaml", roster


def _syncd(cfg: Path, roster: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.cli",
            "-c",
            str(cfg),
            "reconcile",
            "--roster",
            str(roster),
            "--wait",
            "30",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _check(cfg_path: Path, roster: Path, slapd: Sandbox) -> dict[str, int]:
    cfg = runner.load_config(cfg_path)
    rerun = runner.run(cfg, rosters=[roster], lock_timeout=30)
    assert rerun.exit_code == 0, runner.report_text(rerun, [roster])
    again = runner.run(cfg, rosters=[roster], dry_run=True)
    assert again.plan is not None and again.plan.actions == (), again.plan.counts()  # 0 lost
    conn = slapd.admin()
    conn.search(
        cfg.directory.base_dn,
        "(employeeNumber=*)",
        attributes=["uid", "employeeNumber", "syncdState", "pwdChangedTime"],
    )
    people = [e["attributes"] for e in conn.response if e.get("type") == "searchResEntry"]
    conn.unbind()
    per_key = Counter(p["employeeNumber"][0] for p in people)
    duplicates = sum(1 for n in per_key.values() if n > 1)
    missing = PEOPLE - len(per_key)
    unusable = sum(1 for p in people if p["syncdState"] != ["active"] or not p["pwdChangedTime"])
    slips: list[tuple[str, str]] = []
    for path in (cfg.paths.outbox).rglob("skhcn.csv"):
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))[1:]
        slips += [(r[1].split("@")[0], r[2]) for r in rows]
    without_slip = {p["uid"][0] for p in people} - {uid for uid, _ in slips}
    reused = sum(1 for n in Counter(pw for _, pw in slips).values() if n > 1)
    assert (duplicates, missing, unusable, len(without_slip), reused) == (0, 0, 0, 0, 0), (
        duplicates,
        missing,
        unusable,
        sorted(without_slip)[:5],
        reused,
    )
    return {
        "recovered": sum(1 for w in rerun.warnings if "died" in w),
        "reissued": sum(1 for a in rerun.plan.actions if a.rule == "recovery"),
    }  # type: ignore[union-attr]


def _duration(tmp_path: Path, slapd: Sandbox) -> float:
    cfg, roster = _setup(tmp_path / "timing", slapd, 0)
    start = time.monotonic()
    assert _syncd(cfg, roster).wait(timeout=120) == 0
    return time.monotonic() - start


def test_kill_9_of_syncd_at_random_points_always_converges(
    tmp_path: Path, own_slapd: Sandbox
) -> None:
    rng = random.Random(20261125)
    full = _duration(tmp_path, own_slapd)
    totals: Counter[str] = Counter()
    for n in range(1, POINTS + 1):
        cfg, roster = _setup(tmp_path / f"k{n}", own_slapd, n)
        proc = _syncd(cfg, roster)
        time.sleep(rng.uniform(0.05, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        totals.update(_check(cfg, roster, own_slapd))
        totals["kills"] += 1
    print(
        f"\nsyncd kill -9 at {totals['kills']} random points (full run {full:.2f} s): "
        f"{totals['recovered']} re-runs found a dead run's journal, {totals['reissued']} "
        "one-time passwords re-issued; 0 duplicates, 0 missing, 0 lost"
    )
    assert totals["kills"] == POINTS and totals["recovered"] >= 1


def test_kill_9_of_slapd_at_random_points_always_converges(
    tmp_path: Path, own_slapd: Sandbox
) -> None:
    rng = random.Random(1125)
    full = _duration(tmp_path, own_slapd)
    totals: Counter[str] = Counter()
    for n in range(100, 100 + POINTS):
        cfg, roster = _setup(tmp_path / f"s{n}", own_slapd, n)
        proc = _syncd(cfg, roster)
        time.sleep(rng.uniform(0.05, full))
        own_slapd.kill()
        code = proc.wait(timeout=120)
        totals[f"exit {code}"] += 1
        own_slapd.start()
        totals.update(_check(cfg, roster, own_slapd))
        totals["kills"] += 1
    print(
        f"\nslapd kill -9 at {totals['kills']} random points: syncd exits "
        f"{dict((k, v) for k, v in totals.items() if k.startswith('exit'))}, "
        f"{totals['reissued']} passwords re-issued; 0 duplicates, 0 missing, 0 lost"
    )
    assert totals["kills"] == POINTS
