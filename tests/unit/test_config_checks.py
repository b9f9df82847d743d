"""syncd.yaml: what `syncd run` would refuse later is refused by `config validate` already, and
checks across keys come with every other problem, each with its line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.config import ConfigError, DirectoryConfig, parse_config
from tests.unit.test_config import GOOD, SRC


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, SRC)
    return info.value.issues


def test_a_bad_cron_expression_is_refused_at_validate_time() -> None:
    issues = _errors(GOOD + "daemon:\n  reconcile_cron: '0 25 * * *'\n  sweep_cron: '* * *'\n")
    assert issues[0].startswith(
        "/etc/syncd/syncd.yaml:15: daemon.reconcile_cron: '0 25 * * *' is not a cron expression"
    )
    assert issues[1].startswith("/etc/syncd/syncd.yaml:16: daemon.sweep_cron: '* * *' is not")
    assert len(issues) == 2


@pytest.mark.parametrize("listen", ["0.0.0.0:9187", "10.0.0.5:9187", "127.0.0.1", "[::]:1"])
def test_metrics_only_on_a_loopback_address(listen: str) -> None:
    issues = _errors(GOOD + f"daemon:\n  metrics: '{listen}'\n")
    assert issues == [
        f"/etc/syncd/syncd.yaml:15: daemon.metrics: '{listen}' must be a loopback host:port, "
        "e.g. 127.0.0.1:9187"
    ]


@pytest.mark.parametrize("listen", ["127.0.0.1:9187", "localhost:9187", "[::1]:9187"])
def test_loopback_metrics_are_fine(listen: str) -> None:
    assert parse_config(GOOD + f"daemon:\n  metrics: '{listen}'\n", SRC).daemon.metrics == listen


def test_timezone_defaults_to_vietnam_and_must_be_a_zone() -> None:
    assert parse_config(GOOD, SRC).timezone == "Asia/Ho_Chi_Minh"
    assert parse_config(GOOD + "timezone: UTC\n", SRC).zone.key == "UTC"
    assert _errors(GOOD + "timezone: Asia/Hanoi\n") == [
        "/etc/syncd/syncd.yaml:14: timezone: 'Asia/Hanoi' is not a time zone name, "
        "e.g. Asia/Ho_Chi_Minh"
    ]


def test_cross_key_problems_come_with_every_other_problem_in_file_order() -> None:
    text = GOOD.replace(
        "  bind_password_file: /etc/syncd/bind.pw\n",
        "  bind_password_file: /etc/syncd/bind.pw\n  bind_credential: pw\n  page_size: 0\n",
    ).replace("ldaps://ldap.caobang.gov.vn", "ldaps://ldap.caobang.gov.vn\n  start_tls: true")
    text += "naming:\n  scheme: hanoi\nlifecycle:\n  warn_days_before: 14\nfoo: 1\n"
    assert _errors(text) == [
        "/etc/syncd/syncd.yaml:3: directory: give exactly one of bind_password_file, "
        "bind_password_env, bind_credential (found 2); passwords never go in this file",
        "/etc/syncd/syncd.yaml:5: directory.start_tls: not with ldaps:// (it is TLS already)",
        "/etc/syncd/syncd.yaml:9: directory.page_size: 0 must be greater than 0",
        "/etc/syncd/syncd.yaml:18: naming.scheme: 'hanoi' is not one of caobang-2011, "
        "caobang-2011-unit, caobang-2025, hungyen-2025, tuyenquang-2025",
        "/etc/syncd/syncd.yaml:20: smtp.sender: required when lifecycle.warn_days_before is set",
        "/etc/syncd/syncd.yaml:21: foo: unknown key (allowed: profile, domain, timezone, "
        "directory, paths, orgs, naming, roster, rules, lifecycle, daemon, smtp, safety, "
        "transfer, adoption, audit, slips, publish, retention)",
    ]


def test_no_secret_source_at_all_is_reported_at_the_directory() -> None:
    text = GOOD.replace("  bind_password_file: /etc/syncd/bind.pw\n", "")
    assert _errors(text) == [
        "/etc/syncd/syncd.yaml:3: directory: give exactly one of bind_password_file, "
        "bind_password_env, bind_credential (found 0); passwords never go in this file"
    ]


def test_every_bad_rule_override_is_reported_on_its_line() -> None:
    issues = _errors(GOOD + "rules:\n  lock_inactive: {after: soon}\n  nap: 1\n")
    assert issues[0].startswith("/etc/syncd/syncd.yaml:15: rules.lock_inactive: 'soon' is not")
    assert issues[1].startswith("/etc/syncd/syncd.yaml:16: rules.nap: unknown rule (known:")
    assert len(issues) == 2


def test_a_good_rule_override_and_template_scheme_apply() -> None:
    cfg = parse_config(GOOD + "rules:\n  lock_inactive: {after: 120d}\n", SRC)
    assert cfg.effective.lifecycle.lock_inactive.article.endswith("(site override)")
    assert cfg.rules == {"lock_inactive": {"after": "120d"}}


def test_sender_with_warnings_and_an_smtp_section() -> None:
    text = GOOD + "lifecycle:\n  warn_days_before: 14\nsmtp:\n  port: 587\n"
    assert _errors(text) == [
        "/etc/syncd/syncd.yaml:16: smtp.sender: required when lifecycle.warn_days_before is set"
    ]
    ok = parse_config(text + "  sender: hotromail@caobang.gov.vn\n", SRC)
    assert ok.lifecycle.warn_days_before == 14 and ok.smtp.port == 587


def test_empty_sections_and_empty_keys_mean_the_defaults() -> None:
    cfg = parse_config(GOOD + "lifecycle:\nsmtp:\ndaemon:\n  metrics:\n  lock_timeout:\n", SRC)
    assert cfg.daemon.lock_timeout == 300 and cfg.daemon.metrics is None
    assert cfg.smtp.port == 25 and cfg.archive_dir == Path("/var/lib/syncd/state/archive")
    assert _errors(GOOD.replace("orgs: orgs.yaml", "orgs:")) == [
        "/etc/syncd/syncd.yaml:13: orgs: required"
    ]


def test_types_are_strict_no_silent_conversion() -> None:
    text = (
        GOOD
        + "daemon:\n  inbox_interval: true\nsmtp:\n  port: '25'\nsafety:\n  max_lock_count: 2.5\n"
    )
    assert _errors(text) == [
        "/etc/syncd/syncd.yaml:15: daemon.inbox_interval: must be a number, not True",
        "/etc/syncd/syncd.yaml:17: smtp.port: must be an integer, not '25'",
        "/etc/syncd/syncd.yaml:19: safety.max_lock_count: must be an integer, not 2.5",
    ]


def test_retry_delays_items_and_bounds() -> None:
    bad = GOOD.replace("  base_dn:", "  retry_delays: [1, x]\n  base_dn:")
    assert _errors(bad) == [
        "/etc/syncd/syncd.yaml:7: directory.retry_delays[1]: must be a number, not 'x'"
    ]
    far = GOOD.replace("  base_dn:", "  retry_delays: [1, 90]\n  base_dn:")
    assert _errors(far) == [
        "/etc/syncd/syncd.yaml:7: directory.retry_delays: [1, 90] must be a list of at most "
        "10 seconds (0-60)"
    ]
    none = GOOD.replace("  base_dn:", "  retry_delays: []\n  base_dn:")
    assert parse_config(none, SRC).directory.retry_delays == ()


def test_a_key_given_twice_is_an_error() -> None:
    issues = _errors(GOOD + "domain: other.gov.vn\n")
    assert issues == ["/etc/syncd/syncd.yaml:14: domain: given twice (the last one would win)"]


def test_not_a_mapping() -> None:
    assert _errors("- a\n- b\n") == ["/etc/syncd/syncd.yaml:1: (top): must be a mapping"]
    assert _errors(GOOD + "safety: 3\n") == [
        "/etc/syncd/syncd.yaml:14: safety: must be a mapping, not 3"
    ]


def test_relative_paths_are_relative_to_the_file() -> None:
    text = GOOD.replace("/etc/syncd/bind.pw", "bind.pw").replace("/var/lib/syncd/inbox", "inbox")
    cfg = parse_config(text + "lifecycle:\n  activity_file: ../activity.csv\n", SRC)
    assert cfg.directory.bind_password_file == Path("/etc/syncd/bind.pw")
    assert cfg.paths.inbox == Path("/etc/syncd/inbox")
    assert cfg.lifecycle.activity_file == Path("/etc/activity.csv")
    assert cfg.source == SRC


def test_the_directory_settings_are_still_a_plain_frozen_dataclass() -> None:
    cfg = DirectoryConfig(url="ldap://127.0.0.1", bind_dn="cn=x", base_dn="dc=x")
    assert cfg.page_size == 500 and cfg.bind_password_file is None
    assert replace(cfg, allow_insecure=True).allow_insecure is True
    with pytest.raises(ValueError, match="must start with ldap"):
        DirectoryConfig(url="http://x", bind_dn="cn=x", base_dn="dc=x")


@pytest.mark.parametrize("command", [["config", "validate"], ["run"]])
def test_the_cli_refuses_what_the_daemon_would_refuse_with_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    """Nothing is read but the file: no catalogue, no secret, no directory."""
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(
        GOOD + "daemon:\n  metrics: 0.0.0.0:9187\n  sweep_cron: '0 3 31 2 * *'\n", encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(cfg), *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Error: configuration has errors:\n")
    assert f"{cfg}:15: daemon.metrics: '0.0.0.0:9187' must be a loopback" in result.stderr
    assert f"{cfg}:16: daemon.sweep_cron: '0 3 31 2 * *' is not a cron expression" in result.stderr
