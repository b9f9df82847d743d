"""Roster requests (cấp mới, cấp lại mật khẩu, khôi phục, thu hồi) are carried out once per
person: their identity, and the keys of those already done."""

from __future__ import annotations

from syncd.model import Person, emp_key


def request_key(p: Person) -> str:
    """The identity of a roster request: one person, one kind of request."""
    return f"{emp_key(p.employee_number)}|{p.request.value}"


def done_keys(done: set[str]) -> set[str]:
    """Requests done, as ``employee|request`` (older state files appended the file's hash)."""
    keys = set()
    for d in done:
        emp, _, rest = d.partition("|")
        keys.add(f"{emp_key(emp)}|{rest.split('|')[0]}")
    return keys
