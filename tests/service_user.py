"""A throwaway system user and group, and a site laid out as docs/install.md lays it out.

We run as root: the fixture creates a real user with ``useradd --system`` and deletes it after
the test, so ``syncd`` runs under real ownership and modes, not a pretend one. The Python the
tests run may live where other users cannot reach it (pyenv under ``/root``, mode 0700): the
user gets search permission on such folders through a POSIX ACL entry of its own (written as the
kernel's ``system.posix_acl_access`` attribute, no ``setfacl`` needed), removed afterwards — the
folder's mode and every other user's access stay as they were. A production host runs the
packaged Python from ``/usr``, where none of this is needed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SYNCD = str(
    Path(sys.executable).with_name("syncd")
)  # the installed command, as an operator runs it
REPO = Path(__file__).resolve().parent.parent

_ACL = "system.posix_acl_access"
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF
_names = itertools.count(1)


def _acl_entries(path: Path) -> list[tuple[int, int, int]]:
    try:
        raw = os.getxattr(path, _ACL)
    except OSError:
        mode = path.stat().st_mode
        return [
            (_USER_OBJ, (mode >> 6) & 7, _NO_ID),
            (_GROUP_OBJ, (mode >> 3) & 7, _NO_ID),
            (_OTHER, mode & 7, _NO_ID),
        ]
    return [struct.unpack_from("<HHI", raw, 4 + 8 * i) for i in range((len(raw) - 4) // 8)]


def _acl_write(path: Path, entries: list[tuple[int, int, int]]) -> None:
    named = [e for e in entries if e[0] in (_USER, _GROUP)]
    base = [e for e in entries if e[0] in (_USER_OBJ, _GROUP_OBJ, _OTHER)]
    if not named:  # back to plain mode bits
        perms = {tag: perm for tag, perm, _ in base}
        special = stat.S_IMODE(path.stat().st_mode) & 0o7000
        with contextlib.suppress(OSError):
            os.removexattr(path, _ACL)
        os.chmod(path, special | perms[_USER_OBJ] << 6 | perms[_GROUP_OBJ] << 3 | perms[_OTHER])
        return
    mask = 0
    for tag, perm, _ in named + base:
        if tag in (_USER, _GROUP, _GROUP_OBJ):
            mask |= perm
    rows = sorted(base + named + [(_MASK, mask, _NO_ID)], key=lambda e: (e[0], e[2]))
    os.setxattr(path, _ACL, struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in rows))


def _unreachable_folders(uid: int) -> list[Path]:
    """Folders on the way to the interpreter and the code that ``uid`` cannot search."""
    out: list[Path] = []
    for target in (Path(os.path.realpath(sys.executable)), REPO):
        for folder in target.parents:
            st = folder.stat()
            if not st.st_mode & stat.S_IXOTH and st.st_uid != uid and folder not in out:
                out.append(folder)
    return out


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment ``sudo -u`` or systemd's ``User=`` gives: no root's HOME."""
        keep = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")
        }
        return {**keep, "HOME": "/nonexistent", "USER": self.name, "LOGNAME": self.name, **extra}

    def run(
        self, args: Sequence[str], env: dict[str, str] | None = None, umask: int = 0o077
    ) -> subprocess.CompletedProcess[str]:
        """``syncd ARGS`` as this user, with its groups and the unit's umask."""
        return subprocess.run(
            [SYNCD, *args],
            capture_output=True,
            text=True,
            user=self.uid,
            group=self.gid,
            extra_groups=[self.gid],
            umask=umask,
            env=env if env is not None else self.env(),
            timeout=120,
        )

    def popen(self, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
        """``syncd ARGS`` started as this user; killed, if still running, with the user."""
        proc = subprocess.Popen(
            [SYNCD, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            user=self.uid,
            group=self.gid,
            extra_groups=[self.gid],
            umask=0o077,
            env=env,
        )
        self.started.append(proc)
        return proc


def make_user(reach_python: bool = True) -> Iterator[ServiceUser]:
    """Create a system user with its own group; delete both (and the ACL entries) after.

    ``reach_python=False``: leave the user unable to reach the interpreter when it lives in a
    folder others cannot search (skips when it does not: nothing to prove then)."""
    if os.geteuid() != 0:
        pytest.skip("creating a service user needs root (make test runs as root)")
    name = f"sdt{os.getpid() % 100000}x{next(_names)}"
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", name],
        check=True,
    )  # fmt: skip
    import pwd

    entry = pwd.getpwnam(name)
    user = ServiceUser(name, entry.pw_uid, entry.pw_gid)
    granted = _unreachable_folders(user.uid) if reach_python else []
    if not reach_python and not _unreachable_folders(user.uid):
        subprocess.run(["userdel", name], check=False)
        pytest.skip("this Python is readable by every user; nothing to hide it from")
    for folder in granted:
        _acl_write(folder, [*_acl_entries(folder), (_USER, 1, user.uid)])
    try:
        yield user
    finally:
        for proc in user.started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        for folder in granted:
            _acl_write(
                folder, [e for e in _acl_entries(folder) if e[:1] + e[2:] != (_USER, user.uid)]
            )
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", name], check=False, stderr=subprocess.DEVNULL)


@dataclass(frozen=True)
class Site:
    """The folders of docs/install.md under a temporary root every user may traverse."""

    root: Path
    etc: Path
    state: Path
    outbox: Path
    inbox: Path
    log: Path
    config: Path


def make_site(user: ServiceUser, directory: str, secret_lines: str) -> Iterator[Site]:
    """Folders as install.md creates them for ``user``; ``directory`` is the syncd.yaml section
    body (url, DNs), ``secret_lines`` how the bind password is found."""
    root = Path(tempfile.mkdtemp(prefix="syncd-site-"))
    root.chmod(0o755)
    etc, lib, log = root / "etc", root / "lib", root / "log"
    etc.mkdir(mode=0o750)
    os.chown(etc, 0, user.gid)
    etc.chmod(0o750)
    lib.mkdir(mode=0o755)
    for name, mode in (
        ("state", 0o700),
        ("outbox", 0o700),
        ("processing", 0o700),
        ("inbox", 0o2770),
        ("processed", 0o2750),
        ("rejected", 0o2750),
    ):
        (lib / name).mkdir()
        os.chown(lib / name, user.uid, user.gid)
        (lib / name).chmod(mode)
    log.mkdir()
    os.chown(log, user.uid, user.gid)
    log.chmod(0o750)
    from tests.conftest import ORGS_YAML

    (etc / "orgs.yaml").write_text(ORGS_YAML, encoding="utf-8")
    (etc / "orgs.yaml").chmod(0o644)
    config = etc / "syncd.yaml"
    config.write_text(
        f"""profile: caobang-2025
domain: test.gov.vn
directory:
{directory}
{secret_lines}
paths:
  inbox: {lib}/inbox
  state: {lib}/state
  outbox: {lib}/outbox
  audit_log: {log}/audit.jsonl
orgs: orgs.yaml
daemon:
  inbox_interval: 0.5
  settle_seconds: 1
""",
        encoding="utf-8",
    )
    config.chmod(0o644)
    try:
        yield Site(root, etc, lib / "state", lib / "outbox", lib / "inbox", log, config)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def owners(*folders: Path) -> dict[str, int]:
    """path → owner uid of everything under ``folders`` (themselves included)."""
    out: dict[str, int] = {}
    for folder in folders:
        out[str(folder)] = folder.stat().st_uid
        for path in folder.rglob("*"):
            out[str(path)] = path.lstat().st_uid
    return out


def slapd_site(user: ServiceUser, slapd: Any, base_dn: str) -> Iterator[Site]:
    """A site on the tests' slapd whose bind password is a file root:<service group> 0640
    (one of install.md's ways), for tests that run syncd as root and as the service user."""
    directory = f"  url: {slapd.url}\n  bind_dn: {slapd.service_dn}\n  base_dn: {base_dn}"
    for s in make_site(user, directory, "  bind_password_file: bind.pw"):
        pw = s.etc / "bind.pw"
        pw.write_text(slapd.service_password + "\n", encoding="utf-8")
        os.chown(pw, 0, user.gid)
        pw.chmod(0o640)
        yield s
