"""Warnings mailed before an inactivity lock (once), and imported mail activity."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from ldap3 import Connection, Server

from connectors import runner
from devtools.slapd_sandbox import free_port
from syncd.model import ActionKind
from tests.conftest import MakeConfig
from tests.helpers import write_roster

NOW = datetime.now(UTC)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def test_a_warning_goes_to_the_person_and_the_organisation_once(
    make_config: MakeConfig, tmp_path: Path, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    cfg = make_config(
        extra=f"lifecycle: {{warn_days_before: 14}}\nsmtp: {{port: {port}, "
        "sender: hotromail@test.gov.vn}\n"
    )
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    runner.run(cfg, rosters=[roster], now=NOW)
    assert inbox.messages == []  # nothing is near a lock yet
    warned = runner.run(cfg, rosters=[roster], now=NOW + timedelta(days=80))
    assert warned.warned == 1 and warned.plan.actions == ()  # type: ignore[union-attr]
    [(rcpt, msg)] = inbox.messages
    assert sorted(rcpt) == ["hungdv.skhcn@test.gov.vn", "sokhcn@test.gov.vn"]
    subject = str(make_header(decode_header(msg["Subject"])))
    assert "hungdv.skhcn@test.gov.vn sẽ bị tạm khóa" in subject
    assert "caobang-2025 Đ8.2a" in msg.get_payload(decode=True).decode()
    again = runner.run(cfg, rosters=[roster], now=NOW + timedelta(days=81))
    assert again.warned == 0 and len(inbox.messages) == 1  # sent once
    dry = runner.run(cfg, rosters=[roster], now=NOW + timedelta(days=85), dry_run=True)
    assert dry.warned == 0


def test_a_warnings_audit_record_names_the_same_local_days_as_its_e_mail(
    make_config: MakeConfig, tmp_path: Path, smtp: tuple[int, Inbox]
) -> None:
    """Found by an attack: made at 00:30 on 4 October in Việt Nam (17:30 UTC the day before),
    the e-mail said the lock falls on 2 January, the audit record "due 2027-01-01: no
    activity since 2026-10-04": one UTC day beside a local one."""
    port, inbox = smtp
    cfg = make_config(
        extra=f"lifecycle: {{warn_days_before: 14}}\nsmtp: {{port: {port}, "
        "sender: hotromail@test.gov.vn}\n"
    )
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    made = datetime(2026, 10, 3, 17, 30, tzinfo=UTC)
    runner.run(cfg, rosters=[roster], now=made)
    assert runner.run(cfg, rosters=[roster], now=made + timedelta(days=80)).warned == 1
    [(_, msg)] = inbox.messages
    assert "02/01/2027" in str(make_header(decode_header(msg["Subject"])))
    log = (tmp_path / "state" / "audit.jsonl").read_text(encoding="utf-8")
    [warn] = [r for r in map(json.loads, log.splitlines()) if r.get("action") == "warn"]
    assert warn["reason"].startswith("inactivity lock due 2027-01-02: ")
    assert "no activity since 2026-10-04" in warn["reason"]


def test_hungyen_imported_send_activity_keeps_a_mailbox_open(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Hưng Yên Đ7.2a counts send/receive: the mail server's record keeps dvhung open, while
    lvtam (who only has the directory's creation time) falls due. Cao Bằng 2025 counting
    logins only is proven in tests/unit/test_lifecycle.py."""
    later = NOW + timedelta(days=60)
    (tmp_path / "activity.csv").write_text(
        f"address,last_activity,kind\nDVHUNG.SKHCN@test.gov.vn,{later.isoformat()},send\n",
        "utf-8",
    )
    cfg = make_config(
        profile="hungyen-2025",
        extra="lifecycle: {activity_file: activity.csv}\nsafety: {max_lock_share: 1}\n",
    )
    roster = write_roster(
        tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
    )
    first = runner.run(cfg, rosters=[roster], now=NOW)
    assert first.result is not None
    for slip in first.result.slips:  # both people open their mailbox and change the password
        if slip.uid in ("dvhung.skhcn", "lvtam.skhcn"):
            dn = f"uid={slip.uid},{cfg.directory.base_dn}"
            person = Connection(Server(cfg.directory.url), dn, slip.password, auto_bind=True)
            assert person.extend.standard.modify_password(dn, slip.password, "Doi-Mat-Khau#2026")
            person.unbind()
    plan = runner.run(cfg, rosters=[roster], now=NOW + timedelta(days=100), dry_run=True).plan
    assert plan is not None
    assert [(a.kind, a.uid, a.rule) for a in plan.actions] == [
        (ActionKind.LOCK, "lvtam.skhcn", "lock_inactive")
    ]
