"""How syncd logs: one place, so that every command and the daemon speak alike.

Its own module (not the daemon's) because every ``syncd`` command configures logging before
it starts, and importing the daemon for it brought APScheduler, inotify and the HR result
writers into each command's start (~0.07 s of a one-organisation run's 0.5 s, issue 14).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(
    json_lines: bool, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """JSON lines for journald, a readable console on a terminal; never a secret in either.

    Lines logged during a run carry its ``run_id`` (bound by the runner)."""
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # one write per record, its newline included (print writes them apart, and the
        # handler below, on another thread, wrote a whole record in between: found by an
        # attack, two records on one line, not JSON for journald)
        logger_factory=structlog.WriteLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    # what libraries log through the standard library (APScheduler's "run time of job … was
    # missed" on a loaded host, ldap3, inotify) comes out the same way: one JSON line each
    # for journald, never a bare text line among them
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    logging.basicConfig(handlers=[handler], level=max(level, logging.WARNING), force=True)
