"""What HR receives for one roster file: per person what happened, per problem what to change.

The run report (``connectors.outcome``) speaks to the operator; this speaks to the HR clerk who
sent the file, in the regulation's own words (DIGEST glossary: *cấp mới*, *cấp lại mật khẩu*,
*tạm khóa*, *khôi phục*, *thu hồi*, *điều chuyển*). Everything here is pure content: which
rows, which words; ``connectors.hr_files`` renders it as XLSX and HTML. Each text is a
:class:`Text` pair so that the operator's copy can carry the English beside the Vietnamese
while HR's copy stays Vietnamese only.

Three rules the issue asked for, kept here so every renderer obeys them:

- a rejected or refused file never reads like success (no "nothing to do");
- the same problem repeated on many rows is one group listing the rows (55 rows naming an
  organisation missing from the catalogue are one line, and that one is the operator's to fix);
- nothing names a server path HR cannot open, and nothing carries a password.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from syncd.model import (
    Account,
    Action,
    ActionKind,
    Decision,
    DecisionKind,
    Field,
    Person,
    Request,
    State,
    emp_key,
)
from syncd.orgs import Catalogue
from syncd.roster import RowError


@dataclass(frozen=True)
class Text:
    """One message in Vietnamese (what HR reads) and English (beside it for the operator)."""

    vi: str
    en: str = ""

    def show(self, english: bool) -> str:
        return f"{self.vi} / {self.en}" if english and self.en and self.en != self.vi else self.vi


class Verdict:
    """How the file ended, as the headline says it."""

    APPLIED = "applied"
    CHECKED = "checked"  # syncd check: nothing applied, by design
    REJECTED = "rejected"
    REFUSED = "refused"


@dataclass(frozen=True)
class PersonLine:
    """One person of the file (or of its organisations, when the file's silence revokes)."""

    row: int | None  # the row in the file; None: not on the roster (dropped from it)
    employee_number: str
    full_name: str
    org: str  # the organisation's name, from the catalogue
    office: str  # the office's name, or ""
    what: Text
    address: str = ""
    detail: Text = Text("")
    article: str = ""


@dataclass(frozen=True)
class Problem:
    """One kind of problem, with every row it was found on."""

    column: str
    what: Text
    fix: Text
    rows: tuple[int, ...] = ()
    values: tuple[str, ...] = ()  # the distinct values, in row order
    operator_fault: bool = False  # the operator (catalogue, configuration) must act, not HR


@dataclass(frozen=True)
class HrResult:
    source: str  # the file's name as HR sent it (never a server path)
    verdict: str
    headline: Text
    people: tuple[PersonLine, ...] = ()
    problems: tuple[Problem, ...] = ()
    notes: tuple[Text, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)


# -- problems --------------------------------------------------------------------------------

_STATUS_LIST = "đang công tác, nghỉ hưu, nghỉ việc, chuyển công tác, từ trần"
_REQUEST_LIST = "cấp mới, cấp lại mật khẩu, thu hồi, khôi phục"

# (pattern on the English message, what is wrong, what to change, operator's fault)
_KINDS: tuple[tuple[str, str, str, bool], ...] = (
    (
        r"a formula without a saved value",
        "Ô là công thức nhưng tệp không lưu giá trị của nó (tệp được tạo bằng chương trình, "
        "chưa mở bằng Excel)",
        "Mở tệp bằng Excel rồi lưu lại, hoặc dán giá trị (Paste Values) thay cho công thức",
        False,
    ),
    (r"empty employee number", "Thiếu mã cán bộ", "Điền mã cán bộ của người này", False),
    (
        r"characters, more than the",
        "Nội dung ô dài quá mức cho phép",
        "Rút gọn nội dung ô (họ tên tối đa 100 ký tự, chức vụ 128 ký tự)",
        False,
    ),
    (
        r"a line break in the cell",
        "Ô có xuống dòng (Alt+Enter)",
        "Ghi nội dung ô trên một dòng",
        False,
    ),
    (
        r"an invisible control character",
        "Ô có ký tự điều khiển không nhìn thấy (thường do sao chép từ chương trình khác)",
        "Xóa ô và gõ lại nội dung",
        False,
    ),
    (
        r"duplicate employee number",
        "Mã cán bộ bị trùng với một dòng khác",
        "Mỗi người một mã cán bộ riêng; xóa dòng lặp hoặc sửa mã",
        False,
    ),
    (r"empty name", "Thiếu họ và tên", "Điền đầy đủ họ và tên", False),
    (
        r"looks like text typed in|cannot be converted safely",
        "Họ tên gõ bằng phông chữ cũ (TCVN3/VNI) không chuyển được sang Unicode",
        "Gõ lại họ và tên bằng phông Unicode (Times New Roman, Arial)",
        False,
    ),
    (
        r"name ",
        "Họ và tên không dùng được để đặt tên hộp thư",
        "Chỉ ghi họ và tên bằng chữ tiếng Việt, cách nhau một dấu cách",
        False,
    ),
    (
        r"unknown organisation",
        "Mã đơn vị chưa có trong danh mục cơ quan, đơn vị của hệ thống",
        "Nếu mã đúng: quản trị viên bổ sung đơn vị vào danh mục (lỗi thuộc quản trị hệ thống, "
        "không phải của phòng tổ chức); nếu gõ sai: sửa mã đơn vị",
        True,
    ),
    (r"empty organisation", "Thiếu mã đơn vị", "Điền mã đơn vị (theo danh mục)", False),
    (
        r"unknown office",
        "Phòng/Ban chưa có trong danh mục của đơn vị",
        "Nếu đúng tên phòng: quản trị viên bổ sung phòng vào danh mục (lỗi thuộc quản trị hệ "
        "thống); nếu gõ sai: sửa tên phòng",
        True,
    ),
    (
        r"unparseable date",
        "Ngày không đúng định dạng",
        "Ghi ngày theo dạng ngày/tháng/năm, ví dụ 05/09/1980",
        False,
    ),
    (
        r"unknown status",
        "Trạng thái không hợp lệ",
        f"Chọn một trong: {_STATUS_LIST} (để trống nghĩa là đang công tác)",
        False,
    ),
    (
        r"needs the date it ends",
        "Có lý do nghỉ nhưng thiếu ngày kết thúc",
        "Điền cột Nghỉ đến ngày",
        False,
    ),
    (
        r"ends before it starts",
        "Ngày kết thúc nghỉ trước ngày bắt đầu",
        "Sửa Nghỉ từ ngày / Nghỉ đến ngày",
        False,
    ),
    (
        r"unknown request",
        "Đề nghị không hợp lệ",
        f"Chọn một trong: {_REQUEST_LIST} (hoặc để trống)",
        False,
    ),
    (
        r"contradicts the status",
        "Đề nghị mâu thuẫn với trạng thái: người nghỉ không được cấp mới, cấp lại mật khẩu "
        "hay khôi phục",
        "Bỏ đề nghị, hoặc sửa trạng thái",
        False,
    ),
)

_FILE_KINDS: tuple[tuple[str, str, str, bool], ...] = (
    (
        r"a cell spanning lines|never closed",
        'Một ô có dấu ngoặc kép (") mở mà không đóng, hoặc xuống dòng trong ô: các dòng sau '
        "bị nuốt vào ô đó",
        'Xóa dấu " thừa ở ô được chỉ ra (hoặc ghi ô trên một dòng), lưu lại rồi gửi lại',
        False,
    ),
    (
        r"missing required column",
        "Thiếu cột bắt buộc ở dòng tiêu đề",
        "Dùng mẫu chính thức (syncd template): cần các cột Mã cán bộ, Họ và tên, Mã đơn vị",
        False,
    ),
    (
        r"has no people",
        "Tệp không có người nào",
        "Gửi danh sách đầy đủ của đơn vị (một tệp rỗng sẽ thu hồi mọi người)",
        False,
    ),
    (
        r"more than the .* (a roster may|a workbook part may|columns)",
        "Tệp quá lớn so với giới hạn của một danh sách",
        "Chỉ gửi danh sách cán bộ, một trang tính, không có dữ liệu khác",
        False,
    ),
    (
        r"not a readable XLSX|old Excel \.xls|not readable as a roster|no header row",
        "Không đọc được tệp như một danh sách",
        "Lưu lại tệp dạng .xlsx hoặc .csv (UTF-8) theo mẫu chính thức",
        False,
    ),
    (
        r"mixes encodings|not valid|NUL",
        "Tệp có ký tự không đọc được (phông chữ hoặc bảng mã lẫn lộn)",
        "Lưu lại tệp dạng .xlsx, hoặc CSV UTF-8",
        False,
    ),
    (
        r"no sheet named",
        "Không có trang tính theo cấu hình",
        "Đặt danh sách ở trang tính đầu tiên của tệp (hoặc hỏi quản trị viên)",
        True,
    ),
)


def _classify(
    message: str, kinds: Sequence[tuple[str, str, str, bool]]
) -> tuple[str, str, bool] | None:
    for pattern, what, fix, operator in kinds:
        if re.search(pattern, message):
            return what, fix, operator
    return None


def _message_key(message: str) -> str:
    """What makes two messages the same problem: the text without the row numbers it names
    (``duplicate employee number (also on row 12)`` repeats on many rows)."""
    return re.sub(r"\b(row|rows) \d+", r"\1 N", message)


def group_problems(errors: Iterable[RowError]) -> list[Problem]:
    """Row errors grouped by column and message: one line per kind, with its rows."""
    groups: dict[tuple[str, str], list[RowError]] = {}
    for e in errors:
        groups.setdefault((e.column, _message_key(e.message)), []).append(e)
    out = []
    for (column, key), items in groups.items():
        found = _classify(items[0].message, _KINDS)
        what, fix, operator = found or ("Dữ liệu không hợp lệ", "Sửa ô này", False)
        values = tuple(dict.fromkeys(e.value for e in items))
        english = items[0].message if len(items) == 1 else key
        out.append(
            Problem(
                column,
                Text(what, english),
                Text(fix),
                tuple(e.row for e in items),
                values,
                operator,
            )
        )
    # the operator's problems first: HR cannot fix them and should not try
    out.sort(key=lambda p: (not p.operator_fault, p.rows[:1]))
    return out


def file_problems(source: str, messages: Iterable[str]) -> list[Problem]:
    """Whole-file errors (no row to fix): what was wrong and what to send instead."""
    out = []
    for m in messages:
        if m.endswith("rejected whole; nothing from it was applied"):
            continue  # the headline says it
        english = m.removeprefix(f"{source}: ")
        found = _classify(english, _FILE_KINDS)
        what, fix, operator = found or (
            "Tệp không dùng được",
            "Lưu lại tệp theo mẫu chính thức rồi gửi lại",
            False,
        )
        out.append(Problem("", Text(what, english), Text(fix), (), (), operator))
    return out


_NOTES: tuple[tuple[str, str], ...] = (
    (
        r"converted to Unicode|converted$",
        "Một số ô gõ bằng phông chữ cũ (TCVN3/VNI) đã được chuyển sang Unicode; kiểm tra lại "
        "họ tên",
    ),
    (
        r"ambiguous, left as it is",
        "Ô này có thể là phông chữ cũ hoặc Unicode; giữ nguyên, hãy kiểm tra",
    ),
    (
        r"cannot be converted safely",
        "Ô gõ bằng phông chữ cũ không chuyển được; gõ lại bằng Unicode",
    ),
    (r"more ambiguous cell", "Còn các ô khác có thể là phông chữ cũ; giữ nguyên, hãy kiểm tra"),
    (r"different encodings", "Tệp lẫn nhiều bảng mã; kiểm tra lại họ tên"),
    (
        r"left out|removes nobody",
        "Các dòng có lỗi bị bỏ qua; tệp này không làm thu hồi hộp thư của ai vì vắng tên",
    ),
    (r"read as ", "Tệp được đọc theo bảng mã cũ; nên lưu lại dạng UTF-8 hoặc .xlsx"),
)


def note_text(note: str) -> Text:
    """A reader's note in HR's words, the rows it names kept; the English for the operator."""
    rows = re.search(r"\b(?:rows?) ([\d, ]+(?: and \d+ more)?)", note)
    where = (
        f" (dòng {rows.group(1).replace(' and ', ' và ').replace(' more', ' dòng khác')})"
        if rows
        else ""
    )
    for pattern, vi in _NOTES:
        if re.search(pattern, note):
            return Text(vi + where, note)
    return Text("Ghi chú kỹ thuật cho quản trị viên" + where, note)


# -- people ----------------------------------------------------------------------------------

_DECISION_VI = {
    DecisionKind.UID_COLLISION: "trùng tên hộp thư với người đã có: quản trị viên thống nhất "
    "tên hộp thư với người dùng",
    DecisionKind.AMBIGUOUS_MATCH: "có thể đã có hộp thư cũ nhưng chưa chắc là của người này: "
    "quản trị viên xác nhận",
    DecisionKind.UNLINKED_ACCOUNT: "hộp thư cũ không gắn với ai trong danh sách: quản trị viên "
    "quyết định giữ hay thu hồi",
    DecisionKind.INVALID_NAME: "không đặt được tên hộp thư hợp lệ từ họ tên: quản trị viên "
    "quyết định",
}

_STATUS_VI = {
    "retired": "nghỉ hưu",
    "resigned": "nghỉ việc",
    "transferred-out": "chuyển công tác",
    "deceased": "từ trần",
}


# why a lifecycle clock acted, as HR reads it (found by an attack: a revocation by the clock
# of a person still on the file read "the organisation asked for the revocation")
_RULE_VI = {
    "lock_inactive": "Không sử dụng hộp thư quá thời hạn quy định",
    "lock_default_password": "Không đổi mật khẩu được cấp trong thời hạn quy định",
    "revoke_inactive": "Không sử dụng hộp thư quá thời hạn quy định",
    "revoke_locked": "Bị tạm khóa quá thời hạn mà không có đề nghị khôi phục",
    "purge_locked": "Bị tạm khóa liên tục quá thời hạn quy định",
}


def _row(person: Person | None) -> int | None:
    if person is None or ":" not in person.source:
        return None
    tail = person.source.rsplit(":", 1)[1]
    return int(tail) if tail.isdigit() else None


def _when(day: datetime) -> str:
    return f"{day:%d/%m/%Y}"


def _slip_text(a: Action, facts: RunFacts, done: bool, what_vi: str, what_en: str) -> Text:
    """Where the person's new password is, as HR must hear it: only a slip that reached the
    organisation's folder is promised there. An organisation with no group of its own (or
    none on the host) gets nothing delivered, by design (no shared group may read other
    organisations' passwords): then HR is told to ask the operator, never to look for a slip
    that is not there."""
    org = a.org or "khac"
    if not done or facts.slips_to_folder is None:
        return Text(
            f"{what_vi} có trong phiếu giao tài khoản gửi đơn vị",
            f"{what_en} on the slip for the organisation",
        )
    if not facts.slips_to_folder:
        return Text(
            f"{what_vi} có trong phiếu giao tài khoản do quản trị viên hệ thống bàn giao",
            f"{what_en} on the slip the operator hands over",
        )
    if org in facts.slips_delivered:
        return Text(
            f"{what_vi} có trong phiếu giao tài khoản đã gửi vào thư mục của đơn vị",
            f"{what_en} on the slip in the organisation's folder",
        )
    return Text(
        f"Phiếu giao tài khoản CHƯA gửi được vào thư mục của đơn vị: liên hệ quản trị viên "
        f"hệ thống để nhận phiếu ({what_vi.lower()})",
        f"slip NOT delivered to the organisation's folder: the operator hands it over ({what_en})",
    )


def _action_text(
    a: Action,
    person: Person | None,
    facts: RunFacts,
    alias_until: datetime,
    done: bool,
) -> tuple[Text, str, Text]:
    """(what happened, the address, a detail) for one action, as HR says it."""
    domain = facts.domain
    will = "" if done else "Sẽ "
    address = f"{a.new_uid or a.uid}@{domain}"
    k = a.kind
    if k is ActionKind.CREATE:
        return (
            Text(f"{will}cấp mới hộp thư".capitalize(), "created" if done else "to create"),
            address,
            _slip_text(
                a,
                facts,
                done,
                "Mật khẩu dùng một lần (đổi khi đăng nhập lần đầu)",
                "one-time password",
            ),
        )
    if k is ActionKind.LINK:
        return Text(f"{will}gắn với hộp thư đã có".capitalize(), "linked"), address, Text("")
    if k is ActionKind.UPDATE:
        return Text(f"{will}cập nhật thông tin".capitalize(), "updated"), address, Text("")
    if k is ActionKind.MOVE:
        old = f"{a.uid}@{domain}"
        return (
            Text(f"{will}điều chuyển: địa chỉ mới".capitalize(), "transferred: new address"),
            address,
            Text(
                f"Địa chỉ cũ {old} vẫn nhận thư đến hết ngày {_when(alias_until)}",
                f"the old address {old} receives mail until {alias_until:%Y-%m-%d}",
            ),
        )
    if k is ActionKind.RESET_PASSWORD:
        return (
            Text(f"{will}cấp lại mật khẩu".capitalize(), "password reset"),
            address,
            _slip_text(a, facts, done, "Mật khẩu mới", "new password"),
        )
    if k is ActionKind.RESTORE:
        return (
            Text(f"{will}khôi phục hộp thư".capitalize(), "restored"),
            address,
            _slip_text(a, facts, done, "Mật khẩu mới", "new password"),
        )
    if k is ActionKind.ENFORCE and Field.FORWARDING in a.attrs:
        return (
            Text(
                f"{will}bỏ chuyển tiếp thư ra ngoài hệ thống thư công vụ".capitalize(),
                "forwarding out of the state's mail removed" if done else "to remove forwarding",
            ),
            address,
            Text(
                "Không được tự động chuyển thư đến hộp thư không do cơ quan nhà nước cấp",
                a.reason,
            ),
        )
    if k is ActionKind.ENFORCE:
        return (
            Text(
                f"{will}đặt lại trạng thái hộp thư bị sửa tay ngoài hệ thống".capitalize(),
                "put back: changed by hand outside syncd",
            ),
            address,
            Text("", a.reason),
        )
    if k is ActionKind.LOCK:
        why = Text(_RULE_VI.get(a.rule or "", "Theo quy chế (xem căn cứ)"), a.reason)
        return Text(f"{will}tạm khóa".capitalize(), "locked"), address, why
    if k in (ActionKind.REVOKE, ActionKind.PURGE):
        if a.rule in _RULE_VI:  # a lifecycle clock: the person may well be on the file
            why = Text(_RULE_VI[a.rule or ""], a.reason)
        elif person is None:
            why = Text("Không còn trong danh sách của đơn vị", a.reason)
        elif person.status.value in _STATUS_VI:
            why = Text(f"Trạng thái: {_STATUS_VI[person.status.value]}", a.reason)
        elif person.request is Request.REVOKE:
            why = Text("Đơn vị đề nghị thu hồi", a.reason)
        else:
            why = Text("Theo quy chế (xem căn cứ)", a.reason)
        verb = "thu hồi hộp thư" if k is ActionKind.REVOKE else "xóa vĩnh viễn hộp thư"
        return Text(f"{will}{verb}".capitalize(), k.value), address, why
    return Text(k.value), address, Text("")


@dataclass(frozen=True)
class RunFacts:
    """What a run found and did, as the HR result needs it (plain values from the runner)."""

    now: datetime
    zone: tzinfo  # the province's: every date HR reads is its day (the run's times are UTC)
    domain: str
    alias_days: int
    applied: bool  # False: a check or a plan (future tense)
    actions: Sequence[Action] = ()
    held: Sequence[Action] = ()
    failed: frozenset[int] = frozenset()  # id() of actions that failed
    failed_for_good: frozenset[int] = frozenset()  # of those, refused (not a retry's matter)
    decisions: Sequence[Decision] = ()
    accounts: Sequence[Account] = ()
    refused: bool = False
    # where slips go: None = not known (a check or plan), False = the operator hands them over
    # (no slips.hr_area), True = to each organisation's folder, which ``slips_delivered`` got
    slips_to_folder: bool | None = None
    slips_delivered: frozenset[str] = frozenset()


def _standing(acc: Account, zone: tzinfo) -> Text:
    """A locked or revoked mailbox, and since when (the province's day), as HR reads it."""
    day = acc.state_since.astimezone(zone) if acc.state_since else None
    since = f" từ ngày {_when(day)}" if day else ""
    since_en = f" since {day:%Y-%m-%d}" if day else ""
    if acc.state is State.REVOKED:
        return Text(f"Hộp thư đã bị thu hồi{since}", f"the mailbox is revoked{since_en}")
    return Text(f"Hộp thư đang bị tạm khóa{since}", f"the mailbox is locked{since_en}")


def people_lines(
    people: Sequence[Person],
    authoritative: Iterable[str],
    facts: RunFacts,
    catalogue: Catalogue,
) -> list[PersonLine]:
    """One line per person of the file, in row order, then the people of its organisations
    that the file's silence touches (dropped from the roster)."""
    by_emp: dict[str, list[Action]] = {}
    for a in facts.actions:
        if a.employee_number:
            by_emp.setdefault(emp_key(a.employee_number), []).append(a)
    held = {emp_key(a.employee_number) for a in facts.held if a.employee_number}
    decided = {emp_key(d.employee_number): d for d in facts.decisions if d.employee_number}
    address = {
        emp_key(acc.employee_number): acc.mail[0] if acc.mail else f"{acc.uid}@{facts.domain}"
        for acc in facts.accounts
        if acc.employee_number
    }
    # an unchanged line says when the mailbox is not in use (found by an attack: a revoked
    # person sent again read "no change" and nothing else)
    standing = {
        emp_key(acc.employee_number): _standing(acc, facts.zone)
        for acc in facts.accounts
        if acc.employee_number and acc.state in (State.LOCKED, State.REVOKED)
    }
    alias_until = (facts.now + timedelta(days=facts.alias_days)).astimezone(facts.zone)

    def org_names(org: str | None, office: str | None) -> tuple[str, str]:
        o = catalogue.orgs.get(org or "")
        off = catalogue.offices.get((org or "", office or "")) if office else None
        return (o.name if o else org or ""), (off.name if off else office or "")

    out: list[PersonLine] = []
    listed: set[str] = set()
    for p in people:
        key = emp_key(p.employee_number)
        listed.add(key)
        org, office = org_names(p.org, p.office)
        base = (_row(p), p.employee_number, p.full_name, org, office)
        acts = by_emp.get(key, [])
        if acts:
            out.append(_combine(base, acts, p, facts, alias_until))
        elif key in decided:
            d = decided[key]
            why = _DECISION_VI.get(d.kind, d.kind.value)
            out.append(
                PersonLine(
                    *base,
                    Text("Chờ quản trị viên quyết định", "waiting for an operator's decision"),
                    "",
                    Text(f"Lý do: {why}", d.summary),
                    d.article,
                )
            )
        elif key in held:
            out.append(
                PersonLine(
                    *base,
                    Text("Tạm giữ: chờ quản trị viên xác nhận", "held back by a safety limit"),
                    address.get(key, ""),
                )
            )
        else:
            out.append(
                PersonLine(
                    *base,
                    Text("Không thay đổi", "no change"),
                    address.get(key, ""),
                    standing.get(key, Text("")),
                )
            )
    orgs = set(authoritative)
    for key, acts in by_emp.items():
        if key in listed or not any(a.org in orgs for a in acts):
            continue
        first = acts[0]
        org, office = org_names(first.org, None)
        base = (None, first.employee_number or "", first.full_name, org, office)
        out.append(_combine(base, acts, None, facts, alias_until))
    return out


def _combine(
    base: tuple[int | None, str, str, str, str],
    acts: Sequence[Action],
    person: Person | None,
    facts: RunFacts,
    alias_until: datetime,
) -> PersonLine:
    """A person's actions as one line (a transfer may also update the title)."""
    whats, details, articles = [], [], []
    addr = ""
    for a in acts:
        done = facts.applied and id(a) not in facts.failed
        what, addr, detail = _action_text(a, person, facts, alias_until, done)
        if facts.applied and id(a) in facts.failed:
            if id(a) in facts.failed_for_good:
                what = Text(
                    f"Chưa thực hiện được ({what.vi.lower()}): hệ thống thư từ chối, quản trị "
                    "viên hệ thống cần xử lý",
                    f"failed ({what.en}): the directory refused it; the operator must act "
                    "(the run report says why)",
                )
            else:
                what = Text(
                    f"Chưa thực hiện được ({what.vi.lower()}): lỗi hệ thống, sẽ tự làm lại",
                    f"failed ({what.en}); the next run retries",
                )
            if a.kind is ActionKind.CREATE:
                # no mailbox yet: the address may differ when it is made, and there is no
                # slip (found by an attack: HR was told an address and a slip that did not
                # exist, the address another person's)
                addr, detail = "", Text("")
        whats.append(what)
        if detail.vi or detail.en:
            details.append(detail)
        articles.append(a.article)
    return PersonLine(
        *base,
        Text("; ".join(w.vi for w in whats), "; ".join(w.en for w in whats)),
        addr,
        Text("; ".join(d.vi for d in details if d.vi), "; ".join(d.en for d in details if d.en)),
        "; ".join(dict.fromkeys(x for x in articles if x)),
    )


_COUNT_VI = {
    "create": "cấp mới",
    "move": "điều chuyển",
    "reset-password": "cấp lại mật khẩu",
    "restore": "khôi phục",
    "lock": "tạm khóa",
    "revoke": "thu hồi",
    "purge": "xóa vĩnh viễn",
    "update": "cập nhật",
    "link": "gắn hộp thư đã có",
    "enforce": "khôi phục trạng thái bị sửa tay",
}


def build(
    source: str,
    people: Sequence[Person],
    authoritative: Iterable[str],
    row_errors: Sequence[RowError],
    file_errors: Sequence[str],
    facts: RunFacts | None,
    catalogue: Catalogue,
    notes: Sequence[str] = (),
    checking: bool = False,
) -> HrResult:
    """The HR result of one file. ``facts`` None: the file was not planned (it was rejected
    before the directory was read, or ``syncd check --offline``)."""
    problems = group_problems(row_errors) + file_problems(source, file_errors)
    rejected = bool(problems) and not people
    lines = people_lines(people, authoritative, facts, catalogue) if facts and not rejected else []
    if not facts and not rejected:
        lines = [
            PersonLine(
                _row(p),
                p.employee_number,
                p.full_name,
                *(
                    (catalogue.orgs[p.org].name if p.org in catalogue.orgs else p.org),
                    (
                        catalogue.offices[(p.org, p.office)].name
                        if p.office and (p.org, p.office) in catalogue.offices
                        else p.office or ""
                    ),
                ),
                Text("Hợp lệ", "valid"),
            )
            for p in people
        ]
    counts: dict[str, int] = {}
    failed_ids = facts.failed if facts else frozenset()
    for a in facts.actions if facts and not rejected else ():
        if id(a) in failed_ids:  # counted apart: "N việc chưa thực hiện được"
            continue
        if a.employee_number or a.org in set(authoritative):
            counts[a.kind.value] = counts.get(a.kind.value, 0) + 1
    summary = ", ".join(f"{n} {_COUNT_VI.get(k, k)}" for k, n in sorted(counts.items()))
    operator = any(p.operator_fault for p in problems)
    if rejected:
        verdict = Verdict.REJECTED
        blame = (
            " Có lỗi thuộc quản trị hệ thống (đánh dấu bên dưới): đã báo quản trị viên."
            if operator
            else ""
        )
        head = Text(
            f"TỆP BỊ TỪ CHỐI: chưa thực hiện thay đổi nào. Sửa {len(problems)} loại lỗi dưới "
            f"đây rồi gửi lại cả tệp.{blame}",
            "REJECTED: nothing was applied; fix the problems below and send the whole file again",
        )
    elif facts is not None and facts.refused:
        verdict = Verdict.REFUSED
        head = Text(
            "TẠM DỪNG: tệp làm giảm quá nhiều người của đơn vị so với lần trước; chưa thực hiện "
            "thay đổi nào. Quản trị viên sẽ kiểm tra với đơn vị.",
            "REFUSED by a safety limit: nothing was applied",
        )
    elif checking:
        verdict = Verdict.CHECKED
        tail = f" Khi gửi, hệ thống sẽ: {summary}." if summary else ""
        head = Text(
            f"KIỂM TRA: tệp hợp lệ ({len(people)} người); chưa gửi, chưa thay đổi gì.{tail}",
            "CHECKED: the file is valid; nothing was applied",
        )
    else:
        verdict = Verdict.APPLIED
        refused = len(facts.failed_for_good) if facts else 0
        failed = (len(facts.failed) if facts else 0) - refused
        head = Text(
            f"ĐÃ XỬ LÝ: {len(people)} người trong tệp"
            + (f"; {summary}" if summary else "; không có thay đổi nào với hộp thư")
            + (f"; {failed} việc chưa thực hiện được, hệ thống sẽ tự làm lại" if failed else "")
            + (f"; {refused} việc bị từ chối, quản trị viên cần xử lý" if refused else "")
            + ".",
            "APPLIED",
        )
        if problems:  # accept_valid_rows: some rows were left out
            head = Text(
                head.vi + f" Có {sum(len(p.rows) or 1 for p in problems)} dòng lỗi bị bỏ qua: "
                "sửa và gửi lại.",
                head.en + "; rows with errors were left out",
            )
    return HrResult(
        source,
        verdict,
        head,
        tuple(lines),
        tuple(problems),
        tuple(note_text(n) for n in notes),
        counts,
    )


__all__ = [
    "HrResult",
    "PersonLine",
    "Problem",
    "RunFacts",
    "Text",
    "Verdict",
    "build",
    "file_problems",
    "group_problems",
]
