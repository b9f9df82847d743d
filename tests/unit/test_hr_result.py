"""The HR result's content (syncd/hr_result.py): grouping, HR's words, the operator's English."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from syncd.hr_result import RunFacts, Verdict, build, group_problems, note_text
from syncd.model import Account, Action, ActionKind, State
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
        zone=UTC,
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


def test_hr_reads_dates_on_the_provinces_day() -> None:
    """Found by an attack: a mailbox locked at 00:00 on 1 January in Việt Nam (17:00 UTC on
    31 December) was "tạm khóa từ ngày 31/12/2026" on HR's page; the transfer alias's last
    day was the UTC one too."""
    locked = Account(
        dn="uid=a.skhcn,dc=x",
        uid="a.skhcn",
        cn="Lê Văn A",
        mail=("a.skhcn@test.gov.vn",),
        employee_number="E1",
        org="skhcn",
        state=State.LOCKED,
        state_since=datetime(2026, 12, 31, 17, 0, tzinfo=UTC),
    )
    person = Person(employee_number="E1", full_name="Lê Văn A", org="skhcn", source="f:2")
    facts = RunFacts(
        now=datetime(2027, 1, 2, 20, 0, tzinfo=UTC),  # 03:00 on 3 January there
        zone=ZoneInfo("Asia/Ho_Chi_Minh"),
        domain="test.gov.vn",
        alias_days=30,
        applied=True,
        accounts=(locked,),
    )
    [line] = build("f.csv", (person,), ("skhcn",), (), (), facts, CATALOGUE).people
    assert line.what.vi == "Không thay đổi"
    assert line.detail.vi == "Hộp thư đang bị tạm khóa từ ngày 01/01/2027", line.detail


def test_a_revocation_by_the_lifecycle_clock_says_why_not_that_the_organisation_asked() -> None:
    """Found by an attack: a person still on the file, locked for too long, read "Đơn vị đề
    nghị thu hồi" (the organisation asked for it); a lock's Vietnamese reason was empty."""
    revoke = Action(
        ActionKind.REVOKE, "a.skhcn", "skhcn", "revoke_locked: locked since …", "Đ8.1",
        employee_number="E1", rule="revoke_locked",
    )  # fmt: skip
    lock = Action(
        ActionKind.LOCK, "b.skhcn", "skhcn", "lock_inactive: no login", "Đ8.2",
        employee_number="E2", rule="lock_inactive",
    )  # fmt: skip
    people = tuple(
        Person(employee_number=e, full_name="Lê Văn A", org="skhcn", source="f:2")
        for e in ("E1", "E2")
    )
    facts = RunFacts(
        now=datetime(2027, 1, 2, tzinfo=UTC), zone=UTC, domain="test.gov.vn", alias_days=30,
        applied=True, actions=(revoke, lock),
    )  # fmt: skip
    lines = {
        x.employee_number: x
        for x in build("f.csv", people, ("skhcn",), (), (), facts, CATALOGUE).people
    }
    assert lines["E1"].detail.vi == "Bị tạm khóa quá thời hạn mà không có đề nghị khôi phục"
    assert lines["E2"].detail.vi == "Không sử dụng hộp thư quá thời hạn quy định"
