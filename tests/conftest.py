"""Shared fixtures: a real slapd for the whole session, an isolated subtree per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

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
