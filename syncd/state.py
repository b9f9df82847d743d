"""Local bookkeeping that is not directory data: decisions, resolutions, requests done.

Pure data with a dict form; a connector stores it as JSON in the state directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from syncd.model import Decision, DecisionKind, Exemption, HrStatus, Person, emp_key


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
    # Names (uids and address local parts) of directory entries that vanished without syncd
    # purging them (deleted or hidden by hand, renamed), each with the employee number of the
    # person it belonged to ("" when the entry had none): given back to that person only,
    # never to another (docs/architecture.md, "Names that belonged to someone").
    former: dict[str, str] = field(default_factory=dict)
    warned: set[str] = field(default_factory=set)  # "uid|lock date": each warning sent once
    # notified absences read from roster columns, by employee: the latest roster's word, kept
    # so that a sweep or another organisation's run still honours them
    exemptions: dict[str, list[Exemption]] = field(default_factory=dict)
    # organisation → employee (emp_key) → (run, date) its latest roster began listing them as
    # working there without a break: the newer listing wins (syncd/plan/listings.py). Runs are
    # numbered (``listing_runs``): two runs in the same second are still ordered.
    listed: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)
    listing_runs: int = 0

    def remember_exemptions(self, people: Iterable[Person], today: date) -> None:
        """The roster just applied is the latest word on these people's absences.

        An absence that has ended stays remembered when the roster stops naming it (HR lists
        only current absences): the inactivity clock restarts the day after it ended, and a
        forgotten one counted the person's quiet months from before it (found by the
        five-year simulation: about 20 people locked days after coming back). One not yet
        ended that the roster no longer names was withdrawn, and is forgotten.

        Only a row saying the person works there speaks of their absences: the former
        organisation's "chuyển công tác" row (no absence columns) must not wipe the absence
        the new organisation declared. An earlier absence that a later one follows (HR lists
        only the current one) is kept, so the clock restarts after the later one ends and not
        from before the first (the regulations' "without a notified reason": caobang-2025
        Đ8.2a, hungyen-2025 Đ7.2a, tuyenquang-2025 Đ8.2a)."""
        for p in people:
            if p.status is not HrStatus.ACTIVE:
                continue
            if p.exemption is None:
                ended = [
                    ex
                    for ex in self.exemptions.get(p.employee_number, [])
                    # a year back is enough: no inactivity period is longer
                    if ex.until < today and ex.until + timedelta(days=366) >= today
                ]
                if ended:
                    self.exemptions[p.employee_number] = ended
                else:
                    self.exemptions.pop(p.employee_number, None)
                continue
            new = p.exemption
            earlier = [
                ex
                for ex in self.exemptions.get(p.employee_number, [])
                if ex.start < new.start
                and ex.until < new.until
                # no inactivity period is longer than a year: an absence ended before that
                # restarts no clock the new one does not
                and ex.until + timedelta(days=366) >= new.start
            ]
            self.exemptions[p.employee_number] = [*earlier, new]

    def remember_listings(
        self, rosters: Iterable[tuple[str, Iterable[Person]]], now: datetime
    ) -> None:
        """Rosters just applied, as (organisation, people): whom each lists as working there,
        each since the first roster of the unbroken run of its rosters that listed them."""
        # numbered only when someone is newly listed: a run that lists nobody anew leaves the
        # state as it was (what lets a quiet run be repeated, connectors/quiet.py); stamps
        # only ever compare with each other, so a number skipped changes no order
        stamp = (self.listing_runs + 1, now.isoformat(timespec="seconds"))
        for org, people in rosters:
            before = self.listed.get(org, {})
            self.listed[org] = {
                emp: before.get(emp, stamp)
                for emp in (
                    emp_key(p.employee_number)
                    for p in people
                    if p.org == org and p.status is HrStatus.ACTIVE
                )
            }
            if any(since is stamp for since in self.listed[org].values()):
                self.listing_runs = stamp[0]

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
            "former": dict(sorted(self.former.items())),
            "warned": sorted(self.warned),
            "exemptions": {
                emp: [
                    {
                        "reason": e.reason,
                        "start": e.start.isoformat(),
                        "until": e.until.isoformat(),
                        "source": e.source,
                    }
                    for e in items
                ]
                for emp, items in sorted(self.exemptions.items())
            },
            # by organisation, the employees grouped under the listing that began them: one
            # stamp per run, not one per person (at 100,000 people 4.5 MB of JSON parsed by
            # every run became ~1 MB, and each stamp is held once in memory; issue 14)
            "listings": {
                org: {
                    f"{run} {when}": sorted(emps)
                    for (run, when), emps in sorted(_grouped(v).items())
                }
                for org, v in sorted(self.listed.items())
            },
            "listing_runs": self.listing_runs,
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
            former={str(k): str(v) for k, v in dict(data.get("former", {})).items()},
            warned=set(data.get("warned", [])),
            exemptions={
                emp: [
                    Exemption(
                        emp,
                        e["reason"],
                        date.fromisoformat(e["start"]),
                        date.fromisoformat(e["until"]),
                        e.get("source", ""),
                    )
                    for e in items
                ]
                for emp, items in data.get("exemptions", {}).items()
            },
            listed=_listed(data),
            listing_runs=int(data.get("listing_runs", 0)),
        )


def _grouped(listed: dict[str, tuple[int, str]]) -> dict[tuple[int, str], list[str]]:
    groups: dict[tuple[int, str], list[str]] = {}
    for emp, since in listed.items():
        groups.setdefault(since, []).append(emp)
    return groups


def _listed(data: dict[str, Any]) -> dict[str, dict[str, tuple[int, str]]]:
    """``listed`` from the file: ``listings`` (organisation → "<run> <date>" → employees),
    or, in a state file an older syncd wrote, ``listed`` (organisation → employee → [run,
    date]), read alike; the next save writes ``listings``."""
    listings = data.get("listings")
    if listings is None:
        return {
            org: {emp: (int(since[0]), str(since[1])) for emp, since in v.items()}
            for org, v in data.get("listed", {}).items()
        }
    out: dict[str, dict[str, tuple[int, str]]] = {}
    for org, groups in listings.items():
        mine: dict[str, tuple[int, str]] = {}
        # oldest first, so an employee found under two stamps (a hand edit) keeps the newer
        for (run, when), emps in sorted(_stamps(org, groups)):
            mine.update(dict.fromkeys(emps, (run, when)))  # one stamp shared by all
        out[org] = mine
    return out


def _stamps(org: str, groups: Any) -> Iterator[tuple[tuple[int, str], list[str]]]:
    """Each "<run> <date>" of an organisation's listings with its employees; ValueError
    naming the value when the file holds something else (a hand edit), rather than reading
    a string one character per employee."""
    if not isinstance(groups, dict):
        raise ValueError(f"state.json: listings of {org!r} is not a mapping: {groups!r:.80}")
    for stamp, emps in groups.items():
        run, _, when = str(stamp).partition(" ")
        if not run.isdigit() or not isinstance(emps, list):
            raise ValueError(f"state.json: listings of {org!r}: {stamp!r}: {emps!r:.80}")
        if not all(isinstance(e, str) for e in emps):
            raise ValueError(f"state.json: listings of {org!r}: {stamp!r}: not employee numbers")
        try:  # the date orders two listings of one run (syncd/plan/listings.py)
            datetime.fromisoformat(when)
        except ValueError:
            raise ValueError(f"state.json: listings of {org!r}: {stamp!r}: not a date") from None
        yield (int(run), when), emps
