"""The package installs where systemd's tools are missing (a container, a host booted without
systemd): its postinst reads the same sysusers.d and tmpfiles.d declarations with useradd and
install -d, and the result is what systemd-sysusers and systemd-tmpfiles would have made.

This machine has both tools, so the test hides them from dpkg the way a host without them is:
in a private mount namespace (``unshare -m``) where /dev/null is mounted over each binary, so
``command -v`` finds no executable. Everything else — the package, dpkg, /etc/passwd, the
folders — is this machine's own.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from tests.packaged import built_deb, installed, package_on_this_host

pytestmark = pytest.mark.host  # changes this machine (users, packages, /etc): tests/conftest.py

HIDDEN = ("/usr/bin/systemd-sysusers", "/usr/bin/systemd-tmpfiles")


def _dpkg_install_without_systemd_tools(deb: Path) -> subprocess.CompletedProcess[str]:
    hide = " && ".join(f"mount --bind /dev/null {p}" for p in HIDDEN if Path(p).exists())
    script = f"{hide or 'true'} && ! command -v systemd-sysusers && exec dpkg -i {deb}"
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )


def test_without_systemds_tools_the_postinst_makes_the_declared_user_groups_and_folders() -> None:
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here (unshare: {probe.stderr!r})")
    with package_on_this_host():
        had_user = subprocess.run(["getent", "passwd", "syncd"], capture_output=True).returncode
        result = _dpkg_install_without_systemd_tools(built_deb())
        assert result.returncode == 0, result.stdout + result.stderr
        assert installed()
        if had_user != 0:  # made by the fallback, as sysusers.d says
            user = pwd.getpwnam("syncd")
            assert (user.pw_dir, user.pw_shell) == ("/var/lib/syncd", "/usr/sbin/nologin")
            assert user.pw_gecos == "syncd provisioning daemon"
            assert grp.getgrgid(user.pw_gid).gr_name == "syncd"
        assert "syncd" in grp.getgrnam("hrdrop").gr_mem
        declared = Path("/usr/lib/tmpfiles.d/syncd.conf").read_text(encoding="utf-8")
        checked = 0
        for line in declared.splitlines():
            fields = shlex.split(line, comments=True)
            if not fields or fields[0] != "d":
                continue
            _, path, mode, owner, group, *_ = fields
            st = os.stat(path)
            assert oct(stat.S_IMODE(st.st_mode)) == oct(int(mode, 8)), path
            assert pwd.getpwuid(st.st_uid).pw_name == owner, path
            assert grp.getgrgid(st.st_gid).gr_name == group, path
            checked += 1
        assert checked >= 9
