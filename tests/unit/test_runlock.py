"""The run lock is let go whenever taking it fails midway (found by an attack: a full disk
failed the holder's line after the flock, the descriptor was kept, and the daemon waited on
its own lock until a restart)."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from connectors.runlock import LockBusy, RunLock, looking
from syncd.errors import SyncdError


def test_a_lock_whose_holder_line_cannot_be_written_is_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "pwrite", full)
        with pytest.raises(OSError, match="No space"):
            RunLock(tmp_path, "reconcile", timeout=0).acquire()
    # space freed: the next run takes it at once (flock conflicts between two descriptors
    # of one process too, so a descriptor kept locked would refuse it)
    with RunLock(tmp_path, "reconcile", timeout=0):
        pass


def test_a_command_looking_sees_the_runs_holder_and_no_run_starts_while_it_looks(
    tmp_path: Path,
) -> None:
    """A plan reads the journals while it looks (``looking``, a shared lock): a run that
    tried then would have its open journal taken for a dead run's (found by an attack: a
    restore that began after a plan asked and ended before its end). A run holding the lock
    is named; nothing is made when no run ever held it."""
    with looking(tmp_path) as holder:
        assert holder is None
    assert not (tmp_path / "run.lock").exists()
    with RunLock(tmp_path, "syncd restore lanlt.skhcn", timeout=0), looking(tmp_path) as holder:
        assert holder is not None and "syncd restore lanlt.skhcn" in holder
        assert f"pid {os.getpid()}" in holder
    with looking(tmp_path) as holder:
        assert holder is None
        tried = os.open(tmp_path / "run.lock", os.O_RDWR)
        try:  # what a run starting now does first: refused while the plan looks
            with pytest.raises(BlockingIOError):
                fcntl.flock(tried, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(tried)


def test_a_run_with_no_wait_left_waits_a_moment_for_a_command_looking(tmp_path: Path) -> None:
    """Found by an attack: plans asking in a loop failed runs of ``--wait 0`` at once, their
    message "pid None (None, since None)". A lock held shared by a command that says nothing
    is waited for a moment whatever the wait; a run's is refused at once, named."""
    with RunLock(tmp_path, "first"):
        pass
    inside = threading.Event()

    def look() -> None:
        with looking(tmp_path) as holder:
            assert holder is None
            inside.set()
            time.sleep(0.3)

    looker = threading.Thread(target=look)
    looker.start()
    try:
        assert inside.wait(5)
        with RunLock(tmp_path, "reconcile", timeout=0):
            pass
    finally:
        looker.join()
    busy = pytest.raises(LockBusy, match=r"pid \d+ \(syncd reconcile \(the daemon\)")
    with RunLock(tmp_path, "syncd reconcile (the daemon)"), busy:
        RunLock(tmp_path, "reconcile", timeout=0).acquire()


def test_a_run_lock_that_is_a_fifo_or_a_link_neither_hangs_nor_blinds_a_plan(
    tmp_path: Path,
) -> None:
    """Found by an attack: a FIFO at ``run.lock`` hung every plan and check in its open
    (and a run failed with an internal error); a link there, which a run follows, left
    plans blind to the run holding it."""
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "run.lock")
    with looking(fifo) as holder:  # at once
        assert holder is None
    with pytest.raises(SyncdError, match="not a regular file") as refused:
        RunLock(fifo, "reconcile", timeout=0).acquire()
    assert not isinstance(refused.value, LockBusy)  # exit 2: the host's to mend
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "run.lock").symlink_to(tmp_path / "elsewhere.lock")
    with RunLock(linked, "syncd reconcile", timeout=0), looking(linked) as holder:
        assert holder is not None and "syncd reconcile" in holder
