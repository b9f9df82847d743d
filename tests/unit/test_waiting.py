"""``connectors.waiting.readable``: poll(2), so a descriptor numbered past select(2)'s 1024 is
waited on like any other (select raised ValueError for it)."""

from __future__ import annotations

import os
import socket

import pytest

from connectors.waiting import readable
from tests.helpers import descriptors_past_select_limit


def test_a_descriptor_past_1024_is_waited_on_and_answers_data_eof_and_nothing() -> None:
    with descriptors_past_select_limit():
        a, b = socket.socketpair()
    with a, b:
        assert a.fileno() >= 1024 and b.fileno() >= 1024
        assert readable(a, 0) is False  # nothing yet: no wait
        assert readable(a, 0.05) is False  # nothing within the time
        b.sendall(b"x")
        assert readable(a, 1) is True
        assert a.recv(1) == b"x"
        b.shutdown(socket.SHUT_WR)
        assert readable(a.fileno(), 1) is True  # end of file: a read tells it
        assert a.recv(1) == b""


def test_a_closed_descriptor_raises_as_select_did() -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        readable(r, 0)
