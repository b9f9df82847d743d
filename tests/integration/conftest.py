"""Fixtures for the integration tests that need more than slapd: a real Samba AD DC."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from devtools.samba_sandbox import SambaSandbox, find_samba

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaSandbox]:
    """One Samba AD DC for the session: provisioning takes seconds, not a test's share."""
    missing = find_samba()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must install it (make test does)")
        pytest.skip(missing)
    sandbox = SambaSandbox(tmp_path_factory.mktemp("samba"))
    sandbox.start()
    yield sandbox
    sandbox.stop()


TREE_DELETE = "1.2.840.113556.1.4.805"


@pytest.fixture
def ad_base(samba: SambaSandbox) -> Iterator[str]:
    """A fresh, empty OU under OU=people for one test (the service account controls it),
    deleted with what it holds afterwards: sAMAccountName and userPrincipalName are unique in
    the whole domain, so the next test's ``hungdv.skhcn`` must not find this one's."""
    dn = f"OU=t{next(_counter)},{samba.people_dn}"
    conn = samba.admin()
    assert conn.add(dn, ["organizationalUnit"]), conn.result
    yield dn
    assert conn.delete(dn, controls=[(TREE_DELETE, True, None)]), conn.result
    conn.unbind()
