"""No secret reaches a log, report, audit record, state file or --json output; private files
are 0600 in 0700 directories; the service DN can do exactly its job."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

from ldap3 import NONE, Connection, Server

from devtools.slapd_sandbox import Sandbox
from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import write_roster


def test_no_secret_anywhere_after_creates_resets_and_restores(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    outputs: list[str] = []

    def run(*args: str) -> None:
        result = syncd(cfg, *args)
        outputs.extend([result.stdout, result.stderr])
        assert result.returncode == 0, result.stderr

    run(
        "reconcile",
        "--json",
        "--roster",
        str(
            write_roster(
                tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
            )
        ),
    )
    run(
        "reconcile",
        "--json",
        "--roster",
        str(
            write_roster(
                tmp_path / "b.csv",
                ["E1,Đàm Văn Hùng,skhcn,,,,,Cấp lại mật khẩu", "E2,Lê Văn Tám,skhcn,,,,,"],
            )
        ),
    )
    run("lock", "tamlv.skhcn", "--reason", "compromised")
    run("restore", "tamlv.skhcn")
    run("plan", "--json")
    run("history", "tamlv.skhcn")
    run("audit", "verify")
    secrets = {slapd.service_password, slapd.admin_password}
    for path in (tmp_path / "outbox").rglob("*.csv"):
        for row in list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))[1:]:
            secrets.add(row[2])
    assert len(secrets) >= 2 + 5  # 2 people, 2 org mailboxes, a reset and a restore
    places = {f"output {i}": text for i, text in enumerate(outputs)}
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    leaks = [(where, s) for where, text in places.items() for s in secrets if s in text]
    assert leaks == []
    assert any("audit.jsonl" in p for p in places) and any("reports" in p for p in places)
    for root in (tmp_path / "state", tmp_path / "outbox"):
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            # the audit log is group-readable by design (its readers' group; it holds no
            # secret, as checked above); its key, head and every other file are 0600
            private = 0o640 if path.name.startswith("audit.jsonl") else 0o600
            assert mode == (0o700 if path.is_dir() else private), (path, oct(mode))


def test_the_service_dn_cannot_touch_cn_config_or_anything_outside_its_subtree(
    slapd: Sandbox,
) -> None:
    conn = Connection(
        Server(slapd.url, get_info=NONE), slapd.service_dn, slapd.service_password, auto_bind=True
    )
    conn.search("cn=config", "(objectClass=*)", search_scope="BASE")
    assert conn.result["result"] in (32, 50)  # noSuchObject or insufficientAccessRights
    assert not conn.modify(slapd.policy_dn, {"pwdMaxFailure": [("MODIFY_REPLACE", ["3"])]})
    assert not conn.add(
        f"cn=evil,ou=services,{slapd.suffix}", ["applicationProcess"], {"cn": "evil"}
    )
    assert not conn.modify(slapd.admin_dn, {"description": [("MODIFY_REPLACE", ["x"])]})
    conn.search(f"ou=services,{slapd.suffix}", "(objectClass=*)")
    assert [e for e in conn.response if e.get("type") == "searchResEntry"] == []
