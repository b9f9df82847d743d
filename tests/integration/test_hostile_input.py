"""A generated corpus of broken and hostile roster files, run through a real reconcile.

Each file is rejected with a clear report (or, where valid, handled); 0 crashes; a rejected
file changes nothing in the directory. Plus hypothesis fuzzing of the reader and validator.
"""

from __future__ import annotations

import codecs
import io
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldap3 import Connection
from openpyxl import Workbook

from connectors import runner
from connectors.loading import load_catalogue
from connectors.outcome import EXIT_BAD_INPUT, report_text
from connectors.roster import read_table
from syncd.intake import read_roster
from syncd.naming.legacy import unicode_to_tcvn3
from syncd.roster import RosterError
from tests.conftest import ORGS_YAML, MakeConfig
from tests.helpers import HEADER, entries

GOOD_ROW = "E1,Đàm Văn Hùng,skhcn,,,,,"


def _xlsx(rows: Sequence[Sequence[object]]) -> bytes:
    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def corpus() -> Iterator[tuple[str, bytes, bool]]:
    """(file name, content, is it valid?) — at least 100 cases."""
    rng = random.Random(6)
    good = _xlsx([HEADER.strip().split(","), GOOD_ROW.split(",")])
    for i, cut in enumerate(range(100, len(good), max(1, len(good) // 12))):
        yield f"truncated-{i}.xlsx", good[:cut], False
    for i in range(10):
        junk = bytearray(good)
        for _ in range(40):
            junk[rng.randrange(200, len(junk))] = rng.randrange(256)
        yield f"corrupt-{i}.xlsx", bytes(junk), False
    for i in range(10):
        yield (
            f"junk-{i}.csv",
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000))),
            False,
        )
    yield "pdf-in-disguise.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)), False
    yield "elf.xlsx", b"\x7fELF\x02\x01\x01" + bytes(500), False
    text = HEADER + GOOD_ROW + "\n"
    yield (
        "mixed-encodings.csv",
        text.encode()
        + "E2,Lê Văn Tám,skhcn,,,,,\n".encode("latin-1", "replace")
        + "E3,Trần Thị Hà,sở,,,,,\n".encode("utf-16-le"),
        False,
    )
    yield "utf16-no-bom.csv", text.encode("utf-16-le"), False
    yield "utf32.csv", codecs.BOM_UTF32_LE + text.encode("utf-32-le"), False
    yield (
        "big-50mb.csv",
        (HEADER + (GOOD_ROW + "\n") * 1_300_000).encode()[: 50 * 1024 * 1024],
        False,
    )
    yield "empty.csv", b"", False
    yield "only-header.csv", HEADER.encode(), False
    yield "only-blank-rows.csv", (HEADER + ",,,,,,,\n" * 5).encode(), False
    yield "whitespace.csv", b" \n\t\n  \n", False
    yield "one-row.csv", text.encode("utf-8-sig"), True
    yield "one-row.xlsx", good, True
    yield "one-row-tcvn3.csv", unicode_to_tcvn3(text).encode("latin-1"), True
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        yield f"bom-{enc}.csv", bom + text.replace(",", "\t").encode(enc), True
    yield "double-bom.csv", codecs.BOM_UTF8 * 2 + text.encode(), None  # type: ignore[misc]
    yield "dup-headers.csv", ("Họ và tên," + HEADER + "X," + GOOD_ROW + "\n").encode(), True
    yield (
        "dup-headers-2.csv",
        ("Mã cán bộ,Mã cán bộ,Họ và tên,Mã đơn vị\nE1,E9,Lê Văn A,skhcn\n").encode(),
        True,
    )
    yield "missing-column.csv", "Mã cán bộ,Mã đơn vị\nE1,skhcn\n".encode(), False
    yield "no-header-names.csv", b",,,\n1,2,3,4\n", False
    for i, formula in enumerate(
        ['=HYPERLINK("http://x","Lê")', "+cmd|' /C calc'!A0", "-2+3+cmd", "@SUM(1+1)*cmd", "=1+1"]
    ):
        yield f"formula-{i}.csv", (HEADER + f'E1,"{formula}",skhcn,,,,,\n').encode(), False
    yield "formula-cell.xlsx", _xlsx([HEADER.strip().split(","), ["E1", "=A1&A1", "skhcn"]]), False
    for i, ch in enumerate(["*", "(", ")", "\\", ",", "+", '"', "<", ">", ";", "=", "#", "\x00"]):
        name = f"Nguyễn Văn{ch}An".replace('"', '""')
        yield f"ldap-special-{i}.csv", (HEADER + f'E1,"{name}",skhcn,,,,,\n').encode(), False
    yield "filter-injection.csv", (HEADER + 'E*)(uid=*,"Lê Văn A",skhcn,,,,,\n').encode(), True
    yield "dn-injection-org.csv", (HEADER + 'E1,Lê Văn A,"skhcn,ou=admins",,,,,\n').encode(), False
    yield (
        "very-long-name.csv",
        (HEADER + "E1," + "Nguyễn " * 200 + "An,skhcn,,,,,\n").encode(),
        False,
    )
    yield "very-long-field.csv", (HEADER + "E1," + "A" * 100_000 + ",skhcn,,,,,\n").encode(), False
    for i, name in enumerate(["Nguyễn 😀 An", "👨‍👩‍👧", "Lê \u200fVăn\u202e A"]):
        yield f"emoji-{i}.csv", (HEADER + f"E1,{name},skhcn,,,,,\n").encode(), False
    for i, name in enumerate(["محمد علي", "דוד כהן", "Nguyễn عبد An"]):
        yield f"rtl-{i}.csv", (HEADER + f"E1,{name},skhcn,,,,,\n").encode(), False
    yield "unknown-org.csv", (HEADER + "E1,Lê Văn A,nowhere,,,,,\n").encode(), False
    yield "bad-date.csv", (HEADER + "E1,Lê Văn A,skhcn,,,99/99/9999,,\n").encode(), False
    yield "bad-status.csv", (HEADER + "E1,Lê Văn A,skhcn,,,,đi chơi,\n").encode(), False
    yield "bad-request.csv", (HEADER + "E1,Lê Văn A,skhcn,,,,,xin tiền\n").encode(), False
    yield "dup-employee.csv", (HEADER + GOOD_ROW + "\nE1,Lê Văn A,skhcn,,,,,\n").encode(), False
    yield "empty-employee.csv", (HEADER + ",Lê Văn A,skhcn,,,,,\n").encode(), False
    yield "ragged.csv", (HEADER + "E1,Lê Văn A\nE2\n,,,,,,,,,,,,,,\n").encode(), False
    yield "quote-hell.csv", (HEADER + 'E1,"Lê ""Văn"" A,skhcn\n').encode(), False
    yield "crlf-cr.csv", (HEADER + GOOD_ROW).replace("\n", "\r").encode(), True
    yield "xls.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), False
    for i in range(12):  # random mutations of a valid CSV
        data = bytearray((HEADER + GOOD_ROW + "\n").encode())
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.choice(b',"\n\x00\xff=*(;')
        yield f"mutated-{i}.csv", bytes(data), None  # type: ignore[misc]


CASES = list(corpus())


def test_the_corpus_has_at_least_100_files() -> None:
    assert len(CASES) >= 100


def test_every_hostile_file_is_reported_never_crashes_and_never_half_applies(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config(extra="safety: {max_org_drop_share: 1, max_revoke_share: 1}\n")
    folder = tmp_path / "corpus"
    folder.mkdir()
    outcomes = {}
    wrong: list[str] = []
    for name, data, valid in CASES:
        path = folder / name
        path.write_bytes(data)
        before = entries(admin, base_dn)
        outcome = runner.run(cfg, rosters=[path], lock_timeout=5)  # must not raise
        report = report_text(outcome, [path])
        if outcome.rejected:
            if outcome.exit_code != EXIT_BAD_INPUT:
                wrong.append(f"{name}: exit {outcome.exit_code}")
            if entries(admin, base_dn) != before:
                wrong.append(f"{name}: a rejected file changed the directory")
            if not any(name in e for r in outcome.rejected for e in r.errors):
                wrong.append(f"{name}: the report does not name the file: {report}")
            if valid is True:
                wrong.append(f"{name}: a valid file was rejected: {report}")
        elif valid is False or outcome.exit_code != 0:
            wrong.append(f"{name}: accepted (exit {outcome.exit_code}): {report}")
        outcomes[name] = outcome
        for leftover in [x for x in entries(admin, base_dn) if "." in x and "skhcn" in x]:
            admin.delete(f"uid={leftover},{base_dn}")  # each file starts from the same place
    assert wrong == []
    assert sum(1 for o in outcomes.values() if o.rejected) >= 80


CAT = None


def _catalogue(tmp: Path):  # type: ignore[no-untyped-def]
    global CAT
    if CAT is None:
        (tmp / "orgs.yaml").write_text(ORGS_YAML, "utf-8")
        CAT = load_catalogue(tmp / "orgs.yaml")
    return CAT


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.lists(st.lists(st.text(max_size=30), max_size=9), max_size=8).map(
            lambda rows: "\n".join([HEADER.strip(), *(",".join(r) for r in rows)]).encode()
        ),
    )
)
def test_fuzzed_rosters_give_a_snapshot_or_a_roster_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        snap = read_roster(read_table(path), _catalogue(tmp_path))
    except RosterError as exc:
        assert "fuzz.csv" in str(exc)
        return
    assert snap.rejected or all(p.employee_number and p.full_name for p in snap.people)
    for err in snap.errors:
        assert str(err).startswith("fuzz.csv: row ")


# Issue "A safe inbox", item 3: bytes that used to escape the reader as UnicodeDecodeError (a
# traceback, exit 1) must give exit 2 and one clear line naming the file, from the real command.
_TEXT = HEADER + GOOD_ROW + "\n"
UNDECODABLE = [
    ("bom-then-bad-utf8.csv", codecs.BOM_UTF8 + _TEXT.encode() + b"E2,\xff\xfe\xc3(,skhcn\n"),
    ("odd-length-utf16.csv", codecs.BOM_UTF16_LE + _TEXT.encode("utf-16-le") + b"A"),
    ("lone-surrogate.csv", codecs.BOM_UTF16_LE + _TEXT.encode("utf-16-le") + b"\x00\xd8A\x00"),
    ("nul-bytes.csv", _TEXT.encode() + b"E2,L\x00,skhcn,,,,,\n"),
    ("truncated.xlsx", _xlsx([HEADER.strip().split(","), GOOD_ROW.split(",")])[:900]),
]


def _syncd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", "-c", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(("name", "data"), UNDECODABLE, ids=[n for n, _ in UNDECODABLE])
def test_undecodable_files_give_exit_2_and_one_clear_line_from_the_cli(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str, name: str, data: bytes
) -> None:
    make_config()
    cfg = tmp_path / "syncd.yaml"
    path = tmp_path / name
    path.write_bytes(data)
    before = entries(admin, base_dn)
    for command in ("plan", "reconcile"):
        result = _syncd(cfg, command, "--roster", str(path))
        output = result.stdout + result.stderr
        assert result.returncode == 2, (command, output)
        assert "Traceback" not in output and "UnicodeDecodeError" not in output, output
        [line] = [x.strip() for x in output.splitlines() if x.strip().startswith(f"{name}: ")]
        assert ("byte " in line or "XLSX" in line) and "\x00" not in line, line
    assert entries(admin, base_dn) == before
