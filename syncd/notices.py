"""Messages syncd sends to people: the warning before an inactivity lock (Vietnamese first)."""

from __future__ import annotations

from datetime import tzinfo

from syncd.model import Account
from syncd.plan.lifecycle import Event


def lock_warning(acc: Account, ev: Event, domain: str, zone: tzinfo) -> tuple[str, str]:
    """Subject and body of the warning sent before ``ev`` locks ``acc``; the day is the
    province's (``zone``): a lock at 17:30 UTC is the next day there (found by an attack)."""
    when = ev.when.astimezone(zone)
    day = f"{when:%d/%m/%Y}"
    subject = f"[Thư điện tử công vụ] Hộp thư {acc.uid}@{domain} sẽ bị tạm khóa ngày {day}"
    body = f"""Kính gửi {acc.cn},

Hộp thư điện tử công vụ {acc.uid}@{domain} không phát sinh hoạt động trong thời gian dài
và sẽ bị tạm khóa vào ngày {day} theo {ev.article}.
Để tránh bị tạm khóa, vui lòng đăng nhập hộp thư trước ngày này. Nếu vắng mặt có lý do
(nghỉ phép, đi học, ốm đau), đề nghị cơ quan, đơn vị thông báo để được miễn trừ.

The official mailbox {acc.uid}@{domain} has had no activity for a long time and will be
locked on {when:%Y-%m-%d} ({ev.article}). Log in before then to keep it open; an absence
with a reason can be notified by your organisation.

Lý do / reason: {ev.reason}
"""
    return subject, body
