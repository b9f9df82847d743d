"""The applier's batches (group commit) and pipelined creates, with recording fakes: the order
of journal, directory, slips, audit and journal end per batch; one failed create among
pipelined ones; dependent actions kept in order; SIGTERM inside a batch. Pure unit tests of
the core; the real files and slapd are in tests/integration/test_crash_recovery.py and
test_pipelined_creates.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.regulations import PROFILES
from syncd.applier import Slip, apply_plan
from syncd.model import Account, Action, ActionKind, Field, Plan, State
from syncd.orgs import parse_catalogue
from syncd.ports import DirectoryError, NotSent, Scope

NOW = datetime(2026, 11, 25, tzinfo=UTC)


class Recorder:
    """Directory, audit sink and journal at once: every call in one list, in order."""

    def __init__(self, errors: Mapping[str, DirectoryError] | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.errors = dict(errors or {})  # uid → what its (first) create raises

    # -- Directory
    def read(self, scope: Scope) -> list[Account]:
        return []

    def names(self) -> list[Account]:
        return []

    def create(self, action: Action, password: str, *, since: datetime | None = None) -> str:
        self.events.append(("create", action.uid))
        err = self.errors.pop(action.uid, None)
        if err is not None:
            raise err
        return f"uid={action.uid}"

    def create_many(
        self,
        items: Sequence[tuple[Action, str]],
        *,
        since: datetime | None = None,
        meanwhile: Callable[[], bool] | None = None,
    ) -> list[str | Exception]:
        self.events.append(("create_many", [a.uid for a, _ in items]))
        if meanwhile is not None:
            self.events.append(("meanwhile", []))
            if meanwhile():  # as a pipeline with the first add out: the rest is not sent
                self.events.append(("sent", [items[0][0].uid]))
                return [f"uid={items[0][0].uid}", *(NotSent() for _ in items[1:])]
        out: list[str | Exception] = []
        for action, _ in items:
            err = self.errors.pop(action.uid, None)
            out.append(err if err is not None else f"uid={action.uid}")
        return out

    def update(
        self,
        dn: str,
        attrs: Mapping[Field, tuple[str, ...]],
        *,
        link: bool = False,
        since: datetime | None = None,
    ) -> str:
        self.events.append(("update", dn))
        return dn

    def move(self, dn: str, new_uid: str, attrs: Mapping[Field, tuple[str, ...]]) -> str:
        self.events.append(("move", dn))
        return f"uid={new_uid}"

    def set_password(self, dn: str, password: str) -> None:
        self.events.append(("password", dn))

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        self.events.append(("state", dn))

    def export(self, dn: str) -> str:
        return ""

    def delete(self, dn: str) -> None:
        self.events.append(("delete", dn))

    # -- AuditSink
    def record(self, **fields: Any) -> None:
        self.events.append(("audit", (fields["uid"], fields["result"])))

    def commit(self) -> None:
        self.events.append(("commit", None))

    # -- RunJournal
    def started(self, batch: Sequence[tuple[int, Action]]) -> None:
        self.events.append(("started", [i for i, _ in batch]))

    def finished(self, batch: Sequence[tuple[int, Action, str]]) -> None:
        self.events.append(("finished", [(i, s) for i, _, s in batch]))

    # -- slips
    def slips(self, slips: Sequence[Slip]) -> None:
        self.events.append(("slips", [s.uid for s in slips]))


def _create(uid: str) -> Action:
    return Action(ActionKind.CREATE, uid, "skhcn", "new", "caobang-2025 Đ7.1", full_name="Hà Văn A")


def _apply(rec: Recorder, actions: list[Action], batch: int, **kwargs: Any) -> Any:
    catalogue = parse_catalogue([("e", {"code": "skhcn", "name": "Sở KH&CN", "mailbox": "so"})])
    return apply_plan(
        Plan(actions=tuple(actions), now=NOW),
        rec,
        rec,
        PROFILES["caobang-2025"],
        catalogue,
        "test.gov.vn",
        "run-1",
        clock=lambda: NOW,
        **{"journal": rec, "on_slips": rec.slips, "sleep": lambda _: None, "batch": batch} | kwargs,
    )


def test_each_batch_is_journalled_then_changed_then_slipped_then_audited_then_ended() -> None:
    """And a batch's commit runs while the next batch's creates are with the directory
    (``meanwhile``), so the server is not left waiting for syncd's syncs."""
    rec = Recorder()
    _apply(rec, [_create(f"u{n}") for n in range(5)], batch=3)
    assert rec.events == [
        ("started", [0, 1, 2]),
        ("create_many", ["u0", "u1", "u2"]),
        ("meanwhile", []),  # nothing to commit yet
        ("started", [3, 4]),
        ("create_many", ["u3", "u4"]),
        ("meanwhile", []),  # the first batch's commit, in order:
        ("slips", ["u0", "u1", "u2"]),
        ("audit", ("u0", "ok")),
        ("audit", ("u1", "ok")),
        ("audit", ("u2", "ok")),
        ("commit", None),
        ("finished", [(0, "done"), (1, "done"), (2, "done")]),
        ("slips", ["u3", "u4"]),  # the last batch's, after its creates
        ("audit", ("u3", "ok")),
        ("audit", ("u4", "ok")),
        ("commit", None),
        ("finished", [(3, "done"), (4, "done")]),
    ]


def test_a_batch_that_does_not_start_with_creates_commits_the_one_before_first() -> None:
    lock = Action(ActionKind.LOCK, "x", "skhcn", "r", "Đ8.2", dn="uid=x")
    rec = Recorder()
    _apply(rec, [_create("u0"), _create("u1"), lock], batch=2)
    kinds = [e[0] for e in rec.events if e[0] != "audit"]
    assert kinds == [
        "started", "create_many", "meanwhile",
        "started", "slips", "commit", "finished", "state", "commit", "finished",
    ]  # fmt: skip


def test_a_commit_that_fails_while_the_next_creates_are_out_stops_the_run_with_its_error() -> None:
    """The disk full under the slips: the next batch's creates in flight are answered, then
    the run stops with the commit's own error (not taken for a lost connection); that
    batch is started and not ended, which the next run mends as after a crash."""
    rec = Recorder()

    def full(slips: Sequence[Slip]) -> None:
        rec.events.append(("slips", [s.uid for s in slips]))
        raise OSError(28, "No space left on device")

    try:
        _apply(rec, [_create(f"u{n}") for n in range(6)], batch=2, on_slips=full)
    except OSError as exc:
        assert exc.errno == 28
    else:
        raise AssertionError("the commit's error was swallowed")
    assert [e for e in rec.events if e[0] in ("started", "create_many", "slips", "sent")] == [
        ("started", [0, 1]),
        ("create_many", ["u0", "u1"]),
        ("started", [2, 3]),
        ("create_many", ["u2", "u3"]),
        ("slips", ["u0", "u1"]),  # failed: no audit, no end; u4 and u5 never started
        ("sent", ["u2"]),  # the add already out; u3 not sent (an attack found it all made)
    ]
    assert ("commit", None) not in rec.events and ("finished", [(0, "done")]) not in rec.events


def test_a_pipelined_create_that_fails_fails_alone_and_a_transient_one_is_retried_alone() -> None:
    rec = Recorder(
        {
            "u1": DirectoryError("creating uid=u1: entryAlreadyExists (68)"),
            "u2": DirectoryError("creating uid=u2: busy (51)", transient=True),
        }
    )
    result = _apply(rec, [_create(f"u{n}") for n in range(4)], batch=64)
    assert [(o.action.uid, o.status.value) for o in result.outcomes] == [
        ("u0", "ok"),
        ("u1", "permanent"),  # as one create would have failed: no retry, no slip
        ("u2", "ok"),  # retried on its own after the pause, and made
        ("u3", "ok"),
    ]
    assert ("create", "u2") in rec.events and ("create", "u1") not in rec.events
    assert [s.uid for s in result.slips] == ["u0", "u2", "u3"]
    assert ("audit", ("u1", "failed")) in rec.events
    assert ("finished", [(0, "done"), (1, "failed"), (2, "done"), (3, "done")]) in rec.events


def test_an_action_after_creates_waits_for_them_and_actions_keep_the_plan_order() -> None:
    """Only consecutive creates go together; anything else is applied alone, after them."""
    lock = Action(ActionKind.LOCK, "u0", "skhcn", "r", "Đ8.2", dn="uid=u0")
    reset = Action(ActionKind.RESET_PASSWORD, "x", "skhcn", "r", "Đ6", dn="uid=x")
    rec = Recorder()
    _apply(rec, [_create("u0"), _create("u1"), reset, _create("u2"), lock], batch=64)
    changes = [e for e in rec.events if e[0] in ("create", "create_many", "password", "state")]
    assert changes == [
        ("create_many", ["u0", "u1"]),
        ("password", "uid=x"),
        ("create", "u2"),  # a lone create is a plain create
        ("state", "uid=u0"),
    ]


def test_an_action_on_an_entry_moved_earlier_in_the_batch_starts_the_next_batch() -> None:
    """The journal records the DN an action will use: after the move, the new one."""
    move = Action(
        ActionKind.MOVE, "a.skhcn", "syt", "transfer", "Đ7", dn="uid=a.skhcn", new_uid="a.syt"
    )
    restore = Action(ActionKind.RESTORE, "a.skhcn", "syt", "restore", "Đ8", dn="uid=a.skhcn")
    rec = Recorder()
    _apply(rec, [move, restore], batch=64)
    assert [e for e in rec.events if e[0] in ("started", "move", "state")] == [
        ("started", [0]),
        ("move", "uid=a.skhcn"),
        ("started", [1]),
        ("state", "uid=a.syt"),
    ]


def test_sigterm_inside_a_batch_finishes_what_started_and_ends_the_rest_as_skipped() -> None:
    rec = Recorder()
    asked = iter([False, False, True])  # SIGTERM arrives before the third action
    lock = [
        Action(ActionKind.LOCK, f"u{n}", "skhcn", "r", "Đ8.2", dn=f"uid=u{n}") for n in range(4)
    ]
    result = _apply(rec, lock, batch=64, should_stop=lambda: next(asked, True))
    assert result.stopped and len(result.outcomes) == 2
    assert rec.events[-1] == (
        "finished",
        [(0, "done"), (1, "done"), (2, "skipped"), (3, "skipped")],
    )
    assert ("state", "uid=u2") not in rec.events
