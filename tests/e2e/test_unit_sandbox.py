"""Issue 11 item 6: ``syncd run`` exactly as config/systemd/syncd.service runs it.

The shipped unit could not file the first roster of a month: ``processed/YYYY/MM`` was made
with the setgid bit, which ``RestrictSUIDSGID=yes`` refuses (EPERM), so the file was retried
for ever. systemd is not PID 1 here, so the test does what the unit asks for by hand, reading
the unit for it: the service user and group (``User=``, ``Group=``: a throwaway system user
and group stand in for ``syncd``; supplementary groups as ``initgroups`` gives them, so the
user is in the HR group as install.md makes it), ``UMask=``, ``LoadCredential=`` (a
``$CREDENTIALS_DIRECTORY`` holding the bind password), ``NOTIFY_SOCKET``, and
``RestrictSUIDSGID=`` as systemd's ``seccomp_restrict_suid_sgid`` (src/shared/seccomp-util.c)
builds it: chmod, fchmod, fchmodat, fchmodat2, mkdir, mkdirat, mknod, mknodat, creat, and
open/openat with ``O_CREAT`` or ``O_TMPFILE``, whose mode argument has S_ISUID or S_ISGID,
fail with EPERM; openat2 (whose mode the filter cannot see) with ENOSYS. The filter is loaded
in the child before exec. ``ProtectHome=yes`` hides /root from the unit; the interpreter of
this test's venv lives there (pyenv), so the child gets a private mount namespace where only
that interpreter shows under /root. The roster is dropped by an HR user (umask 0007, as
install.md's ``internal-sftp -u 0007``) into an inbox made as install.md makes it, and must
reach ``processed/YYYY/MM`` with a report that HR can read, on the session's real slapd.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ldap3 import Connection

from devtools.slapd_sandbox import Sandbox
from tests.e2e.test_daemon import Notifications, wait_for
from tests.helpers import HEADER, entries

pytestmark = pytest.mark.host  # changes this machine (users, packages, /etc): tests/conftest.py

pyseccomp = pytest.importorskip("pyseccomp")

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "config" / "systemd" / "syncd.service"
O_TMPFILE_BITS = os.O_TMPFILE & ~os.O_DIRECTORY


def unit_service() -> dict[str, list[str]]:
    """The ``[Service]`` section of the shipped unit: key → values (a key may repeat)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def restrict_suid_sgid() -> object:
    """A seccomp filter doing what systemd's ``RestrictSUIDSGID=yes`` does (see above)."""
    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    eperm = pyseccomp.ERRNO(errno.EPERM)
    masked = pyseccomp.MASKED_EQ
    for bit in (stat.S_ISUID, stat.S_ISGID):
        for call, mode_arg in (
            ("chmod", 1),
            ("fchmod", 1),
            ("fchmodat", 2),
            ("fchmodat2", 2),
            ("mkdir", 1),
            ("mkdirat", 2),
            ("mknod", 1),
            ("mknodat", 2),
            ("creat", 1),
        ):
            try:
                f.add_rule(eperm, call, pyseccomp.Arg(mode_arg, masked, bit, bit))
            except (OSError, ValueError, RuntimeError):
                continue  # a syscall this kernel/libseccomp does not know (fchmodat2)
        for call, flags_arg in (("open", 1), ("openat", 2)):
            for flag in (os.O_CREAT, O_TMPFILE_BITS):
                f.add_rule(
                    eperm,
                    call,
                    pyseccomp.Arg(flags_arg, masked, flag, flag),
                    pyseccomp.Arg(flags_arg + 1, masked, bit, bit),
                )
    with contextlib.suppress(OSError, ValueError, RuntimeError):  # an older libseccomp
        f.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "openat2")
    return f


@dataclass
class Host:
    """Throwaway accounts standing in for install.md's: the service user and its group, the
    HR group (``hrdrop``) the service user belongs to, and an HR uploader in it."""

    service: pwd.struct_passwd
    hr_group: grp.struct_group
    hr_user: pwd.struct_passwd

    def as_user(self, user: pwd.struct_passwd) -> list[str]:
        return [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--init-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]


@pytest.fixture
def host() -> Iterator[Host]:
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs root, useradd and setpriv to make throwaway accounts")
    tag = secrets.token_hex(3)
    svc, hrg, hru = f"syncdt{tag}", f"hrdropt{tag}", f"hrupt{tag}"
    made_users: list[str] = []
    made_groups: list[str] = []

    def run(*cmd: str) -> None:
        subprocess.run(cmd, check=True, capture_output=True, text=True)

    try:
        for user in (svc, hru):
            run("useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                "/nonexistent", "--shell", "/usr/sbin/nologin", user)  # fmt: skip
            made_users.append(user)
        run("groupadd", "--system", hrg)
        made_groups.append(hrg)
        run("usermod", "-aG", hrg, svc)  # install.md: usermod -aG hrdrop syncd
        run("usermod", "-aG", hrg, hru)  # HR uploaders join hrdrop
        yield Host(pwd.getpwnam(svc), grp.getgrnam(hrg), pwd.getpwnam(hru))
    finally:
        for user in made_users:
            subprocess.run(["userdel", user], check=False, capture_output=True)
            subprocess.run(["groupdel", user], check=False, capture_output=True)
        for group in made_groups:
            subprocess.run(["groupdel", group], check=False, capture_output=True)


def _mkdir(path: Path, uid: int, gid: int, mode: int) -> Path:
    """install -d -o uid -g gid -m mode (as root: the setgid bit is the admin's, not syncd's)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def _hidden_interpreter_mounts(root: Path) -> str:
    """Shell lines that, in the child's private mount namespace, cover the first folder above
    this venv's interpreter that others cannot enter (/root, as ProtectHome= does) with an
    empty tmpfs and bind the interpreter's installation back at its own path."""
    prefix = Path(sys.base_prefix).resolve()
    hidden = next(
        (p for p in reversed(prefix.parents) if not os.stat(p).st_mode & stat.S_IXOTH), None
    )
    if hidden is None:
        return ""
    keep = root / "interpreter"
    keep.mkdir()
    q = shlex.quote
    return (
        f"mount --bind {q(str(prefix))} {q(str(keep))} && "
        f"mount -t tmpfs -o mode=0755,size=1m tmpfs {q(str(hidden))} && "
        f"mkdir -p {q(str(prefix))} && mount --bind {q(str(keep))} {q(str(prefix))} && "
    )


def test_the_seccomp_filter_refuses_setgid_modes_as_restrictsuidsgid_does(tmp_path: Path) -> None:
    """The stand-in for ``RestrictSUIDSGID=`` bites: asking for setgid fails, the rest works."""
    probe = """
import errno, os, sys
d = sys.argv[1]
def code(f, *a):
    try:
        f(*a)
        return 0
    except OSError as e:
        return e.errno
print(code(os.mkdir, d + "/sgid", 0o2750), code(os.mkdir, d + "/plain", 0o750),
      code(os.chmod, d + "/plain", 0o2750), code(os.chmod, d + "/plain", 0o750),
      code(os.open, d + "/f", os.O_CREAT | os.O_WRONLY, 0o2640),
      code(os.open, d + "/g", os.O_CREAT | os.O_WRONLY, 0o640))
"""
    f = restrict_suid_sgid()
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        preexec_fn=f.load,  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    eperm = str(errno.EPERM)
    assert out == [eperm, "0", eperm, "0", eperm, "0"]
    assert not (tmp_path / "sgid").exists()


def test_the_daemon_as_the_unit_runs_it_files_a_roster_in_a_new_month_folder(
    host: Host, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    unit = unit_service()
    assert unit["User"] == ["syncd"] and unit["Group"] == ["syncd"]  # played by host.service
    assert "RestrictSUIDSGID=yes" in UNIT.read_text(encoding="utf-8")
    umask = int(unit["UMask"][0], 8)
    credential, _, _ = unit["LoadCredential"][0].partition(":")
    exec_start = shlex.split(unit["ExecStart"][0])
    assert Path(exec_start[0]).name == "syncd" and exec_start[1] == "-c"
    svc, hr = host.service, host.hr_group
    root = Path(tempfile.mkdtemp(prefix="syncd-unit-"))
    proc: subprocess.Popen[str] | None = None
    try:
        os.chmod(root, 0o755)  # noqa: S103 - /var/lib/syncd's parent: the user enters it
        # /etc/syncd, as install.md makes it; the config names the credential, not a file
        etc = _mkdir(root / "etc", 0, svc.pw_gid, 0o750)
        (etc / "orgs.yaml").write_text(
            "orgs:\n  - {code: skhcn, name: Sở Khoa học và Công nghệ, mailbox: sokhcn, "
            "kind: department}\n",
            encoding="utf-8",
        )
        lib = _mkdir(root / "lib", 0, 0, 0o755)  # /var/lib/syncd: root-owned (HR's chroot)
        for name in ("state", "outbox"):
            _mkdir(lib / name, svc.pw_uid, svc.pw_gid, 0o700)
        inbox = _mkdir(lib / "inbox", svc.pw_uid, hr.gr_gid, 0o2770)
        for name in ("processed", "rejected"):
            _mkdir(lib / name, svc.pw_uid, hr.gr_gid, 0o2750)
        _mkdir(lib / "processing", svc.pw_uid, svc.pw_gid, 0o700)
        config = etc / "syncd.yaml"
        config.write_text(
            f"""profile: caobang-2025
domain: test.gov.vn
directory:
  url: {slapd.url}
  bind_dn: {slapd.service_dn}
  bind_credential: {credential}
  base_dn: {base_dn}
paths:
  inbox: {inbox}
  state: {lib / "state"}
  outbox: {lib / "outbox"}
  audit_log: {lib / "state" / "audit.jsonl"}
orgs: orgs.yaml
daemon:
  inbox_interval: 0.5
  settle_seconds: 1
""",
            encoding="utf-8",
        )
        for path in (config, etc / "orgs.yaml"):
            os.chown(path, 0, svc.pw_gid)
            os.chmod(path, 0o640)
        # $CREDENTIALS_DIRECTORY as systemd makes it: the service user's, read-only
        creds = _mkdir(root / "credentials", svc.pw_uid, svc.pw_gid, 0o700)
        (creds / credential).write_text(slapd.service_password + "\n", encoding="utf-8")
        os.chown(creds / credential, svc.pw_uid, svc.pw_gid)
        os.chmod(creds / credential, 0o400)
        os.chmod(creds, 0o500)
        notes = Notifications(root / "notify.sock")
        os.chown(notes.path, svc.pw_uid, svc.pw_gid)

        argv = [str(REPO / ".venv" / "bin" / "syncd"), "-c", str(config), *exec_start[3:]]
        script = _hidden_interpreter_mounts(root) + 'exec "$@"'
        seccomp = restrict_suid_sgid()
        proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
                script,
                "sh",
                *host.as_user(svc),
                *argv,
            ],
            env={
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": "C.UTF-8",
                "HOME": "/nonexistent",
                "USER": svc.pw_name,
                "LOGNAME": svc.pw_name,
                "NOTIFY_SOCKET": str(notes.path),
                "CREDENTIALS_DIRECTORY": str(creds),
            },
            cwd="/",
            umask=umask,
            preexec_fn=seccomp.load,  # type: ignore[attr-defined]
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert wait_for(lambda: "READY=1" in notes.read(), timeout=30), _output(proc)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert f"Uid:\t{svc.pw_uid}\t" in status and "Seccomp:\t2" in status  # filtered
        assert str(hr.gr_gid) in status.split("Groups:")[1].splitlines()[0]

        # HR drops a folder first, without group write (an SFTP client's mkdir with its own
        # mode): syncd cannot move it (a rename to another folder needs write on the folder)
        # nor delete what is in it; it is reported, left as it is, and holds nothing back
        subprocess.run(
            [*host.as_user(host.hr_user), "/bin/sh", "-c",
             "umask 0022 && mkdir thang11 && echo x > thang11/skhcn.csv"],
            cwd=inbox, check=True,
        )  # fmt: skip
        # HR uploads (umask 0007, as internal-sftp -u 0007) and renames when done
        roster = "\ufeff" + HEADER + "E1,Đàm Văn Hùng,skhcn,,,,,\n"
        subprocess.run(
            [*host.as_user(host.hr_user), "/bin/sh", "-c",
             "umask 0007 && cat > .skhcn.csv.part && mv .skhcn.csv.part skhcn.csv"],
            cwd=inbox, input=roster.encode("utf-8"), check=True,
        )  # fmt: skip
        processed = lib / "processed"
        assert wait_for(
            lambda: bool(list(processed.glob("*/*/skhcn.csv.report.txt"))), timeout=60
        ), _output(proc)
        report = next(processed.glob("*/*/skhcn.csv.report.txt"))
        assert "1 create" in report.read_text(encoding="utf-8")
        assert "hungdv.skhcn" in entries(admin, base_dn)
        for folder in (report.parent, report.parent.parent):  # processed/YYYY, processed/YYYY/MM
            st = folder.stat()
            assert (st.st_uid, st.st_gid) == (svc.pw_uid, hr.gr_gid)
            assert stat.S_IMODE(st.st_mode) == 0o750
        st = report.stat()
        assert st.st_gid == hr.gr_gid and stat.S_IMODE(st.st_mode) == 0o640
        # HR reads its report, its result (issue 13: the .ketqua pages) and its file
        result = report.parent / "skhcn.csv.ketqua.html"
        assert wait_for(lambda: (report.parent / "skhcn.csv.ketqua.xlsx").exists())
        seen = subprocess.run(
            [
                *host.as_user(host.hr_user),
                "cat",
                str(report),
                str(result),
                str(report.parent / "skhcn.csv"),
            ],
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8")
        assert "1 create" in seen and "Đàm Văn Hùng" in seen and "hungdv.skhcn@" in seen
        assert not list((lib / "processing").iterdir())
        assert [p.name for p in inbox.iterdir()] == ["thang11"]
        left = lib / "rejected" / "thang11.report.txt"
        assert "left in the inbox" in left.read_text(encoding="utf-8")
        assert left.stat().st_gid == hr.gr_gid
        assert (inbox / "thang11" / "skhcn.csv").read_text() == "x\n"
        status = lib / "state" / "status.json"
        assert wait_for(lambda: json.loads(status.read_text())["inbox_left_folders"] == ["thang11"])
        assert json.loads(status.read_text())["inbox_backlog"] == 0
        state = json.loads((lib / "state" / "status.json").read_text())
        assert state["directory"] == "reachable" and state["inbox_readiness"] == "inotify"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "STOPPING=1" in notes.read()
        out = _output(proc)
        assert slapd.service_password not in out
        assert "Permission denied" not in out and "PermissionError" not in out
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _output(proc: subprocess.Popen[str]) -> str:
    """All the daemon printed; for a failed assertion's message, it is stopped first."""
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=30)[0] or ""
