"""The ``syncd`` command run as root on a host where the daemon runs as its own user.

install.md says "as root: syncd plan"; that used to leave ``state/state.json`` owned by root,
mode 0600, and the daemon then died at start with a traceback. Now root switches to the service
user (the owner of the state directory) before it creates anything, and the daemon checks at
start that it can use every file it writes, saying which one and how to fix it otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import Connection

from connectors.store import write_private
from devtools.slapd_sandbox import Sandbox
from tests.e2e.test_daemon import Notifications, wait_for
from tests.helpers import entries, write_roster
from tests.service_user import (
    SYNCD,
    ServiceUser,
    Site,
    make_site,
    make_user,
    owners,
    slapd_site,
)

pytestmark = pytest.mark.host  # changes this machine (users, packages, /etc): tests/conftest.py


@pytest.fixture
def service_user() -> Iterator[ServiceUser]:
    yield from make_user()


@pytest.fixture
def other_user() -> Iterator[ServiceUser]:
    yield from make_user()


@pytest.fixture
def site(service_user: ServiceUser, slapd: Sandbox, base_dn: str) -> Iterator[Site]:
    yield from slapd_site(service_user, slapd, base_dn)


def as_root(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    return subprocess.run(
        [SYNCD, "-c", str(site.config), *args], capture_output=True, text=True, env=env, timeout=120
    )


def roster(site: Site, rows: list[str]) -> Path:
    """A roster where the operator keeps it, readable by the service user too."""
    hr = site.root / "hr"
    hr.mkdir(exist_ok=True)
    path = write_roster(hr / "skhcn.csv", rows)
    path.chmod(0o644)
    return path


def start_daemon(
    site: Site, user: ServiceUser, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], Notifications]:
    """``syncd run`` as the unit runs it: the service user, umask 0077, a notify socket."""
    notes = Notifications(site.root / "notify.sock")
    notes.path.chmod(0o666)  # systemd's socket takes the service's datagrams
    proc = user.popen(
        ["-c", str(site.config), "run"], user.env(NOTIFY_SOCKET=str(notes.path), **(env or {}))
    )
    return proc, notes


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=30)


def test_root_commands_leave_every_file_to_the_service_user_and_the_daemon_starts(
    site: Site, service_user: ServiceUser, admin: Connection, base_dn: str
) -> None:
    path = roster(site, ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Đặng Văn Hùng,skhcn,,,,,"])
    result = as_root(site, "plan", "--roster", str(path))
    assert result.returncode == 0, result.stderr
    result = as_root(site, "reconcile", "--roster", str(path))
    assert result.returncode == 0, result.stderr
    assert "hungdv.skhcn" in entries(admin, base_dn)
    result = as_root(site, "lock", "hungdv.skhcn", "--reason", "compromised")
    assert result.returncode == 0, result.stderr
    created = owners(site.state, site.outbox, site.log)
    assert (site.state / "state.json").exists() and (site.log / "audit.jsonl").exists()
    assert len(created) > 8
    assert {p: uid for p, uid in created.items() if uid != service_user.uid} == {}
    # the files are private as the unit's UMask=0077 makes them
    assert stat_mode(site.state / "state.json") & 0o077 == 0
    # the operator in the audit is root, who ran the command, not the service user
    records = [json.loads(x) for x in (site.log / "audit.jsonl").read_text().splitlines()]
    lock = next(r for r in records if r.get("action") == "lock")
    assert lock["operator"]["user"] == "root"
    assert lock["operator"]["effective_user"] == service_user.name

    proc, notes = start_daemon(site, service_user)
    assert wait_for(lambda: "READY=1" in notes.read() or proc.poll() is not None)
    _, err = stop(proc)
    assert "READY=1" in notes.read(), err
    assert proc.returncode == 0, err


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_the_daemon_names_a_state_file_it_cannot_write_and_never_says_ready(
    site: Site, service_user: ServiceUser
) -> None:
    # what a root command left behind before: state.json owned by root, 0600
    write_private(site.state / "state.json", "{}")
    proc, notes = start_daemon(site, service_user)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "READY=1" not in notes.read()
    assert "Traceback" not in err + out
    (line,) = err.strip().splitlines()
    assert f"{site.state / 'state.json'}: {service_user.name} cannot read and write it" in line
    assert "(owner root:root, mode 0600)" in line
    assert f"chown -R {service_user.name}:{service_user.name} {site.state}" in line


def test_a_root_command_does_not_take_over_a_file_left_by_root_it_names_it(
    site: Site, service_user: ServiceUser
) -> None:
    write_private(site.state / "state.json", "{}")
    result = as_root(site, "decisions")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{site.state / 'state.json'}: {service_user.name} cannot" in result.stderr
    assert (site.state / "state.json").stat().st_uid == 0  # untouched: syncd never chowns


def test_another_user_is_told_to_run_it_as_the_service_user(
    site: Site, service_user: ServiceUser, other_user: ServiceUser
) -> None:
    site.etc.chmod(0o755)  # say it can read the configuration: still not its command
    result = other_user.run(["-c", str(site.config), "plan"])
    assert result.returncode == 2, result.stderr
    assert f"run `sudo -u {service_user.name} syncd -c {site.config} plan`" in result.stderr
    assert os.listdir(site.state) == []


def test_a_roster_root_names_that_the_service_user_cannot_read_is_one_clear_line(
    site: Site, service_user: ServiceUser, admin: Connection, base_dn: str
) -> None:
    path = roster(site, ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    path.chmod(0o600)  # root's own file
    result = as_root(site, "reconcile", "--roster", str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"{path}: {service_user.name} cannot read it (owner root:root, mode 0600)" in line
    assert entries(admin, base_dn) == {}  # nothing applied


@pytest.fixture
def blind_user() -> Iterator[ServiceUser]:
    yield from make_user(reach_python=False)


def test_root_switching_to_a_user_who_cannot_reach_python_says_so_in_one_line(
    slapd: Sandbox, base_dn: str, blind_user: ServiceUser
) -> None:
    directory = f"  url: {slapd.url}\n  bind_dn: {slapd.service_dn}\n  base_dn: {base_dn}"
    for site in make_site(blind_user, directory, "  bind_password_env: PW"):
        result = as_root(site, "decisions")
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert f"the service user {blind_user.name} cannot read Python or syncd there" in line
