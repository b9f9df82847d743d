"""syncd.yaml validation: every error at once, with file, line and key path."""

from pathlib import Path

import pytest

from connectors.config import ConfigError, parse_config

GOOD = """\
profile: caobang-2025
domain: caobang.gov.vn
directory:
  url: ldaps://ldap.caobang.gov.vn
  bind_dn: cn=syncd,ou=services,dc=caobang,dc=gov,dc=vn
  bind_password_file: /etc/syncd/bind.pw
  base_dn: ou=people,dc=caobang,dc=gov,dc=vn
paths:
  inbox: /var/lib/syncd/inbox
  state: /var/lib/syncd/state
  outbox: /var/lib/syncd/outbox
  audit_log: /var/log/syncd/audit.jsonl
orgs: orgs.yaml
"""
SRC = Path("/etc/syncd/syncd.yaml")


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, SRC)
    return info.value.issues


def test_a_good_file_parses_with_defaults_and_relative_paths_resolved() -> None:
    cfg = parse_config(GOOD, SRC)
    assert cfg.scheme.id == "caobang-2025"
    assert cfg.orgs == Path("/etc/syncd/orgs.yaml")
    assert cfg.directory.layout == "flat" and cfg.directory.page_size == 500
    assert cfg.safety.max_revoke_share == 0.10 and cfg.alias_days == 180


def test_all_errors_are_reported_at_once_with_line_and_key_path() -> None:
    text = GOOD.replace("  bind_dn: cn=syncd,ou=services,dc=caobang,dc=gov,dc=vn\n", "")
    text = text.replace("domain: caobang.gov.vn", "domain: Cao Bang")
    text = text.replace("  base_dn:", "  page_size: many\n  colour: blue\n  base_dn:")
    text += "safety:\n  max_revoke_share: 7\n"
    issues = _errors(text)
    assert "/etc/syncd/syncd.yaml:2: domain: 'Cao Bang' is not a lowercase mail domain" in issues
    assert "/etc/syncd/syncd.yaml:3: directory.bind_dn: required" in issues
    assert any(
        i.startswith("/etc/syncd/syncd.yaml:6: directory.page_size: must be an integer")
        for i in issues
    )
    assert any(
        i.startswith("/etc/syncd/syncd.yaml:7: directory.colour: unknown key") for i in issues
    )
    assert any("safety.max_revoke_share: 7 must be a share" in i for i in issues)
    assert len(issues) == 5


def test_unknown_top_level_key_and_bad_profile() -> None:
    issues = _errors(GOOD.replace("profile: caobang-2025", "profile: hanoi-2030\nfoo: 1"))
    assert any("profile: 'hanoi-2030' is not one of" in i for i in issues)
    assert any(":2: foo: unknown key" in i for i in issues)


def test_exactly_one_secret_source_and_never_a_password_key() -> None:
    both = GOOD.replace(
        "  bind_password_file: /etc/syncd/bind.pw\n",
        "  bind_password_file: /etc/syncd/bind.pw\n  bind_password_env: PW\n",
    )
    assert any("exactly one of" in i for i in _errors(both))
    literal = GOOD.replace("  bind_password_file: /etc/syncd/bind.pw", "  bind_password: s3cret")
    assert any("directory.bind_password: unknown key" in i for i in _errors(literal))


def test_template_scheme_from_config_is_used() -> None:
    text = (
        GOOD + "naming:\n  scheme: daklak\n  template:\n    id: daklak\n"
        "    pattern: '{family}{given}.{org}'\n    article: 'daklak-2026 Đ3'\n"
    )
    assert parse_config(text, SRC).scheme.id == "daklak"
    bad = text.replace("{family}", "{surname}")
    assert any("unknown token" in i for i in _errors(bad))


def test_invalid_yaml_names_the_line() -> None:
    issues = _errors("profile: [unclosed\n")
    assert issues[0].startswith("/etc/syncd/syncd.yaml:")
    assert "not valid YAML" in issues[0]


@pytest.mark.parametrize("example", ["config/syncd.example.yaml", "docker/etc/syncd.yaml"])
def test_the_shipped_example_configurations_are_valid(example: str) -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = parse_config((root / example).read_text(encoding="utf-8"), SRC)
    assert cfg.profile == "caobang-2025"
