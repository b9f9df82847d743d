"""The HR result's content (syncd/hr_result.py): grouping, HR's words, the operator's English."""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.hr_result import RunFacts, Verdict, build, group_problems, note_text
from syncd.orgs import parse_catalogue
from syncd.roster import Person, RowError
from tests.helpers import create_action

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


def test_a_create_that_failed_shows_no_address_or_slip_and_says_who_must_act() -> None:
    """Found by an attack: a create the directory refused (an entry already at its DN) was
    shown to HR with the address (another person's) and "the one-time password is on the
    slip sent to the organisation" (no slip existed), and "will retry by itself" (it fails
    the same way every run until the operator acts)."""
    refused, busy, made = create_action("a.skhcn"), create_action("b.skhcn"), create_action("c")
    people = tuple(
        Person(employee_number=a.employee_number, full_name=a.full_name, org="skhcn", source="f:2")
        for a in (refused, busy, made)
    )
    facts = RunFacts(
        now=datetime(2026, 11, 27, tzinfo=UTC),
        domain="test.gov.vn",
        alias_days=30,
        applied=True,
        actions=(refused, busy, made),
        failed=frozenset({id(refused), id(busy)}),
        failed_for_good=frozenset({id(refused)}),
        slips_to_folder=True,
        slips_delivered=frozenset({"skhcn"}),
    )
    result = build("f.csv", people, ("skhcn",), (), (), facts, CATALOGUE)
    lines = {x.employee_number: x for x in result.people}
    no, later, ok = lines["E-a.skhcn"], lines["E-b.skhcn"], lines["E-c"]
    for line in (no, later):
        assert line.address == "" and "phiếu" not in line.detail.vi.lower()
    assert "quản trị viên hệ thống cần xử lý" in no.what.vi and "tự làm lại" not in no.what.vi
    assert "sẽ tự làm lại" in later.what.vi
    assert ok.address == "c@test.gov.vn" and "Mật khẩu dùng một lần" in ok.detail.vi
    assert "1 việc chưa thực hiện được" in result.headline.vi
    assert "1 cấp mới" in result.headline.vi  # the one made, not the three planned
    assert "1 việc bị từ chối, quản trị viên cần xử lý" in result.headline.vi
