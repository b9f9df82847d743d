"""One run at a time per directory: a file lock shared by the daemon and the CLI.

``flock`` on ``<state>/run.lock``; the holder writes who it is (pid, what, since) into the
file, so a second process that times out can say exactly who holds the lock. The kernel drops
the lock when the holder dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from connectors.store import private_dir
from syncd.errors import SyncdError

# how long a run waits, whatever its --wait, for a lock held by a plan or a check looking
LOOK = 2.0


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


@contextmanager
def looking(state_dir: Path) -> Iterator[str | None]:
    """For a command that takes no lock (a plan, a check) and writes nothing: while inside,
    no run starts applying (a shared lock is held: a run waits for it, a moment), unless one
    holds the lock already: then its holder is yielded and nothing is held. What the command
    reads inside (the journals of runs) is then no live run's (found by an attack: a restore
    that began after a plan asked and ended before its end had its open journal taken for a
    dead run's, and a password planned again). No file is made when there is none (no run
    ever held it); the file is opened without waiting (a FIFO put there hung every plan,
    found by an attack) and through a link, as a run opens it."""
    path = state_dir / "run.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:  # none yet (or not ours to open): nobody holds it
        yield None
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # no run can hold it either
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield RunLock.holder_of(path) or "a run that has not yet said who it is"
            return
        try:
            yield None
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def held_elsewhere(state_dir: Path) -> str | None:
    """Who holds the run lock now, when another process does (a run applying), else None:
    ``looking`` let go at once."""
    with looking(state_dir) as holder:
        return holder


class RunLock:
    def __init__(self, state_dir: Path, what: str, timeout: float = 300.0) -> None:
        self.path = private_dir(state_dir) / "run.lock"
        self.what = what
        self.timeout = timeout
        self._fd: int | None = None

    def holder(self) -> str:
        return self.holder_of(self.path) or (
            "a process that has not said who it is (a plan or check looking, or a run starting)"
        )

    @staticmethod
    def holder_of(path: Path) -> str:
        """What the holder of the lock at ``path`` wrote of itself; "" when nothing (a plan
        or a check looking holds it shared and writes nothing; a run writes right after it
        takes it)."""
        try:
            info = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return ""
        if not isinstance(info, dict) or not info.get("pid"):
            return ""
        return f"pid {info.get('pid')} ({info.get('what')}, since {info.get('since')})"

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o600)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SyncdError(
                f"{self.path}: not a regular file (made by hand?): remove it, syncd makes it "
                "again; nothing was changed"
            )
        started = time.monotonic()
        deadline = started + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # a plan or a check looking holds it shared for a moment and says nothing:
                # waited for even at --wait 0 (found by an attack: plans in a loop failed
                # such runs with "pid None")
                looked = not self.holder_of(self.path) and time.monotonic() < started + LOOK
                if time.monotonic() >= deadline and not looked:
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
