"""One run at a time per directory: a file lock shared by the daemon and the CLI.

``flock`` on ``<state>/run.lock``; the holder writes who it is (pid, what, since) into the
file, so a second process that times out can say exactly who holds the lock. The kernel drops
the lock when the holder dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from connectors.store import private_dir
from syncd.errors import SyncdError


class LockBusy(SyncdError):
    """Another run holds the lock for longer than we were willing to wait."""


class ChangedMeanwhile(LockBusy):
    """A command that takes no run lock (a plan, ``syncd check``) read syncd's state or its
    directory snapshot while a run that applies changed them: what it worked out mixes the
    two moments, so it says nothing (exit 1, as a busy lock) and asks to be run again."""

    MESSAGE = (
        "a run that applies changed syncd's state or its directory snapshot while this "
        "command was reading them (a plan or a check takes no run lock): nothing was "
        "changed; run it again"
    )

    def __init__(self, holder: str = "") -> None:
        if holder:  # still applying: what it has done so far is not in what was read
            super().__init__(
                f"another syncd run is applying now ({holder}), so what this command read may "
                "be half its work (a plan or a check takes no run lock): nothing was "
                "changed; run it again when that run has ended"
            )
        else:
            super().__init__(self.MESSAGE)


def held_elsewhere(state_dir: Path) -> str | None:
    """Who holds the run lock, when another open of it does (a run applying), else None.
    For a command that takes no lock (a plan, a check) and writes nothing: a shared lock is
    tried and let go at once (a run starting at that instant waits for it a moment), and no
    file is made when there is none (no run ever held it)."""
    path = state_dir / "run.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # none yet (or not ours to open): nobody holds it
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return RunLock.holder_of(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    def __init__(self, state_dir: Path, what: str, timeout: float = 300.0) -> None:
        self.path = private_dir(state_dir) / "run.lock"
        self.what = what
        self.timeout = timeout
        self._fd: int | None = None

    def holder(self) -> str:
        return self.holder_of(self.path)

    @staticmethod
    def holder_of(path: Path) -> str:
        """What the holder of the lock at ``path`` wrote of itself."""
        try:
            info = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return "an unknown process"
        return f"pid {info.get('pid')} ({info.get('what')}, since {info.get('since')})"

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockBusy(
                        f"another syncd run holds {self.path}: {self.holder()}; waited "
                        f"{self.timeout:.0f} s"
                    ) from None
                time.sleep(0.2)
        info = {
            "pid": os.getpid(),
            "what": self.what,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except BaseException:
            # found by an attack: a full disk failed the holder's line with the lock taken and
            # the descriptor kept, and every later run of the daemon waited on its own lock
            # until a restart; the lock goes with the descriptor
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
