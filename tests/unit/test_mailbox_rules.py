"""The regulation's mailbox rules: Hưng Yên Đ8.1b's least quota is refused in syncd.yaml where
syncd writes the quota, named by its article; the mail server's part (Đ8.1b's attachment limit,
Tuyên Quang Đ9.2d's warning near the quota) is cited by `syncd rules`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connectors.config import ConfigError, parse_config
from connectors.regulations import PROFILES
from syncd.regulation import ProfileError
from syncd.regulation.profile import parse_profile
from tests.unit.test_config import GOOD, SRC

HUNGYEN = GOOD.replace("profile: caobang-2025", "profile: hungyen-2025")


def _with(profile: str, *lines: str) -> str:
    routed = ("zimbra: {mail_host: mail.hungyen.gov.vn}",) if profile == "zimbra" else ()
    extra = "".join(f"  {line}\n" for line in (f"profile: {profile}", *routed, *lines))
    return HUNGYEN.replace("directory:\n", "directory:\n" + extra, 1)


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, SRC)
    return info.value.issues


@pytest.mark.parametrize("profile", ["iredmail", "zimbra"])
def test_hungyen_refuses_a_profile_that_writes_quotas_without_the_least_quota(
    profile: str,
) -> None:
    issues = _errors(_with(profile))
    assert len(issues) == 2
    assert "directory.quota_mb: hungyen-2025 Đ8.1b asks at least 2048 MiB" in issues[0]
    assert "directory.org_quota_mb: hungyen-2025 Đ8.1b asks at least 10240 MiB" in issues[1]
    [issue] = _errors(_with(profile, "quota_mb: 1024", "org_quota_mb: 10240"))
    assert issue.endswith(
        "directory.quota_mb: 1024 MiB is below the 2048 MiB per personal mailbox "
        "hungyen-2025 Đ8.1b asks"
    )
    ok = parse_config(_with(profile, "quota_mb: 2048", "org_quota_mb: 20480"), SRC)
    assert ok.directory.quota_mb == 2048


def test_a_profile_that_writes_no_quota_and_a_regulation_without_one_are_not_refused() -> None:
    # openldap carries no quota: the mail server's applies (`syncd rules` says it must meet it)
    assert parse_config(HUNGYEN, SRC).directory.quota_mb is None
    # and a quota given to it would be ignored: refused (found by an attack)
    [issue] = _errors(_with("openldap", "quota_mb: 1024"))
    assert "directory.quota_mb: the openldap profile writes no quota" in issue
    # Cao Bằng sets no least quota
    assert parse_config(GOOD.replace("directory:\n", "directory:\n  profile: iredmail\n"), SRC)


def test_the_mailbox_rules_are_read_with_their_articles() -> None:
    hy, tq, cb = PROFILES["hungyen-2025"], PROFILES["tuyenquang-2025"], PROFILES["caobang-2025"]
    assert hy.mailbox.quota is not None and hy.mailbox.quota.personal_min_mb == 2048
    assert hy.mailbox.quota.organisation_min_mb == 10240
    assert hy.mailbox.quota.article == "hungyen-2025 Đ8.1b"
    assert hy.mailbox.attachment_max_mb is not None and hy.mailbox.attachment_max_mb.value == 25
    assert tq.mailbox.quota is None and tq.mailbox.quota_warning is not None
    assert tq.mailbox.quota_warning.article == "tuyenquang-2025 Đ9.2d"
    assert cb.mailbox.quota is None and cb.mailbox.quota_warning is None


@pytest.mark.parametrize(
    "mailbox",
    [
        {"quota": {"personal_min_mb": 2048, "article": "x"}},
        {"quota": {"personal_min_mb": "2GB", "organisation_min_mb": 1, "article": "x"}},
        {"attachment_max_mb": {"value": 0, "article": "x"}},
        {"quota_warning": {"article": "x", "value": 90}},
        {"quota_size": 1},
    ],
)
def test_a_malformed_mailbox_rule_is_an_error_never_a_default(mailbox: object) -> None:
    base = (Path(__file__).parents[2] / "syncd/regulation/hungyen-2025.yaml").read_text()
    data = yaml.safe_load(base)
    data["mailbox"] = mailbox
    with pytest.raises(ProfileError, match="mailbox"):
        parse_profile(data, "hungyen-2025.yaml")


def _rules(tmp_path: Path, text: str) -> str:
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(text.replace("/etc/syncd/bind.pw", str(tmp_path / "pw")), encoding="utf-8")
    (tmp_path / "pw").write_text("x\n")
    (tmp_path / "pw").chmod(0o600)
    (tmp_path / "orgs.yaml").write_text("orgs: {}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(cfg), "rules"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rules_say_who_keeps_each_mailbox_rule(tmp_path: Path) -> None:
    written = _rules(tmp_path, _with("iredmail", "quota_mb: 2048", "org_quota_mb: 10240"))
    assert "syncd writes 2048 / 10240 MiB to mailQuota [hungyen-2025 Đ8.1b]" in written
    assert "≤25 MB: the mail server's message size limit" in written
    server = _rules(tmp_path, HUNGYEN)
    assert "the mail server's quota must meet it (openldap carries none)" in server
    tq = _rules(tmp_path, GOOD.replace("caobang-2025", "tuyenquang-2025"))
    assert "warns the owner near the quota (docs/mail-server.md) [tuyenquang-2025 Đ9.2d]" in tq


def test_the_zimbra_profile_needs_the_mailbox_server_new_accounts_live_on() -> None:
    """Found by an attack: without directory.zimbra.mail_host, accounts were made (and slips
    printed) that Zimbra neither delivers to nor logs in; only the doctor said so, later."""
    text = GOOD.replace("directory:\n", "directory:\n  profile: zimbra\n", 1)
    [issue] = _errors(text)
    assert "directory.zimbra.mail_host: required with the zimbra profile" in issue
    routed = text.replace("  profile: zimbra\n", "  profile: zimbra\n  zimbra: {mail_host: m.x}\n")
    assert parse_config(routed, SRC).directory.zimbra.mail_host == "m.x"
