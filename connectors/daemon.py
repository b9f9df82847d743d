"""``syncd run``: the foreground daemon systemd supervises.

Jobs (APScheduler, one at a time through the run lock): the inbox watch every
``daemon.inbox_interval`` seconds and at once when inotify says a file was completed, the full
reconcile on ``daemon.reconcile_cron`` and the lifecycle sweep on ``daemon.sweep_cron`` (local
time: the ``timezone`` setting). SIGTERM finishes the action in flight, audits it and
exits 0; SIGHUP re-reads the configuration and keeps the old one if the new one is invalid;
SIGUSR1 starts a full reconcile now. An
unreachable directory never kills the daemon: it reports itself degraded and retries with
backoff. It talks to systemd (READY, STATUS, WATCHDOG) and keeps ``status.json`` for
``syncd status``.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from connectors import retention, runner
from connectors.config import Config, ConfigError
from connectors.inbox import InboxWatcher
from connectors.loading import load_config
from connectors.logs import configure_logging as configure_logging  # its home; kept importable
from connectors.metrics import Metrics
from connectors.outcome import RunOutcome
from connectors.runlock import LockBusy
from connectors.schedule import crontab
from connectors.sdnotify import notify, watchdog_interval
from connectors.snapshots import SnapshotRegistry
from connectors.store import StateStore, write_private
from syncd.errors import SyncdError
from syncd.ports import DirectoryError
from syncd.yearly import catch_up, period_due, period_of, report_days

log = structlog.get_logger("syncd.daemon")


class Daemon:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config = self._load()
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.run_now = threading.Event()  # SIGUSR1: a full reconcile now
        self.status: dict[str, Any] = {"pid": os.getpid(), "directory": "unknown"}
        self.backoff = 0.0
        self.retry_at = 0.0
        # schedules are the province's local time (a nightly run at 02:00 is 02:00 in Cao Bằng,
        # not 09:00); each cron trigger carries the zone, so a reload may change it
        self.scheduler = BackgroundScheduler(timezone=self.config.zone)
        self.watcher = InboxWatcher(self.config, self.config.daemon.settle_seconds)
        self.metrics = Metrics()
        self._inbox_busy = threading.Event()
        self._inbox_wanted = False  # inotify spoke while a look was running: look again

    def _load(self) -> Config:
        # A bad cron or a metrics address off loopback is refused by the configuration's own
        # validation (connectors/config.py), the one home `config validate` shares
        return load_config(self.config_path)

    # -- jobs ---------------------------------------------------------------------------------

    def _guarded(self, name: str, fn: Callable[[], bool | None]) -> None:
        """Run job ``fn`` (False: it found nothing to do) with the daemon's error handling."""
        if self.stop.is_set():
            return
        wait = self.retry_at - time.monotonic()
        if wait > 0:
            # the directory failed: every job needs it, so each waits out the back-off; say
            # which job was skipped and when the next try is
            log.info("skipped: directory back-off", job=name, retry_in=round(wait, 1))
            return
        structlog.contextvars.bind_contextvars(job=name)
        worked: bool | None = True  # until fn says otherwise (an error: it did something)
        try:
            worked = fn()
            self._healthy()
        except LockBusy as exc:
            log.info("busy", detail=str(exc))
        except DirectoryError as exc:
            self._degraded(exc)
        except SyncdError as exc:
            log.error("job failed", error=str(exc))
            self.status["last_error"] = str(exc)
        except Exception as exc:  # the daemon outlives any one job's bug
            log.exception("job crashed", error=f"{type(exc).__name__}: {exc}")
            # and says so in its status (found by an attack: a sweep failing every night
            # left syncd status showing no error)
            self.status["last_error"] = f"{name} crashed: {type(exc).__name__}: {exc}"
        finally:
            structlog.contextvars.unbind_contextvars("job")
            self._save_status()
            # A run reads and plans with the cyclic collector paused and applies with what it
            # read frozen (connectors/runner.py); what it left in cycles sits in the oldest
            # generation, which Python's own thresholds collect almost never. Found by an
            # attack: ~220 KiB more resident per small inbox run and ~7 MiB per 2,000-person
            # one, for ever, and ldap3's sockets of failed connections held until then. The
            # daemon is idle between jobs: one full collection here costs nothing a run waits
            # on (~20 ms; not after an inbox look that found nothing, every few seconds).
            if worked is not False:
                gc.collect()

    def _healthy(self) -> None:
        self.metrics.directory_up.set(1)
        if self.status.get("directory") != "reachable":
            notify("STATUS=idle; directory reachable")
        self.status["directory"] = "reachable"
        self.status.pop("directory_error", None)
        self.backoff = 0.0

    def _degraded(self, exc: Exception) -> None:
        self.metrics.directory_up.set(0)
        self.backoff = min(max(self.backoff * 2, 5.0), 300.0)
        self.retry_at = time.monotonic() + self.backoff
        self.status.update(directory="unreachable", directory_error=str(exc))
        log.warning("degraded: directory unreachable", error=str(exc), retry_in=self.backoff)
        notify(f"STATUS=degraded: directory unreachable, retry in {self.backoff:.0f} s")

    def _record(self, kind: str, outcome: RunOutcome | None) -> None:
        if outcome is None:
            return
        counts = outcome.plan.counts() if outcome.plan else {}
        self.metrics.run(
            kind,
            outcome.exit_code,
            outcome.result.outcomes if outcome.result else [],
            outcome.accounts_by_state,
            time.time(),
            held=bool(outcome.plan and outcome.plan.held and not outcome.plan.refused),
        )
        self.status["last_run"] = {
            "kind": kind,
            "run_id": outcome.run_id,
            "when": self._local_now(),
            "exit_code": outcome.exit_code,
            "counts": counts,
            "report": str(outcome.report_path) if outcome.report_path else None,
        }
        log.info(
            "run finished",
            kind=kind,
            run_id=outcome.run_id,
            exit_code=outcome.exit_code,
            counts=counts,
        )

    def inbox_job(self) -> None:
        self._inbox_busy.set()
        try:
            self._inbox()
        finally:
            self._inbox_busy.clear()

    def _inbox(self) -> None:
        def go() -> bool:
            result = self.watcher.tick(
                time.time(),
                should_stop=self.stop.is_set,
                lock_timeout=self.config.daemon.lock_timeout,
            )
            if result.retry:
                raise DirectoryError(f"kept for retry: {', '.join(result.retry)}", transient=True)
            for name in result.processed + result.rejected + result.duplicates:
                log.info("inbox file done", file=name)
            self._record("inbox", result.last)
            return bool(result.last or result.processed or result.rejected or result.duplicates)

        self._guarded("inbox", go)

    def reconcile_job(self, sweep: bool = False) -> None:
        def go() -> None:
            notify(f"STATUS={'lifecycle sweep' if sweep else 'full reconcile'} running")
            # the full run re-applies the latest accepted roster of every organisation; the
            # sweep reads no roster: organisation mailboxes and the lifecycle clocks only
            latest = {} if sweep else SnapshotRegistry(self.config.paths.state).latest()
            outcome = runner.run(
                self.config,
                rosters=sorted(latest),
                restrict=latest,
                full=True,
                sweep=sweep,
                should_stop=self.stop.is_set,
                lock_timeout=self.config.daemon.lock_timeout,
                what="daemon sweep" if sweep else "daemon reconcile",
            )
            self._record("sweep" if sweep else "reconcile", outcome)
            if sweep:  # slips, reports, roster copies and filed files past their retention
                retention.sweep(self.config, datetime.now(UTC), outcome.run_id)
            notify("STATUS=idle")

        self._guarded("sweep" if sweep else "reconcile", go)

    # -- status -------------------------------------------------------------------------------

    def _local(self, when: datetime) -> str:
        """A time as people read it (``syncd status``, status.json): the configured zone, with
        its offset, so it is never ambiguous; the audit log alone keeps UTC."""
        return when.astimezone(self.config.zone).isoformat(timespec="seconds")

    def _local_now(self) -> str:
        return self._local(datetime.now(UTC))

    def _save_status(self, final: bool = False) -> None:
        # While shutting down, APScheduler holds its job-store lock until running jobs end:
        # asking it for jobs from a job thread then would deadlock, so keep the last answer.
        if not self.stop.is_set() or final:
            self.status["next_runs"] = {
                j.id: self._local(j.next_run_time) if j.next_run_time else None
                for j in self.scheduler.get_jobs()
            }
        state = StateStore(self.config.paths.state).load()
        self.status.update(
            updated=self._local_now(),
            inbox_backlog=self.watcher.backlog(),
            inbox_filing_waits=self.watcher.filing_waits(),
            inbox_left_folders=self.watcher.left_folders(),
            pending_decisions=sum(1 for k in state.decisions if k not in state.resolutions),
            inbox_readiness=self.watcher.mode,
        )
        self.metrics.backlog.set(self.status["inbox_backlog"])
        self.metrics.decisions.set(self.status["pending_decisions"])
        write_private(self.config.paths.state / "status.json", json.dumps(self.status, indent=1))

    # -- signals and the main loop ------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload.set()
        elif signum == signal.SIGUSR1:
            self.run_now.set()
        else:
            self.stop.set()

    def _reload(self) -> None:
        self.reload.clear()
        try:
            new = self._load()
        except (ConfigError, SyncdError) as exc:
            detail = "; ".join(getattr(exc, "issues", [str(exc)]))
            log.error("SIGHUP: new configuration invalid; keeping the old one", error=detail)
            notify("STATUS=configuration reload failed; running on the previous one")
            return
        self.config = new
        self.watcher.close()
        self.watcher = InboxWatcher(new, new.daemon.settle_seconds)
        self._schedule()
        log.info("SIGHUP: configuration reloaded", config=str(self.config_path))
        notify("STATUS=configuration reloaded")

    def _schedule(self) -> None:
        d = self.config.daemon
        self.scheduler.add_job(
            self.inbox_job,
            "interval",
            seconds=d.inbox_interval,
            id="inbox",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.add_job(
            self.reconcile_job,
            crontab(d.reconcile_cron, self.config.zone),
            id="reconcile",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(
            self.reconcile_job,
            crontab(d.sweep_cron, self.config.zone),
            id="sweep",
            kwargs={"sweep": True},
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )
        self._schedule_publishing()

    def _schedule_publishing(self) -> None:
        """The report on mailbox use before the profile's deadline, and the address lists,
        where the regulation asks for them and ``publish.folder`` says where they go."""
        pub, reports = self.config.publish, self.config.effective.reports
        for job in ("report", "addressbook"):
            if self.scheduler.get_job(job) is not None:
                self.scheduler.remove_job(job)
        if pub.folder is None:
            return
        if reports.usage is not None:
            days = report_days(reports.usage, pub.report_days_before)
            self.scheduler.add_job(
                self.report_job,
                OrTrigger(
                    [
                        CronTrigger(month=m, day=d, hour=4, minute=0, timezone=self.config.zone)
                        for m, d in days
                    ]
                ),
                id="report",
                replace_existing=True,
                max_instances=1,
                coalesce=True,
            )
            self._catch_up_report()
        if reports.address_list is not None:
            self.scheduler.add_job(
                self.addressbook_job,
                crontab(pub.addressbook_cron, self.config.zone),
                id="addressbook",
                replace_existing=True,
                max_instances=1,
                coalesce=True,
            )

    def _catch_up_report(self) -> None:
        """A report whose scheduled day passed while the daemon was not running (installed
        late, down that night, the run failed) is made now, while its deadline has not
        passed: the leadership never misses one for want of a 04:00 run."""
        pub, rule = self.config.publish, self.config.effective.reports.usage
        assert pub.folder is not None and rule is not None
        today = datetime.now(UTC).astimezone(self.config.zone).date()
        owed = catch_up(rule, pub.report_days_before, today)
        if owed is None:
            return
        scheduled, year, half = owed
        start = period_of(year, half, today).start
        made = [
            p
            for p in (pub.folder / "baocao").glob(f"baocao-{start:%Y%m%d}-*-toantinh.xlsx")
            if p.name.split("-")[2] >= f"{scheduled:%Y%m%d}" or half is not None
        ]
        if not made:
            log.info("usage report owed since its scheduled day: made now", due=str(scheduled))
            self.scheduler.add_job(
                self.report_job, id="report-now", replace_existing=True, max_instances=1
            )

    def report_job(self) -> None:
        def go() -> None:
            from connectors import usage_report

            rule = self.config.effective.reports.usage
            assert rule is not None
            now = datetime.now(UTC)
            year, half = period_due(rule, now.astimezone(self.config.zone).date())
            made = usage_report.make(self.config, year, half, None, None, now)
            log.info("usage report written", files=[str(p) for p in made.files])

        self._guarded("report", go)

    def addressbook_job(self) -> None:
        def go() -> None:
            from connectors import addressbook_files

            written = addressbook_files.publish(self.config, None, None, None)
            log.info("address lists published", files=len(written))

        self._guarded("addressbook", go)

    def _wait(self) -> None:
        """Half a second between looks at the signals; with inotify, a file completed in the
        inbox meanwhile makes the inbox job run now rather than at its next poll."""
        if not self.watcher.watching():
            self.stop.wait(0.5)
            return
        if self.watcher.wait(0.5):
            self._inbox_wanted = True
        if self._inbox_wanted and not self._inbox_busy.is_set() and not self.stop.is_set():
            self._inbox_wanted = False
            self.scheduler.modify_job("inbox", next_run_time=datetime.now(self.config.zone))

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)
        if self.config.daemon.metrics:
            self.metrics.serve(self.config.daemon.metrics)
            log.info("metrics", listen=self.config.daemon.metrics)
        self._schedule()
        self.scheduler.start()
        self._save_status()
        notify("READY=1", f"STATUS=watching {self.config.paths.inbox}")
        log.info("syncd running", config=str(self.config_path), inbox=str(self.config.paths.inbox))
        ping = watchdog_interval()
        last_ping = 0.0
        while not self.stop.is_set():
            if self.reload.is_set():
                self._reload()
            if self.run_now.is_set():
                self.run_now.clear()
                self.scheduler.add_job(
                    self.reconcile_job, id="reconcile-now", replace_existing=True, max_instances=1
                )
            if ping and time.monotonic() - last_ping >= ping:
                notify("WATCHDOG=1")
                last_ping = time.monotonic()
            self._wait()
        notify("STOPPING=1", "STATUS=stopping: finishing the action in flight")
        log.info("stopping: finishing the action in flight")
        self.scheduler.shutdown(wait=True)
        self.watcher.close()
        self.status["stopped"] = self._local_now()
        self._save_status(final=True)
        log.info("stopped")
        return 0
