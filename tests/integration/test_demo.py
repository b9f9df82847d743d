"""``make demo PROFILE=…``: the demo, as the Makefile runs it (``python -m devtools.demo`` with
``PROFILE``), on each directory profile's real server — a slapd (with iRedMail's or Zimbra's
schema), a Samba AD DC — in a folder of the test's own (``SYNCD_DEMO_DIR``), then ``demo stop``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.samba_sandbox import find_samba
from devtools.slapd_sandbox import available_profile_schemas, find_slapd

ROOT = Path(__file__).resolve().parents[2]


def _demo(profile: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROFILE": profile, "SYNCD_DEMO_DIR": str(folder)}
    return subprocess.run(
        [sys.executable, "-m", "devtools.demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _pid(folder: Path, profile: str) -> int:
    path = folder / ("samba.pid" if profile == "ad" else "slapd/slapd.pid")
    return int(path.read_text().strip())


def _alive(pid: int) -> bool:
    """Running (a zombie no reaper collected has stopped: the demo's server is an orphan)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


@pytest.mark.parametrize(
    "profile",
    [
        "openldap",
        "iredmail",
        "zimbra",
        # provisioning a domain and 300 unicodePwd over LDAPS: about a minute here
        pytest.param("ad", marks=pytest.mark.long),
    ],
)
def test_the_demo_reconciles_the_sample_on_each_profiles_server_and_stops(
    profile: str, tmp_path: Path
) -> None:
    if find_slapd() is None:
        pytest.skip("Debian slapd is not installed")
    if profile in ("iredmail", "zimbra") and profile not in available_profile_schemas():
        pytest.skip(f"the {profile} schema (../shared/schemas) is not available")
    if profile == "ad" and find_samba() is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{find_samba()}; CI must install it (make test does)")
        pytest.skip(str(find_samba()))
    folder = tmp_path / "demo"
    first = _demo(profile, folder)
    try:
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        out = first.stdout
        assert f"(directory profile {profile})" in out
        assert f"profile: {profile}" in (folder / "syncd.yaml").read_text(encoding="utf-8")
        # the sample's whole story on this server: 289 people created, the 5 pre-syncd
        # mailboxes linked, a transfer, a reset, a retirement — nothing failed
        assert "Đã thực hiện / applied: 311 ok, 0 failed" in out
        assert "289 create, 13 create org mailbox, 5 link existing, 1 move (transfer)" in out
        assert "In the directory now, skhcn (46 entries" in out
        assert "syncd policy check: caobang-2025 against" in out
        # issue 13: it ends by pointing at one of each thing people receive, made for real
        assert "What people receive" in out
        for label, suffix in (
            ("HR's result of", ".ketqua.html"),
            ("Slips (one page per person):", ".html"),
            ("The yearly report on mailbox use:", "-toantinh.html"),
            ("An address list (danh bạ):", "danhba-skhcn.html"),
        ):
            [line] = [x for x in out.splitlines() if label in x]
            path = Path(line.split()[-1])
            assert path.name.endswith(suffix) and path.stat().st_size > 500, line
        again = _demo(profile, folder)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "reusing the demo" in again.stdout
        assert "0 changes: the directory already matches the rosters" in again.stdout
    finally:
        pid = _pid(folder, profile)
        stop = _demo(profile, folder, "stop")
    assert stop.returncode == 0 and "stopped the demo" in stop.stdout, stop.stdout + stop.stderr
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.1)
    assert not _alive(pid)
