"""The Cao Bằng sample shipped for ``make demo`` and the end-to-end tests.

Deterministic: the same code writes the same files, and a test checks that the committed copy
in ``config/examples/caobang/`` matches, so the sample never drifts from its generator.
It has 9 organisations with offices, 9 HR roster files (one XLSX, one typed in the legacy
TCVN3 encoding), same-name collisions, people leaving, a transfer, a password-reset request,
and the accounts that "already exist" in the directory before syncd (2011-style mailboxes).
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from openpyxl import Workbook

from devtools.samples import full_name
from syncd.naming.legacy import unicode_to_tcvn3

DOMAIN = "caobang.gov.vn"
SUFFIX = "dc=caobang,dc=gov,dc=vn"
HEADER = [
    "STT",
    "Mã cán bộ",
    "Họ và tên",
    "Mã đơn vị",
    "Phòng/Ban",
    "Chức vụ",
    "Ngày sinh",
    "Trạng thái",
    "Đề nghị",
]

ORGS = [
    {
        "code": "skhcn",
        "name": "Sở Khoa học và Công nghệ",
        "mailbox": "sokhcn",
        "kind": "department",
    },
    {
        "code": "vp",
        "name": "Văn phòng Sở",
        "mailbox": "vanphong.skhcn",
        "kind": "office",
        "parent": "skhcn",
    },
    {
        "code": "pqlbcvtcds",
        "name": "Phòng Quản lý Bưu chính, Viễn thông và Chuyển đổi số",
        "mailbox": "phongqlbcvtcds.skhcn",
        "kind": "office",
        "parent": "skhcn",
    },
    {"code": "syt", "name": "Sở Y tế", "mailbox": "soyte", "kind": "department"},
    {
        "code": "vp",
        "name": "Văn phòng Sở Y tế",
        "mailbox": "vanphong.syt",
        "kind": "office",
        "parent": "syt",
    },
    {"code": "sgddt", "name": "Sở Giáo dục và Đào tạo", "mailbox": "sogddt", "kind": "department"},
    {"code": "stc", "name": "Sở Tài chính", "mailbox": "sotaichinh", "kind": "department"},
    {"code": "snv", "name": "Sở Nội vụ", "mailbox": "sonoivu", "kind": "department"},
    {
        "code": "vpubnd",
        "name": "Văn phòng Ủy ban nhân dân tỉnh",
        "mailbox": "vpubnd",
        "kind": "department",
    },
    {"code": "tgg", "name": "Phường Tân Giang", "mailbox": "ubndtangiang", "kind": "commune"},
    {
        "code": "pkt",
        "name": "Phòng Kinh tế",
        "mailbox": "pkt.tgg",
        "kind": "office",
        "parent": "tgg",
    },
    {"code": "tpn", "name": "Phường Thục Phán", "mailbox": "ubndthucphan", "kind": "commune"},
    {"code": "tkh", "name": "Xã Trùng Khánh", "mailbox": "ubndtrungkhanh", "kind": "commune"},
]
TITLES = [
    "Chuyên viên",
    "Chuyên viên",
    "Chuyên viên",
    "Phó Trưởng phòng",
    "Trưởng phòng",
    "Kế toán",
    "Văn thư",
    "Cán sự",
]
STATUS_LEAVING = ["Nghỉ hưu", "Nghỉ việc", "Chuyển công tác"]
_FIXED_TIME = datetime(2025, 7, 1, 8, 0, 0)  # so the XLSX bytes are the same every time


@dataclass(frozen=True)
class Existing:
    """An account that is in the directory before syncd's first run."""

    uid: str
    cn: str
    org: str
    employee_number: str | None = None
    title: str | None = None


# 2011-style mailboxes (no employee number) and a few keyed ones from an earlier tool.
EXISTING = [
    Existing("datnv", "Nông Văn Đạt", "skhcn"),
    Existing("hoalt", "Lương Thị Hoa", "syt"),
    Existing("cuongbv", "Bế Văn Cường", "tgg"),
    Existing("maitt", "Triệu Thị Mai", "sgddt"),
    Existing("kienmv", "Ma Văn Kiên", "tkh"),
    Existing("lannt", "Nguyễn Thị Lan", "stc"),  # two Nguyễn Thị Lan at stc: an operator picks
    Existing("tuanlv", "Lục Văn Tuấn", "snv"),  # on no roster: waits for a decision
    Existing("thinhvv.syt", "Vương Văn Thịnh", "syt", "CB-SYT-0900", "Chuyên viên"),
    Existing("yenpt.vpubnd", "Phùng Thị Yến", "vpubnd", "CB-VPUBND-0901", "Chuyên viên"),
    Existing("toandv.skhcn", "Đinh Văn Toàn", "skhcn", "CB-SKHCN-0902", "Chuyên viên"),
]

# (org, name, extra) people written into the rosters on purpose.
FIXED: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "skhcn": [
        ("CB-SKHCN-0001", "Đàm Văn Hùng", {}),
        ("CB-SKHCN-0002", "Đặng Văn Hùng", {}),
        ("CB-SKHCN-0003", "Nông Văn Đạt", {}),
    ],
    "syt": [
        ("CB-SYT-0001", "Lương Thị Hoa", {}),
        ("CB-SYT-0900", "Vương Văn Thịnh", {"Trạng thái": "Nghỉ hưu"}),
        ("CB-SKHCN-0902", "Đinh Văn Toàn", {}),
    ],
    "tgg": [("CB-TGG-0001", "Hoàng Văn Phúc", {}), ("CB-TGG-0002", "Bế Văn Cường", {})],
    "sgddt": [("CB-SGDDT-0001", "Triệu Thị Mai", {})],
    "tkh": [("CB-TKH-0001", "Ma Văn Kiên", {})],
    "stc": [("CB-STC-0001", "Nguyễn Thị Lan", {}), ("CB-STC-0002", "Nguyễn Thị Lan", {})],
    "vpubnd": [
        (
            "CB-VPUBND-0901",
            "Phùng Thị Yến",
            {"Chức vụ": "Phó Chánh Văn phòng", "Đề nghị": "Cấp lại mật khẩu"},
        )
    ],
}
SIZES = {
    "skhcn": 45,
    "syt": 40,
    "sgddt": 38,
    "stc": 30,
    "snv": 28,
    "vpubnd": 32,
    "tgg": 36,
    "tpn": 30,
    "tkh": 26,
}


def roster_rows(org: str, rng: random.Random) -> list[list[str]]:
    offices = [o["name"] for o in ORGS if o.get("parent") == org]
    rows: list[list[str]] = []
    fixed = FIXED.get(org, [])
    for n in range(SIZES[org]):
        if n < len(fixed):
            emp, name, extra = fixed[n]
        else:
            emp, name, extra = f"CB-{org.upper()}-{n + 1:04d}", full_name(rng), {}
        row = {
            "STT": str(n + 1),
            "Mã cán bộ": emp,
            "Họ và tên": name,
            "Mã đơn vị": org,
            "Phòng/Ban": rng.choice(offices) if offices and rng.random() < 0.7 else "",
            "Chức vụ": rng.choice(TITLES),
            "Ngày sinh": f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/"
            f"{rng.randint(1965, 2001)}",
            "Trạng thái": "Đang công tác",
            "Đề nghị": "",
        }
        if n >= len(fixed) and rng.random() < 0.03:
            row["Trạng thái"] = rng.choice(STATUS_LEAVING)
        row.update(extra)
        rows.append([row[h] for h in HEADER])
    return rows


def write_sample(folder: Path) -> list[Path]:
    """Write orgs.yaml and the rosters into ``folder``; return the roster paths."""
    rng = random.Random(16)  # noqa: S311 - sample data
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orgs.yaml").write_text(
        "# Sample organisation catalogue (Cao Bằng). code = uid suffix; mailbox = the\n"
        "# organisation's own mailbox; offices belong to a parent.\n"
        + yaml.safe_dump({"orgs": ORGS}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    rosters = folder / "rosters"
    rosters.mkdir(exist_ok=True)
    paths = []
    for org in SIZES:
        rows = roster_rows(org, rng)
        if org == "skhcn":
            path = rosters / f"{org}.xlsx"
            wb = Workbook()
            ws = wb.active
            ws.title = "Danh sách"
            ws.append(HEADER)
            for r in rows:
                ws.append(r)
            wb.properties.created = wb.properties.modified = _FIXED_TIME
            wb.save(path)
        elif org == "tkh":
            path = rosters / f"{org}-tcvn3.csv"
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *rows])
            path.write_bytes(unicode_to_tcvn3(buf.getvalue()).encode("latin-1"))
        else:
            path = rosters / f"{org}.csv"
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *rows])
            path.write_text("\ufeff" + buf.getvalue(), encoding="utf-8")
        paths.append(path)
    return paths


def existing_ldif(people_dn: str) -> str:
    """LDIF for the accounts that predate syncd."""
    blocks = []
    for e in EXISTING:
        words = e.cn.split(" ")
        lines = [
            f"dn: uid={e.uid},{people_dn}",
            "objectClass: inetOrgPerson",
            f"uid: {e.uid}",
            f"cn: {e.cn}",
            f"sn: {words[0]}",
            f"givenName: {' '.join(words[1:])}",
            f"mail: {e.uid}@{DOMAIN}",
            f"ou: {e.org}",
            "userPassword: {SSHA}legacy-not-a-real-hash",
        ]
        if e.employee_number:
            lines.append(f"employeeNumber: {e.employee_number}")
        if e.title:
            lines.append(f"title: {e.title}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
