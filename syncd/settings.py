"""The few operator settings the core itself reads, as plain data.

The core gets them as arguments (``PlanInput.safety``, ``PlanInput.adoption``); where they come
from — ``syncd.yaml``, validated by ``connectors.config`` — is none of its business. The
defaults here are the defaults of the configuration file too (``connectors.config`` takes them
from these classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unmatched = Literal["decide", "revoke"]


@dataclass(frozen=True)
class Safety:
    """Per-run limits for each stage, as a count and as a share of managed accounts."""

    max_lock_share: float = 0.10
    max_lock_count: int = 50
    max_revoke_share: float = 0.10
    max_revoke_count: int = 25
    max_purge_share: float = 0.05
    max_purge_count: int = 10
    max_org_drop_share: float = 0.5  # a roster dropping more of an org's people is refused


@dataclass(frozen=True)
class AdoptionSettings:
    """Accounts made before syncd, without an employee number, that match nobody on an
    authoritative roster: ``decide`` asks an operator (``syncd decide ID --revoke|--ignore``),
    ``revoke`` revokes them like any account dropped from the roster (guarded)."""

    unmatched: Unmatched = "decide"
