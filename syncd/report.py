"""Human and machine views of a plan and of a run (pure text and dicts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncd.model import Action, ActionKind, Decision, Field, Plan, as_lists

_LABEL = {
    "create-org-mailbox": "create org mailbox",
    "create": "create",
    "link": "link existing",
    "update": "update",
    "move": "move (transfer)",
    "reset-password": "reset password",
    "restore": "restore",
    "lock": "lock",
    "revoke": "revoke",
    "purge": "purge",
    "enforce": "put back (changed by hand)",
}


def action_label(a: Action) -> str:
    """What the operator reads for ``a``: an enforce that takes out a forwarding (Hưng Yên
    Đ4.5) is not a hand change put back."""
    if a.kind is ActionKind.ENFORCE and Field.FORWARDING in a.attrs:
        return "remove forwarding"
    return _LABEL.get(a.kind.value, a.kind.value)


def action_dict(a: Action) -> dict[str, Any]:
    return {
        "action": a.kind.value,
        "uid": a.uid,
        "new_uid": a.new_uid,
        "org": a.org,
        "dn": a.dn,
        "employee_number": a.employee_number,
        "full_name": a.full_name,
        "fields": as_lists(a.attrs),
        "before": as_lists(a.before),
        "reason": a.reason,
        "article": a.article,
    }


def decision_dict(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind.value,
        "org": d.org,
        "employee_number": d.employee_number,
        "full_name": d.full_name,
        "summary": d.summary,
        "candidates": list(d.candidates),
        "article": d.article,
    }


def plan_dict(plan: Plan) -> dict[str, Any]:
    return {
        "now": plan.now.isoformat(),
        "refused": plan.refused,
        "counts": plan.counts(),
        "actions": [action_dict(a) for a in plan.actions],
        "decisions": [decision_dict(d) for d in plan.decisions],
        "notices": list(plan.notices),
        "held": list(plan.held),
        "held_actions": [action_dict(a) for a in plan.held_actions],
    }


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plan_table(plan: Plan, limit: int | None = None) -> str:
    """A table an operator reads on a terminal: what, who, why, under which article."""
    lines = [f"{'ACTION':<18} {'UID':<24} {'ORG':<10} REASON [ARTICLE]"]
    everything = (*plan.actions, *plan.held_actions)
    shown = everything if limit is None else everything[:limit]
    held = set(map(id, plan.held_actions))
    for a in shown:
        uid = a.uid + (f" → {a.new_uid}" if a.new_uid else "")
        label = action_label(a)
        if id(a) in held:
            label = f"HELD {label}"
        lines.append(
            f"{label:<18} {_clip(uid, 24):<24} {_clip(a.org or '', 10):<10} "
            f"{a.reason} [{a.article}]"
        )
    if limit is not None and len(everything) > limit:
        lines.append(f"… and {len(everything) - limit} more (use --json for all)")
    return "\n".join(lines)


def counts_line(counts: dict[str, int]) -> str:
    if not counts:
        return "0 actions"
    return ", ".join(f"{n} {_LABEL.get(k, k)}" for k, n in sorted(counts.items()))


def decisions_text(decisions: Sequence[Decision]) -> str:
    if not decisions:
        return "No pending decisions."
    lines = []
    for d in decisions:
        lines.append(f"{d.id}  {d.kind.value:<16} {d.org or '':<10} {d.summary}")
        if d.candidates:
            lines.append(f"{'':12}candidates: {', '.join(d.candidates)}")
    return "\n".join(lines)
