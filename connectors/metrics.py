"""Prometheus metrics for the daemon, on a loopback address, off by default."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from syncd.errors import SyncdError


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` where host is a loopback address (metrics are never exposed further)."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback or not port.isdigit():
        raise SyncdError(
            f"daemon.metrics: {value!r} must be a loopback host:port, e.g. 127.0.0.1:9187"
        )
    return host, int(port)


class Metrics:
    def __init__(self) -> None:
        # prometheus_client is imported by the daemon's metrics only: every command loads this
        # module (the configuration checks ``parse_listen``), and the library with its HTTP
        # server took ~0.02-0.1 s of each command's start (issue 14)
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "syncd_runs", "Runs by kind and outcome", ["kind", "outcome"], registry=r
        )
        self.actions = Counter(
            "syncd_actions",
            "Directory actions by type and result",
            ["action", "result"],
            registry=r,
        )
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds",
            "When a run last ended without failure",
            registry=r,
        )
        self.accounts = Gauge(
            "syncd_accounts", "Managed person accounts by state", ["state"], registry=r
        )
        self.backlog = Gauge("syncd_inbox_backlog", "Files waiting in the inbox", registry=r)
        self.decisions = Gauge(
            "syncd_pending_decisions", "Decisions waiting for an operator", registry=r
        )
        self.directory_up = Gauge(
            "syncd_directory_up", "1 if the directory answered last time", registry=r
        )

    def serve(self, listen: str) -> None:
        from prometheus_client import start_http_server

        host, port = parse_listen(listen)
        start_http_server(port, addr=host, registry=self.registry)

    def run(
        self,
        kind: str,
        exit_code: int,
        outcomes: Any,
        by_state: Mapping[str, int],
        now: float,
        held: bool = False,
    ) -> None:
        """``held``: a stage was held back by a safety limit while the rest applied (exit 3
        then means "applied, something waits for the operator", not a refused run)."""
        outcome = {0: "ok", 1: "failed", 2: "bad-input", 3: "refused"}.get(exit_code, "other")
        if exit_code == 3 and held:
            outcome = "held"
        self.runs.labels(kind, outcome).inc()
        for o in outcomes:
            self.actions.labels(o.action.kind.value, o.status.value).inc()
        if exit_code in (0, 2) or outcome == "held":
            self.last_success.set(now)
        for state, count in by_state.items():
            self.accounts.labels(state).set(count)
