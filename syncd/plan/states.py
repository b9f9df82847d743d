"""The account state machine: the one place that says which change may follow which state.

The planner consults it for every state change it emits, and so do the operator commands
(``syncd lock``, ``syncd restore``); a change the regulations do not allow is refused with the
reason. It also says whether a change restarts the state's clock: a locked account that is
then revoked stays "locked or revoked continuously" since the lock, so its purge date
(caobang-2025 Đ8.3, tuyenquang-2025 Đ8.4) does not move.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.errors import SyncdError
from syncd.model import Account, ActionKind, State


class TransitionRefused(SyncdError):
    """A state change that is not allowed from the account's current state."""


@dataclass(frozen=True)
class Transition:
    to: State | None  # None: the entry is gone (purge)
    keeps_since: bool = False  # the state's start date is carried over, not restarted


_A, _L, _R, _P = State.ACTIVE, State.LOCKED, State.REVOKED, State.PROVISIONING

TABLE: dict[tuple[State, ActionKind], Transition] = {
    # a crash between the add and the password leaves "provisioning": finish it
    (_P, ActionKind.RESTORE): Transition(_A),
    (_P, ActionKind.RESET_PASSWORD): Transition(_P),
    # an active mailbox
    (_A, ActionKind.LOCK): Transition(_L),
    (_A, ActionKind.REVOKE): Transition(_R),
    (_A, ActionKind.RESET_PASSWORD): Transition(_A),
    # HR departure in a profile where a cancelled account is deleted (tuyenquang-2025 Đ7.2)
    (_A, ActionKind.PURGE): Transition(None),
    # a locked mailbox: restored on request, revoked by the clocks or HR, purged after years
    (_L, ActionKind.RESTORE): Transition(_A),
    # an operator's security lock over a clock's lock: the reason changes, the date stays
    (_L, ActionKind.LOCK): Transition(_L, keeps_since=True),
    (_L, ActionKind.REVOKE): Transition(_R, keeps_since=True),
    (_L, ActionKind.PURGE): Transition(None),
    # a revoked mailbox: only a restore (khôi phục, transfer in) or the purge
    (_R, ActionKind.RESTORE): Transition(_A),
    (_R, ActionKind.PURGE): Transition(None),
}

# Changes that do not touch the state: allowed wherever the entry exists. ``enforce`` writes
# the recorded state back to the wire as it is (syncd.plan.drift): no transition either.
STATELESS = frozenset(
    {
        ActionKind.UPDATE,
        ActionKind.MOVE,
        ActionKind.LINK,
        ActionKind.CREATE_ORG_MAILBOX,
        ActionKind.ENFORCE,
    }
)

_WHY = {
    (_R, ActionKind.LOCK): (
        "is revoked: a lock would turn mail delivery back on and restart the purge clock; "
        "restore it first (khôi phục) if it must be used again"
    ),
    (_A, ActionKind.RESTORE): "is already active",
    (_R, ActionKind.REVOKE): "is already revoked",
    (_R, ActionKind.RESET_PASSWORD): "is revoked: restore it (khôi phục) to issue a password",
    (_L, ActionKind.RESET_PASSWORD): "is locked: restore it (khôi phục) to issue a password",
    (_P, ActionKind.LOCK): "is still being created (provisioning)",
    (_P, ActionKind.REVOKE): "is still being created (provisioning)",
}


def transition(state: State, kind: ActionKind) -> Transition:
    """The transition ``kind`` makes from ``state``; :class:`TransitionRefused` if none."""
    if kind in STATELESS:
        return Transition(state, keeps_since=True)
    found = TABLE.get((state, kind))
    if found is None:
        why = _WHY.get((state, kind), f"cannot {kind.value} from {state.value}")
        raise TransitionRefused(why)
    return found


# The reason an operator's lock (compromised, spam, malware, misuse) starts with. A security
# lock is lifted only by a restore request newer than it or by `syncd restore`: never by a
# transfer or the clocks, and revoking the account afterwards carries it along.
MANUAL_LOCK = "manual lock: "


def manual_lock(acc: Account) -> str | None:
    """The operator's lock this locked or revoked account still carries, or None."""
    reason = acc.state_reason or ""
    at = reason.find(MANUAL_LOCK)
    if at < 0 or acc.state not in (State.LOCKED, State.REVOKED):
        return None
    lock = reason[at:]
    if at > 0 and reason[at - 1] == "(" and ")" in lock:
        # carried in a revocation's reason, "… (manual lock: … [lock's article]) [revoke's
        # article]": the lock alone, or each revocation after a hand edit nested it again
        lock = lock[: lock.rfind(")")]
    return lock


def carried(acc: Account) -> str:
    """What a revocation of ``acc`` must add to its reason so a security lock is not lost."""
    lock = manual_lock(acc) if acc.state is State.LOCKED else None
    return f"; the security lock stands ({lock})" if lock else ""
