"""Issue 13, items 3 and 4: `syncd check` (what HR runs before sending), `syncd template`
(the official workbook), `syncd show` (one account, its clocks and its story)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
from ldap3 import Connection

from connectors.hr_commands import unknown_choices
from tests.conftest import MakeConfig
from tests.e2e.test_cli_reconcile import syncd
from tests.helpers import entries, write_roster


def _fill_template(path: Path, rows: list[list[str]]) -> None:
    book = openpyxl.load_workbook(path)
    ws = book["Danh sách"]
    for row in rows:
        ws.append(row)
    book.save(path)


def test_the_template_has_the_headers_lists_and_guide_and_a_filled_copy_passes_check(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    template = tmp_path / "mau.xlsx"
    made = syncd(cfg, "template", "--out", str(template))
    assert made.returncode == 0, made.stderr
    book = openpyxl.load_workbook(template)
    assert book.sheetnames == ["Danh sách", "Hướng dẫn", "Danh mục"]
    ws = book["Danh sách"]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["Mã cán bộ", "Họ và tên", "Mã đơn vị"]
    lists = {
        header[next(iter(dv.sqref.ranges)).min_col - 1]: dv.formula1
        for dv in ws.data_validations.dataValidation
    }
    assert set(lists) == {"Trạng thái", "Đề nghị"}
    assert "nghỉ hưu" in lists["Trạng thái"] and "cấp lại mật khẩu" in lists["Đề nghị"]
    guide = [[c for c in r] for r in book["Hướng dẫn"].values]
    assert {r[0] for r in guide} >= set(header)  # every column explained
    assert ["skhcn", "Sở Khoa học và Công nghệ", None] in [list(r) for r in book["Danh mục"].values]
    assert unknown_choices() == []  # every listed word is one the reader accepts
    _fill_template(
        template,
        [
            ["T001", "Đàm Văn Hùng", "skhcn", "vp", "Chuyên viên", "05/09/1980", "", "cấp mới"],
            ["T002", "Lê Thị Mai", "Sở Y tế", "", "", "", "đang công tác", ""],
        ],
    )
    offline = syncd(cfg, "check", "--offline", str(template))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "KIỂM TRA: tệp hợp lệ (2 người)" in offline.stdout
    online = syncd(cfg, "check", str(template), "--out", str(tmp_path / "kq.xlsx"))
    assert online.returncode == 0, online.stdout + online.stderr
    assert "hungdv.skhcn@test.gov.vn" in online.stdout and "Sẽ cấp mới hộp thư" in online.stdout
    rows = [list(r) for r in openpyxl.load_workbook(tmp_path / "kq.xlsx")["Kết quả"].values]
    assert any(r[1] == "T002" and r[6] == "mailt.syt@test.gov.vn" for r in rows)
    assert stat.S_IMODE((tmp_path / "kq.xlsx").stat().st_mode) == 0o640
    assert entries(admin, base_dn) == {}  # a check writes nothing to the directory
    assert not (tmp_path / "state" / "audit.jsonl").exists()


def test_check_of_a_bad_file_exits_2_with_each_problem_grouped_and_changes_nothing(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    bad = write_roster(
        tmp_path / "bad.csv",
        [f"B{i},Nguyễn Văn An,sxd,,,,," for i in range(12)] + ["B99,Lê Văn Bình,skhcn,,,,,x"],
    )
    for args in (["--offline"], []):
        result = syncd(cfg, "check", *args, str(bad), "--out", str(tmp_path / "kq.html"))
        assert result.returncode == 2, result.stdout + result.stderr
        assert "TỆP BỊ TỪ CHỐI" in result.stdout
        assert result.stdout.count("Mã đơn vị chưa có trong danh mục") == 1  # one group
        assert "dòng 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13" in result.stdout
        assert "[quản trị hệ thống]" in result.stdout
        assert "Đề nghị không hợp lệ" in result.stdout and "dòng 14" in result.stdout
        page = (tmp_path / "kq.html").read_text(encoding="utf-8")
        assert "TỆP BỊ TỪ CHỐI" in page and "Nothing to do" not in page
    assert entries(admin, base_dn) == {}


def test_show_finds_an_account_by_uid_number_or_name_with_its_clocks_and_history(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    first = write_roster(tmp_path / "r1.csv", ["S1,Đàm Văn Hùng,skhcn,vp,,,,"])
    assert syncd(cfg, "reconcile", "--roster", str(first)).returncode == 0
    moved = write_roster(tmp_path / "r2.csv", ["S1,Đàm Văn Hùng,syt,,,,,"])
    assert syncd(cfg, "reconcile", "--roster", str(moved)).returncode == 0
    now = datetime.now(UTC)
    by_uid = json.loads(syncd(cfg, "show", "hungdv.syt", "--json").stdout)
    by_number = json.loads(syncd(cfg, "show", "s1", "--json").stdout)
    by_name = json.loads(syncd(cfg, "show", "đàm văn  hùng", "--json").stdout)
    assert by_uid == by_number == by_name or (
        [i["uid"] for i in by_uid] == [i["uid"] for i in by_number] == ["hungdv.syt"]
    )
    [it] = by_uid
    assert it["organisation"] == {"code": "syt", "name": "Sở Y tế"}
    assert it["state"] == "active" and it["employee_number"] == "S1"
    # how it was made: a run's read leaves an active account's reason out, show reads it
    assert it["state_reason"].startswith("new on the roster (r1.csv:"), it["state_reason"]
    assert any(a.startswith("hungdv.skhcn@test.gov.vn") for a in it["aliases"])
    [lock, revoke] = it["clocks"]
    assert lock["action"] == "lock" and lock["article"] == "caobang-2025 Đ8.2a"
    assert 89 <= lock["days"] <= 90
    assert revoke["action"] == "revoke" and revoke["article"] == "caobang-2025 Đ8.1"
    assert it["last_activity"]["source"] == "made active by syncd"
    assert [r["action"] for r in it["history"]] == ["create", "move"]
    text = syncd(cfg, "show", "hungdv.syt").stdout
    assert "Sở Y tế" in text and "caobang-2025 Đ8.2a" in text and "alias" in text
    later = (now + timedelta(days=100)).date().isoformat()
    assert "lock due now" in syncd(cfg, "show", "hungdv.syt", "--now", later).stdout
    missing = syncd(cfg, "show", "nobody.here")
    assert missing.returncode == 2 and "no account" in missing.stderr


def test_a_formula_without_a_saved_value_is_named_as_such_not_as_an_empty_name(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["Mã cán bộ", "Họ và tên", "Mã đơn vị", "Họ", "Tên"])
    ws.append(["F1", '=D2&" "&E2', "skhcn", "Nguyễn Văn", "An"])  # openpyxl saves no value
    ws.append(["F2", "", "skhcn", "", ""])  # a truly empty name stays "empty name"
    book.save(tmp_path / "ct.xlsx")
    result = syncd(tmp_path / "syncd.yaml", "check", "--offline", str(tmp_path / "ct.xlsx"))
    assert result.returncode == 2
    [formula] = [line for line in result.stdout.splitlines() if "công thức" in line]
    assert "dòng 2" in formula and "'=D2&\" \"&E2'" in formula and "Paste Values" in formula
    [empty] = [line for line in result.stdout.splitlines() if "Thiếu họ và tên" in line]
    assert "dòng 3" in empty and "dòng 2" not in empty
