"""A folder syncd must write on a read-only file system is named as such at start: the
ownership advice (``chown -R …``) that a permission problem gets would change nothing there
(found by an attack). The kernel's answers are stood in for: a read-only mount needs root
and a mount namespace, which a unit test does not take."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors import privileges


class _ReadOnly:
    f_flag = os.ST_RDONLY


class _Writable:
    f_flag = 0


def _refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mount: type[_ReadOnly] | type[_Writable]
) -> str:
    """What the start-up check says of a folder syncd may not write, on ``mount``."""
    monkeypatch.setattr(privileges.os, "access", lambda *_: False)
    monkeypatch.setattr(privileges.os, "statvfs", lambda _: mount())
    with pytest.raises(privileges.PrivilegeError) as caught:
        privileges._check(tmp_path, tmp_path)
    return str(caught.value)


def test_a_folder_on_a_read_only_mount_is_named_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = _refused(tmp_path, monkeypatch, _ReadOnly)
    assert "read-only file system" in said and "remount" in said
    assert "chown" not in said


def test_a_folder_syncd_may_not_write_on_a_writable_mount_gets_the_ownership_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = _refused(tmp_path, monkeypatch, _Writable)
    assert "chown -R" in said and "read-only" not in said
