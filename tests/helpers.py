"""Helpers for tests that write rosters and look at the directory independently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldap3 import Connection

HEADER = "Mã cán bộ,Họ và tên,Mã đơn vị,Phòng/Ban,Chức vụ,Ngày sinh,Trạng thái,Đề nghị\n"


def write_roster(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\ufeff" + header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def entries(admin: Connection, base: str, flt: str = "(uid=*)") -> dict[str, dict[str, Any]]:
    """uid → attributes, read as the admin (independent of the code under test)."""
    admin.search(base, flt, attributes=["*", "+"])
    return {
        str(e["attributes"]["uid"][0]): dict(e["attributes"])
        for e in admin.response
        if e.get("type") == "searchResEntry"
    }
