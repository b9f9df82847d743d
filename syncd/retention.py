"""How long what a run leaves behind is kept: the rule, without the files.

A run leaves more than its audit records: its text report, the operator's copy of HR's result,
syncd's copy of each roster it applied, and the filed roster with HR's result beside it. They
name people, so they are not kept for ever (``retention.months``, default 24); the audit log
has its own clock (``audit.keep_months``) and its own pruning, which keeps the chain
verifiable.

Each thing is dated by when syncd wrote it, never by a time someone else chose: a roster HR
made two years ago on a desktop and dropped today keeps its old modification time, and must
not be deleted the night it is filed. A thing still needed is never deleted, however old: the
latest accepted roster of an organisation (the nightly run re-applies it).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import TypeVar

from syncd.regulation.profile import Duration

K = TypeVar("K", bound=Hashable)


def expired(
    written: Iterable[tuple[K, datetime]], now: datetime, months: int, needed: set[K]
) -> list[K]:
    """The things written ``months`` calendar months or more before ``now`` (31 March + 1
    month is 30 April, as the lifecycle clocks count), except those still ``needed``; none
    when ``months`` is 0 (kept for ever). In the order given."""
    if not months:
        return []
    keep = Duration(months, "m")
    return [key for key, when in written if key not in needed and keep.after(when) <= now]
