"""Mail each person (and their organisation) once before an inactivity lock."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from datetime import datetime

from connectors.audit import open_audit
from connectors.config import Config
from connectors.loading import LifecycleInputs, all_exemptions
from connectors.localtime import in_zone
from connectors.mailer import SmtpMailer
from connectors.outcome import RunOutcome
from syncd.model import Account
from syncd.notices import lock_warning
from syncd.orgs import Catalogue
from syncd.plan.lifecycle import LockWarnings, lock_warnings
from syncd.ports import Mailer
from syncd.state import LocalState


def send_warnings(
    config: Config,
    accounts: Sequence[Account],
    inputs: LifecycleInputs,
    now: datetime,
    state: LocalState,
    catalogue: Catalogue,
    outcome: RunOutcome,
    mailer: Mailer | None,
) -> int:
    """Mail each person (and their organisation) once before an inactivity lock."""
    due = _warnings(config, accounts, inputs, now, state).due
    if not due:
        return 0
    mailer = mailer or SmtpMailer(config.smtp)
    sent = 0
    audit = open_audit(config)
    try:
        for acc, ev, key in due:
            to = [f"{acc.uid}@{config.domain}"]
            org = catalogue.orgs.get(acc.org or "")
            if config.smtp.notify_org and org is not None:
                to.append(f"{org.mailbox}@{config.domain}")
            subject, body = lock_warning(acc, ev, config.domain, config.zone)
            try:
                mailer.send(to, subject, body)
            except (OSError, smtplib.SMTPException) as exc:
                outcome.warnings.append(f"warning to {acc.uid} not sent: {exc}")
                audit.record(
                    run_id=outcome.run_id,
                    action="warn",
                    uid=acc.uid,
                    to=to,
                    result="failed",
                    error=str(exc),
                    article=ev.article,
                )
                continue
            state.warned.add(key)
            sent += 1
            audit.record(
                run_id=outcome.run_id,
                action="warn",
                uid=acc.uid,
                to=to,
                result="ok",
                # the province's day, as the e-mail and the reason after it name it (found by
                # an attack: "due 2027-01-01" before "since 2026-10-04", one UTC, one local)
                reason=f"inactivity lock due {in_zone(ev.when, config.zone, date_only=True)}: "
                f"{ev.reason}",
                article=ev.article,
            )
    finally:
        audit.close()
    return sent


def next_warning_at(
    config: Config,
    accounts: Sequence[Account],
    inputs: LifecycleInputs,
    now: datetime,
    state: LocalState,
) -> datetime | None:
    """When ``send_warnings`` would next mail someone with these inputs (None: never, or
    warnings are off): a run that skips planning because nothing changed must not skip a
    warning falling due meanwhile (connectors/quiet.py)."""
    if not config.lifecycle.warn_days_before:
        return None
    return _warnings(config, accounts, inputs, now, state).next_at


def _warnings(
    config: Config,
    accounts: Sequence[Account],
    inputs: LifecycleInputs,
    now: datetime,
    state: LocalState,
) -> LockWarnings:
    assert config.lifecycle.warn_days_before
    return lock_warnings(
        accounts,
        inputs.lifecycle(config),
        inputs.activity,
        all_exemptions(inputs, state),
        now,
        config.lifecycle.warn_days_before,
        state.warned,
        zone=config.zone,
    )
