"""A full disk's error names the file syncd was writing: "No space left on device" alone does
not tell the operator which disk filled (the state directory, the outbox with the slips and
the audit log may each be on a disk of its own). Writes to /dev/full get the kernel's own
ENOSPC."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.audit import AuditLog, write_synced
from connectors.journal import Journal
from syncd.model import Action, ActionKind, Plan

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def test_a_write_to_a_full_disk_raises_enospc_naming_the_file() -> None:
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as raised:
            write_synced(fd, b"a line\n", "/var/lib/syncd/state/journal/r.jsonl")
    finally:
        os.close(fd)
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == "/var/lib/syncd/state/journal/r.jsonl"
    assert "/var/lib/syncd/state/journal/r.jsonl" in str(raised.value)


def test_the_run_journal_on_a_full_disk_names_its_file(tmp_path: Path) -> None:
    action = Action(ActionKind.CREATE, "u0", "skhcn", "new", "caobang-2025 Đ7.1", full_name="A")
    journal = Journal(tmp_path, "run-1")
    journal.begin(Plan(actions=(action,), now=NOW))
    assert journal._fd is not None
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, journal._fd)  # the journal's descriptor now writes to a full disk
    os.close(full)
    with pytest.raises(OSError) as raised:
        journal.started([(0, action)])
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(journal.path)


def test_the_audit_log_on_a_full_disk_names_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    audit = AuditLog(log, tmp_path / "state", clock=lambda: NOW)
    audit.record(run_id="r1", action="create", uid="u0.skhcn", result="ok")  # the key, the log
    real = os.write

    def full(fd: int, data: bytes) -> int:  # the log's own file only
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(log):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as raised:
        audit.record(run_id="r1", action="create", uid="u1.skhcn", result="ok")
        audit.commit()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(log)
