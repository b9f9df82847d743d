"""Helpers for tests that write rosters and look at the directory independently."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import Connection

from syncd.model import Action, ActionKind, Field

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


def create_action(
    uid: str, kind: ActionKind = ActionKind.CREATE, **attrs: tuple[str, ...]
) -> Action:
    """A create as the planner makes it for a person of skhcn (``attrs``: fields replaced, by
    their name); an organisation's mailbox (``CREATE_ORG_MAILBOX``) has no employee number."""
    values = {
        Field.UID: (uid,),
        Field.NAME: (f"Hà Văn {uid}",),
        Field.SURNAME: ("Hà",),
        Field.GIVEN_NAME: ("Văn",),
        Field.MAIL: (f"{uid}@test.gov.vn",),
        Field.EMPLOYEE_NUMBER: (f"E-{uid}",),
        Field.ORG: ("skhcn",),
    }
    if kind is ActionKind.CREATE_ORG_MAILBOX:
        del values[Field.EMPLOYEE_NUMBER]
    values.update({Field(k): v for k, v in attrs.items()})
    return Action(
        kind,
        uid,
        "skhcn",
        "new",
        "caobang-2025 Đ7.1",
        full_name=values[Field.NAME][0],
        employee_number=(values.get(Field.EMPLOYEE_NUMBER) or ("",))[0],
        attrs=values,
    )


@contextlib.contextmanager
def descriptors_past_select_limit() -> Iterator[None]:
    """Every descriptor opened inside is numbered 1024 or more (select(2)'s ``FD_SETSIZE``), as
    in a process that has opened many files and sockets over its life: the ones below are
    taken by copies of /dev/null, released on leaving. The soft limit on open files is raised
    to the hard one for it (skipped where the hard limit is below 2048)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard limit on open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    held = [os.open(os.devnull, os.O_RDONLY)]
    try:
        while (fd := os.dup(held[0])) < 1024:
            held.append(fd)
        os.close(fd)
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
