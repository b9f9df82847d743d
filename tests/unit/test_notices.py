"""The warning a person gets before an inactivity lock names the province's day."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from syncd.model import Account, ActionKind
from syncd.notices import lock_warning
from syncd.plan.lifecycle import Event


def test_the_lock_warning_names_the_day_of_the_province_not_of_utc() -> None:
    """Found by an attack: a lock due at 17:30 UTC on 24 February (00:30 on the 25th in Việt
    Nam) was announced for 24/02/2027."""
    acc = Account(dn="uid=a,dc=x", uid="a.skhcn", cn="Lê Văn A", mail=("a@x",))
    ev = Event(datetime(2027, 2, 24, 17, 30, tzinfo=UTC), ActionKind.LOCK, "lock_inactive",
               "no login for 90 days", "caobang-2025 Đ8.2a")  # fmt: skip
    subject, body = lock_warning(acc, ev, "caobang.gov.vn", ZoneInfo("Asia/Ho_Chi_Minh"))
    assert subject.endswith("sẽ bị tạm khóa ngày 25/02/2027")
    assert "vào ngày 25/02/2027" in body and "locked on 2027-02-25" in body
    assert "24/02" not in subject + body and "2027-02-24" not in body
