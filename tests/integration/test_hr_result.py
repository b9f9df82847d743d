"""Issue 13, item 1: what HR receives beside each processed or rejected file — per person what
happened, per problem what to change (grouped), in Vietnamese, as XLSX and HTML, readable by
the HR group only, never a server path nor a password."""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path

import openpyxl
import pytest

from connectors.config import Config
from connectors.inbox import InboxWatcher
from tests.browser import pdf_page_texts, pdf_pages, screenshot_colours
from tests.conftest import MakeConfig
from tests.helpers import write_roster


@pytest.fixture
def setup(make_config: MakeConfig) -> tuple[Config, InboxWatcher]:
    cfg = make_config()
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    return cfg, InboxWatcher(cfg, settle=0)


def _drop(watcher: InboxWatcher, cfg: Config, name: str, rows: list[str]) -> None:
    write_roster(cfg.paths.inbox / name, rows)
    watcher.tick(time.time())
    watcher.tick(time.time() + 1)


def _sheet(path: Path, title: str) -> list[list[str]]:
    book = openpyxl.load_workbook(path)
    return [[str(c) if c is not None else "" for c in row] for row in book[title].values]


def test_a_rejected_file_groups_repeated_problems_blames_the_operator_for_the_catalogue(
    setup: tuple[Config, InboxWatcher], tmp_path: Path
) -> None:
    cfg, watcher = setup
    rows = [f"M{i:03d},Nguyễn Văn An {chr(65 + i % 26)},sxd,,,,," for i in range(55)]
    rows += ["M900,,skhcn,,,,,", "M901,Lê Thị Bình,skhcn,,,,về hưu,"]
    _drop(watcher, cfg, "skhcn.csv", rows)
    folder = tmp_path / "rejected"
    xlsx = folder / "skhcn.csv.ketqua.xlsx"
    page = folder / "skhcn.csv.ketqua.html"
    for p in (xlsx, page):
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    head = _sheet(xlsx, "Kết quả")
    assert head[1][0].startswith("TỆP BỊ TỪ CHỐI")
    problems = _sheet(xlsx, "Lỗi")
    assert problems[0][:2] == ["Cột", "Lỗi"]
    by_column = {r[0]: r for r in problems[1:]}
    catalogue = by_column["Mã đơn vị"]
    assert catalogue[4] == "55" and catalogue[2] == "sxd"  # one group, not 55 lines
    assert catalogue[3].startswith("2, 3, 4") and catalogue[6] == "Quản trị hệ thống"
    assert "danh mục" in catalogue[1]
    assert by_column["Họ và tên"][1] == "Thiếu họ và tên" and by_column["Họ và tên"][3] == "57"
    assert by_column["Trạng thái"][2] == "về hưu"
    assert by_column["Trạng thái"][6].startswith("Phòng tổ chức")
    text = page.read_text(encoding="utf-8")
    for content in (text, "\n".join(map(str, head + problems))):
        assert "Nothing to do" not in content and "nothing to do" not in content
        assert str(tmp_path) not in content  # no server path HR cannot open
    assert "<meta charset='utf-8'>" in text and "TỆP BỊ TỪ CHỐI" in text
    # the operator's copy carries the English beside it; HR's does not
    op = next((cfg.paths.state / "reports").glob("*-skhcn.csv.html")).read_text()
    assert "unknown organisation" in op and "unknown organisation" not in text


def test_a_processed_file_says_per_person_who_got_which_address_and_the_transfer(
    setup: tuple[Config, InboxWatcher], tmp_path: Path
) -> None:
    cfg, watcher = setup
    _drop(
        watcher,
        cfg,
        "lan1.csv",
        [
            "A001,Đàm Văn Hùng,skhcn,vp,,,,",
            "A002,Đặng Văn Hùng,skhcn,,,,,",
            "A003,Hoàng Văn Phúc,skhcn,,,,,",
        ],
    )
    first = _sheet(next((tmp_path / "processed").rglob("lan1.csv.ketqua.xlsx")), "Kết quả")
    table = {r[1]: r for r in first if r and r[1].startswith("A0")}
    assert table["A001"][5] == "Cấp mới hộp thư"
    assert table["A001"][6] == "hungdv.skhcn@test.gov.vn"
    assert table["A002"][6] == "hungdv1.skhcn@test.gov.vn"
    assert table["A001"][3] == "Sở Khoa học và Công nghệ" and table["A001"][4] == "Văn phòng Sở"
    assert "Mật khẩu" in table["A001"][7]  # where the password is, never the password
    _drop(
        watcher,
        cfg,
        "lan2.csv",
        [
            "A001,Đàm Văn Hùng,syt,,,,,",
            "A002,Đặng Văn Hùng,skhcn,,,,,",
            "A003,Hoàng Văn Phúc,skhcn,,,,nghỉ hưu,",
        ],
    )
    second = _sheet(next((tmp_path / "processed").rglob("lan2.csv.ketqua.xlsx")), "Kết quả")
    assert second[1][0].startswith("ĐÃ XỬ LÝ")
    table = {r[1]: r for r in second if r and r[1].startswith("A0")}
    assert table["A001"][5].startswith("Điều chuyển") and table["A001"][6] == (
        "hungdv.syt@test.gov.vn"
    )
    assert "hungdv.skhcn@test.gov.vn vẫn nhận thư đến hết ngày" in table["A001"][7]
    assert table["A002"][5] == "Không thay đổi"
    assert table["A002"][6] == "hungdv1.skhcn@test.gov.vn"
    assert table["A003"][5] == "Thu hồi hộp thư" and "nghỉ hưu" in table["A003"][7]
    page = next((tmp_path / "processed").rglob("lan2.csv.ketqua.html")).read_text()
    assert "Điều chuyển" in page and str(tmp_path) not in page
    # sent again: nothing changes, and the line says the mailbox is revoked (found by an
    # attack: "no change" and nothing else, for a person whose mailbox HR thinks is in use)
    _drop(watcher, cfg, "lan3.csv", ["A003,Hoàng Văn Phúc,skhcn,,,,nghỉ hưu,"])
    third = _sheet(next((tmp_path / "processed").rglob("lan3.csv.ketqua.xlsx")), "Kết quả")
    [row] = [r for r in third if r and r[1] == "A003"]
    assert row[5] == "Không thay đổi" and row[7].startswith("Hộp thư đã bị thu hồi từ ngày")
    assert "căn cứ" not in row[7].lower()
    created = table["A002"]
    assert "must change" not in " ".join(map(str, first + second + created))


def test_the_hr_result_page_renders_in_a_real_browser(
    setup: tuple[Config, InboxWatcher], tmp_path: Path
) -> None:
    cfg, watcher = setup
    _drop(watcher, cfg, "bad.csv", ["M001,Nguyễn Văn An,sxd,,,,,", "M002,,skhcn,,,,,"])
    page = tmp_path / "rejected" / "bad.csv.ketqua.html"
    # text, table borders and the red headline: far more than a blank page's one colour
    assert screenshot_colours(page, tmp_path / "shot.png") > 50


def test_the_rejection_page_prints_without_breaking_words(
    setup: tuple[Config, InboxWatcher], tmp_path: Path
) -> None:
    """Found by an attack: the narrow columns of the problems table broke words in two
    ("Phòn g/Ba n", "dòn g"); a word is broken only when it cannot fit a line."""
    cfg, watcher = setup
    rows = [f"M{i:03d},Nguyễn Văn An {chr(65 + i)},sxd,Phòng Kế hoạch,,,,," for i in range(20)]
    rows += ["M900,,skhcn,,,,,", "M901,Lê Thị Bình,skhcn,,,,về hưu,", "M902,Lê\u0001 An,skhcn,,,,,"]
    _drop(watcher, cfg, "skhcn.csv", rows)
    page = tmp_path / "rejected" / "skhcn.csv.ketqua.html"
    pdf = tmp_path / "page.pdf"
    text = "\n".join(pdf_page_texts(pdf, pdf_pages(page, pdf)))
    printed = set(re.findall(r"\w+", text))
    # the pieces the attack saw (A4, as HR prints it): "Cộ|t", "dò|ng", "Trạ|ng thá|i", …
    assert not printed & {"Cộ", "dò", "Trạ", "thá", "đơ", "trố"}, text
    assert {"Cột", "dòng", "Trạng", "thái", "đơn", "trống"} <= printed, text


def test_a_very_long_value_is_cut_and_the_page_wraps_it(
    setup: tuple[Config, InboxWatcher], tmp_path: Path
) -> None:
    """Found by an attack: a 3,000-character name was echoed whole and pushed the columns
    saying what to change and who changes it off the page."""
    cfg, watcher = setup
    long_name = "Nguyễn " + "Văn" * 1000
    _drop(watcher, cfg, "skhcn.csv", [f"M1,{long_name},skhcn,,,,,", "M2,Lê Thị Bình,skhcn,,,,,"])
    page = next(tmp_path.glob("*/**/skhcn.csv.ketqua.html")).read_text(encoding="utf-8")
    assert long_name not in page and "ký tự)" in page
    assert "<wbr>" in page  # the long word may break; no other word does


def test_hr_is_told_the_slip_is_in_its_folder_only_where_it_was_delivered(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Found by an attack: an organisation whose slips could not be delivered (no group of its
    own) was still told its HR had the slip; HR looked for a page that was never there."""
    cfg = make_config(extra="slips:\n  hr_area: hr\n  groups: {skhcn: mail}\n")
    cfg.paths.inbox.mkdir(parents=True, exist_ok=True)
    watcher = InboxWatcher(cfg, settle=0)
    _drop(watcher, cfg, "skhcn.csv", ["A001,Đàm Văn Hùng,skhcn,,,,,"])
    _drop(watcher, cfg, "syt.csv", ["B001,Lò Văn Đạt,syt,,,,,"])
    processed = tmp_path / "processed"
    delivered = _sheet(next(processed.rglob("skhcn.csv.ketqua.xlsx")), "Kết quả")
    [row] = [r for r in delivered if r and r[1] == "A001"]
    assert "đã gửi vào thư mục của đơn vị" in row[7] and "CHƯA" not in row[7]
    assert list((tmp_path / "hr" / "skhcn").glob("phieu-skhcn-*.html"))  # and it is there
    kept = _sheet(next(processed.rglob("syt.csv.ketqua.xlsx")), "Kết quả")
    [row] = [r for r in kept if r and r[1] == "B001"]
    assert row[5] == "Cấp mới hộp thư"
    assert "CHƯA gửi được vào thư mục của đơn vị" in row[7] and "quản trị viên" in row[7]
    assert not (tmp_path / "hr" / "syt").exists()


def test_without_an_hr_area_the_result_says_the_operator_hands_the_slip_over(
    setup: tuple[Config, InboxWatcher], tmp_path: Path
) -> None:
    cfg, watcher = setup
    _drop(watcher, cfg, "skhcn.csv", ["A001,Đàm Văn Hùng,skhcn,,,,,"])
    sheet = _sheet(next((tmp_path / "processed").rglob("skhcn.csv.ketqua.xlsx")), "Kết quả")
    [row] = [r for r in sheet if r and r[1] == "A001"]
    assert "do quản trị viên hệ thống bàn giao" in row[7]
