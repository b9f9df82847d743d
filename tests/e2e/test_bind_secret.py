"""The bind password reaches the ``syncd`` command exactly as it reaches the daemon.

Each documented way (docs/install.md, "The bind password") is tried as an operator would: the
real command run as root and as the throwaway service user, and the daemon run as the unit runs
it, against the real slapd. Before: with ``bind_credential`` every command failed
(``$CREDENTIALS_DIRECTORY is not set``), and with a root-only password file the daemon said READY
and then failed every file with "Permission denied", for ever.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ldap3 import Connection

from connectors.store import write_private
from devtools.slapd_sandbox import Sandbox
from tests.e2e.test_daemon import Notifications, wait_for
from tests.helpers import entries, write_roster
from tests.service_user import SYNCD, ServiceUser, Site, make_site, make_user, owners

pytestmark = pytest.mark.host  # changes this machine (users, packages, /etc): tests/conftest.py

SiteFor = Callable[..., Site]

WAYS = {
    "credential": "  bind_credential: bind-password\n  bind_credential_file: bind.pw",
    "group-file": "  bind_password_file: bind.pw",
    "env": "  bind_password_env: SYNCD_BIND_PASSWORD",
}


@pytest.fixture
def service_user() -> Iterator[ServiceUser]:
    yield from make_user()


@pytest.fixture
def site_for(service_user: ServiceUser, slapd: Sandbox, base_dn: str) -> Iterator[SiteFor]:
    """``site_for(way, owner, mode)``: a site whose bind password is found that way; the file
    (for the file ways) holds the real password with that owner group and mode."""
    made: list[Iterator[Site]] = []

    def make(way: str, group: int | None = None, mode: int = 0o600) -> Site:
        directory = f"  url: {slapd.url}\n  bind_dn: {slapd.service_dn}\n  base_dn: {base_dn}"
        sites = make_site(service_user, directory, WAYS.get(way, way))
        made.append(sites)
        site = next(sites)
        pw = site.etc / "bind.pw"
        write_private(pw, slapd.service_password + "\n")
        os.chown(pw, 0, service_user.gid if group is None else group)
        pw.chmod(mode)
        return site

    yield make
    for sites in made:
        for _ in sites:  # runs the clean-up
            pass


def root_env(slapd: Sandbox, way: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    if way == "env":
        env["SYNCD_BIND_PASSWORD"] = slapd.service_password
    return env


def as_root(site: Site, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNCD, "-c", str(site.config), *args], capture_output=True, text=True, env=env, timeout=120
    )


def unit_env(site: Site, user: ServiceUser, slapd: Sandbox, way: str) -> dict[str, str]:
    """What systemd gives the service: for the credential, a private copy of the file in
    ``$CREDENTIALS_DIRECTORY`` (0400, the service user's), as ``LoadCredential=`` does."""
    extra: dict[str, str] = {}
    if way == "credential":
        creds = site.root / "credentials"
        creds.mkdir()
        (creds / "bind-password").write_text(slapd.service_password)
        for path, mode in ((creds / "bind-password", 0o400), (creds, 0o500)):
            os.chown(path, user.uid, user.gid)
            path.chmod(mode)
        extra["CREDENTIALS_DIRECTORY"] = str(creds)
    if way == "env":
        extra["SYNCD_BIND_PASSWORD"] = slapd.service_password
    return user.env(**extra)


def start_daemon(
    site: Site, user: ServiceUser, env: dict[str, str]
) -> tuple[subprocess.Popen[str], Notifications]:
    notes = Notifications(site.root / "notify.sock")
    notes.path.chmod(0o666)
    proc = user.popen(["-c", str(site.config), "run"], {**env, "NOTIFY_SOCKET": str(notes.path)})
    return proc, notes


def _drop(inbox: Path, name: str, rows: list[str]) -> None:
    tmp = write_roster(inbox / f".{name}.part", rows)
    tmp.rename(inbox / name)


@pytest.mark.parametrize("way", sorted(WAYS))
def test_each_documented_secret_works_for_root_and_then_for_the_daemon(
    way: str,
    site_for: SiteFor,
    service_user: ServiceUser,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
) -> None:
    # the credential's source stays root's, as LoadCredential= reads it; the file way is
    # root:<service group> 0640
    site = site_for(way, 0, 0o600) if way == "credential" else site_for(way, None, 0o640)
    roster = write_roster(site.root / "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    roster.chmod(0o644)
    result = as_root(site, root_env(slapd, way), "reconcile", "--roster", str(roster))
    assert result.returncode == 0, result.stderr
    assert "hungdv.skhcn" in entries(admin, base_dn)
    assert "bind.pw" not in result.stderr  # no warning: each way is a documented one
    made = owners(site.state, site.outbox, site.log)
    assert {p for p, uid in made.items() if uid != service_user.uid} == set()

    proc, notes = start_daemon(site, service_user, unit_env(site, service_user, slapd, way))
    try:
        assert wait_for(lambda: "READY=1" in notes.read() or proc.poll() is not None)
        assert "READY=1" in notes.read()
        _drop(site.inbox, "skhcn2.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lý Thị Mai,skhcn,,,,,"])
        assert wait_for(lambda: "mailt.skhcn" in entries(admin, base_dn), timeout=60)
        assert wait_for(lambda: any((site.root / "lib" / "processed").rglob("skhcn2.csv")))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert slapd.service_password not in out + err + result.stdout + result.stderr


def test_the_service_user_runs_the_command_with_the_group_readable_file(
    site_for: SiteFor, service_user: ServiceUser
) -> None:
    site = site_for("group-file", None, 0o640)
    roster = write_roster(site.root / "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    roster.chmod(0o644)
    result = service_user.run(["-c", str(site.config), "plan", "--roster", str(roster)])
    assert result.returncode == 0, result.stderr
    assert "hungdv.skhcn" in result.stdout
    result = service_user.run(["-c", str(site.config), "config", "validate"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # 0640 root:<service group> is a documented way: no warning


def test_the_service_user_is_told_the_credential_is_read_by_root(
    site_for: SiteFor, service_user: ServiceUser
) -> None:
    site = site_for("credential", 0, 0o600)
    result = service_user.run(["-c", str(site.config), "plan"])
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"{site.etc / 'bind.pw'}: {service_user.name} cannot read the bind password" in line
    assert "(owner root:root, mode 0600)" in line
    assert "run the syncd command as root" in line


def test_the_daemon_stops_before_ready_on_a_password_file_it_cannot_read(
    site_for: SiteFor, service_user: ServiceUser, slapd: Sandbox
) -> None:
    site: Site = site_for("group-file", 0, 0o600)  # root:root 0600: the daemon cannot read it
    proc, notes = start_daemon(site, service_user, service_user.env())
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "READY=1" not in notes.read()
    (line,) = err.strip().splitlines()
    pw = site.etc / "bind.pw"
    assert f"{pw}: {service_user.name} cannot read the bind password: Permission denied" in line
    assert "(owner root:root, mode 0600)" in line
    assert f"chown root:{service_user.name} {pw} && chmod 0640 {pw}" in line


def test_the_credential_outside_systemd_names_the_setting_that_finds_it(
    site_for: SiteFor, slapd: Sandbox
) -> None:
    site = site_for("  bind_credential: bind-password", 0, 0o600)
    result = as_root(site, root_env(slapd, "credential"), "plan")
    assert result.returncode == 2
    assert "$CREDENTIALS_DIRECTORY is not set" in result.stderr
    assert "set directory.bind_credential_file to the file LoadCredential= reads" in result.stderr


def test_doctor_fails_where_the_daemon_would_on_a_password_file_it_cannot_read(
    site_for: SiteFor, service_user: ServiceUser, slapd: Sandbox
) -> None:
    """Found by an attack: run as root, doctor read a root-only password file itself and said
    ``ok bind``, while plan and the daemon (the service user) refused it. The doctor runs as the
    daemon will: a green doctor proves the daemon binds."""
    site: Site = site_for("group-file", 0, 0o600)  # root:root 0600
    done = as_root(site, root_env(slapd, "group-file"), "doctor", "--read-only")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{service_user.name} cannot read the bind password" in done.stderr
    readable: Site = site_for("group-file")  # root:<service group> 0600 → chmod 0640 below
    (readable.etc / "bind.pw").chmod(0o640)
    ok = as_root(readable, root_env(slapd, "group-file"), "doctor", "--read-only")
    assert "ok" in ok.stdout and "cannot read" not in ok.stderr, ok.stdout + ok.stderr
