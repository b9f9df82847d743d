"""Benchmark: what the keyed, durable audit chain costs per record, and how fast it verifies.

Not a test: it prints figures. Run: `python bench/bench_audit.py [RECORDS]` (default 2,000
records written one by one, then a log of 24 monthly files of RECORDS/24 * 50 records verified).
It writes in a temporary folder on the same filesystem as the current directory, so the
``fdatasync``/``fsync`` costs are the disk's.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from connectors.audit import AuditLog, verify_audit


def _write(log: Path, state: Path, n: int, month: tuple[int, int] | None = None) -> float:
    clock = (lambda: datetime(*month, 15, tzinfo=UTC)) if month else (lambda: datetime.now(UTC))
    audit = AuditLog(log, state, keep_months=36, clock=clock)
    t0 = time.perf_counter()
    for i in range(n):
        audit.record(
            run_id="20261126T020000Z-000000abcd",
            action="create",
            uid=f"nguoi{i}.skhcn",
            dn=f"uid=nguoi{i}.skhcn,ou=people,dc=caobang,dc=gov,dc=vn",
            attributes={"cn": [f"Trần Văn Người {i}"], "mail": [f"nguoi{i}.skhcn@caobang.gov.vn"]},
            reason="new on the roster",
            article="caobang-2025 Đ7.1",
            result="ok",
        )
    audit.close()
    return time.perf_counter() - t0


def main(records: int = 2000) -> None:
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix=".bench-audit-") as tmp:
        root = Path(tmp)
        seconds = _write(root / "a" / "audit.jsonl", root / "a" / "state", records)
        print(
            f"write: {records} records in {seconds:.2f} s = {seconds / records * 1000:.2f} ms "
            "per record (record fdatasync'd, head replaced and its folder fsync'd)"
        )
        log, state = root / "b" / "audit.jsonl", root / "b" / "state"
        per_month = max(1, records // 24) * 50
        for m in range(24):
            _write(log, state, per_month, month=(2025 + m // 12, m % 12 + 1))
        t0 = time.perf_counter()
        AuditLog(log, state, keep_months=36, clock=lambda: datetime(2026, 12, 1, tzinfo=UTC))
        opened = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = verify_audit(log, state)
        seconds = time.perf_counter() - t0
        assert result.ok, result.problems
        size = sum(p.stat().st_size for p in log.parent.iterdir()) / 1e6
        print(
            f"verify: {result.records} records in {result.files} files ({size:.0f} MB) in "
            f"{seconds:.2f} s = {result.records / seconds:,.0f} records/s"
        )
        print(f"open (lock, head, rotation, retention check over 24 files): {opened * 1000:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
