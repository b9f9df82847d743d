"""Shared fixtures: a real slapd for the whole session, an isolated subtree per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from ldap3 import Connection

from connectors.config import Config
from connectors.loading import load_config
from connectors.store import write_private
from devtools.slapd_sandbox import Sandbox, find_slapd

_counter = itertools.count(1)

# No wall-clock assertions in tests: hypothesis' per-example deadline off (a busy CI machine
# must not turn slowness into a failure).
settings.register_profile("syncd", deadline=None, print_blob=True)
settings.load_profile("syncd")


@pytest.fixture(autouse=True, scope="session")
def quiet_logs() -> None:
    """Runs log at INFO; tests only want warnings, on stderr."""
    import logging
    import sys

    from connectors.daemon import configure_logging

    configure_logging(json_lines=False, stream=sys.stderr, level=logging.WARNING)


# ``make test`` runs the suite on both cores (pytest-xdist). A module is one unit of work, so
# its module-scoped servers start once, on one worker; the modules that change this machine
# itself (system users, the Debian package in /usr and /etc: marked ``host``) are one unit
# together, run one after the other on one worker as in a single process. (Not xdist's
# ``xdist_group``: with pytest 9.2 its ``--dist loadgroup`` no longer groups anything.)
# The longest modules are handed out first, so neither core is left with one at the end.
HOST_MODULES = frozenset(
    {
        "tests/e2e/test_bind_secret.py",
        "tests/e2e/test_cli_as_root.py",
        "tests/e2e/test_inbox_as_attacker.py",
        "tests/e2e/test_unit_sandbox.py",
        "tests/integration/test_deb_package.py",
        "tests/integration/test_deb_package_without_systemd.py",
        "tests/integration/test_docker_compose.py",
        "tests/integration/test_install_doc.py",
    }
)
FIRST = ("tests/simulation/test_province.py", "tests/e2e/test_daemon.py", *sorted(HOST_MODULES))


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    strays = {
        _module(i.nodeid)
        for i in items
        if (i.get_closest_marker("host") is not None) != (_module(i.nodeid) in HOST_MODULES)
    }
    if strays:
        raise pytest.UsageError(f"mark these host or not in both places: {sorted(strays)}")
    items.sort(key=lambda i: not i.nodeid.startswith(FIRST))


@pytest.hookimpl(optionalhook=True)  # so `-p no:xdist` still runs the suite in one process
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return "host" if module in HOST_MODULES else module

    return ByModule(config, log)


ORGS_YAML = """\
orgs:
  - {code: skhcn, name: Sở Khoa học và Công nghệ, mailbox: sokhcn, kind: department}
  - {code: vp, name: Văn phòng Sở, mailbox: vanphong.skhcn, kind: office, parent: skhcn}
  - {code: syt, name: Sở Y tế, mailbox: soyte, kind: department}
  - {code: tgg, name: Phường Tân Giang, mailbox: ubndtangiang, kind: commune}
  - {code: khcn, name: Sở KH&CN Hưng Yên, mailbox: sokhcnhy, kind: department}
"""


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if find_slapd() is None:
        if os.environ.get("CI"):
            pytest.fail("slapd is not installed; CI must install Debian slapd (make test does)")
        pytest.skip("Debian slapd is not installed (make test installs it)")
    sandbox = Sandbox(tmp_path_factory.mktemp("slapd"), suffix="dc=test,dc=gov,dc=vn")
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def base_dn(slapd: Sandbox) -> str:
    """A fresh, empty subtree under ou=people for one test."""
    dn = f"ou=t{next(_counter)},{slapd.people_dn}"
    conn = slapd.admin()
    assert conn.add(dn, ["organizationalUnit"], {"ou": dn.split(",")[0][3:]}), conn.result
    conn.unbind()
    return dn


@pytest.fixture
def admin(slapd: Sandbox) -> Iterator[Connection]:
    conn = slapd.admin()
    yield conn
    conn.unbind()


MakeConfig = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path, slapd: Sandbox, base_dn: str) -> MakeConfig:
    """Write a syncd.yaml (plus orgs and secret) for this test's subtree and load it."""

    def make(profile: str = "caobang-2025", extra: str = "", layout: str = "flat") -> Config:
        (tmp_path / "orgs.yaml").write_text(ORGS_YAML, encoding="utf-8")
        write_private(tmp_path / "bind.pw", slapd.service_password + "\n")
        (tmp_path / "syncd.yaml").write_text(
            f"""profile: {profile}
domain: test.gov.vn
directory:
  url: {slapd.url}
  bind_dn: {slapd.service_dn}
  bind_password_file: bind.pw
  base_dn: {base_dn}
  layout: {layout}
paths:
  inbox: inbox
  state: state
  outbox: outbox
  audit_log: state/audit.jsonl
orgs: orgs.yaml
{extra}""",
            encoding="utf-8",
        )
        return load_config(tmp_path / "syncd.yaml")

    return make
