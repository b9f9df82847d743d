"""The compose file's OpenLDAP service runs the same reconcile (needs a Docker engine)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from connectors import runner
from connectors.loading import load_config
from connectors.store import write_private
from tests.helpers import write_roster

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "docker-compose.yml"


def _engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.skipif(
    not _engine(), reason="no Docker engine here (docker info fails); the compose test needs one"
)


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(COMPOSE)


def test_reconcile_against_the_compose_ldap_service(docker_services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ldap3 import Connection, Server

    def up() -> bool:
        try:
            return bool(
                Connection(
                    Server("ldap://127.0.0.1:3389"),
                    "cn=admin,dc=example,dc=gov,dc=vn",
                    "admin-secret",
                ).bind()
            )
        except Exception:
            return False

    docker_services.wait_until_responsive(timeout=120.0, pause=1.0, check=up)
    (tmp_path / "orgs.yaml").write_text(
        "orgs:\n  - {code: skhcn, name: Sở KH&CN, mailbox: sokhcn}\n", "utf-8"
    )
    write_private(tmp_path / "bind.pw", "syncd-secret")
    (tmp_path / "syncd.yaml").write_text(
        "profile: caobang-2025\ndomain: example.gov.vn\ndirectory: {url: 'ldap://127.0.0.1:3389',"
        " bind_dn: 'cn=syncd,ou=services,dc=example,dc=gov,dc=vn', bind_password_file: bind.pw,"
        " base_dn: 'ou=people,dc=example,dc=gov,dc=vn'}\npaths: {inbox: inbox, state: state, "
        "outbox: outbox, audit_log: state/audit.jsonl}\norgs: orgs.yaml\n",
        "utf-8",
    )
    cfg = load_config(tmp_path / "syncd.yaml")
    roster = write_roster(tmp_path / "r.csv", ["E1,Hoàng Văn Phúc,skhcn,,,,,"])
    assert runner.run(cfg, rosters=[roster]).exit_code == 0
    assert runner.run(cfg, rosters=[roster], dry_run=True).plan.actions == ()  # type: ignore[union-attr]
