"""Issue 13, item 2: one printable slip page per person, delivered to the organisation's own
folder with its own group, deleted after the retention, audited."""

from __future__ import annotations

import csv
import grp
import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors import runner
from connectors.slips import password_boxes, sweep_slips
from tests.browser import pdf_page_texts, pdf_pages
from tests.conftest import MakeConfig
from tests.helpers import write_roster

SLIPS = """slips:
  hr_area: hr
  groups: {skhcn: mail}
  webmail: https://mail.test.gov.vn
  imap: mail.test.gov.vn:993
"""


def test_each_person_gets_one_printed_page_in_their_organisations_own_folder(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config(extra=SLIPS)
    roster = write_roster(
        tmp_path / "ds.csv",
        [
            "X001,Sầm Thị Hồng,skhcn,vp,,,,",
            "X002,Sầm Thị Hồng,skhcn,,,,,",
            "X003,Hoàng Văn Phúc,skhcn,,,,,",
            "Y001,Lò Văn Đạt,syt,,,,,",
        ],
    )
    outcome = runner.run(cfg, rosters=[roster])
    assert outcome.exit_code == 0, outcome.warnings
    folder = tmp_path / "hr" / "skhcn"
    [page] = folder.glob("phieu-skhcn-*.html")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert folder.stat().st_gid == grp.getgrnam("mail").gr_gid
    assert stat.S_IMODE(page.stat().st_mode) == 0o640
    assert page.stat().st_gid == grp.getgrnam("mail").gr_gid
    assert outcome.report_path is not None
    report = outcome.report_path.read_text(encoding="utf-8")
    assert "for skhcn, syt; delivered to 1 organisation folder(s)" in report
    # found by an attack: a fallback group shared by every organisation's HR let each read
    # the others' one-time passwords; an organisation without its own group gets nothing
    assert not (tmp_path / "hr" / "syt").exists()
    assert any("slips for syt not delivered" in w for w in outcome.warnings)
    text = page.read_text(encoding="utf-8")
    assert "Lò Văn Đạt" not in text  # another organisation's person is not in this file
    assert "Sở Khoa học và Công nghệ" in text and ">skhcn<" not in text  # the name, not the code
    for needed in (
        "X001",
        "X002",
        "hongst.skhcn@test.gov.vn",
        "hongst1.skhcn@test.gov.vn",
        "Văn phòng Sở",
        "https://mail.test.gov.vn",
        "mail.test.gov.vn:993",
        "caobang-2025 Đ6",
        "Người nhận",
        "@page{size:A5",
    ):
        assert needed in text, needed
    # the password is printed one boxed, labelled character at a time
    [sheet] = (cfg.paths.outbox / outcome.run_id).glob("skhcn.csv")
    lines = list(csv.reader(sheet.read_text(encoding="utf-8-sig").splitlines()))
    assert lines[0][4] == "Mã cán bộ"
    # three people, the organisation's and its office's mailboxes (no employee number)
    assert sorted(r[4] for r in lines[1:]) == ["", "", "X001", "X002", "X003"]
    for row in lines[1:]:
        assert password_boxes(row[2]) in text
    pdf = tmp_path / "skhcn.pdf"
    assert pdf_pages(page, pdf) == 5  # exactly one page per slip
    texts = pdf_page_texts(pdf, 5)
    for text_of_page in texts:  # each page whole: its heading, its signature line, nobody else
        assert text_of_page.count("PHIẾU GIAO TÀI KHOẢN") == 1
        assert text_of_page.count("Người nhận") == 1
    assert [sum(f"X00{i}" in t for t in texts) for i in (1, 2, 3)] == [1, 1, 1]


def test_look_alike_characters_are_labelled_digit_capital_small_or_symbol() -> None:
    boxes = password_boxes("O0l1I#<")
    assert re.findall(r"<td class='c \w'>(.*?)</td>", boxes) == [
        "O",
        "0",
        "l",
        "1",
        "I",
        "#",
        "&lt;",
    ]
    assert re.findall(r"<td class='k'>(.*?)</td>", boxes) == [
        "HOA",
        "số",
        "thường",
        "số",
        "HOA",
        "ký hiệu",
        "ký hiệu",
    ]


def test_an_unknown_group_is_never_delivered_with_another_group(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config(extra="slips:\n  hr_area: hr\n  groups: {skhcn: no-such-group-x}\n")
    roster = write_roster(tmp_path / "ds.csv", ["X001,Sầm Thị Hồng,skhcn,,,,,"])
    outcome = runner.run(cfg, rosters=[roster])
    assert not (tmp_path / "hr" / "skhcn").exists()
    assert any("no-such-group-x" in w for w in outcome.warnings)
    assert (cfg.paths.outbox / outcome.run_id / "skhcn.html").exists()  # kept for the operator


def test_slips_past_the_retention_are_deleted_and_each_deletion_audited(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config(extra=SLIPS + "  retention_days: 10\n")
    roster = write_roster(tmp_path / "ds.csv", ["X001,Sầm Thị Hồng,skhcn,,,,,"])
    first = runner.run(cfg, rosters=[roster])
    roster2 = write_roster(tmp_path / "ds2.csv", ["X001,Sầm Thị Hồng,skhcn,,,,,cấp lại mật khẩu"])
    second = runner.run(cfg, rosters=[roster2])
    old_page = next((tmp_path / "hr" / "skhcn").glob(f"*{first.run_id}.html"))
    new_page = next((tmp_path / "hr" / "skhcn").glob(f"*{second.run_id}.html"))
    now = datetime.now(UTC)
    eleven_days_ago = (now - timedelta(days=11)).timestamp()
    for path in (old_page, cfg.paths.outbox / first.run_id):
        os.utime(path, (eleven_days_ago, eleven_days_ago))
    # a dead run's slips are evidence for its recovery: kept while its journal is there
    dead = cfg.paths.outbox / "20200101T000000Z-dead"
    dead.mkdir()
    os.utime(dead, (eleven_days_ago, eleven_days_ago))
    (cfg.paths.state / "journal").mkdir(exist_ok=True)
    (cfg.paths.state / "journal" / f"{dead.name}.jsonl").write_text("{}\n")
    gone = sweep_slips(cfg, now, "sweep-1")
    assert sorted(gone) == sorted([old_page, cfg.paths.outbox / first.run_id])
    assert not old_page.exists() and new_page.exists() and dead.exists()
    assert (cfg.paths.outbox / second.run_id).exists()
    records = [json.loads(line) for line in cfg.paths.audit_log.read_text().splitlines()]
    deleted = [r for r in records if r.get("action") == "delete-slips"]
    assert {r["path"] for r in deleted} == {str(p) for p in gone}
    assert all(r["run_id"] == "sweep-1" and "10 days" in r["reason"] for r in deleted)
    assert sweep_slips(cfg, now, "sweep-2") == []  # nothing twice
