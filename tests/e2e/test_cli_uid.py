"""`syncd uid` and `syncd schemes` as an operator runs them."""

import csv
import io
import subprocess
import sys
from pathlib import Path


def syncd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", *args], capture_output=True, text=True, check=False
    )


def test_uid_prints_the_regulation_example() -> None:
    result = syncd("uid", "--scheme", "caobang-2025", "--org", "tgg", "Hoàng Văn Phúc")
    assert (result.returncode, result.stdout) == (0, "phuchv.tgg\n")


def test_uid_says_why_there_is_none_with_nonzero_exit() -> None:
    result = syncd("uid", "--scheme", "caobang-2025", "--org", "tgg", "   ")
    assert result.returncode == 2
    assert "empty name" in result.stderr


def test_uid_batch_allocates_in_order_against_taken_file(tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    src.write_text(
        "\ufefffull_name,org\nĐàm Văn Hùng,skhcn\nĐặng Văn Hùng,skhcn\n,skhcn\n"
        "Hoàng Văn Phúc,tgg\n",
        encoding="utf-8",
    )
    taken = tmp_path / "taken.txt"
    taken.write_text("hungdv.skhcn\n", encoding="utf-8")
    result = syncd("uid", "--scheme", "caobang-2025", "--input", str(src), "--taken", str(taken))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["full_name", "org", "uid", "status", "detail"]
    assert [(r["uid"], r["status"]) for r in rows] == [
        ("hungdv1.skhcn", "ok"),
        ("hungdv2.skhcn", "ok"),
        ("", "invalid"),
        ("phuchv.tgg", "ok"),
    ]


def test_uid_batch_hungyen_collision_needs_a_decision(tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    src.write_text("full_name,org\nNguyễn Hoàng Phúc,khcn\nNguyễn Hồng Phúc,khcn\n", "utf-8")
    result = syncd("uid", "--scheme", "hungyen-2025", "--input", str(src))
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["uid"] == "nhphuc.khcn"
    assert rows[1]["status"] == "needs-decision"
    assert "nhphuc1.khcn" in rows[1]["detail"]


def test_uid_batch_caobang_2011_needs_no_org_column(tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    src.write_text("full_name\nNông Văn Đạt\nNguyễn Văn Đạt\n", "utf-8")
    result = syncd("uid", "--scheme", "caobang-2011", "--input", str(src))
    assert [r["uid"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["datnv", "datnv2"]


def test_uid_batch_missing_column_is_bad_input(tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    src.write_text("name\nAn\n", "utf-8")
    result = syncd("uid", "--scheme", "caobang-2011", "--input", str(src))
    assert result.returncode == 2
    assert "full_name" in result.stderr


def test_schemes_lists_every_scheme_with_article_and_example() -> None:
    result = syncd("schemes")
    assert result.returncode == 0
    for text in ("caobang-2025 Đ5.2", "caobang-2011 Đ7.3b", "hungyen-2025", "tuyenquang-2025",
                 "phuchv.tgg", "nhphuc.khcn", "datnv2"):  # fmt: skip
        assert text in result.stdout
