"""The run journal's group commit on real files: a batch's end records reach the disk in the
same write and sync as the next batch's start records (one journal sync per batch, not two),
and what a crash leaves in between reads as before (connectors/journal.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.journal import Journal, interrupted
from syncd.model import Action, ActionKind, Plan

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def _create(uid: str) -> Action:
    return Action(ActionKind.CREATE, uid, "skhcn", "new", "caobang-2025 Đ7.1", full_name="Hà Văn A")


def _records(journal: Journal) -> list[tuple[int, str]]:
    lines = journal.path.read_text(encoding="utf-8").splitlines()[1:]  # after the plan
    return [(r["i"], r["s"]) for r in map(json.loads, lines)]


def test_a_batchs_end_records_reach_the_disk_with_the_next_batchs_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actions = [_create(f"u{n}") for n in range(3)]
    journal = Journal(tmp_path, "run-1")
    journal.begin(Plan(actions=tuple(actions), now=NOW))
    syncs = {"n": 0}
    real = os.fdatasync

    def counted(fd: int) -> None:  # the real call, only counted
        syncs["n"] += 1
        real(fd)

    sync: Callable[[int], None] = counted
    monkeypatch.setattr(os, "fdatasync", sync)
    journal.started([(0, actions[0]), (1, actions[1])])
    journal.finished([(0, actions[0], "done"), (1, actions[1], "owed")])
    # batch 1 is over (its slips and audit records durable): its ends wait for batch 2
    assert _records(journal) == [(0, "start"), (1, "start")]
    assert syncs["n"] == 1
    dead = interrupted(tmp_path)  # a crash here: batch 1 started, not ended, as before
    assert [u.i for u in dead.actions] == [0, 1] and dead.owed == []
    journal.started([(2, actions[2])])
    assert _records(journal) == [(0, "start"), (1, "start"), (0, "done"), (1, "owed"), (2, "start")]
    assert syncs["n"] == 2  # one sync for batch 1's ends and batch 2's starts
    dead = interrupted(tmp_path)
    assert [u.i for u in dead.actions] == [2] and dead.owed == [("run-1", "u1")]
    journal.finished([(2, actions[2], "done")])
    journal.flush()  # the apply is over: the last batch's ends
    assert _records(journal)[-1] == (2, "done") and syncs["n"] == 3
    assert interrupted(tmp_path).actions == []
    journal.end()
    assert not journal.path.exists() and syncs["n"] == 3


def test_two_batches_ending_before_the_next_start_keep_both_their_end_records(
    tmp_path: Path,
) -> None:
    """A batch commits while the next one's creates are out (syncd.applier): the last two
    batches of a run both end after the last start record; neither's ends may be lost."""
    actions = [_create(f"u{n}") for n in range(3)]
    journal = Journal(tmp_path, "run-1")
    journal.begin(Plan(actions=tuple(actions), now=NOW))
    journal.started([(0, actions[0])])
    journal.started([(1, actions[1]), (2, actions[2])])
    journal.finished([(0, actions[0], "done")])  # batch 1's commit, while batch 2 is out
    journal.finished([(1, actions[1], "done"), (2, actions[2], "owed")])  # the last one's
    journal.flush()
    assert _records(journal) == [
        (0, "start"), (1, "start"), (2, "start"), (0, "done"), (1, "done"), (2, "owed"),
    ]  # fmt: skip
    dead = interrupted(tmp_path)
    assert dead.actions == [] and dead.owed == [("run-1", "u2")]


def test_a_line_separator_in_an_action_keeps_its_start_record_whole(tmp_path: Path) -> None:
    """Found by an attack: a reason holding U+2028 (written raw) was cut there by the reader,
    so a crash after that action started left it neither owed its audit record nor its
    password."""
    odd = Action(ActionKind.CREATE, "u0", "skhcn", "new\u2028row\x85x", "Đ7.1", full_name="Hà A")
    actions = [odd, _create("u1")]
    journal = Journal(tmp_path, "run-1")
    journal.begin(Plan(actions=tuple(actions), now=NOW))
    journal.started([(0, odd), (1, actions[1])])
    dead = interrupted(tmp_path)  # the run dies here
    assert [u.i for u in dead.actions] == [0, 1]
    assert dead.actions[0].action["reason"] == "new\u2028row\x85x"
