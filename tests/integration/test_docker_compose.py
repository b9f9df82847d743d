"""docker/: the compose file checked as compose reads it (users, named volumes, the bind
password, restart policies, healthchecks), the ldap service's program run on this host, and —
with a Docker engine only — a reconcile against the running ldap service."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors import runner
from connectors.loading import load_config
from connectors.store import write_private
from devtools.slapd_sandbox import find_slapd, free_port
from tests.helpers import write_roster

pytestmark = pytest.mark.host  # changes this machine (users, packages, /etc): tests/conftest.py

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
SUFFIX = "dc=example,dc=gov,dc=vn"


def _compose_cli() -> list[str] | None:
    """``docker compose`` (the v2 plugin) or Debian's ``docker-compose``: both read the file
    without an engine."""
    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as compose itself resolves it, the daemon profile included."""
    cli = _compose_cli()
    if cli is None:
        if os.environ.get("CI"):
            pytest.fail("no docker compose client; CI installs Debian's docker-compose")
        pytest.skip("no docker compose client (Debian: apt-get install docker-compose)")
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE), "--profile", "daemon", "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _volumes(service: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """target → (type, source, read-only), from either client's output (v1 strings, v2
    mappings)."""
    out: dict[str, tuple[str, str, bool]] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *options = volume.split(":")
            kind = "bind" if source.startswith(("/", ".")) else "volume"
            read_only = "ro" in ",".join(options).split(",")
        else:
            kind, source, target = volume["type"], volume.get("source", ""), volume["target"]
            read_only = bool(volume.get("read_only"))
        out[target] = (kind, source, read_only)
    return out


def _dockerfile_user(name: str) -> str:
    users = re.findall(r"^USER\s+(\S+)", (DOCKER / name).read_text(), flags=re.MULTILINE)
    assert users, f"docker/{name} never leaves root"
    return str(users[-1])


def test_every_service_restarts_by_itself_and_says_when_it_is_healthy(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"ldap", "syncd"}
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "always"), name
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name
        assert check.get("interval") and check.get("retries"), name
    assert services["syncd"]["depends_on"]["ldap"]["condition"] == "service_healthy"


def test_both_services_run_as_non_root_users(compose: dict[str, Any]) -> None:
    services = compose["services"]
    uid = re.search(r"^ARG SYNCD_UID=(\d+)$", (DOCKER / "Dockerfile").read_text(), re.MULTILINE)
    assert uid is not None
    assert services["syncd"]["user"] == f"{uid[1]}:{uid[1]}"
    assert _dockerfile_user("Dockerfile") == "syncd:syncd"
    assert services["ldap"]["user"].split(":")[0] == "openldap"
    assert _dockerfile_user("Dockerfile.slapd") == "openldap:openldap"
    for name, service in services.items():
        assert service["user"].split(":")[0] not in ("root", "0"), name


def test_data_audit_log_and_directory_live_on_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes", {}))
    syncd = _volumes(compose["services"]["syncd"])
    ldap = _volumes(compose["services"]["ldap"])
    for target, (kind, source, read_only) in (
        ("/var/lib/syncd", syncd["/var/lib/syncd"]),
        ("/var/log/syncd", syncd["/var/log/syncd"]),
        ("/var/lib/slapd-syncd", ldap["/var/lib/slapd-syncd"]),
    ):
        assert kind == "volume" and source in declared and not read_only, (target, kind, source)
    # the configuration is the only bind mount, and read-only
    binds = {t: v for t, v in syncd.items() if v[0] == "bind"}
    assert list(binds) == ["/etc/syncd"]
    kind, source, read_only = binds["/etc/syncd"]
    assert Path(source).resolve() == (DOCKER / "etc").resolve() and read_only
    assert not [t for t, v in ldap.items() if v[0] == "bind"]


def test_the_bind_password_is_a_secret_that_only_the_containers_syncd_user_reads(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    syncd = compose["services"]["syncd"]
    (secret,) = syncd["secrets"]
    name = secret["source"] if isinstance(secret, dict) else secret
    source = Path(compose["secrets"][name]["file"])
    assert source.resolve() == (DOCKER / "secrets" / "bind.pw").resolve()
    ignored = subprocess.run(
        ["git", "-C", str(DOCKER), "check-ignore", "-q", str(source)], check=False
    )
    assert ignored.returncode == 0, "docker/secrets/bind.pw could be committed"
    # compose mounts it in /run/secrets; syncd reads it there as the unit's credential
    assert syncd["environment"]["CREDENTIALS_DIRECTORY"] == "/run/secrets"
    settings = yaml.safe_load((DOCKER / "etc" / "syncd.yaml").read_text(encoding="utf-8"))
    assert settings["directory"]["bind_credential"] == name
    # the README gives the file to the uid the container runs as, readable by it alone
    uid = syncd["user"].split(":")[0]
    readme = (DOCKER / "README.md").read_text(encoding="utf-8")
    assert f"install -m 0400 -o {uid} -g {uid} /dev/null docker/secrets/bind.pw" in readme
    # and the container's syncd.yaml is one this syncd accepts, credential included
    creds = tmp_path / "credentials"
    write_private(creds / name, "syncd-secret\n")
    result = subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(DOCKER / "etc" / "syncd.yaml"),
         "config", "validate"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CREDENTIALS_DIRECTORY": str(creds)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _image_command(port: int, root: Path) -> list[str]:
    """Dockerfile.slapd's CMD, with this host's free port, a temporary root, and loopback."""
    text = (DOCKER / "Dockerfile.slapd").read_text()
    match = re.search(r"^CMD (\[.*?\])$", text, flags=re.MULTILINE | re.DOTALL)
    assert match is not None
    argv: list[str] = json.loads(match[1].replace("\\\n", ""))
    swap = {"--root": str(root), "--port": str(port), "--listen-host": "127.0.0.1"}
    for i, arg in enumerate(argv[:-1]):
        if arg in swap:
            argv[i + 1] = swap[arg]
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def _healthcheck(compose: dict[str, Any], port: int) -> list[str]:
    test = compose["services"]["ldap"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return [arg.replace(":1389", f":{port}") for arg in test[1:]]


def test_the_ldap_service_keeps_its_data_synced_across_a_restart(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    from ldap3 import Connection, Server

    slapd = find_slapd()
    if slapd is None or shutil.which("ldapsearch") is None:
        pytest.skip("Debian slapd and ldap-utils are not installed (make test installs them)")
    port, root = free_port(), tmp_path / "volume"
    command = _image_command(port, root)
    check = _healthcheck(compose, port)
    person = f"uid=kept,ou=people,{SUFFIX}"

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while subprocess.run(check, capture_output=True, check=False).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout
            time.sleep(0.3)
        return proc

    def stop(proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGTERM)  # docker stop
        assert proc.wait(timeout=30) == 0

    proc = start()
    try:
        conn = Connection(Server(f"ldap://127.0.0.1:{port}"), f"cn=admin,{SUFFIX}",
                          "admin-secret", auto_bind=True)  # fmt: skip
        assert conn.add(person, ["inetOrgPerson"], {"cn": "Kept", "sn": "Kept"}), conn.result
        conn.unbind()
    finally:
        stop(proc)
    config = subprocess.run(
        [str(slapd.with_name("slapcat")), "-n0", "-F", str(root / "slapd.d")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "olcDatabase: {1}mdb" in config
    assert not re.search(r"^olcDbNoSync: TRUE", config, flags=re.MULTILINE)
    proc = start()  # the same volume again
    try:
        conn = Connection(Server(f"ldap://127.0.0.1:{port}"), f"cn=admin,{SUFFIX}",
                          "admin-secret", auto_bind=True)  # fmt: skip
        assert conn.search(person, "(objectClass=*)", search_scope="BASE"), conn.result
        conn.unbind()
    finally:
        stop(proc)


def _engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(COMPOSE)


@pytest.mark.skipif(
    not _engine(), reason="no Docker engine here (docker info fails); the compose test needs one"
)
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
