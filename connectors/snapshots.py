"""Accepted rosters per organisation: the latest file HR sent for each, kept for full runs.

The inbox files one file at a time; the nightly full run re-applies, for every organisation,
the latest accepted file that covered it (so a change made by hand in the directory is put
right), each file authoritative only for the organisations it is still the latest for.

What is re-applied is syncd's own copy of the exact bytes that were read and applied
(``state/rosters/<sha256[:16]>-<name>``, 0600 in the private state directory), recorded with
its sha256 — never the file filed in ``processed/``: that one still belongs to the HR uploader
(it came by rename), who could rewrite it and have the nightly run apply the rewrite (issue
11). A copy whose sha256 no longer matches is refused with an error naming it; the full run
then applies nothing.

Registries written before the copies (an entry without ``sha256``) are migrated when read: a
file under ``state/rosters/`` whose content still has the sha256 its name begins with, or a
file the inbox filed whose content is still the digest ``inbox-hashes.json`` recorded when it
was applied, is copied and recorded with its sha256; any other is refused (its content cannot
be shown to be what was applied), naming the organisations and how to accept a roster again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from connectors.store import write_private
from syncd.errors import SyncdError
from syncd.inbox import safe_name

log = structlog.get_logger("syncd.snapshots")

KEPT = "rosters"  # the folder of the copies, in the state directory


class AcceptedRosterChanged(SyncdError):
    """A latest accepted roster is not the content that was applied: nothing is re-applied."""


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class SnapshotRegistry:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "snapshots.json"
        self.kept = state_dir / KEPT

    def _load(self) -> dict[str, dict[str, str]]:
        """The registry; none yet is empty. One that cannot be read is an error, never
        "empty": the nightly run would skip every organisation without a word and the
        retention would take the latest copies for old ones (found by an attack)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise AcceptedRosterChanged(f"{self.path}: cannot be read ({exc})") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise AcceptedRosterChanged(
                f"{self.path}: not the registry syncd writes ({exc}); restore it from the "
                "state's backup, or accept each organisation's roster again "
                "(`syncd reconcile --roster FILE`) after moving it away"
            ) from None
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("file"), str) for v in data.values()
        ):
            raise AcceptedRosterChanged(f"{self.path}: not the registry syncd writes")
        return data

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        write_private(self.path, json.dumps(data, indent=1, sort_keys=True))

    def keep(self, data: bytes, name: str) -> tuple[Path, str]:
        """A private copy of ``data`` (the bytes read and applied) and its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        copy = self.kept / f"{digest[:16]}-{safe_name(name)}"
        if _sha256(copy) != digest:
            write_private(copy, data)
        else:  # accepted again today: its age starts again (connectors/retention.py)
            os.utime(copy)
        return copy, digest

    def recorded(self) -> set[Path]:
        """Every file the registry names, as it names it (existing or not, not checked): what
        the retention never deletes. Raises ``AcceptedRosterChanged`` when the registry
        cannot be read (then nothing of it may be deleted)."""
        return {Path(entry["file"]) for entry in self._load().values() if "file" in entry}

    def accept(self, data: bytes, name: str, orgs: Iterable[str]) -> Path:
        """``data``, the roster file ``name`` as read and applied, is now the latest accepted
        roster of ``orgs``: kept as a private copy, recorded with its sha256."""
        copy, digest = self.keep(data, name)
        self.record(copy, orgs, digest)
        return copy

    def record(self, file: Path, orgs: Iterable[str], sha256: str) -> None:
        data = self._load()
        when = datetime.now(UTC).isoformat(timespec="seconds")
        for org in orgs:
            data[org] = {"file": str(file), "when": when, "sha256": sha256}
        self._save(data)

    def latest(self) -> dict[Path, set[str]]:
        """file → the organisations it is the latest accepted roster of, each checked against
        the sha256 recorded when it was applied. Raises ``AcceptedRosterChanged`` when one is
        gone or not what was applied, or an old entry cannot be migrated."""
        data = self._load()
        migrated = False
        out: dict[Path, set[str]] = defaultdict(set)
        refused: list[str] = []
        for org, entry in sorted(data.items()):
            path = Path(entry["file"])
            if not path.exists():
                # found by an attack: a copy gone made the nightly run skip the organisation
                # without a word (exit 0, "nothing to do")
                refused.append(f"{org}: {path}, its latest accepted roster, is gone")
                continue
            expected = entry.get("sha256")
            if expected is None:
                moved = self._migrate(path)
                if moved is None:
                    refused.append(
                        f"{org}: {path} was recorded before syncd kept its own copy of each "
                        "accepted roster, and its content cannot be shown to be what was "
                        "applied (HR can write a filed roster)"
                    )
                    continue
                path, expected = moved
                data[org] = {**entry, "file": str(path), "sha256": expected}
                migrated = True
            elif (now := _sha256(path)) != expected:
                refused.append(
                    f"{org}: {path} is not the roster that was applied (sha256 "
                    f"{expected[:16]}… when accepted, {(now or 'unreadable')[:16]}… now)"
                )
                continue
            out[path].add(org)
        if refused:
            raise AcceptedRosterChanged(
                "the latest accepted rosters cannot be re-applied; nothing was applied:\n  "
                + "\n  ".join(refused)
                + "\n  Check what the file holds now (it may have been rewritten) and accept it "
                "again with `syncd reconcile --roster FILE`, or have HR send it again; the "
                "organisation's entry in "
                f"{self.path} then names syncd's own copy."
            )
        if migrated:  # only once every entry could be: nothing half-migrated
            self._save(data)
            log.info("accepted rosters migrated to syncd's own copies", registry=str(self.path))
        return dict(out)

    def _migrate(self, path: Path) -> tuple[Path, str] | None:
        """An entry of an older registry as a private copy and its sha256, or None when its
        content cannot be shown to be what was applied."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        digest = hashlib.sha256(data).hexdigest()
        if path.parent == self.kept:  # remember_rosters' copy, named by its sha256
            return (path, digest) if path.name.startswith(f"{digest[:16]}-") else None
        applied = _inbox_digests(self.state_dir).get(str(path))
        if applied != digest:
            return None
        return self.keep(data, path.name)


def _inbox_digests(state_dir: Path) -> dict[str, str]:
    """file filed by the inbox → the sha256 of the bytes it applied (``inbox-hashes.json``)."""
    try:
        raw: Any = json.loads((state_dir / "inbox-hashes.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, str] = {}
    if isinstance(raw, dict):
        for digest, entry in raw.items():
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                out[entry["file"]] = digest
    return out
