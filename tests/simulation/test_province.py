"""A province over the years: the seeded simulation against a real slapd, checked daily.

``make test`` runs the short variant; ``pytest -m long tests/simulation`` the longer one. The
figures and every kind of violation found are printed (``-s`` to see them live); the test fails
when the oracle found any violation, listing them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from ldap3 import MODIFY_ADD, MODIFY_REPLACE

from tests.simulation.conftest import FakeTimeSandbox
from tests.simulation.oracle import gt, one
from tests.simulation.province import CRASH_POINTS, Province, Size

pytestmark = pytest.mark.slapd


def verify_server_clock(province: Province) -> None:
    """The server's clock is the simulated one: a real bind stamps the simulated date."""
    when = province.at(province.today, 21, 7)
    person = next(
        p
        for p in province.people["caobang-2025"]  # its clock counts logins only
        if p.active and p.password and not p.must_change
    )
    entry = province.lookup(f"(employeeNumber={person.emp})")
    assert entry is not None
    assert province.bind(str(entry["dn"]), person.password or "")
    province.oracle.login(str(one(entry, "entryUUID")), when)
    entry = province.lookup(f"(employeeNumber={person.emp})")
    assert entry is not None
    stamps = {k: gt(one(entry, k)) for k in ("authTimestamp", "pwdLastSuccess")}
    # libfaketime's "%" mode follows the file's mtime to within a second
    assert all(t is not None and abs((t - when).total_seconds()) <= 2 for t in stamps.values()), (
        stamps,
        when,
    )
    assert when.year >= 2027


def simulate(tmp_path: Path, slapd: FakeTimeSandbox, size: Size) -> Province:
    province = Province(tmp_path / "province", slapd, size)
    province.run(verify_clock=verify_server_clock)
    print("\n" + province.report())
    (tmp_path / "report.txt").write_text(province.report(), encoding="utf-8")
    return province


def assert_no_violations(province: Province) -> None:
    found = province.oracle.log
    assert not found, (
        f"{len(found)} violation incident(s):\n"
        + "\n".join(map(str, found[:60]))
        + "\n\n"
        + province.report()
    )


def test_a_province_over_three_years(tmp_path: Path, sim_slapd: FakeTimeSandbox) -> None:
    province = simulate(tmp_path, sim_slapd, Size(people=24, years=3, sweep_every=2, full_every=7))
    assert province.figures.days == 3 * 365
    assert province.figures.logins > 0 and province.oracle.checks == province.figures.days
    assert sum(province.figures.crashes.values()) >= 10  # kill -9 at each crash point
    assert set(CRASH_POINTS) <= {k.rsplit(":", 1)[0] for k in province.figures.crashes}
    assert_no_violations(province)
    # syncd's runs happen in this process, as in the daemon: what they open they close (each
    # run's snapshot connection was left to the garbage collector: ~1,500 open files by the
    # end, a daemon past systemd's soft limit of 1,024 within a few years)
    fds = province.figures.descriptors
    assert len(fds) > 30 and max(fds) - fds[1] <= 16, fds
    # the retention sweeps ran as the years passed (invariant 6 checked what they deleted)
    assert province.figures.retention["False"] > 100 and province.figures.retention["True"] > 10


@pytest.mark.long
def test_a_bigger_province_over_five_years(tmp_path: Path, sim_slapd: FakeTimeSandbox) -> None:
    province = simulate(
        tmp_path,
        sim_slapd,
        Size(people=60, years=5, sweep_every=1, full_every=7, seed=7, crash_every=15),
    )
    assert province.figures.days == 5 * 365
    assert sum(province.figures.crashes.values()) > 0
    assert_no_violations(province)


def test_the_oracle_catches_what_nobody_audited(tmp_path: Path, sim_slapd: FakeTimeSandbox) -> None:
    """The oracle can fail: changes made behind syncd's back, as the admin, are reported."""
    province = Province(tmp_path / "province", sim_slapd, Size(people=6, years=1, crash_every=0))
    province.size.years = 0
    province.run()  # nothing simulated: just set up
    for n in range(25):  # the first rosters arrive within three weeks
        day = province.start.date() + timedelta(days=n)
        province.today = province.oracle.day = day
        due = sorted(k for k, d in province.drop_due.items() if d <= day)
        for i, (profile, org) in enumerate(due):
            del province.drop_due[(profile, org)]
            province.drop(profile, org, day, province.at(day, 9, i))
        province.oracle.check(
            day, province.at(day, 23), province.admin, province.pending_decisions()
        )
    known = len(province.oracle.log)  # whatever syncd itself got wrong so far
    people = province.oracle.entries.values()
    a, b = [e for e in people if one(e, "syncdKind") == "person"][:2]
    admin = province.admin
    day = province.start.date() + timedelta(days=25)
    province.today = province.oracle.day = day
    province.at(day, 10)
    assert admin.modify(a["dn"], {"mail": [(MODIFY_ADD, [str(b["mail"][0])])]}), admin.result
    assert admin.modify(b["dn"], {"syncdState": [(MODIFY_REPLACE, ["locked"])]}), admin.result
    province.oracle.check(day, province.at(day, 23), admin, province.pending_decisions())
    found = {(v.invariant, v.subject) for v in province.oracle.log[known:]}
    uid_b, mail_b = str(one(b, "uid")), str(b["mail"][0]).lower()
    assert ("2-duplicate-mail", mail_b) in found, found
    assert ("5-unaudited-change", uid_b) in found, found
