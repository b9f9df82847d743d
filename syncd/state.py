"""Local bookkeeping that is not directory data: decisions, resolutions, requests done.

Pure data with a dict form; a connector stores it as JSON in the state directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from syncd.model import Decision, DecisionKind


class Resolve(StrEnum):
    LINK = "link"  # link the person to this existing account uid
    UID = "uid"  # create with this uid
    IGNORE = "ignore"  # do nothing for this person / account
    REVOKE = "revoke"  # an unlinked account that matches nobody: revoke it


@dataclass(frozen=True)
class Resolution:
    how: Resolve
    value: str = ""
    by: str = ""
    at: str = ""


@dataclass
class LocalState:
    decisions: dict[str, Decision] = field(default_factory=dict)
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    done_requests: set[str] = field(default_factory=set)
    tombstones: set[str] = field(default_factory=set)
    warned: set[str] = field(default_factory=set)  # "uid|lock date": each warning sent once

    def to_dict(self) -> dict[str, Any]:
        return {
            "decisions": [
                {**d.__dict__, "kind": d.kind.value, "candidates": list(d.candidates)}
                for d in self.decisions.values()
            ],
            "resolutions": {
                k: {"how": r.how.value, "value": r.value, "by": r.by, "at": r.at}
                for k, r in sorted(self.resolutions.items())
            },
            "done_requests": sorted(self.done_requests),
            "tombstones": sorted(self.tombstones),
            "warned": sorted(self.warned),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalState:
        decisions = {}
        for d in data.get("decisions", []):
            d = {**d, "kind": DecisionKind(d["kind"]), "candidates": tuple(d["candidates"])}
            decisions[d["id"]] = Decision(**d)
        return cls(
            decisions=decisions,
            resolutions={
                k: Resolution(
                    Resolve(v["how"]), v.get("value", ""), v.get("by", ""), v.get("at", "")
                )
                for k, v in data.get("resolutions", {}).items()
            },
            done_requests=set(data.get("done_requests", [])),
            tombstones=set(data.get("tombstones", [])),
            warned=set(data.get("warned", [])),
        )
