"""Waiting for a descriptor to have something to read, with poll(2).

Not ``select.select``: select(2) takes no descriptor numbered 1024 or more (``FD_SETSIZE``;
Python raises ValueError), and a process that has opened many files and sockets over its life
gets such numbers. Found when the test suite first ran on two workers: a worker process held
over a thousand descriptors, and the applier's check of its kept connection raised instead of
answering; the inbox's inotify wait would have quietly stopped waking the daemon.
"""

from __future__ import annotations

import errno
import math
import select
from typing import Protocol


class HasFileno(Protocol):
    def fileno(self) -> int: ...


def readable(what: int | HasFileno, timeout: float) -> bool:
    """Whether ``what`` can be read without blocking within ``timeout`` seconds (0: now):
    data, end of file, a hang-up or an error all count, as select(2) counts them, since a read
    is what tells them apart. A descriptor already closed raises OSError (EBADF), as select
    does."""
    poller = select.poll()
    poller.register(what, select.POLLIN | select.POLLPRI)
    events = poller.poll(math.ceil(max(timeout, 0.0) * 1000))
    if any(mask & select.POLLNVAL for _, mask in events):
        raise OSError(errno.EBADF, "not an open descriptor")
    return bool(events)
