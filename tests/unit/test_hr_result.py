"""The HR result's content (syncd/hr_result.py): grouping, HR's words, the operator's English."""

from __future__ import annotations

from syncd.hr_result import Verdict, build, group_problems, note_text
from syncd.orgs import parse_catalogue
from syncd.roster import RowError

CATALOGUE = parse_catalogue(
    [("t", {"code": "skhcn", "name": "Sở Khoa học và Công nghệ", "mailbox": "sokhcn"})]
)


def test_the_same_problem_on_many_rows_is_one_group_even_when_it_names_another_row() -> None:
    errors = [
        RowError("f.csv", r, "Mã đơn vị", "sxd", "unknown organisation") for r in range(2, 57)
    ]
    errors += [
        RowError("f.csv", 60, "Mã cán bộ", "A1", "duplicate employee number (also on row 58)"),
        RowError("f.csv", 61, "Mã cán bộ", "A2", "duplicate employee number (also on row 59)"),
    ]
    groups = group_problems(errors)
    assert [(g.column, len(g.rows), g.operator_fault) for g in groups] == [
        ("Mã đơn vị", 55, True),  # the operator's to fix: first
        ("Mã cán bộ", 2, False),
    ]
    assert groups[1].values == ("A1", "A2") and groups[1].rows == (60, 61)


def test_a_rejected_file_says_so_and_never_that_there_was_nothing_to_do() -> None:
    errors = [RowError("f.csv", 2, "Họ và tên", "", "empty name")]
    result = build("f.csv", (), (), errors, (), None, CATALOGUE)
    assert result.verdict == Verdict.REJECTED and result.people == ()
    assert result.headline.vi.startswith("TỆP BỊ TỪ CHỐI: chưa thực hiện thay đổi nào")
    assert "nothing to do" not in (result.headline.vi + result.headline.en).lower()


def test_a_whole_file_error_becomes_what_to_send_instead() -> None:
    result = build(
        "f.csv",
        (),
        (),
        (),
        ["f.csv: row 1: missing required column(s) 'Mã cán bộ'; this is not a roster's header"],
        None,
        CATALOGUE,
    )
    [problem] = result.problems
    assert problem.what.vi == "Thiếu cột bắt buộc ở dòng tiêu đề"
    assert "syncd template" in problem.fix.vi and problem.rows == ()


def test_the_readers_notes_are_in_hrs_words_with_their_rows_and_english_for_the_operator() -> None:
    note = "f.csv: column 'Họ và tên': 3 cell(s) typed in TCVN3 converted to Unicode (rows 2, 3, 4)"
    text = note_text(note)
    assert text.vi.startswith("Một số ô gõ bằng phông chữ cũ") and text.vi.endswith(
        "(dòng 2, 3, 4)"
    )
    assert text.show(english=False) == text.vi
    assert text.show(english=True) == f"{text.vi} / {note}"
