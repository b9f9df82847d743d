"""The run journal: the plan and each action's start and end, fsync'd, so a crash is mended.

Before applying, a run writes its plan to ``state/journal/<run_id>.jsonl``; each action is
recorded when it starts and when it ends. A clean end removes the journal (the audit log is
the lasting record). A journal left behind means the run died (``kill -9``, power loss): the
next run re-plans from what the directory holds — creations, moves and state changes are
idempotent there — and, from the journal, issues a new one-time password to every account
whose password an interrupted action may have set without its slip being safely written, and
counts requests already done.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.store import private_dir
from syncd.model import Action, ActionKind, Plan

PASSWORD_KINDS = {
    ActionKind.CREATE.value,
    ActionKind.CREATE_ORG_MAILBOX.value,
    ActionKind.RESET_PASSWORD.value,
    ActionKind.RESTORE.value,
}


class Journal:
    def __init__(self, state_dir: Path, run_id: str) -> None:
        self.path = private_dir(state_dir / "journal") / f"{run_id}.jsonl"
        self._fd: int | None = None

    def _write(self, record: dict[str, Any]) -> None:
        assert self._fd is not None
        os.write(self._fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
        os.fdatasync(self._fd)

    def begin(self, plan: Plan) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._write(
            {
                "time": datetime.now(UTC).isoformat(),
                "planned": [
                    {"i": i, "kind": a.kind.value, "uid": a.uid} for i, a in enumerate(plan.actions)
                ],
            }
        )

    def started(self, i: int, action: Action) -> None:
        self._write(
            {"i": i, "s": "start", "kind": action.kind.value, "uid": action.new_uid or action.uid}
        )

    def finished(self, i: int, action: Action, ok: bool) -> None:
        self._write({"i": i, "s": "done" if ok else "failed", "request": action.request_key})

    def end(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.unlink(missing_ok=True)


@dataclass
class Interrupted:
    files: list[Path] = field(default_factory=list)
    recover_passwords: set[str] = field(default_factory=set)
    done_requests: set[str] = field(default_factory=set)
    unfinished: int = 0


def interrupted(state_dir: Path) -> Interrupted:
    """What journals left by dead runs say."""
    out = Interrupted()
    folder = state_dir / "journal"
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.jsonl")):
        out.files.append(path)
        started: dict[int, dict[str, Any]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line: the action it describes counts as unfinished
            if rec.get("s") == "start":
                started[rec["i"]] = rec
            elif rec.get("s") in ("done", "failed"):
                started.pop(rec["i"], None)
                if rec.get("s") == "done" and rec.get("request"):
                    out.done_requests.add(rec["request"])
        for rec in started.values():
            out.unfinished += 1
            if rec.get("kind") in PASSWORD_KINDS:
                out.recover_passwords.add(rec["uid"])
    return out


def settle(info: Interrupted) -> None:
    """The dead runs are mended: keep their journals aside for the record."""
    for path in info.files:
        if path.exists():
            path.rename(path.with_suffix(".recovered"))
