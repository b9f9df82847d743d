"""docs/install.md, followed step by step on this machine.

The ```sh blocks install.md marks for this test are read from the document itself, line by line,
and each line is either run as written (as root, with a root login's PATH, on this machine's
real /usr, /etc and /var) or is one of the steps below that cannot be run as written here, each
saying what it does instead and why:

- the build machine's ``apt-get install`` of build dependencies is not run (it would take the
  package lock for nothing): the test checks that it names every Build-Depends of debian/control
  and that each is installed here;
- ``make deb`` is the same target with ``DEB_OUT`` in a temporary folder (not the checkout's
  build/deb, which a developer may be using), once per session (tests/packaged.py);
- ``editor FILE`` is the operator's edit: syncd.yaml gets this test's directory (the session's
  slapd and a fresh subtree); the shipped orgs.yaml is kept as it is (it must be valid as
  shipped); bind.pw gets the service password;
- ``systemctl``: systemd is not PID 1 here, so ``enable --now`` runs the installed unit's
  ExecStart as the unit says (tests/packaged.py: user, groups, umask, credential, notify socket)
  and ``status`` reads the STATUS= line the daemon sends to the notify socket, which is what
  ``systemctl status`` shows.

A line that is none of these fails the test: the document cannot gain a step nobody followed.
"""

from __future__ import annotations

import pwd
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from devtools.slapd_sandbox import Sandbox
from tests.packaged import (
    REPO,
    Service,
    Unit,
    built_deb,
    installed,
    package_on_this_host,
    start_as_unit,
    wait_for,
)

# changes this machine (users, packages, /etc): tests/conftest.py
pytestmark = [pytest.mark.slapd, pytest.mark.host]

DOC = REPO / "docs" / "install.md"
MARK = "tests/integration/test_install_doc.py"
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}


def followed_blocks(text: str) -> list[list[str]]:
    """The command lines of every ```sh block whose preceding HTML comment names this test."""
    blocks: list[list[str]] = []
    pattern = r"<!--(?P<note>(?:(?!-->).)*?)-->\s*```sh\n(?P<body>.*?)```"
    for match in re.finditer(pattern, text, flags=re.DOTALL):
        if MARK not in match["note"]:
            continue
        lines = []
        for raw in match["body"].splitlines():
            line = raw.split(" #", 1)[0].strip()  # trailing comments: two spaces then #
            if line and not line.startswith("#"):
                lines.append(line)
        blocks.append(lines)
    return blocks


def _build_depends() -> set[str]:
    control = (REPO / "debian" / "control").read_text(encoding="utf-8")
    match = re.search(r"^Build-Depends:(.*?)^\S", control, flags=re.MULTILINE | re.DOTALL)
    assert match is not None
    names = {dep.split()[0] for dep in match[1].replace("\n", " ").split(",") if dep.strip()}
    return names - {"debhelper-compat"} | {"debhelper"}


def _shell(line: str, cwd: Path, answer: str = "") -> subprocess.CompletedProcess[str]:
    """One line of the document, as root types it (``answer``: what root answers apt's "Do you
    want to continue?"), waiting while apt's lock is held."""
    deadline = time.monotonic() + 600
    while True:
        result = subprocess.run(
            ["bash", "-e", "-c", line],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=ROOT_ENV,
            input=answer,
            timeout=600,
        )
        locked = "Could not get lock" in result.stderr or "dpkg frontend lock" in result.stderr
        if not locked or time.monotonic() > deadline:
            return result
        time.sleep(2)


@dataclass
class Operator:
    """Follows the document's lines; knows how to do each step this machine cannot run as
    written (see the module's docstring)."""

    slapd: Sandbox
    base_dn: str
    cwd: Path = field(default_factory=Path.cwd)
    service: Service | None = None
    done: list[str] = field(default_factory=list)

    def follow(self, line: str) -> None:
        for pattern, step in self.steps():
            match = re.fullmatch(pattern, line)
            if match:
                step(line, match)
                self.done.append(line)
                return
        pytest.fail(f"docs/install.md: {line!r} is a step this test does not know how to follow")

    def steps(self) -> list[tuple[str, Callable[[str, re.Match[str]], None]]]:
        return [
            (r"apt-get install --no-install-recommends ([a-z0-9 .+-]+)", self.build_deps),
            (r"make deb", self.make_deb),
            (r"apt-get install \./syncd_\*\.deb", self.run_installing),
            (r"editor /etc/syncd/syncd\.yaml", self.edit_config),
            (r"editor /etc/syncd/orgs\.yaml", lambda *_: None),  # kept as shipped
            (r"(install -m 0600 /dev/null /etc/syncd/bind\.pw) && editor /etc/syncd/bind\.pw",
             self.bind_password),
            (r"syncd (config validate|plan|status)", self.run_as_written),
            (r"systemctl enable --now syncd", self.start_unit),
            (r"systemctl status syncd", self.unit_status),
            (r"apt-get purge syncd", self.purge),
        ]  # fmt: skip

    # -- the steps --------------------------------------------------------------------------

    def build_deps(self, line: str, match: re.Match[str]) -> None:
        named = set(match[1].split())
        assert _build_depends() <= named, f"install.md misses {_build_depends() - named}"
        for package in named:
            state = subprocess.run(
                ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
            ).stdout
            assert state == "install ok installed", f"{package}: {state or 'not installed'}"

    def make_deb(self, line: str, match: re.Match[str]) -> None:
        self.cwd = built_deb().parent  # "with the .deb copied to the current folder"

    def run_as_written(
        self, line: str, match: re.Match[str] | None = None, answer: str = ""
    ) -> None:
        result = _shell(line, self.cwd, answer)
        assert result.returncode == 0, f"{line}: exit {result.returncode}\n{result.stderr}"

    def run_installing(self, line: str, match: re.Match[str]) -> None:
        self.run_as_written(line)
        assert installed()

    def edit_config(self, line: str, match: re.Match[str]) -> None:
        path = Path("/etc/syncd/syncd.yaml")
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["domain"] = "test.gov.vn"
        directory = config["directory"]
        for key in ("bind_password_file", "bind_password_env"):
            directory.pop(key, None)
        directory.update(
            url=self.slapd.url,
            bind_dn=self.slapd.service_dn,
            base_dn=self.base_dn,
            # as the paragraph after the block says: the unit's credential, and its source
            # file for the syncd command
            bind_credential="bind-password",
            bind_credential_file="/etc/syncd/bind.pw",
        )
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")

    def bind_password(self, line: str, match: re.Match[str]) -> None:
        self.run_as_written(match[1])
        path = Path("/etc/syncd/bind.pw")
        with path.open("w", encoding="utf-8") as fh:  # the editor keeps the file's mode
            fh.write(self.slapd.service_password + "\n")
        st = path.stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)

    def start_unit(self, line: str, match: re.Match[str]) -> None:
        unit = Unit.read()
        self.service = start_as_unit(unit)
        service = self.service
        assert wait_for(lambda: "READY=1" in service.notes.read()), service.process.poll()

    def unit_status(self, line: str, match: re.Match[str]) -> None:
        assert self.service is not None and self.service.process.poll() is None
        notes = self.service
        assert wait_for(lambda: any(n.startswith("STATUS=") for n in notes.notes.read()))

    def purge(self, line: str, match: re.Match[str]) -> None:
        if self.service is not None:  # the package's prerm stops the unit; here we do
            assert self.service.stop() == 0
            self.service = None
        self.run_as_written(line, answer="y\n")
        assert not installed()
        assert not Path("/etc/syncd").exists() and not Path("/var/lib/syncd").exists()
        assert Path("/var/log/syncd").is_dir()  # the audit trail stays
        pwd.getpwnam("syncd")  # and the user


def test_every_line_of_the_install_block_is_followed_on_this_machine(
    slapd: Sandbox, base_dn: str
) -> None:
    blocks = followed_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 2, "install.md lost its marked blocks"
    operator = Operator(slapd, base_dn)
    with package_on_this_host():
        try:
            for line in [line for block in blocks for line in block]:
                operator.follow(line)
        finally:
            if operator.service is not None:
                operator.service.stop()
    assert operator.done == [line for block in blocks for line in block]
    # the ones run as written, named: what an operator types is what was tested
    assert {"syncd config validate", "syncd plan", "syncd status"} <= set(operator.done)


def test_the_folder_table_is_what_the_package_declares() -> None:
    """install.md's table of folders, owners and modes is debian/syncd-tmpfiles.conf."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## What the package installs") :]
    documented: dict[str, tuple[str, str]] = {}
    for row in re.findall(r"^\| `([^|]+)` \| (\w+:\w+) \| (\d{4}) \|", section, re.MULTILINE):
        paths, owner, mode = row
        first, *rest = [p.strip().strip("`") for p in paths.split(",")]
        for name in [first, *(str(Path(first).parent / r) for r in rest)]:
            documented[name] = (owner, mode)
    declared: dict[str, tuple[str, str]] = {}
    conf = (REPO / "debian" / "syncd-tmpfiles.conf").read_text(encoding="utf-8")
    for line in conf.splitlines():
        fields = shlex.split(line, comments=True)
        if fields and fields[0] == "d":
            declared[fields[1]] = (f"{fields[3]}:{fields[4]}", fields[2])
    assert documented == declared
