"""The audit log's keyed chain, its head outside the log, rotation, retention and history.

Each test writes through the real ``AuditLog`` into a temporary folder (a log folder and a
state folder, as on a host: /var/log/syncd and /var/lib/syncd/state), damages the files as an
intruder, a careless admin or a crash would, and checks what ``verify_audit`` says.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.audit import (
    GENESIS,
    AuditError,
    AuditLog,
    Verification,
    _records,
    history,
    read_anchors,
    read_head,
    verify_audit,
)
from connectors.config import ConfigError, parse_config, render_example

LEGACY = Path(__file__).parent / "data" / "legacy-audit"  # written by the unkeyed code (1c45875)


@dataclass
class Host:
    log: Path
    state: Path

    def write(self, n: int, *, month: tuple[int, int] = (2026, 11), keep: int = 24) -> None:
        at = datetime(*month, 15, 2, 0, tzinfo=UTC)
        audit = AuditLog(self.log, self.state, keep_months=keep, clock=lambda: at)
        try:
            for i in range(n):
                audit.record(run_id="r1", action="create", uid=f"u{i}.skhcn", result="ok")
        finally:
            audit.close()

    def verify(self) -> Verification:
        return verify_audit(self.log, self.state)

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()

    def put(self, lines: list[str]) -> None:
        self.log.write_text("".join(x + "\n" for x in lines), encoding="utf-8")


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path / "log" / "audit.jsonl", tmp_path / "state")


def only_problem(v: Verification) -> str:
    assert len(v.problems) == 1, v.problems
    return v.problems[0]


def test_an_untouched_log_verifies_across_two_writers(host: Host) -> None:
    host.write(3)
    host.write(2)  # a second run continues the chain
    v = host.verify()
    assert v.ok, v.problems
    assert (v.records, v.files, v.first, v.last.seq) == (5, 1, 1, 5)
    assert [json.loads(x)["seq"] for x in host.lines()] == [1, 2, 3, 4, 5]
    assert read_head(host.state) == v.last


def test_a_log_of_spaced_lines_continued_with_compact_ones_verifies_and_reads_alike(
    host: Host,
) -> None:
    """A record's line is now the canonical form its MAC covers, the MAC last (one encoding
    per record: the runs of creates write one per account); the lines an older syncd wrote
    (``", "`` and ``": "``, keys sorted) and the new ones make one chain, and read alike."""
    host.write(2)
    host.put([json.dumps(json.loads(x), ensure_ascii=False, sort_keys=True) for x in host.lines()])
    assert '"seq": 1' in host.lines()[0]  # as the older syncd wrote it
    host.write(2)
    v = host.verify()
    assert v.ok and v.records == 4, v.problems
    assert host.lines()[2].startswith('{"action":"create","event":"audit",')
    assert host.lines()[3].endswith(f',"mac":"{v.last.mac}"}}')
    records = [json.loads(x) for x in host.lines()]
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[3]["mac"] == v.last.mac and records[2]["uid"] == "u0.skhcn"


def test_two_open_writers_interleave_into_one_chain(host: Host) -> None:
    """``syncd decide`` may write while the daemon's run does: one chain, no fork."""
    a = AuditLog(host.log, host.state)
    b = AuditLog(host.log, host.state)
    for i in range(3):
        a.record(action="create", uid=f"a{i}", result="ok")
        b.record(action="decide", uid=f"b{i}", result="ok")
    a.close()
    b.close()
    v = host.verify()
    assert v.ok and v.records == 6, v.problems


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert", "swap"])
def test_an_edited_deleted_inserted_or_swapped_record_is_named(host: Host, tamper: str) -> None:
    host.write(5)
    lines = host.lines()
    if tamper == "edit":
        lines[2] = lines[2].replace("u2.skhcn", "u9.skhcn")
    elif tamper == "delete":
        del lines[2]
    elif tamper == "insert":
        fake = json.loads(lines[1])
        fake["uid"] = "intruder"
        lines.insert(2, json.dumps(fake))
    else:
        lines[1], lines[2] = lines[2], lines[1]
    host.put(lines)
    v = host.verify()
    assert not v.ok
    expected = {
        "edit": "audit.jsonl:3 (record 3): record edited or not written by syncd",
        "delete": "audit.jsonl:3 (record 4): record 3 missing (deleted)",
        "insert": "audit.jsonl:3 (record 2): out of order or repeated (record 3 expected)",
        "swap": "audit.jsonl:2 (record 3): record 2 missing (deleted)",
    }[tamper]
    assert v.problems[0].startswith(expected), v.problems


@pytest.mark.parametrize(
    "edit",
    [
        (
            "forged key first",
            lambda x: x.replace('"uid":"u2.skhcn"', '"uid":"evil.skhcn","uid":"u2.skhcn"'),
        ),
        ("spaces", lambda x: x.replace('","', '", "')),
        ("escape", lambda x: x.replace('"uid":"u2', '"uid":"\\u0075\\u0032')),
        ("fake mac first", lambda x: x.replace('"mac":', '"mac":"00","mac":')),
    ],
    ids=lambda e: e[0],
)
def test_a_line_edited_without_changing_its_record_is_named(
    host: Host, edit: tuple[str, Callable[[str], str]]
) -> None:
    """Found by an attack: JSON keeps a key's last value, so a forged ``uid`` put before the
    real one kept the MAC right while a grep of the log showed the forged value first; so did
    spaces, reordered keys and escapes. A keyed record's line must be byte for byte what syncd
    writes (either of its two forms)."""
    host.write(4)
    lines = host.lines()
    edited = edit[1](lines[2])
    assert edited != lines[2] and json.loads(edited)["uid"] == "u2.skhcn"
    host.put([*lines[:2], edited, *lines[3:]])
    assert [p for p in host.verify().problems] == [
        "audit.jsonl:3 (record 3): line edited (spaces, order, escapes or a key given twice: not "
        "as syncd writes it)"
    ]


def test_a_field_the_chain_writes_is_refused_from_a_caller(host: Host) -> None:
    """Found by an attack: a ``mac`` given by a caller was written twice, and the untouched log
    failed to verify."""
    audit = AuditLog(host.log, host.state)
    try:
        for field in ("mac", "seq", "prev", "hash"):
            with pytest.raises(ValueError, match="the chain's own"):
                audit.record(action="create", uid="u1.skhcn", result="ok", **{field: "x"})
    finally:
        audit.close()


def test_a_line_separator_inside_a_value_keeps_the_record_whole(host: Host) -> None:
    """Values are written raw (``ensure_ascii=False``); U+2028, U+0085 and a form feed are not
    line ends to syncd's readers (found by an attack: the record failed to verify and left
    `syncd history`)."""
    audit = AuditLog(host.log, host.state)
    try:
        audit.record(action="lock", uid="u1.skhcn", note="a\u2028b\x85c\x0cd", result="ok")
        audit.record(action="lock", uid="u2.skhcn", result="ok")
    finally:
        audit.close()
    v = host.verify()
    assert v.ok and v.records == 2, v.problems
    assert [r["note"] for r in _records(host.log) if r["uid"] == "u1.skhcn"] == [
        "a\u2028b\x85c\x0cd"
    ]


@pytest.mark.parametrize("n", [1, 3])
def test_deleting_the_newest_records_is_found(host: Host, n: int) -> None:
    host.write(5)
    host.put(host.lines()[:-n])
    problem = only_problem(host.verify())
    assert f"audit.jsonl: ends at record {5 - n}" in problem
    assert "head" in problem and f"{6 - n}" in problem


def test_an_emptied_log_is_found(host: Host) -> None:
    host.write(3)
    host.log.write_bytes(b"")
    assert "audit.jsonl: empty, but the head" in only_problem(host.verify())


def test_a_deleted_log_is_found(host: Host) -> None:
    host.write(3)
    host.log.unlink()
    problem = only_problem(host.verify())
    assert "audit.jsonl: missing, but the head" in problem and "records 1–3 missing" in problem


def _sha256_chain(lines: list[str], field: str) -> list[str]:
    """Recompute a plain sha256 chain over (edited) records, as somebody who knows the old
    algorithm but not the key would."""
    prev, out = GENESIS, []
    for line in lines:
        rec = {k: v for k, v in json.loads(line).items() if k not in ("hash", "mac")}
        rec["prev"] = prev
        body = json.dumps(rec, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        rec[field] = prev = hashlib.sha256((prev + "\n" + body).encode()).hexdigest()
        out.append(json.dumps(rec, ensure_ascii=False, sort_keys=True))
    return out


@pytest.mark.parametrize("field", ["mac", "hash"])
def test_a_rewrite_with_the_sha256_chain_recomputed_is_found(host: Host, field: str) -> None:
    host.write(4)
    lines = [x.replace("u1.skhcn", "intruder") for x in host.lines()]
    host.put(_sha256_chain(lines, field))
    v = host.verify()
    assert not v.ok
    if field == "mac":  # the keyed layout with sha256 in place of the MAC
        assert v.problems[0].startswith("audit.jsonl:1 (record 1): record edited or not written")
    else:  # the whole log rewritten as an unkeyed (legacy) log: its end is not the head's
        assert "is not the record the head" in v.problems[-1], v.problems


def test_a_logrotate_rename_and_new_file_still_verify(host: Host) -> None:
    """What docs/install.md's old logrotate rule did: rename, a new empty file, compress."""
    host.write(2)
    host.log.rename(host.log.with_name("audit.jsonl.1"))
    host.log.touch(mode=0o600)
    host.write(2)
    with gzip.open(host.log.with_name("audit.jsonl.2.gz"), "wb") as gz:
        gz.write(host.log.with_name("audit.jsonl.1").read_bytes())
    host.log.with_name("audit.jsonl.1").unlink()
    host.log.rename(host.log.with_name("audit.jsonl.1"))
    host.write(1)
    v = host.verify()
    assert v.ok, v.problems
    assert (v.records, v.files) == (5, 3)
    assert [r["uid"] for r in history(host.log, "u0.skhcn")] == ["u0.skhcn"] * 3
    # logrotate's own deletion of the oldest file (rotate N) is a gap, not a retention
    host.log.with_name("audit.jsonl.2.gz").unlink()
    assert "the records before record 3 are missing" in only_problem(host.verify())


def test_a_monthly_rotation_keeps_one_chain_and_a_lost_month_is_found(host: Host) -> None:
    host.write(1, month=(2026, 10))
    host.write(1, month=(2026, 11))
    assert (host.log.parent / "audit.jsonl.2026-10").exists()
    v = host.verify()
    assert v.ok and (v.records, v.files) == (2, 2), v.problems
    (host.log.parent / "audit.jsonl.2026-10").unlink()  # not syncd's retention: a gap
    assert "records before record 2 are missing" in only_problem(host.verify())


def test_retention_prunes_old_months_and_verify_starts_from_the_anchor(host: Host) -> None:
    for month in range(1, 13):
        host.write(2, month=(2025, month), keep=6)
    host.write(1, month=(2026, 1), keep=6)
    kept = sorted(p.name for p in host.log.parent.iterdir())
    # January 2026 keeps the six months before it (July-December 2025) and its own file
    assert kept == ["audit.jsonl", *(f"audit.jsonl.2025-{m:02d}" for m in range(7, 13))], kept
    anchors = read_anchors(host.state)
    assert [a["seq"] for a in anchors] == list(range(2, 13, 2))  # one anchor per pruned month
    v = host.verify()
    assert v.ok, v.problems
    assert v.anchor is not None and v.anchor["seq"] == 12 and v.first == 13
    assert "from the retention anchor at record 12" in v.summary()
    retention = [json.loads(x) for x in host.lines() if '"retention"' in x]
    assert retention and retention[0]["event"] == "audit-chain"
    # a kept month deleted by hand is still a gap
    (host.log.parent / "audit.jsonl.2025-07").unlink()
    assert "records before record 15 are missing" in only_problem(host.verify())


def test_retention_keeps_a_month_whose_chain_is_broken(host: Host) -> None:
    for month in range(1, 9):  # August prunes January
        host.write(1, month=(2025, month), keep=6)
    old = host.log.parent / "audit.jsonl.2025-02"
    old.write_text(old.read_text().replace("u0.skhcn", "intruder"))
    host.write(1, month=(2025, 9), keep=6)  # September would prune February
    assert old.exists()  # evidence is not pruned
    assert "audit.jsonl.2025-02:1 (record 2): record edited" in only_problem(host.verify())


def _crash_writer(host: Host, records: int, crash_at: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from pathlib import Path; from connectors.audit import AuditLog\n"
        "a = AuditLog(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        f"for i in range({records}): a.record(action='create', uid=f'c{{i}}', result='ok')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(host.log), str(host.state)],
        env={**os.environ, "SYNCD_CRASH_AT": crash_at},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_crash_between_record_and_head_is_not_tampering(host: Host) -> None:
    host.write(2)
    proc = _crash_writer(host, 3, "audit written:2")  # killed after record 4, before its head
    assert proc.returncode == -9, proc.stderr
    head = read_head(host.state)
    assert head is not None and head.seq == 3
    v = host.verify()
    assert v.ok, v.problems
    assert v.last.seq == 4 and any("one past the head" in n for n in v.notes), v.notes
    host.write(1)  # the next writer moves the head on and continues after record 4
    v = host.verify()
    assert v.ok and v.last.seq == 5 and not v.notes, (v.problems, v.notes)
    # but the head may lag by that one record only: two records past it are not a crash
    host.put([*host.lines(), *_forged_after(host, 2)])
    assert not host.verify().ok


def test_a_crash_between_a_group_of_records_and_the_head_is_mended_not_tampering(
    host: Host,
) -> None:
    """Group commit: a run's batch of records is synced at once, then the head; killed in
    between, the head is a whole group behind. Verify notes it; the next writer moves the
    head over every record of the group (each chains and carries a good MAC)."""
    host.write(2)
    code = (
        "import sys; from pathlib import Path; from connectors.audit import AuditLog\n"
        "a = AuditLog(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "with a.grouped():\n"
        "    for i in range(5): a.record(action='create', uid=f'g{i}', result='ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(host.log), str(host.state)],
        env={**os.environ, "SYNCD_CRASH_AT": "audit written:1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    head = read_head(host.state)
    assert head is not None and head.seq == 2  # the group is on disk, the head is not moved
    assert len(host.lines()) == 7
    v = host.verify()
    assert v.ok, v.problems
    assert any("records 3–7 past the head" in n for n in v.notes), v.notes
    host.write(1)
    v = host.verify()
    assert v.ok and v.last.seq == 8 and not v.notes, (v.problems, v.notes)
    # forged records after a group are still found: the chain checks each MAC
    host.put([*host.lines(), *_forged_after(host, 3)])
    assert not host.verify().ok


def test_a_head_rolled_back_further_than_one_group_is_found(host: Host) -> None:
    from connectors.audit import GROUP_MAX

    host.write(2)
    old = (host.state / "audit.head").read_bytes()
    host.write(GROUP_MAX + 1)
    (host.state / "audit.head").write_bytes(old)
    assert "the head was rolled back" in only_problem(host.verify())


def _forged_after(host: Host, n: int) -> list[str]:
    """Records past the end that chain by sequence but cannot carry a good MAC."""
    last = json.loads(host.lines()[-1])
    out = []
    for i in range(n):
        rec = {**last, "seq": last["seq"] + 1 + i, "prev": last["mac"], "uid": f"x{i}"}
        out.append(json.dumps(rec))
    return out


def test_a_record_cut_by_a_crash_is_noted_and_removed_by_the_next_writer(host: Host) -> None:
    host.write(2)
    with host.log.open("ab") as fh:
        fh.write(b'{"action": "create", "uid": "half')  # power lost mid-write
    v = host.verify()
    assert v.ok and any("unfinished last line" in n for n in v.notes), (v.problems, v.notes)
    host.write(1)
    v = host.verify()
    assert v.ok and v.records == 3 and not v.notes, (v.problems, v.notes)


def test_a_log_written_before_keying_keeps_verifying_and_is_sealed(host: Host) -> None:
    shutil.copytree(LEGACY, host.log.parent)
    v = host.verify()  # as today's code left it: no key, no head yet
    assert v.ok and (v.records, v.legacy) == (5, 5), v.problems
    assert any("unkeyed" in n for n in v.notes)
    host.write(1, month=(2026, 10))  # the first keyed writer seals it
    records = [json.loads(x) for x in host.lines()]
    seal = records[-2]
    assert (seal["action"], seal["seq"], seal["legacy_records"]) == ("keyed-chain-start", 6, 5)
    assert records[-1]["seq"] == 7
    assert not (host.log.parent / "audit.jsonl.head").exists()
    v = host.verify()
    assert v.ok and (v.records, v.legacy, v.files) == (7, 5, 2), v.problems
    assert [r["action"] for r in history(host.log, "hungdv.syt")] == [
        "create",
        "move",
        "reset-password",
    ]
    # a legacy record edited is found by its hash, as before
    old = host.log.parent / "audit.jsonl.2026-09"
    saved = old.read_text()
    old.write_text(saved.replace("maitt.skhcn", "intruder"))
    assert "audit.jsonl.2026-09:2 (record 2): record was edited" in host.verify().problems[0]
    old.write_text(saved)
    # the legacy part, edited with its sha256 chain recomputed, no longer meets the seal
    current = host.lines()  # 3 legacy records, then the seal and one keyed record
    legacy = [*old.read_text().splitlines(), *current[:3]]
    rewritten = _sha256_chain([x.replace("maitt.skhcn", "intruder") for x in legacy], "hash")
    old.write_text("".join(x + "\n" for x in rewritten[:2]))
    host.put([*rewritten[2:], *current[3:]])
    problem = only_problem(host.verify())
    assert "audit.jsonl:4 (record 6): chain broken" in problem, problem


def test_the_key_is_private_and_the_log_group_readable(host: Host) -> None:
    old = os.umask(0o077)  # the unit's UMask=
    try:
        host.write(1)
    finally:
        os.umask(old)
    assert stat.S_IMODE(host.log.stat().st_mode) == 0o640
    for name in ("audit.key", "audit.head"):
        assert stat.S_IMODE((host.state / name).stat().st_mode) == 0o600
    key = (host.state / "audit.key").read_text().strip()
    assert key not in host.log.read_text()


def test_a_damaged_or_missing_key_is_a_clear_error(host: Host) -> None:
    host.write(2)
    key = host.state / "audit.key"
    saved = key.read_bytes()
    key.write_text("not a key\n")
    for attempt in (host.verify, lambda: host.write(1)):
        with pytest.raises(AuditError, match=r"audit\.key: not an audit key"):
            attempt()
    key.unlink()
    with pytest.raises(AuditError, match=r"audit\.key: the audit key is missing"):
        host.verify()
    with pytest.raises(AuditError, match=r"audit key is missing, but 2 records were sealed"):
        host.write(1)  # never a new key over a sealed chain
    key.write_bytes(saved)
    assert host.verify().ok


def test_a_key_the_user_cannot_read_is_a_clear_error(host: Host) -> None:
    host.write(1)
    (host.state / "audit.key").chmod(0)
    code = (
        "import sys; from pathlib import Path; from connectors.audit import *\n"
        "try: verify_audit(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "except AuditError as e: print(e)\n"
    )
    # root reads any file: ask without the capabilities that let it (util-linux setpriv)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    out = subprocess.run(
        [*drop, sys.executable, "-c", code, str(host.log), str(host.state)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stdout.startswith(f"{host.state / 'audit.key'}: the audit key cannot be read"), (
        out.stdout + out.stderr
    )
    assert "Permission denied" in out.stdout and "service user" in out.stdout


def test_history_follows_a_transfer(host: Host) -> None:
    log = AuditLog(host.log, host.state)
    log.record(action="create", uid="hungdv.skhcn", result="ok")
    log.record(action="create", uid="other.skhcn", result="ok")
    log.record(action="move", uid="hungdv.skhcn", new_uid="hungdv.syt", result="ok")
    log.record(action="lock", uid="hungdv.syt", result="ok")
    log.close()
    assert [r["action"] for r in history(host.log, "hungdv.syt")] == ["create", "move", "lock"]
    assert [r["action"] for r in history(host.log, "hungdv.skhcn")] == ["create", "move", "lock"]


def test_retention_shorter_than_six_months_is_a_config_error() -> None:
    text = render_example().replace("keep_months: 24", "keep_months: 3")
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/syncd/syncd.yaml"))
    assert info.value.issues == [
        f"/etc/syncd/syncd.yaml:{text.splitlines().index('  keep_months: 3') + 1}: "
        "audit.keep_months: 3 must be at least 6 (Tuyên Quang Đ9.1 keeps logs at least 6 months)"
    ]
    assert parse_config(render_example(), Path("/etc/syncd/syncd.yaml")).audit.keep_months == 24
