"""A dead run's slip files, tidied for HR by the run that takes it over (connectors.slips):
found by an attack, a crash mid-write left a line cut mid-address, or an empty file."""

from __future__ import annotations

from pathlib import Path

from connectors.slips import CSV_HEADER, SlipWriter

HEADER = "\ufeff" + ",".join(CSV_HEADER) + "\n"
WHOLE = "Trần Văn A,a.skhcn@test.gov.vn,Mk-1.abcd!,cấp mới,E1,\n"


def test_a_cut_last_line_is_removed_and_the_whole_ones_kept(tmp_path: Path) -> None:
    folder = tmp_path / "run-1"
    folder.mkdir()
    (folder / "skhcn.csv").write_text(HEADER + WHOLE + "Lê Thị B,b.skhcn@test.go", "utf-8")
    writer = SlipWriter.resume(tmp_path, "run-1")
    assert [s.uid for s in writer.slips] == ["a.skhcn"]  # the cut line was never trusted
    writer.tidy()
    assert (folder / "skhcn.csv").read_text("utf-8") == HEADER + WHOLE
    assert (folder / "skhcn.csv").stat().st_mode & 0o777 == 0o600


def test_a_file_with_no_slip_left_is_deleted_and_a_whole_one_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "run-1"
    folder.mkdir()
    (folder / "empty.csv").write_bytes(b"")
    (folder / "header.csv").write_text(HEADER, "utf-8")
    (folder / "cut-header.csv").write_text(HEADER[:10], "utf-8")
    (folder / "only-cut.csv").write_text(HEADER + "Lê Thị B,b.skh", "utf-8")
    (folder / "fine.csv").write_text(HEADER + WHOLE, "utf-8")
    before = (folder / "fine.csv").stat().st_mtime_ns
    SlipWriter.resume(tmp_path, "run-1").tidy()
    assert sorted(p.name for p in folder.iterdir()) == ["fine.csv"]
    assert (folder / "fine.csv").stat().st_mtime_ns == before
