"""Interfaces the core needs from the outside world; connectors implement them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from syncd.errors import SyncdError
from syncd.model import Account, Action, Field, Named, State


class DirectoryError(SyncdError):
    """A directory operation failed; ``transient`` errors may succeed when retried.

    ``unanswered``: the request was sent and its answer never came (the connection dropped):
    the server may have applied it. A create that ends so is read back (``find_created``).
    """

    def __init__(self, message: str, *, transient: bool = False, unanswered: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.unanswered = unanswered


class Found(StrEnum):
    """What reading back a create whose answer was lost finds at its DN."""

    ABSENT = "absent"  # nothing: the add was not applied
    OURS = "ours"  # this action's entry, holding the password this action sent
    # this action's entry by what the create wrote, but its password cannot be checked
    OURS_PASSWORD_UNKNOWN = "ours-password-unknown"  # noqa: S105 - a verdict, no secret
    OTHER = "other"  # another entry holds the DN (a hand-made one, another person's)


class NotSent(Exception):
    """What ``create_many`` returns for a create it did not send because ``meanwhile`` asked
    it to stop: nothing was done for it (the applier ends it as skipped)."""


class ReadIncomplete(DirectoryError):
    """The directory did not return everything (size limit, missing paging cookie, …).

    A reconcile must abort on it: treating "not read" as "not there" would revoke everyone.
    """


@dataclass(frozen=True)
class Scope:
    """Which accounts one run needs: everything (``orgs is None``) or what a file touches."""

    orgs: Collection[str] | None = None
    employee_numbers: Collection[str] = ()


class Directory(Protocol):
    """A directory profile (generic OpenLDAP + ppolicy today; iRedMail, Zimbra, AD later)."""

    def read(self, scope: Scope) -> list[Account]:
        """All accounts in ``scope``, with ONE paged search; raise ReadIncomplete if cut short."""
        ...

    def names(self) -> Sequence[Named]:
        """The whole namespace: every entry under the base that holds a uid or a mail, in any
        state, managed or not, whatever a run is scoped to (uid, cn, mail, aliases, kind at
        least). A uid or address seen here is never given to anyone else. Raise
        ReadIncomplete if cut short."""
        ...

    def create(self, action: Action, password: str, *, since: datetime | None = None) -> str:
        """Create the entry ``action.attrs`` describes, with a must-change password; its DN.
        ``since`` is when its state begins (the plan's ``now``; default the wall clock)."""
        ...

    def create_many(
        self,
        items: Sequence[tuple[Action, str]],
        *,
        since: datetime | None = None,
        meanwhile: Callable[[], bool] | None = None,
    ) -> list[str | Exception]:
        """Several creates (action, password) that do not depend on each other, each with its
        own outcome, in order: the DN, or what :meth:`create` would have raised for it. A
        profile may have them in flight together (pipelined); one that fails changes nothing
        for the others. ``meanwhile`` is called once, before this returns, best while the
        directory has adds to work on: the applier finishes its previous batch in it (slips,
        audit, journal), which then no longer leaves the server idle. It never raises (the
        applier keeps what it raised for after); it returns True when the creates not sent
        yet must not be (that commit failed): those are :class:`NotSent`."""
        ...

    def find_created(
        self, action: Action, password: str, *, since: datetime | None = None
    ) -> tuple[Found, str]:
        """After a create of ``action`` (with ``password``, ``since``) whose answer was lost,
        what its DN holds now, and the DN. Read only; raise DirectoryError if it cannot be
        read (the caller then owes the account a new password)."""
        ...

    def update(
        self,
        dn: str,
        attrs: Mapping[Field, tuple[str, ...]],
        *,
        link: bool = False,
        since: datetime | None = None,
    ) -> str:
        """Replace these fields (``()`` deletes); ``link`` also adds syncd's class and makes
        the account active as of ``since``. The entry's DN afterwards: a profile that keeps
        the organisation in the entry's place moves it when the organisation changes."""
        ...

    def move(self, dn: str, new_uid: str, attrs: Mapping[Field, tuple[str, ...]]) -> str:
        """Rename the entry to ``new_uid`` (and its organisation's place); the new DN."""
        ...

    def set_password(self, dn: str, password: str) -> None:
        """Set a one-time password that must be changed at first login."""
        ...

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        """Record the lifecycle state and make it real: login blocked unless active, mail
        delivered or not as ``delivery`` says (the profile decides for locked mailboxes)."""
        ...

    def export(self, dn: str) -> str:
        """The whole entry as LDIF (all user and operational attributes), for the archive."""
        ...

    def delete(self, dn: str) -> None:
        """Delete the entry (after it was archived)."""
        ...


class Archive(Protocol):
    """Where purged entries go before they are deleted."""

    def store(self, uid: str, ldif: str) -> str:
        """Keep ``ldif`` (mode 0600, one file per account); return where it is."""
        ...

    def after_purge(self, uid: str, path: str) -> None:
        """The site's purge hook (archive the mailbox store too); raise if it fails."""
        ...


class AuditSink(Protocol):
    def record(self, **fields: Any) -> None:
        """Append one audit record (never a secret)."""
        ...

    def commit(self) -> None:
        """Make the records so far durable: the applier commits once per batch of actions (a
        sink that writes each record at once has nothing left to do)."""
        ...


class ActivitySource(Protocol):
    """Last activity per address from outside the directory (mail logs, an export …)."""

    def last_activity(self) -> Mapping[str, Mapping[str, datetime]]:
        """address (lower case) → kind (login, send, receive, or mail when the direction is
        unknown), with the source's name where known (``plan.lifecycle.activity_key``:
        ``"receive (postfix)"``) → the newest seen."""
        ...

    def kinds(self) -> frozenset[str]:
        """The kinds of activity this source reports (``login``, ``send``, ``receive``)."""
        ...


class Mailer(Protocol):
    def send(self, to: list[str], subject: str, body: str) -> None:
        """Send one plain-text message; raise on failure."""
        ...


class RunJournal(Protocol):
    """Where an apply records, durably, a batch of actions before it starts any of them and
    how each ended once the batch's slips and audit records are durable."""

    def started(self, batch: Sequence[tuple[int, Action]]) -> None:
        """The batch's actions (their index in the plan), synced before the first change."""
        ...

    def finished(self, batch: Sequence[tuple[int, Action, str]]) -> None:
        """How each ended: ``done``, ``failed``, or ``skipped`` (never started: the run was
        asked to stop, or gave up on the directory); synced."""
        ...
