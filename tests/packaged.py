"""The Debian package on this machine: built once per session, installed with dpkg, the daemon
run the way its installed unit says, purged again.

Why this is not a mock: the package is what ``make deb`` builds, ``dpkg -i`` installs it into
this machine's real /usr, /etc and /var (we run as root), its postinst creates the real user and
folders, and the daemon is the installed ``/usr/bin/syncd`` on Debian's python3. What cannot run
here is systemd itself (it is not PID 1): :func:`start_as_unit` does what systemd would do from
the installed unit file — ``User=``, ``Group=`` with the user's other groups (initgroups),
``UMask=``, ``LoadCredential=`` into a ``$CREDENTIALS_DIRECTORY``, ``NOTIFY_SOCKET`` — and says
so; the sandboxing directives are tested elsewhere (tests/unit/test_systemd_unit.py).
"""

from __future__ import annotations

import atexit
import configparser
import contextlib
import functools
import grp
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = Path("/lib/systemd/system/syncd.service")
TOOLS = ("dpkg-buildpackage", "dh", "dpkg")


def need_root_and_tools() -> None:
    """Skip (fail under CI) where the package cannot be built or installed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        why = "needs root" if os.geteuid() != 0 else f"needs {', '.join(missing)} (debhelper)"
        if os.environ.get("CI"):
            pytest.fail(f"the Debian package test {why}; CI installs debhelper and dpkg-dev")
        pytest.skip(f"the Debian package test {why}")


@functools.cache
def built_deb() -> Path:
    """``make deb`` into a temporary folder (once per session), or ``$SYNCD_DEB`` if given."""
    given = os.environ.get("SYNCD_DEB")
    if given:
        return Path(given)
    out = Path(tempfile.mkdtemp(prefix="syncd-deb-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)  # the session's build, then gone
    result = subprocess.run(
        ["make", "-C", str(REPO), "deb", f"DEB_OUT={out}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (deb,) = out.glob("syncd_*.deb")
    return deb


def dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    """dpkg, waiting while another package manager (an engineer's apt-get) holds the lock."""
    deadline = time.monotonic() + 600
    while True:
        result = subprocess.run(["dpkg", *args], capture_output=True, text=True, check=False)
        if "lock" not in result.stderr or time.monotonic() > deadline:
            return result
        time.sleep(2)


def installed() -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "syncd"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() == "install ok installed"


def _exists(kind: Callable[[str], object], name: str) -> bool:
    try:
        kind(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def package_on_this_host() -> Iterator[None]:
    """The package installed for the duration; after: purged, and the user, group and audit
    folder it leaves (by design, see debian/syncd.postrm) removed again if this test made them,
    so that the machine is as it was for the other tests."""
    need_root_and_tools()
    if installed():
        pytest.skip("a syncd package is installed on this host: the test will not replace it")
    had_user, had_group = _exists(pwd.getpwnam, "syncd"), _exists(grp.getgrnam, "hrdrop")
    had_log = Path("/var/log/syncd").exists()
    try:
        yield
    finally:
        if installed():
            dpkg("--purge", "syncd")
        if not had_log:
            shutil.rmtree("/var/log/syncd", ignore_errors=True)
        if not had_user and _exists(pwd.getpwnam, "syncd"):
            subprocess.run(["userdel", "syncd"], check=False)
            subprocess.run(["groupdel", "syncd"], check=False, stderr=subprocess.DEVNULL)
        if not had_group and _exists(grp.getgrnam, "hrdrop"):
            subprocess.run(["groupdel", "hrdrop"], check=False)


@dataclass(frozen=True)
class Unit:
    """What the installed unit file says about how syncd runs."""

    exec_start: list[str]
    user: str
    group: str
    umask: int
    credentials: dict[str, Path]  # LoadCredential= name → source file

    @classmethod
    def read(cls, path: Path = UNIT) -> Unit:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(path)
        service = parser["Service"]
        creds = {}
        for line in service.get("LoadCredential", "").splitlines():
            name, _, source = line.strip().partition(":")
            creds[name] = Path(source)
        return cls(
            exec_start=shlex.split(service["ExecStart"]),
            user=service["User"],
            group=service["Group"],
            umask=int(service["UMask"], 8),
            credentials=creds,
        )


class Notifications:
    """The datagram socket systemd listens on for READY=1, STATUS=, STOPPING=1."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        path.chmod(0o666)  # the service user sends to it, as to systemd's
        self.sock.setblocking(False)
        self.path = path
        self.seen: list[str] = []

    def read(self) -> list[str]:
        while True:
            try:
                self.seen += self.sock.recv(4096).decode().splitlines()
            except BlockingIOError:
                return self.seen


@dataclass
class Service:
    process: subprocess.Popen[str]
    notes: Notifications
    runtime: Path  # the stand-in for /run/credentials/syncd.service and the notify socket

    def stop(self) -> int:
        """``systemctl stop``: SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=60)
        finally:
            self.notes.sock.close()
            shutil.rmtree(self.runtime, ignore_errors=True)


def start_as_unit(unit: Unit) -> Service:
    """What ``systemctl start syncd`` would run, as the unit file says (no sandbox: systemd is
    not PID 1 here). The credential is copied as systemd copies it: a folder only the service
    user reads, the file 0400."""
    user = pwd.getpwnam(unit.user)
    group = grp.getgrnam(unit.group)
    runtime = Path(tempfile.mkdtemp(prefix="syncd-unit-"))
    runtime.chmod(0o711)
    creds = runtime / "credentials"
    creds.mkdir(mode=0o500)
    for name, source in unit.credentials.items():
        (creds / name).write_bytes(source.read_bytes())
        (creds / name).chmod(0o400)
        os.chown(creds / name, user.pw_uid, group.gr_gid)
    os.chown(creds, user.pw_uid, group.gr_gid)
    notes = Notifications(runtime / "notify")
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": user.pw_dir,
        "USER": unit.user,
        "LOGNAME": unit.user,
        "SHELL": user.pw_shell,
        "CREDENTIALS_DIRECTORY": str(creds),
        "NOTIFY_SOCKET": str(notes.path),
    }
    process = subprocess.Popen(
        unit.exec_start,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        user=user.pw_uid,
        group=group.gr_gid,
        extra_groups=os.getgrouplist(unit.user, group.gr_gid),  # initgroups, as systemd does
        umask=unit.umask,
        env=env,
        cwd="/",
    )
    return Service(process, notes, runtime)


def wait_for(check: Callable[[], object], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False
