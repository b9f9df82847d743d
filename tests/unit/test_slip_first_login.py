"""The slip's first-login instruction, per directory profile (connectors/slips.py).

Only Zimbra asks for a new password at the webmail login; on the OpenLDAP profiles the mail
server refuses the one-time password until it is changed on a page that binds as the person
(docs/mail-server.md, First login), and AD refuses it until Windows (or such a page) changes
it. A slip that says "the system will ask you" there sends the person to a "wrong password".
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from connectors.config import Config
from connectors.loading import load_catalogue, load_config
from connectors.slips import slip_pages
from syncd.applier import Slip
from tests.conftest import ORGS_YAML

URL = "https://matkhau.caobang.gov.vn"
ASKS_AT_LOGIN = "hệ thống yêu cầu đổi mật khẩu ngay"
REFUSED = "bị từ chối"


def config(
    tmp_path: Path, profile: str, url: str | None, regulation: str = "caobang-2025"
) -> Config:
    (tmp_path / "orgs.yaml").write_text(ORGS_YAML, encoding="utf-8")
    (tmp_path / "bind.pw").write_text("x\n", encoding="utf-8")
    (tmp_path / "bind.pw").chmod(0o600)
    scheme = "ldaps" if profile == "ad" else "ldap"
    slips = f"slips: {{first_login_url: '{url}'}}\n" if url else ""
    zimbra = "  zimbra: {mail_host: mail.test.gov.vn}\n" if profile == "zimbra" else ""
    (tmp_path / "syncd.yaml").write_text(
        f"""profile: {regulation}
domain: test.gov.vn
directory:
  profile: {profile}
  url: {scheme}://dc1.test.gov.vn
  bind_dn: cn=syncd,ou=services,dc=test,dc=gov,dc=vn
  bind_password_file: bind.pw
  base_dn: ou=people,dc=test,dc=gov,dc=vn
{zimbra}paths: {{inbox: inbox, state: state, outbox: outbox, audit_log: state/audit.jsonl}}
orgs: orgs.yaml
{slips}""",
        encoding="utf-8",
    )
    return load_config(tmp_path / "syncd.yaml")


def rendered(cfg: Config) -> str:
    """The text a person reads on their printed page."""
    slip = Slip(
        "skhcn",
        "hungdv.skhcn",
        "hungdv.skhcn@test.gov.vn",
        "Đàm Văn Hùng",
        "Ab3$xyzQ9!kk",
        "create",
    )
    page = slip_pages([slip], "skhcn", {}, cfg, load_catalogue(cfg.orgs), "run-1")
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.mark.parametrize("profile", ["openldap", "openldap-ou", "iredmail"])
def test_an_openldap_slip_sends_the_person_to_the_change_page_before_any_mail_login(
    profile: str, tmp_path: Path
) -> None:
    text = rendered(config(tmp_path, profile, URL))
    assert f"Trước khi dùng hộp thư, phải đổi mật khẩu trên tại trang đổi mật khẩu {URL}" in text
    assert "(caobang-2025 Đ6)" in text and REFUSED in text
    assert ASKS_AT_LOGIN not in text


def test_without_a_change_page_the_slip_sends_the_person_to_whoever_handed_it_over(
    tmp_path: Path,
) -> None:
    text = rendered(config(tmp_path, "openldap", None, "hungyen-2025"))
    assert "với sự hỗ trợ của người giao phiếu này (hungyen-2025 Đ8.2)" in text
    assert REFUSED in text and ASKS_AT_LOGIN not in text


def test_a_zimbra_slip_says_the_webmail_asks_for_a_new_password_at_once(tmp_path: Path) -> None:
    text = rendered(config(tmp_path, "zimbra", URL))
    assert f"{ASKS_AT_LOGIN}, trước khi dùng hộp thư (caobang-2025 Đ6)" in text
    assert URL not in text and REFUSED not in text


def test_an_ad_slip_names_the_windows_logon_screen(tmp_path: Path) -> None:
    text = rendered(config(tmp_path, "ad", None, "tuyenquang-2025"))
    assert "tại màn hình đăng nhập Windows của máy tính cơ quan (tuyenquang-2025 Đ6)" in text
    assert REFUSED in text and ASKS_AT_LOGIN not in text
    with_page = rendered(config(tmp_path, "ad", URL, "tuyenquang-2025"))
    assert (
        f"tại trang đổi mật khẩu {URL}" in with_page and "màn hình đăng nhập Windows" in with_page
    )
