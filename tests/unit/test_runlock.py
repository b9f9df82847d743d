"""The run lock is let go whenever taking it fails midway (found by an attack: a full disk
failed the holder's line after the flock, the descriptor was kept, and the daemon waited on
its own lock until a restart)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from connectors.runlock import RunLock


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
