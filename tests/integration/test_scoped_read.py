"""A scoped read (``reconcile --roster`` of some organisations) is answered from slapd's
equality indexes: slapd tests only the entries the indexes name, never every entry of the
base, however many people the file lists (issue 14: 12.6 s for 1,000 terms at 100k when one
unindexed term made slapd scan the base).

slapd runs with ``-d filter``, which logs each entry a search tests (``=> test_filter_and``:
every filter here is one AND); the count is what slapd examined, not a clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.config import DirectoryConfig
from connectors.directory.openldap import OpenLdapDirectory
from devtools.slapd_sandbox import Sandbox, find_slapd
from syncd.ports import Scope

DOMAIN = "test.gov.vn"
OTHERS = 600  # people of other organisations, never to be examined


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if find_slapd() is None:
        pytest.skip("Debian slapd is not installed (make test installs it)")
    sandbox = Sandbox(tmp_path_factory.mktemp("traced"), suffix="dc=t,dc=gov,dc=vn")
    sandbox.debug = "filter"
    sandbox.start()
    admin = sandbox.admin()
    people = sandbox.people_dn

    def add(uid: str, org: str, emp: str | None, mail: list[str] | None = None) -> None:
        attrs = {"uid": uid, "cn": uid, "sn": uid, "ou": org}
        attrs["mail"] = mail or [f"{uid}@{DOMAIN}"]
        if emp:
            attrs["employeeNumber"] = emp
        assert admin.add(f"uid={uid},{people}", ["inetOrgPerson"], attrs), admin.result

    for i in range(OTHERS):
        add(f"p{i}.syt", "syt", f"S{i:04d}")
    for i in range(300):
        add(f"k{i}.skhcn", "skhcn", f"K{i:04d}")
    add("legacy", "tgg", None)  # predates syncd: no employee number, to be linked
    # transferred to syt, its old skhcn address kept as an alias
    add("moved.syt", "syt", "M1", [f"moved.syt@{DOMAIN}", f"moved.skhcn@{DOMAIN}"])
    admin.unbind()
    yield sandbox
    sandbox.stop()


def _directory(sandbox: Sandbox) -> OpenLdapDirectory:
    cfg = DirectoryConfig(url=sandbox.url, bind_dn=sandbox.service_dn, base_dn=sandbox.people_dn)
    return OpenLdapDirectory(cfg, sandbox.service_password, DOMAIN)


def _tested(log: Path, since: int) -> int:
    return log.read_bytes()[since:].count(b"=> test_filter_and")


def _scoped(sandbox: Sandbox, scope: Scope) -> tuple[set[str], int]:
    """The uids a scoped read returns and how many entries slapd tested for it (the run
    reads the namespace first, as the runner does)."""
    directory = _directory(sandbox)
    try:
        directory.names()
        log = sandbox.root / "slapd.log"
        mark = log.stat().st_size
        got = {a.uid for a in directory.read(scope)}
        # slapd writes its trace before it sends the result: it is on disk by now
        return got, _tested(log, mark)
    finally:
        directory.close()


def test_a_scoped_read_tests_only_what_the_indexes_name(traced: Sandbox) -> None:
    got, tested = _scoped(traced, Scope(orgs={"skhcn"}, employee_numbers={"K0001", "S0007"}))
    skhcn = {f"k{i}.skhcn" for i in range(300)}
    assert got == skhcn | {"p7.syt", "legacy", "moved.syt"}
    assert tested <= 2 * len(got) + 10, f"slapd tested {tested} entries for {len(got)}"


def test_a_file_of_many_people_is_still_read_by_index_not_the_whole_base(
    traced: Sandbox,
) -> None:
    many = {f"S{i:04d}" for i in range(0, OTHERS, 2)}  # 300 numbers: past any "small" cut-off
    got, tested = _scoped(traced, Scope(orgs={"tgg"}, employee_numbers=many))
    assert got == {f"p{i}.syt" for i in range(0, OTHERS, 2)} | {"legacy"}
    assert tested <= 2 * len(got) + 10, f"slapd tested {tested} entries for {len(got)}"
