"""``make deb`` builds a package that installs on this Debian machine, runs as its unit says,
files a roster HR drops, and purges as docs/install.md says (tests/packaged.py: how)."""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import Connection

from devtools.slapd_sandbox import Sandbox
from tests.conftest import ORGS_YAML
from tests.helpers import HEADER, entries
from tests.packaged import (
    Unit,
    built_deb,
    dpkg,
    installed,
    package_on_this_host,
    start_as_unit,
    wait_for,
)

# changes this machine (users, packages, /etc): tests/conftest.py
pytestmark = [pytest.mark.slapd, pytest.mark.host]

LIB = Path("/usr/lib/syncd/python")
# never in the package: a directory server, test runners, linters, type checkers
DEV_TOOLS = ("slapd", "pytest", "_pytest", "hypothesis", "ruff", "mypy", "importlinter")


@pytest.fixture(scope="module")
def package() -> Iterator[Path]:
    with package_on_this_host():
        deb = built_deb()
        result = dpkg("-i", str(deb))
        assert result.returncode == 0, result.stdout + result.stderr
        yield deb


def _mode_owner(path: str) -> tuple[str, str, str]:
    st = os.stat(path)
    return (
        oct(stat.S_IMODE(st.st_mode)),
        pwd.getpwuid(st.st_uid).pw_name,
        grp.getgrgid(st.st_gid).gr_name,
    )


def test_the_package_brings_no_directory_server_nor_any_test_or_dev_tool(package: Path) -> None:
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(package), "Depends", "Pre-Depends", "Recommends"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "python3" in fields
    assert not re.search(r"\b(slapd|ldap-utils|python3-pytest)\b", fields), fields
    bundled = {p.name.split("-")[0].lower() for p in LIB.iterdir()}
    assert {"connectors", "syncd", "ldap3", "pydantic", "click"} <= bundled
    assert not bundled & set(DEV_TOOLS), bundled & set(DEV_TOOLS)
    files = subprocess.run(["dpkg", "-L", "syncd"], capture_output=True, text=True).stdout
    assert "/devtools/" not in files and "/tests/" not in files


def test_the_folders_user_and_groups_are_as_install_md_lists_them(package: Path) -> None:
    assert _mode_owner("/etc/syncd") == ("0o750", "root", "syncd")
    assert _mode_owner("/var/lib/syncd") == ("0o755", "root", "root")  # HR's SFTP chroot
    for name in ("state", "outbox", "processing"):
        assert _mode_owner(f"/var/lib/syncd/{name}") == ("0o700", "syncd", "syncd"), name
    assert _mode_owner("/var/lib/syncd/inbox") == ("0o2770", "syncd", "hrdrop")
    for name in ("processed", "rejected"):
        assert _mode_owner(f"/var/lib/syncd/{name}") == ("0o2750", "syncd", "hrdrop"), name
    assert _mode_owner("/var/log/syncd") == ("0o2750", "syncd", "adm")  # log readers
    user = pwd.getpwnam("syncd")
    assert user.pw_shell == "/usr/sbin/nologin" and user.pw_dir == "/var/lib/syncd"
    assert "syncd" in grp.getgrnam("hrdrop").gr_mem  # reads what HR uploads (0660, hrdrop)
    conffiles = subprocess.run(
        ["dpkg-query", "-W", "-f=${Conffiles}", "syncd"], capture_output=True, text=True
    ).stdout
    assert "/etc/syncd/syncd.yaml" in conffiles and "/etc/syncd/orgs.yaml" in conffiles


def test_the_installed_command_man_page_and_completion_work(package: Path) -> None:
    clean = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    run = subprocess.run(
        ["/usr/bin/syncd", "uid", "--scheme", "caobang-2025", "--org", "tgg", "Hoàng Văn Phúc"],
        capture_output=True,
        text=True,
        env=clean,
        cwd="/",
    )
    assert run.returncode == 0 and run.stdout.strip() == "phuchv.tgg", run.stderr
    version = subprocess.run(["/usr/bin/syncd", "--version"], capture_output=True, text=True)
    assert "0.1.0" in version.stdout
    page = subprocess.run(
        ["man", "-P", "cat", "8", "syncd"], capture_output=True, text=True, env=clean
    )
    assert page.returncode == 0, page.stderr
    flat = " ".join(page.stdout.split())
    assert "syncd config validate" in flat and "syncd reconcile" in flat and "--dry-run" in flat
    completion = subprocess.run(
        [
            "bash",
            "-c",
            "source /usr/share/bash-completion/completions/syncd; COMP_WORDS=(syncd reco); "
            'COMP_CWORD=1; _syncd_completion syncd; printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        capture_output=True,
        text=True,
        env=clean,
    )
    assert "reconcile" in completion.stdout.split(), completion.stdout + completion.stderr


def test_the_daemon_run_as_the_installed_unit_files_a_dropped_roster(
    package: Path, slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    unit = Unit.read()
    assert unit.exec_start[0] == "/usr/bin/syncd" and unit.exec_start[-1] == "run"
    assert (unit.user, unit.group, unit.umask) == ("syncd", "syncd", 0o077)
    (source,) = unit.credentials.values()
    source.write_text(slapd.service_password + "\n", encoding="utf-8")
    source.chmod(0o600)  # root's only: the service gets it as a credential
    Path("/etc/syncd/orgs.yaml").write_text(ORGS_YAML, encoding="utf-8")
    Path("/etc/syncd/syncd.yaml").write_text(
        f"""profile: caobang-2025
domain: test.gov.vn
directory:
  url: {slapd.url}
  bind_dn: {slapd.service_dn}
  bind_credential: {next(iter(unit.credentials))}
  base_dn: {base_dn}
paths:
  inbox: /var/lib/syncd/inbox
  state: /var/lib/syncd/state
  outbox: /var/lib/syncd/outbox
  audit_log: /var/log/syncd/audit.jsonl
orgs: orgs.yaml
daemon:
  inbox_interval: 0.5
  settle_seconds: 1
""",
        encoding="utf-8",
    )
    service = start_as_unit(unit)
    try:
        assert wait_for(lambda: "READY=1" in service.notes.read()), service.process.poll()
        inbox = Path("/var/lib/syncd/inbox")
        upload = inbox / ".skhcn.csv.part"  # as an SFTP client uploads, then renames
        upload.write_text("\ufeff" + HEADER + "E1,Đàm Văn Hùng,skhcn,,,,,\n", encoding="utf-8")
        upload.chmod(0o660)
        upload.rename(inbox / "skhcn.csv")
        processed = Path("/var/lib/syncd/processed")
        assert wait_for(lambda: list(processed.rglob("skhcn.csv.report.txt")), timeout=60)
        assert "hungdv.skhcn" in entries(admin, base_dn)
        (report,) = processed.rglob("skhcn.csv.report.txt")
        assert "1 create" in report.read_text(encoding="utf-8")
        assert _mode_owner(str(report)) == ("0o640", "syncd", "hrdrop")  # HR reads its report
        assert not list(inbox.iterdir())
    finally:
        code = service.stop()
    assert code == 0, service.process.stdout.read() if service.process.stdout else ""
    for path in Path("/var/lib/syncd/state").rglob("*"):
        assert path.stat().st_uid == pwd.getpwnam("syncd").pw_uid, path
    assert Path("/var/log/syncd/audit.jsonl").stat().st_size > 0


def test_reinstalling_keeps_the_operators_edits_the_data_and_the_modes(package: Path) -> None:
    config = Path("/etc/syncd/syncd.yaml")
    edited = config.read_text(encoding="utf-8") + "# edited by the operator\n"
    config.write_text(edited, encoding="utf-8")
    kept = Path("/var/lib/syncd/processed/kept.csv")
    kept.write_text("HR's file\n", encoding="utf-8")
    result = dpkg("-i", str(package))  # what an upgrade runs: prerm, unpack, postinst again
    assert result.returncode == 0, result.stdout + result.stderr
    assert config.read_text(encoding="utf-8") == edited  # a conffile: never overwritten
    assert kept.read_text(encoding="utf-8") == "HR's file\n"
    assert _mode_owner("/var/lib/syncd/inbox") == ("0o2770", "syncd", "hrdrop")
    assert _mode_owner("/etc/syncd") == ("0o750", "root", "syncd")


def test_purge_removes_config_and_data_and_keeps_the_audit_log_and_the_users(
    package: Path,
) -> None:
    Path("/etc/syncd/bind.pw").write_text("secret\n", encoding="utf-8")
    result = dpkg("--purge", "syncd")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not installed()
    for gone in ("/usr/bin/syncd", "/usr/lib/syncd", "/etc/syncd", "/var/lib/syncd"):
        assert not Path(gone).exists(), gone
    assert Path("/var/log/syncd").is_dir()  # the audit trail outlives the package
    pwd.getpwnam("syncd")  # Debian policy: users are not removed (no KeyError)
    grp.getgrnam("hrdrop")
