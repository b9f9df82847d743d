"""Every line the daemon writes for journald is JSON, what libraries log included (found by
the daemon test on a loaded host: APScheduler's "run time of job … was missed" came out as a
bare text line among the JSON ones)."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import structlog

from connectors.logs import configure_logging


def test_a_library_warning_is_a_json_line_like_syncds_own() -> None:
    out = io.StringIO()
    try:
        configure_logging(json_lines=True, stream=out)
        logging.getLogger("apscheduler.executors.default").warning(
            "Run time of job %r was missed by %s", "reconcile", "0:00:02"
        )
        logging.getLogger("ldap3").info("below the floor: not written")
        structlog.get_logger().info("directory read", how="delta")
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    assert [(x["level"], x["event"]) for x in lines] == [
        ("warning", "Run time of job 'reconcile' was missed by 0:00:02"),
        ("info", "directory read"),
    ]
    assert all("timestamp" in x for x in lines)


class _Slow(io.StringIO):
    """A stream that lets other threads run between any two writes, as a pipe to journald
    does when its buffer fills mid-record."""

    def write(self, s: str) -> int:
        n = super().write(s)
        time.sleep(0.0005)
        return n


def test_records_from_two_threads_never_share_a_line() -> None:
    """syncd's records (structlog) and a library's (the standard library's handler: APScheduler
    on its own thread) share one stream; each record is one whole write. Found by an attack:
    a SIGHUP's "configuration reloaded" and an APScheduler warning came out joined on one
    line, then an empty one (print writes the record, then its newline): not JSON."""
    out = _Slow()
    try:
        configure_logging(json_lines=True, stream=out)

        def library() -> None:
            for n in range(200):
                logging.getLogger("apscheduler.scheduler").warning("missed %d", n)

        side = threading.Thread(target=library)
        side.start()
        for n in range(200):
            structlog.get_logger().info("syncd's own", n=n)
        side.join()
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    lines = out.getvalue().split("\n")
    assert lines[-1] == ""
    assert len([json.loads(line) for line in lines[:-1]]) == 400  # each line one whole record
