"""Issue 11, "A safe inbox", as the attacker ran it on a host laid out as install.md says: the
daemon's service user (umask 0077), an HR uploader in the inbox's group, root at the console,
against a real slapd.

- ``syncd plan`` / ``reconcile`` without ``--roster`` read the inbox by path and followed a
  link HR made there (``key.txt -> ../state/audit.key``): the plan printed the audit key.
- The registry of latest accepted rosters named ``processed/YYYY/MM/<name>``, still HR's file:
  HR rewrote it and the nightly full run applied the rewrite. A filed or rejected file is now
  syncd's own copy (0640, HR's group reads it): HR can no longer rewrite it either.
- One upload syncd cannot read stopped every job behind the directory's back-off, for ever.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import Connection

from connectors.inbox import MAX_TRIES, InboxWatcher
from connectors.snapshots import AcceptedRosterChanged, SnapshotRegistry
from devtools.slapd_sandbox import Sandbox
from tests.conftest import MakeConfig
from tests.e2e.test_cli_as_root import start_daemon, stop
from tests.e2e.test_daemon import wait_for
from tests.helpers import HEADER, entries, write_roster
from tests.service_user import SYNCD, ServiceUser, Site, make_user, slapd_site

pytestmark = pytest.mark.host  # changes this machine (users, packages, /etc): tests/conftest.py


@pytest.fixture
def service_user() -> Iterator[ServiceUser]:
    yield from make_user()


@pytest.fixture
def hr_user() -> Iterator[ServiceUser]:
    yield from make_user()


@pytest.fixture
def site(service_user: ServiceUser, slapd: Sandbox, base_dn: str) -> Iterator[Site]:
    for s in slapd_site(service_user, slapd, base_dn):
        # HR's drop group is the inbox's (install.md's hrdrop); the service user is in it
        for folder in ("processed", "rejected"):
            os.chown(s.inbox.parent / folder, service_user.uid, service_user.gid)
        yield s


def as_root(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    return subprocess.run(
        [SYNCD, "-c", str(site.config), *args], capture_output=True, text=True, env=env, timeout=120
    )


def as_hr(
    hr: ServiceUser, site: Site, *cmd: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """A shell command as the HR uploader: its own user, in the inbox's group (hrdrop)."""
    group = site.inbox.stat().st_gid
    return subprocess.run(
        list(cmd),
        capture_output=True,
        text=True,
        user=hr.uid,
        group=group,
        extra_groups=[group],
        umask=0o027,
        cwd=site.inbox,
        env=hr.env(),
        timeout=60,
        check=check,
    )


def hr_drop(hr: ServiceUser, site: Site, name: str, rows: list[str]) -> None:
    """HR uploads ``name`` as its SFTP client does: a temporary name, then a rename."""
    group = site.inbox.stat().st_gid
    subprocess.run(
        ["sh", "-c", f"cat > {name}.part && mv {name}.part {name}"],
        input="\ufeff" + HEADER + "".join(r + "\n" for r in rows),
        text=True,
        user=hr.uid,
        group=group,
        extra_groups=[group],
        umask=0o027,
        cwd=site.inbox,
        env=hr.env(),
        check=True,
        timeout=60,
    )


def operator_roster(site: Site, rows: list[str]) -> Path:
    """A roster where the operator keeps it, readable by the service user too."""
    hr = site.root / "operator"
    hr.mkdir(exist_ok=True)
    path = write_roster(hr / "skhcn.csv", rows)
    path.chmod(0o644)
    return path


def test_plan_without_roster_never_reads_a_link_hr_made_in_the_inbox(
    site: Site, hr_user: ServiceUser, service_user: ServiceUser
) -> None:
    staged = operator_roster(site, ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    result = as_root(site, "reconcile", "--roster", str(staged))  # makes the audit key
    assert result.returncode == 0, result.stderr
    key = (site.state / "audit.key").read_bytes()
    assert key
    hr_drop(hr_user, site, "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lò Thị Mai,skhcn,,,,,"])
    as_hr(hr_user, site, "ln", "-s", "../state/audit.key", "key.txt")
    as_hr(hr_user, site, "ln", "-s", "../state/state.json", "state.csv")

    for command in ("plan", "reconcile"):
        result = as_root(site, command)
        said = result.stdout + result.stderr
        for shown in (said, *(p.read_text() for p in (site.state / "reports").glob("*.txt"))):
            assert key.decode(errors="replace").strip() not in shown
            assert '"tombstones"' not in shown and "found ['{']" not in shown
        assert result.returncode == 0, said
        # the links are named in a one-line notice, never read
        notices = [line for line in said.splitlines() if "key.txt" in line]
        assert notices and all("not read" in line for line in notices), said
        assert any("state.csv" in line and "not read" in line for line in said.splitlines())
        # the real roster beside them is read (E2 is planned/created)
        assert "plan: 1 create," in said, said  # E2, not E1 again


def _status(site: Site) -> dict[str, Any]:
    try:
        return dict(json.loads((site.state / "status.json").read_text()))
    except (OSError, ValueError):
        return {}


def _full_run(site: Site, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """SIGUSR1 (the nightly full run, now); status.json once that run has ended."""
    before = _status(site).get("updated")
    proc.send_signal(signal.SIGUSR1)
    assert wait_for(
        lambda: (
            _status(site).get("updated") != before
            and (
                _status(site).get("last_run", {}).get("kind") == "reconcile"
                or "last_error" in _status(site)
            )
        ),
        timeout=60,
    ), _status(site)
    return _status(site)


def test_hr_rewriting_a_filed_roster_changes_nothing_the_nightly_run_applies(
    site: Site, hr_user: ServiceUser, service_user: ServiceUser, admin: Connection, base_dn: str
) -> None:
    proc, notes = start_daemon(site, service_user)
    try:
        assert wait_for(lambda: "READY=1" in notes.read() or proc.poll() is not None)
        hr_drop(
            hr_user, site, "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lò Thị Mai,skhcn,,,,,"]
        )
        filed: list[Path] = []
        assert wait_for(
            lambda: bool(filed.extend(site.inbox.parent.glob("processed/*/*/skhcn.csv")) or filed),
            timeout=60,
        )
        assert wait_for(lambda: "mailt.skhcn" in entries(admin, base_dn))
        applied = entries(admin, base_dn)
        # the filed roster is still the uploader's file (it came by rename): HR rewrites it
        evil = "\ufeff" + HEADER + "E1,Đàm Văn Hùng,skhcn,,,,,\nE9,Kẻ Bịa Đặt,skhcn,,,,,\n"
        rewrite = subprocess.run(
            ["sh", "-c", f"cat > {filed[0]}"],
            input=evil,
            text=True,
            user=hr_user.uid,
            group=site.inbox.stat().st_gid,
            extra_groups=[site.inbox.stat().st_gid],
            env=hr_user.env(),
            capture_output=True,
            timeout=30,
        )
        # the filed roster is syncd's own copy of the bytes applied, HR's group reads it only
        # (it came by rename and stayed the uploader's to rewrite before)
        assert rewrite.returncode != 0 and "Permission denied" in rewrite.stderr, rewrite
        st = filed[0].stat()
        assert st.st_uid == service_user.uid and st.st_gid == site.inbox.stat().st_gid
        assert st.st_mode & 0o777 == 0o640
        assert as_hr(hr_user, site, "cat", str(filed[0])).stdout.startswith("\ufeff")
        # a rejected file too: its report may tell the operator to apply it as it is
        hr_drop(hr_user, site, "loi.csv", ["E3,Lò Thị Bình,khong-co,,,,,"])
        rejected = site.inbox.parent / "rejected" / "loi.csv"
        assert wait_for(lambda: rejected.with_name("loi.csv.report.txt").exists(), timeout=60)
        tamper = as_hr(hr_user, site, "sh", "-c", f"echo x >> {rejected}", check=False)
        assert tamper.returncode != 0 and "Permission denied" in tamper.stderr, tamper
        assert rejected.stat().st_uid == service_user.uid
        assert as_hr(hr_user, site, "rm", "-f", str(rejected), check=False).returncode != 0
        assert rejected.exists()
        status = _full_run(site, proc)
        assert "last_error" not in status, status
        people = entries(admin, base_dn)
        # no invented person, and Mai (left out of the rewrite) untouched: not revoked
        assert "datkb.skhcn" not in people
        assert not [u for u, attrs in people.items() if "Bịa" in str(attrs)]
        assert people["mailt.skhcn"] == applied["mailt.skhcn"]
        # the registry names syncd's own copy, private to the service user
        registry = json.loads((site.state / "snapshots.json").read_text())
        kept = Path(registry["skhcn"]["file"])
        assert kept.parent == site.state / "rosters"
        assert kept.stat().st_uid == service_user.uid and kept.stat().st_mode & 0o077 == 0

        # a copy that is no longer what was applied (restored from the wrong backup, edited
        # by hand) is refused: a clear error, nothing applied
        kept.write_text(evil, encoding="utf-8")
        status = _full_run(site, proc)
        assert "not the roster that was applied" in status.get("last_error", ""), status
        assert "skhcn" in status["last_error"] and str(kept) in status["last_error"]
        assert "Kẻ" not in status["last_error"]
        assert not [u for u, attrs in entries(admin, base_dn).items() if "Bịa" in str(attrs)]
    finally:
        stop(proc)


def test_an_upload_syncd_cannot_read_is_rejected_and_never_holds_the_nightly_run(
    site: Site, hr_user: ServiceUser, service_user: ServiceUser, admin: Connection, base_dn: str
) -> None:
    proc, notes = start_daemon(site, service_user)
    try:
        assert wait_for(lambda: "READY=1" in notes.read() or proc.poll() is not None)
        secret_row = "E7,Người Bí Mật,skhcn,,,,,"
        as_hr(hr_user, site, "sh", "-c", f"printf '%s\\n' '{secret_row}' > m0.tmp")
        as_hr(hr_user, site, "chmod", "000", "m0.tmp")
        as_hr(hr_user, site, "mv", "m0.tmp", "m0.csv")
        report = site.inbox.parent / "rejected" / "m0.csv.report.txt"
        assert wait_for(report.exists, timeout=30), _status(site)
        # HR reads why, and nothing of the file is quoted
        shown = as_hr(hr_user, site, "cat", str(report)).stdout
        assert "cannot read it (Permission denied)" in shown, shown
        assert "Bí Mật" not in shown
        assert (site.inbox.parent / "rejected" / "m0.csv").exists()
        assert not list((site.inbox.parent / "processing").iterdir())
        status = _status(site)
        assert status.get("directory") != "unreachable", status
        # the nightly run is not held behind a directory back-off, and HR's next file is taken
        status = _full_run(site, proc)
        assert status["last_run"]["kind"] == "reconcile" and "last_error" not in status, status
        hr_drop(hr_user, site, "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
        assert wait_for(lambda: "hungdv.skhcn" in entries(admin, base_dn), timeout=30)
    finally:
        _, err = stop(proc)
    assert "directory back-off" not in err and "directory unreachable" not in err


def test_a_file_that_keeps_failing_is_rejected_after_three_tries_not_retried_for_ever(
    make_config: MakeConfig, admin: Connection, base_dn: str
) -> None:
    """A file that fails before its run applies anything is rejected after ``MAX_TRIES``
    looks. (One whose run applied it and whose filing fails is never rejected, HR would be
    told a file applied was not: tests/e2e/test_inbox_filing_crash.py.)"""
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    # a broken host: processing/ is a file, so taking the roster fails every time
    (cfg.paths.inbox.parent / "processing").write_text("not a folder\n")
    write_roster(cfg.paths.inbox / "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    watcher = InboxWatcher(cfg, settle=0)
    watcher.tick(time.time())  # first look: not settled yet
    results = [watcher.tick(time.time() + i) for i in range(1, 1 + MAX_TRIES)]
    assert [r.waiting for r in results[:-1]] == [["skhcn.csv"]] * (MAX_TRIES - 1)
    assert all(not r.retry for r in results)  # never the directory's back-off
    assert results[-1].rejected == ["skhcn.csv"]
    rejected = cfg.paths.inbox.parent / "rejected"
    report = (rejected / "skhcn.csv.report.txt").read_text()
    assert f"rejected after {MAX_TRIES} failed tries (" in report, report
    assert "Đàm" not in report
    assert watcher.tick(time.time() + 10).waiting == []  # not tried again
    assert "hungdv.skhcn" not in entries(admin, base_dn)  # nothing of it was applied


def test_an_old_registry_naming_processed_files_is_migrated_only_when_unchanged(
    tmp_path: Path,
) -> None:
    state, month = tmp_path / "state", tmp_path / "processed" / "2026" / "10"
    state.mkdir(mode=0o700)
    month.mkdir(parents=True)
    applied = "\ufeff" + HEADER + "E1,Đàm Văn Hùng,tgg,,,,,\n"
    filed = {org: month / f"{org}.csv" for org in ("tgg", "syt", "khcn")}
    hashes = {}
    for org, path in filed.items():
        path.write_text(applied.replace("tgg", org), encoding="utf-8")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        hashes[digest] = {"file": str(path), "when": "2026-10-01T00:00:00+00:00"}
    (state / "inbox-hashes.json").write_text(json.dumps(hashes))
    old = {
        org: {"file": str(path), "when": "2026-10-01T00:00:00+00:00"} for org, path in filed.items()
    }
    (state / "snapshots.json").write_text(json.dumps(old))
    registry = SnapshotRegistry(state)

    latest = registry.latest()  # unchanged since applied: each becomes syncd's own copy
    assert sorted(orgs for s in latest.values() for orgs in s) == ["khcn", "syt", "tgg"]
    for copy, orgs in latest.items():
        assert copy.parent == state / "rosters" and copy.stat().st_mode & 0o777 == 0o600
        assert copy.read_bytes() == filed[next(iter(orgs))].read_bytes()
    assert all("sha256" in e for e in json.loads((state / "snapshots.json").read_text()).values())

    # an entry HR rewrote before the upgrade cannot be shown to be what was applied: refused
    (state / "snapshots.json").write_text(json.dumps(old))
    filed["tgg"].write_text(applied + "E9,Kẻ Bịa Đặt,tgg,,,,,\n", encoding="utf-8")
    with pytest.raises(AcceptedRosterChanged) as refused:
        registry.latest()
    said = str(refused.value)
    assert f"tgg: {filed['tgg']} was recorded before" in said and "syncd reconcile --roster" in said
    assert "syt" not in said and "Bịa" not in said
    assert json.loads((state / "snapshots.json").read_text()) == old  # nothing half-migrated

    # an operator's roster kept by an older remember_rosters (named by its sha256, no sha256
    # recorded) is migrated; one whose content no longer matches its name is refused
    kept = state / "rosters"
    good = applied.replace("tgg", "syt").encode()
    copy = kept / f"{hashlib.sha256(good).hexdigest()[:16]}-syt.csv"
    copy.write_bytes(good)
    (state / "snapshots.json").write_text(json.dumps({"syt": {"file": str(copy), "when": "x"}}))
    assert registry.latest() == {copy: {"syt"}}
    copy.write_bytes(good + b"E9,K\xe1\xba\xbb B\xe1\xbb\x8ba,syt,,,,,\n")
    (state / "snapshots.json").write_text(json.dumps({"syt": {"file": str(copy), "when": "x"}}))
    with pytest.raises(AcceptedRosterChanged, match=r"syt: .* was recorded before"):
        registry.latest()
