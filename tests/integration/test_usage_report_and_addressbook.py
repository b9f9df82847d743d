"""What the leadership and the public receive, made by the real CLI from a real directory and
audit log: the report on mailbox use (Cao Bằng 2025 Đ11.3, Cao Bằng 2011 Đ17) and each
organisation's published address list (Cao Bằng 2011 Đ6, Hưng Yên Đ11.5).

The expected figures are counted here from what the test did, not from syncd's code; the XLSX
is read back with openpyxl, the CSV as Excel reads it, the vCard with vobject, and each HTML
page is rendered by headless Chromium.
"""

from __future__ import annotations

import csv
import grp
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import vobject
from ldap3 import Connection
from openpyxl import load_workbook

from connectors import runner
from connectors.config import DEFAULT_TIMEZONE
from syncd.model import ActionKind
from tests.browser import screenshot_colours
from tests.conftest import MakeConfig
from tests.e2e.test_cli_operator import syncd
from tests.helpers import write_roster

NOW = datetime.now(UTC)


def _made(out: Path, org: str, suffix: str) -> tuple[Path, datetime]:
    """The report file of ``org`` and the province's day it was made, which names it. Not
    known before the command runs: a run crossing midnight in Việt Nam (17:00 UTC) made
    tomorrow's file while the name expected was counted at the module's import."""
    [path] = out.glob(f"baocao-{NOW.year}0101-*-{org}.{suffix}")
    made = datetime.strptime(path.name.split("-")[2], "%Y%m%d")
    zone = ZoneInfo(DEFAULT_TIMEZONE)
    days = {NOW.astimezone(zone).date(), datetime.now(UTC).astimezone(zone).date()}
    assert made.date() in days, (path.name, days)
    return path, made


ROWS = [
    "E1,Đàm Văn Hùng,skhcn,Văn phòng Sở,Chánh Văn phòng,,,",
    "E2,Lê Thị Mai,skhcn,Văn phòng Sở,Chuyên viên,,,",
    "E3,Nông Văn Đạt,skhcn,,,,,",
    "E4,Hoàng Thị Ánh,syt,,,,,",
    "E5,Bế Văn Sơn,syt,,,,,",
]


def _province(make_config: MakeConfig, tmp_path: Path, profile: str = "caobang-2025") -> Path:
    """Five people hired ten days ago; since then one retired (E3), one moved skhcn → syt
    (E2), one was locked as compromised (E4); E1 logs in."""
    cfg = make_config(profile=profile)
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", ROWS)], now=NOW - timedelta(days=10))
    later = [
        ROWS[0],
        "E2,Lê Thị Mai,syt,,Chuyên viên,,,",
        "E3,Nông Văn Đạt,skhcn,,,,Nghỉ hưu,",
        ROWS[3],
        ROWS[4],
    ]
    runner.run(cfg, rosters=[write_roster(tmp_path / "b.csv", later)], now=NOW - timedelta(days=5))
    uid = "anhht.syt" if profile == "caobang-2025" else "anhht"
    runner.operator_action(cfg, uid, ActionKind.LOCK, "compromised", "Đ8.2b")
    return tmp_path / "syncd.yaml"


def test_the_yearly_report_counts_what_the_audit_log_and_the_directory_say(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = _province(make_config, tmp_path)
    out = tmp_path / "baocao"
    done = syncd(cfg, "report", "--year", str(NOW.year), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout[done.stdout.index("{") :])
    assert figures["articles"] == ["caobang-2025 Đ11.3"]
    skhcn, syt = figures["organisations"]["skhcn"], figures["organisations"]["syt"]
    # created in the period: three in skhcn, two in syt (E2 was created in skhcn)
    assert (skhcn["created"], syt["created"]) == (3, 2)
    assert (skhcn["moved_out"], syt["moved_in"]) == (1, 1)
    assert skhcn["revoked"] == 1 and skhcn["by_state"] == {"active": 1, "revoked": 1}
    assert syt["by_state"] == {"active": 2, "locked": 1}
    assert syt["locked"] == [
        {"reason": "bị lộ mật khẩu, nhiễm virus, bị chiếm quyền", "article": "Đ8.2b", "count": 1}
    ]
    assert figures["province"]["created"] == 5
    # nobody has logged in: every mailbox that is not revoked counts as never used
    assert figures["province"]["never_logged_in"] == 4
    assert set(skhcn["offices"]) == {"Văn phòng Sở", ""}
    # the offices' rows add up to their organisation's (E2 left the Văn phòng Sở)
    for org in (skhcn, syt):
        for key in ("created", "moved_out", "moved_in", "revoked"):
            assert sum(o[key] for o in org["offices"].values()) == org[key], (key, org)
    assert skhcn["offices"]["Văn phòng Sở"]["moved_out"] == 1
    assert figures["notes"] == []

    book = load_workbook(_made(out, "skhcn", "xlsx")[0])
    sheet = book["Báo cáo"]
    texts = [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
    assert any("Sở Khoa học và Công nghệ" in t for t in texts)
    assert "Biểu đồ" in book.sheetnames and book["Biểu đồ"]._charts
    province = load_workbook(_made(out, "toantinh", "xlsx")[0])
    rows = [[c.value for c in r] for r in province["Tổng hợp"].iter_rows()]
    assert [str(v) for v in rows[-1][:2]] == ["Toàn tỉnh", "5"]  # five people

    page, _ = _made(out, "toantinh", "html")
    text = page.read_text(encoding="utf-8")
    assert "<svg" in text and "Sở Y tế" in text
    assert screenshot_colours(page, tmp_path / "report.png") > 20


def test_a_creation_whose_run_was_killed_is_one_creation_in_the_report_and_no_reset(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """syncd killed right after a create reached the directory; the next run writes it
    "interrupted" and issues a new one-time password. The report says five created, no
    reset (found by an attack: one creation fewer, one reset more)."""
    make_config()
    cfg, roster = tmp_path / "syncd.yaml", write_roster(tmp_path / "a.csv", ROWS)
    dead = syncd(
        cfg, "reconcile", "--roster", str(roster), env={"SYNCD_CRASH_AT": "directory call:1"}
    )
    assert dead.returncode == -9, dead.stderr
    again = syncd(cfg, "reconcile", "--roster", str(roster))
    assert again.returncode == 0, again.stdout + again.stderr
    lines = (tmp_path / "state" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(x) for x in lines]
    assert any(r.get("result") == "interrupted" for r in records), records
    done = syncd(cfg, "report", "--year", str(NOW.year), "--out", str(tmp_path / "bc"), "--json")
    assert done.returncode == 0, done.stderr
    province = json.loads(done.stdout[done.stdout.index("{") :])["province"]
    assert (province["created"], province["resets"], province["restored"]) == (5, 0, 0)


def test_a_transfer_whose_run_was_killed_counts_in_both_organisations(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """syncd killed right after the move reached the directory: the next run writes it
    "interrupted" with where the entry is; the report counts it out of skhcn and into syt
    (found by an attack: counted nowhere, the person already among syt's accounts)."""
    make_config()
    cfg = tmp_path / "syncd.yaml"
    assert (
        syncd(cfg, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", ROWS))).returncode
        == 0
    )
    moved = write_roster(
        tmp_path / "b.csv", [ROWS[0], "E2,Lê Thị Mai,syt,,Chuyên viên,,,", *ROWS[2:]]
    )
    dead = syncd(
        cfg, "reconcile", "--roster", str(moved), env={"SYNCD_CRASH_AT": "directory call:1"}
    )
    assert dead.returncode == -9, dead.stderr
    assert syncd(cfg, "reconcile", "--roster", str(moved)).returncode == 0
    lines = (tmp_path / "state" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    [cut] = [r for r in map(json.loads, lines) if r.get("result") == "interrupted"]
    assert cut["action"] == "move" and cut["found_uid"] == cut["new_uid"], cut
    done = syncd(cfg, "report", "--year", str(NOW.year), "--out", str(tmp_path / "bc"), "--json")
    figures = json.loads(done.stdout[done.stdout.index("{") :])["organisations"]
    assert (figures["skhcn"]["moved_out"], figures["syt"]["moved_in"]) == (1, 1)


def test_a_report_or_address_list_written_in_a_folder_of_the_operators_leaves_its_mode(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Without publish.folder the files go to the current directory (or ``--out``): syncd
    writes them there and changes nothing of that folder. Found when a ``syncd report`` run
    in a working copy made it 0750, and the other users' tests could no longer enter it."""
    cfg = _province(make_config, tmp_path)
    here = tmp_path / "work"
    here.mkdir(mode=0o755)
    os.chmod(here, 0o755)  # noqa: S103 - a working folder, as an operator has it
    for args in (["report", "--year", str(NOW.year)], ["addressbook"]):
        done = subprocess.run(
            [sys.executable, "-m", "connectors.cli", "-c", str(cfg), *args],
            cwd=here, capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert stat.S_IMODE(here.stat().st_mode) == 0o755, args
    assert any(here.glob("baocao-*.xlsx")) and any(here.glob("danhba-*.vcf"))
    fresh = tmp_path / "moi" / "baocao"  # made by syncd: the leadership's 0750
    assert syncd(cfg, "report", "--year", str(NOW.year), "--out", str(fresh)).returncode == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o750


def test_an_organisations_report_shows_that_organisation_only(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """``--org`` scoped the files, not what was printed (found by an attack): every other
    organisation's figures and the province's sum were on stdout and in the JSON."""
    cfg = _province(make_config, tmp_path)
    out = tmp_path / "baocao"
    done = syncd(cfg, "report", "--year", str(NOW.year), "--org", "syt", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "syt" in done.stdout and "skhcn" not in done.stdout and "(province)" not in done.stdout
    done = syncd(
        cfg, "report", "--year", str(NOW.year), "--org", "syt", "--json", "--out", str(out)
    )
    figures = json.loads(done.stdout[done.stdout.index("{") :])
    assert set(figures["organisations"]) == {"syt"} and "province" not in figures
    # the page says the states are the day it was made, the changes the period's
    path, made = _made(out, "syt", "html")
    page = path.read_text(encoding="utf-8")
    assert f"tại ngày lập báo cáo ({made:%d/%m/%Y})" in page


def test_a_report_for_an_unknown_organisation_is_one_clear_line(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    make_config()
    done = syncd(tmp_path / "syncd.yaml", "report", "--year", str(NOW.year), "--org", "nope")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"Error: --org 'nope': no such organisation in {tmp_path / 'orgs.yaml'}"
    ]


def test_the_address_list_shows_only_mailboxes_that_receive_mail_in_every_format(
    make_config: MakeConfig, tmp_path: Path, admin: Connection
) -> None:
    cfg = _province(make_config, tmp_path, profile="caobang-2011")
    out = tmp_path / "danhba"
    done = syncd(cfg, "addressbook", "--out", str(out))
    assert done.returncode == 0, done.stderr
    # skhcn: its own mailbox, its offices', then E1 (E2 moved, E3 retired: revoked)
    raw = (out / "danhba-skhcn.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the mark
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    addresses = [r[1] for r in rows[1:]]
    assert addresses[0] == "sokhcn@test.gov.vn"
    assert "hungdv@test.gov.vn" in addresses
    assert not any(a.startswith(("datnv", "mailt")) for a in addresses)
    assert ["Đàm Văn Hùng", "hungdv@test.gov.vn", "Văn phòng Sở", "Chánh Văn phòng"] in rows
    # syt: E2 moved in; the locked mailbox (compromised) still receives mail under this
    # profile (locked_receives_mail), so its address is still published
    syt = list(csv.reader(io.StringIO((out / "danhba-syt.csv").read_text("utf-8-sig"))))
    assert [r[1] for r in syt[1:]] == [
        "soyte@test.gov.vn",
        "anhht@test.gov.vn",
        "mailt@test.gov.vn",
        "sonbv@test.gov.vn",
    ]  # the organisation first, then people by given name: Ánh, Mai, Sơn

    vcf = (out / "danhba-skhcn.vcf").read_text(encoding="utf-8")
    assert "VERSION:3.0" in vcf and "KIND:" not in vcf  # KIND is vCard 4.0 only
    cards = list(vobject.readComponents(vcf))
    hung = next(c for c in cards if c.fn.value == "Đàm Văn Hùng")
    assert hung.email.value == "hungdv@test.gov.vn" and hung.n.value.given == "Hùng"

    book = load_workbook(out / "danhba-skhcn.xlsx")
    cells = [c.value for row in book.active.iter_rows() for c in row]
    assert "Đàm Văn Hùng" in cells and any("caobang-2011 Đ6" in str(v) for v in cells)

    assert screenshot_colours(out / "danhba-skhcn.html", tmp_path / "book.png") > 20


def test_the_leadership_reads_the_reports_and_anybody_the_address_lists(
    make_config: MakeConfig, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Found by an attack: under the service's umask (0077) the published folders came out
    0700 root:root and publish.group did nothing, so nobody but syncd could open them."""
    group = "adm"  # a group every Debian host has, standing for the leadership's
    # outside pytest's own 0700 folders, so that other users can walk to it at all
    root = Path(tempfile.mkdtemp(prefix="syncd-publish-"))
    root.chmod(0o711)
    request.addfinalizer(lambda: shutil.rmtree(root))
    cfg = make_config(extra=f"publish:\n  folder: {root}/published\n  group: {group}\n")
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", ROWS[:2])])
    conf = str(tmp_path / "syncd.yaml")

    def run(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "connectors.cli", "-c", conf, *args],
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=lambda: os.umask(0o077),  # as the unit runs it
        )
        assert done.returncode == 0, done.stderr

    run("report", "--year", str(NOW.year))
    run("addressbook", "--format", "csv")
    gid = grp.getgrnam(group).gr_gid
    reports, books = root / "published" / "baocao", root / "published" / "danhba"
    assert stat.S_IMODE((root / "published").stat().st_mode) == 0o755
    assert (stat.S_IMODE(reports.stat().st_mode), reports.stat().st_gid) == (0o750, gid)
    for made in reports.iterdir():
        assert (stat.S_IMODE(made.stat().st_mode), made.stat().st_gid) == (0o640, gid)
    assert stat.S_IMODE(books.stat().st_mode) == 0o755
    book = books / "danhba-skhcn.csv"
    assert stat.S_IMODE(book.stat().st_mode) == 0o644
    # a member of the group, and nobody at all, as the attack checked it
    member = ["setpriv", "--reuid=65534", f"--regid={gid}", "--clear-groups"]
    page = next(reports.glob("*-toantinh.html"))
    assert subprocess.run([*member, "cat", str(page)], capture_output=True).returncode == 0
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    assert subprocess.run([*nobody, "cat", str(page)], capture_output=True).returncode != 0
    assert subprocess.run([*nobody, "cat", str(book)], capture_output=True).returncode == 0
