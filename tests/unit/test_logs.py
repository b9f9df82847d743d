"""Every line the daemon writes for journald is JSON, what libraries log included (found by
the daemon test on a loaded host: APScheduler's "run time of job … was missed" came out as a
bare text line among the JSON ones)."""

from __future__ import annotations

import io
import json
import logging

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
