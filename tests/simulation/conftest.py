"""A slapd of the simulation's own, whose clock the test moves day by day (libfaketime).

How the clock is moved, and why not with ``FAKETIME_TIMESTAMP_FILE``: Debian's libfaketime
0.9.10 calls an internal function named ``read_config_file`` when it reads a timestamp file,
and slapd exports a function of the same name; the dynamic linker binds libfaketime's call to
slapd's and slapd dies with SIGSEGV before it listens (gdb: ``read_config_file () <- getrandom
() from libfaketime <- gnutls init``). ``slapadd`` dies the same way. The ``FAKETIME`` variable
never reads that file, so ``FAKETIME=%`` + ``FAKETIME_FOLLOW_FILE`` is used instead: slapd's
clock *is* the modification time of a file, which the test sets (``os.utime``) before every
step of a simulated day. ``FAKETIME_NO_CACHE=1`` makes every clock read look at the file again,
so the clock moves without restarting slapd. The clock stands still between two steps, which
makes every server timestamp of the simulation deterministic.

The variables reach slapd only (``Sandbox.start(env=...)``): slapadd, which creates the database
first, crashes under libfaketime, and the test process and the ``syncd`` processes it starts keep
the real clock (syncd's clock is the ``now`` it is given).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devtools.slapd_sandbox import Sandbox, find_slapd

# Debian's multiarch path (x86_64-linux-gnu, aarch64-linux-gnu, …)
FAKETIME_LIB = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
)


class ServerClock:
    """slapd's simulated clock: the modification time of ``path``."""

    def __init__(self, path: Path, start: datetime) -> None:
        self.path = path
        path.write_text("libfaketime follows this file's mtime\n", encoding="ascii")
        self.now = start
        self.set(start)

    def set(self, when: datetime) -> None:
        assert when.tzinfo is not None
        # libfaketime's "%" mode reports the mtime give or take a second (measured)
        stamp = when.timestamp() + 0.5
        os.utime(self.path, (stamp, stamp))
        self.now = when

    @property
    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": str(FAKETIME_LIB),
            "FAKETIME": "%",
            "FAKETIME_FOLLOW_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timeouts and waits keep real durations
        }


@dataclass
class FakeTimeSandbox(Sandbox):
    """The project's sandbox, with slapd started under libfaketime following ``clock``."""

    clock: ServerClock | None = None

    def start(self, *, env: Mapping[str, str] | None = None) -> FakeTimeSandbox:
        assert self.clock is not None
        super().start(env={**self.clock.env, **(env or {})})
        return self


def _require(what: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed; CI must install it (make test does)")
    pytest.skip(f"{what} is not installed (make test installs it)")


SIM_START = datetime(2027, 1, 4, 0, 0, tzinfo=UTC)  # fixed: the seeded run is the same any day


@pytest.fixture
def sim_slapd(tmp_path: Path) -> Iterator[FakeTimeSandbox]:
    """A fresh slapd for one simulation; its clock starts at ``SIM_START``."""
    _require("Debian slapd", find_slapd() is not None)
    _require("Debian libfaketime", FAKETIME_LIB.exists())
    clock = ServerClock(tmp_path / "server-clock", SIM_START)
    sandbox = FakeTimeSandbox(tmp_path / "slapd", suffix="dc=sim,dc=gov,dc=vn", clock=clock)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
