"""Safety limits: what a run may not do alone.

Two kinds of limit, with different answers:

- Signs of truncated input refuse the whole run (nothing changes): a roster that drops a
  large share of an organisation's people is a cut-off file far more often than a mass
  departure.
- A stage (lock, revoke, purge) that would touch more accounts than its limit is *held
  back*: its actions are taken out of the plan and reported, and everything else — new hires,
  HR requests, the other stages — still applies. ``--allow-mass-change`` releases it, audited.

Forwarding removals (Hưng Yên Đ4.5, :mod:`syncd.plan.forwarding`) are ``enforce`` actions
like the put-backs of hand changes, but a stage of their own: a first run with ``action:
remove`` may find hundreds of old forwards, and holding them must not hold the put-back of a
hand-reopened ``compromised`` lock (that mailbox would keep IMAP and SMTP for the attacker).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from syncd.model import Account, Action, ActionKind, Field, Kind, State
from syncd.settings import Safety

# ``enforce`` (changes made by hand put back, syncd.plan.drift) counts against the lock
# limits: a mass hand edit is a restored backup or a script more often than decisions.
# Forwarding removals count against them too, apart (the module's docstring says why).
STAGES = ("put-back", "forwarding", ActionKind.LOCK, ActionKind.REVOKE, ActionKind.PURGE)


def stage(a: Action) -> str | ActionKind | None:
    """The safety stage ``a`` is counted in, or None (not limited). A forwarding removal is
    the enforce that sets the forwarding field (:mod:`syncd.plan.forwarding`, a sibling this
    layer may not import); a put-back of hand changes never sets it."""
    if a.kind is ActionKind.ENFORCE:
        return "forwarding" if Field.FORWARDING in a.attrs else "put-back"
    return a.kind if a.kind in STAGES else None


def refusal(actions: Sequence[Action], people: Sequence[Account], s: Safety) -> str | None:
    """Why the whole run must stop, or None."""
    dropped: dict[str, int] = defaultdict(int)
    for a in actions:
        if a.rule == "missing-from-roster":
            dropped[a.org or "?"] += 1
    for org, n in sorted(dropped.items()):
        size = sum(1 for a in people if a.org == org and a.state is not State.REVOKED)
        if n >= 2 and size and n / size > s.max_org_drop_share:
            return (
                f"the roster of {org} drops {n} of its {size} people, more than "
                f"safety.max_org_drop_share = {s.max_org_drop_share:.0%}: a truncated "
                "file? nothing was changed"
            )
    return None


def hold(
    actions: Sequence[Action], people: Sequence[Account], s: Safety
) -> tuple[list[Action], list[Action], list[str]]:
    """The actions that may run, those held back, and one line per stage held back."""
    live = sum(1 for a in people if a.state is not State.REVOKED)
    limits: dict[str | ActionKind, tuple[str, int, float, int]] = {
        "put-back": ("lock", s.max_lock_count, s.max_lock_share, len(people)),
        "forwarding": ("lock", s.max_lock_count, s.max_lock_share, len(people)),
        ActionKind.LOCK: ("lock", s.max_lock_count, s.max_lock_share, live),
        ActionKind.REVOKE: ("revoke", s.max_revoke_count, s.max_revoke_share, live),
        ActionKind.PURGE: ("purge", s.max_purge_count, s.max_purge_share, len(people)),
    }
    held_stages: set[str | ActionKind] = set()
    lines: list[str] = []
    for kind in STAGES:
        name, max_count, max_share, population = limits[kind]
        hits = [a for a in actions if stage(a) == kind]
        if not hits:
            continue
        by_org: dict[str, int] = defaultdict(int)
        for a in hits:
            by_org[a.org or "?"] += 1
        detail = ", ".join(f"{o}: {n}" for o, n in sorted(by_org.items()))
        over = None
        if len(hits) > max_count:
            over = f"more than safety.max_{name}_count = {max_count}"
        elif len(hits) > max(1, int(max_share * population)):
            over = f"of {population} managed accounts, more than safety.max_{name}_share = "
            over += f"{max_share:.0%}"
        if over is None:
            continue
        held_stages.add(kind)
        what = {
            "put-back": "putting back hand changes",
            "forwarding": "removing forwarding out of the state's mail",
        }.get(str(kind), name)
        lines.append(
            f"held back: {what} of {len(hits)} accounts ({detail}), {over}; the rest of the "
            f"run goes ahead. Check it (syncd plan --latest), then release it by running the "
            f"same again with --allow-mass-change (a roster the inbox filed: syncd reconcile "
            f"--latest --allow-mass-change)"
        )
    return (
        [a for a in actions if stage(a) not in held_stages],
        [a for a in actions if stage(a) in held_stages],
        lines,
    )


def managed_people(accounts: Sequence[Account], scope: frozenset[str] | None) -> list[Account]:
    return [
        a
        for a in accounts
        if a.managed and a.kind is Kind.PERSON and (scope is None or a.org in scope)
    ]
