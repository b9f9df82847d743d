"""Issue 11, "A safe inbox", as the attacker ran it on a host laid out as install.md says: the
daemon's service user (umask 0077), an HR uploader in the inbox's group, root at the console,
against a real slapd.

- ``syncd plan`` / ``reconcile`` without ``--roster`` read the inbox by path and followed a
  link HR made there (``key.txt -> ../state/audit.key``): the plan printed the audit key.
- The registry of latest accepted rosters named ``processed/YYYY/MM/<name>``, still HR's file:
  HR rewrote it and the nightly full run applied the rewrite.
- One upload syncd cannot read stopped every job behind the directory's back-off, for ever.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import Connection

from connectors.store import write_private
from devtools.slapd_sandbox import Sandbox
from tests.e2e.test_cli_as_root import start_daemon, stop
from tests.e2e.test_daemon import wait_for
from tests.helpers import HEADER, entries, write_roster
from tests.service_user import SYNCD, ServiceUser, Site, make_site, make_user


@pytest.fixture
def service_user() -> Iterator[ServiceUser]:
    yield from make_user()


@pytest.fixture
def hr_user() -> Iterator[ServiceUser]:
    yield from make_user()


@pytest.fixture
def site(service_user: ServiceUser, slapd: Sandbox, base_dn: str) -> Iterator[Site]:
    directory = f"  url: {slapd.url}\n  bind_dn: {slapd.service_dn}\n  base_dn: {base_dn}"
    for s in make_site(service_user, directory, "  bind_password_file: bind.pw"):
        pw = s.etc / "bind.pw"
        write_private(pw, slapd.service_password + "\n")
        os.chown(pw, 0, service_user.gid)
        pw.chmod(0o640)
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
        assert rewrite.returncode == 0, rewrite.stderr  # the attack itself still works
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
