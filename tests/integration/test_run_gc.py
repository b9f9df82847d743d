"""The cyclic garbage collector is paused while a run reads the directory and plans, and is
back on afterwards whatever happened (issue 14: 28 % of a no-op run at 100k was the collector
walking the entries just read, to find no garbage)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from connectors import runner
from connectors.runner import open_directory
from syncd.model import Account
from syncd.ports import ReadIncomplete, Scope
from tests.conftest import MakeConfig
from tests.helpers import write_roster


class Watching:
    """The configured (real) directory, noting whether the collector ran at each read."""

    def __init__(self, inner: Any, fail: bool = False) -> None:
        self.inner = inner
        self.fail = fail
        self.gc_during: list[bool] = []

    def names(self) -> list[Account]:
        self.gc_during.append(gc.isenabled())
        return list(self.inner.names())

    def read(self, scope: Scope) -> list[Account]:
        self.gc_during.append(gc.isenabled())
        if self.fail:
            raise ReadIncomplete("the read was cut short")
        return list(self.inner.read(scope))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_collector_is_off_while_reading_and_on_again_after_a_run(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config()
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    directory = Watching(open_directory(cfg, []))
    try:
        assert gc.isenabled()
        outcome = runner.run(cfg, rosters=[roster], directory=directory)
        assert outcome.exit_code == 0
        assert directory.gc_during and not any(directory.gc_during)
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0  # what the run froze is collectable again
    finally:
        directory.inner.close()


def test_the_collector_is_on_again_after_a_read_that_failed(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config()
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    directory = Watching(open_directory(cfg, []), fail=True)
    try:
        with pytest.raises(ReadIncomplete):
            runner.run(cfg, rosters=[roster], directory=directory)
        assert directory.gc_during == [False, False]
        assert gc.isenabled()
    finally:
        directory.inner.close()
