"""The ``syncd`` command: the composition root that wires the core to its connectors.

It lives in :mod:`connectors` because it is itself an adapter (terminal, files, LDAP): the core
package stays free of any outside-world import, which the import-linter contract enforces.

Errors become exit codes in one place, :class:`SyncdGroup`: see :data:`EXIT_CODES` and
README.md ("Exit codes"). 0 done; 1 actions failed, or the directory could not be reached or
read, or another run holds the lock; 2 bad input or configuration, or a change the account state
machine refuses; 3 refused or held back by a safety limit; 70 an internal error (a bug): one line
on stderr, the traceback in a file it names.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import logging
import os
import pwd
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from connectors import runner
from connectors.audit import open_audit
from connectors.config import Config, ConfigError
from connectors.directory import profile as directory_profile
from connectors.loading import inbox_files, load_catalogue, load_config
from connectors.localtime import in_zone
from connectors.outcome import EXIT_BAD_INPUT, EXIT_FAILED, report_text, summary_dict
from connectors.privileges import check_access, check_readable, run_as_service_user, switched
from connectors.regulations import SCHEMES, get_scheme
from connectors.runlock import LockBusy, RunLock
from connectors.snapshots import SnapshotRegistry
from connectors.store import StateStore, new_run_id, write_private
from syncd.errors import SyncdError
from syncd.inbox import safe_name
from syncd.model import Action, ActionKind, DecisionKind, Plan, emp_key, names_held
from syncd.naming import Status, UidPool, allocate
from syncd.naming.allocate import RESERVED, check_local_part
from syncd.orgs import CatalogueError
from syncd.plan.states import MANUAL_LOCK
from syncd.ports import DirectoryError
from syncd.regulation import CLOCKS, LOCK_REASONS
from syncd.report import decision_dict, decisions_text, plan_dict, plan_table
from syncd.state import Resolution, Resolve

DEFAULT_CONFIG = "/etc/syncd/syncd.yaml"
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE: a bug, not the operator's input nor the directory

# Every SyncdError becomes its exit code here and nowhere else; the first matching class wins.
EXIT_CODES: tuple[tuple[type[SyncdError], int], ...] = (
    (DirectoryError, EXIT_FAILED),  # unreachable, bind refused, a read cut short
    (LockBusy, EXIT_FAILED),  # another run (the daemon) held the lock for longer than --wait
    # configuration, catalogue, secrets, roster and lifecycle files, arguments, an unknown
    # account, and a change the account state machine refuses (TransitionRefused)
    (SyncdError, EXIT_BAD_INPUT),
)

# a disk full, over quota or read-only: the host's to mend, not a bug (exit 1, no traceback)
_FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})

_HEADLINES: tuple[tuple[type[SyncdError], str], ...] = (
    (ConfigError, "configuration has errors:\n"),
    (CatalogueError, "organisation catalogue has errors:\n"),
)


def exit_code_for(exc: SyncdError) -> int:
    return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))


class BadInput(click.ClickException):
    """Bad input or configuration: exit code 2, message on stderr."""

    exit_code = EXIT_BAD_INPUT


def _keep_traceback(ctx: click.Context, exc: BaseException) -> str:
    """Write the traceback to ``<state>/crashes/`` (0600), else a private temporary file."""
    text = "".join(traceback.format_exception(exc))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"syncd-{stamp}-{os.getpid()}.txt"
    cfg = ctx.meta.get("syncd.config")
    if isinstance(cfg, Config):
        path = cfg.paths.state / "crashes" / name
        try:
            write_private(path, text)
            return str(path)
        except OSError:
            pass
    try:
        fd, tmp = tempfile.mkstemp(prefix=name.removesuffix(".txt") + "-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return tmp
    except OSError:
        sys.stderr.write(text)
        return "stderr (above)"


class SyncdGroup(click.Group):
    """The one place where errors become exit codes (see :data:`EXIT_CODES`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyncdError as exc:
            headline = next((h for cls, h in _HEADLINES if isinstance(exc, cls)), "")
            click.echo(f"Error: {headline}{exc}", err=True)
            raise click.exceptions.Exit(exit_code_for(exc)) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # the reader went away (`syncd plan | head`): not a bug; what the command did is
            # done (a reconcile's report is in its file), the rest of its output is not wanted
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(141) from None  # 128 + SIGPIPE, as a shell reports it
        except OSError as exc:
            if exc.errno not in _FULL_DISK:
                self._internal(ctx, exc)
            # an operational failure, not a bug (an attack filled the outbox: exit 70 and a
            # traceback file, itself on the full disk): say which, and that nothing is lost
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(
                f"Error: {os.strerror(exc.errno or 0)}{where}: free space (or make it writable) "
                "and run again; the next run finishes what this one started",
                err=True,
            )
            raise click.exceptions.Exit(EXIT_FAILED) from exc
        except Exception as exc:  # a bug: one line for the operator, the traceback kept
            self._internal(ctx, exc)

    def _internal(self, ctx: click.Context, exc: Exception) -> NoReturn:
        where = _keep_traceback(ctx, exc)
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        click.echo(f"Error: internal error ({what}); traceback in {where}", err=True)
        raise click.exceptions.Exit(EXIT_INTERNAL) from exc


def operator_identity() -> dict[str, Any]:
    """Who runs this command, for the audit log.

    The login user from the kernel's audit ``loginuid`` (kept across ``su`` and ``sudo``; unset
    for services: 4294967295), else the user root switched from (``syncd`` as root runs as the
    service user: :mod:`connectors.privileges`), else the effective user; and ``SUDO_USER``.
    """
    euid = os.geteuid()
    uid, source = euid, "effective-user"
    switch = switched()
    if switch is not None:
        uid, source = switch.from_uid, "user-before-switch"
    try:
        raw = Path("/proc/self/loginuid").read_text(encoding="ascii").strip()
        if raw and int(raw) != 4294967295:
            uid, source = int(raw), "loginuid"
    except (OSError, ValueError):
        pass

    def name(n: int) -> str:
        try:
            return pwd.getpwuid(n).pw_name
        except KeyError:
            return str(n)

    who: dict[str, Any] = {"user": name(uid), "uid": uid, "source": source}
    if euid != uid:
        who["effective_user"] = name(euid)
    if os.environ.get("SUDO_USER"):
        who["sudo_user"] = os.environ["SUDO_USER"]
    return who


def operator_label(who: dict[str, Any]) -> str:
    label = str(who.get("user", "?"))
    if who.get("sudo_user") and who["sudo_user"] != label:
        label += f" (sudo from {who['sudo_user']})"
    return label


@click.group(cls=SyncdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="syncd")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="SYNCD_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    help="The syncd.yaml to use (or $SYNCD_CONFIG).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path) -> None:
    """syncd keeps a province's official mail directory in step with HR and the regulation.

    Exit codes: 0 done; 1 some actions failed, or the directory could not be reached or
    read, or another run holds the lock; 2 bad input or configuration (nothing changed);
    3 refused or held back by a safety limit; 70 internal error (traceback in a file).
    """
    ctx.obj = config_path
    from connectors.logs import configure_logging

    # Commands print their own results; the log only speaks up for warnings, on stderr.
    configure_logging(json_lines=False, stream=sys.stderr, level=logging.WARNING)


def _config(ctx: click.Context, *, writes: bool = True) -> Config:
    """The configuration, as the service user. ``writes`` False (a command that only reads,
    ``status``): the folders syncd writes are not checked, so the command that shows what
    the daemon is waiting for still answers while one of them is read-only or full."""
    path: Path = ctx.find_root().obj  # the -c option of the top-level group
    cfg = load_config(path)  # errors: SyncdGroup.invoke
    ctx.meta["syncd.config"] = cfg  # where an internal error's traceback goes
    # Root on a host with a service user becomes that user before any other file is opened or
    # created; then every file syncd writes must be usable, or one line says which and why.
    run_as_service_user(cfg, ["syncd", *sys.argv[1:]])
    if writes:
        check_access(cfg)
    named = [v for p in ctx.params.values() for v in (p if isinstance(p, tuple | list) else [p])]
    check_readable(v for v in named if isinstance(v, Path))
    return cfg


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"--now {value!r}: use an ISO date or date-time, e.g. 2027-03-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@main.group("config")
def config_group() -> None:
    """Check the configuration."""


@config_group.command("validate")
@click.pass_context
def config_validate(ctx: click.Context) -> None:
    """Validate syncd.yaml (schema, then cross-field checks) and the organisation catalogue."""
    cfg = _config(ctx)
    catalogue = load_catalogue(cfg.orgs)
    warnings: list[str] = []
    from connectors.secrets import bind_password

    bind_password(cfg.directory, warnings)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(
        f"{cfg.source}: ok — profile {cfg.profile}, scheme {cfg.scheme.id}, domain {cfg.domain}, "
        f"{len(catalogue.all())} organisations"
    )


def _config_as_started(ctx: click.Context) -> Config:
    """The configuration, without switching to the service user: ``directory init`` acts as
    root over ldapi (slapd knows root by the socket), and neither it nor the doctor writes a
    file of syncd's."""
    cfg = load_config(ctx.find_root().obj)
    ctx.meta["syncd.config"] = cfg
    return cfg


@main.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="The checks as JSON.")
@click.option(
    "--read-only",
    is_flag=True,
    help="Skip the probes that write (a probe account; 501 entries for the size limit).",
)
@click.option(
    "--admin-url",
    default=None,
    metavar="LDAPI_URL",
    help="Also compare the service DN's view with root's over ldapi (SASL EXTERNAL; as root "
    "on the slapd host), e.g. ldapi:///.",
)
@click.pass_context
def doctor_cmd(ctx: click.Context, as_json: bool, read_only: bool, admin_url: str | None) -> None:
    """Ask the directory whether it gives syncd what it needs (bind, base, schema, ppolicy
    and lockout, last bind, size limit, write access, visibility); each finding names its
    fix. Exit 0 all good, 1 findings."""
    from connectors.directory.doctor import run_doctor
    from connectors.directory.setup import secret_source
    from connectors.secrets import bind_password

    # as the daemon will run (the service user, its own way to the secret), so that a green
    # doctor proves the daemon binds; root only for --admin-url, which speaks ldapi as root
    cfg = _config_as_started(ctx) if admin_url else _config(ctx)
    warnings: list[str] = []
    password = bind_password(cfg.directory, warnings)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    report = run_doctor(
        cfg.directory,
        password,
        cfg.domain,
        write=not read_only,
        admin_url=admin_url,
        secret_source=secret_source(cfg.directory),
        regulation=cfg.effective,
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        click.echo(report.text(), nl=False)
    if not report.ok:
        sys.exit(EXIT_FAILED)


@main.group("directory")
def directory_group() -> None:
    """Prepare the directory for syncd."""


@directory_group.command("init")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the changes as LDIF (for ldapmodify -Y EXTERNAL -H ldapi:///); change nothing.",
)
@click.option(
    "--admin-url",
    default="ldapi:///",
    show_default=True,
    help="slapd's ldapi socket (path percent-encoded); root binds there with SASL EXTERNAL.",
)
@click.pass_context
def directory_init_cmd(ctx: click.Context, dry_run: bool, admin_url: str) -> None:
    """Create what syncd needs in the directory, idempotently: schema, modules, indexes, the
    service DN's size limit and access rules, ppolicy and lastbind, ou=services, the service
    DN with the configured secret, the default password policy. Run as root on the slapd
    host."""
    from connectors.directory.setup import run_init
    from connectors.secrets import bind_password

    cfg = _config_as_started(ctx)
    warnings: list[str] = []
    password = bind_password(cfg.directory, warnings)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    plan = run_init(cfg.directory, password, admin_url, dry_run=dry_run, applied=click.echo)
    if dry_run:
        click.echo(plan.ldif(), nl=False)
    elif not plan.changes:
        click.echo("nothing to do: the directory has what syncd needs")
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)


@main.group("policy")
def policy_group() -> None:
    """The directory's password policy against the regulation (DIGEST §2)."""


def _policy_lines(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        click.echo(report.text(), nl=False)


@policy_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="The comparison as JSON.")
@click.pass_context
def policy_check_cmd(ctx: click.Context, as_json: bool) -> None:
    """Compare the directory's password policy with the regulation's, rule by rule: each
    difference names the article and the attribute; what the server cannot enforce is said.
    Exit 0 in line, 1 drift (or the directory failed)."""
    from connectors.directory.policy import check
    from connectors.secrets import bind_password

    cfg = _config_as_started(ctx)
    warnings: list[str] = []
    password = bind_password(cfg.directory, warnings)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    report = check(cfg.directory, cfg.domain, password, cfg.effective)
    _policy_lines(report, as_json)
    if not report.ok:
        sys.exit(EXIT_FAILED)


@policy_group.command("apply")
@click.option("--dry-run", is_flag=True, help="Print the changes as LDIF; change nothing.")
@click.option(
    "--admin-url",
    default=None,
    metavar="LDAPI_URL",
    help="Write as root over slapd's ldapi socket (SASL EXTERNAL), e.g. ldapi:///.",
)
@click.option("--admin-dn", default=None, help="Write as this administrator DN instead.")
@click.option(
    "--admin-password-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="The file holding --admin-dn's password (never logged).",
)
@click.pass_context
def policy_apply_cmd(
    ctx: click.Context,
    dry_run: bool,
    admin_url: str | None,
    admin_dn: str | None,
    admin_password_file: Path | None,
) -> None:
    """Write the password policy the regulation asks for (ppolicy's default policy; Zimbra's
    default class of service), idempotently; each change is audited. Without --admin-url or
    --admin-dn it writes as the service DN."""
    from connectors.directory.policy import admin_bind, apply
    from connectors.secrets import bind_password

    if (admin_dn is None) != (admin_password_file is None):
        raise BadInput("--admin-dn and --admin-password-file go together")
    if admin_dn and admin_url:
        raise BadInput("give --admin-url or --admin-dn, not both")
    cfg = _config_as_started(ctx)
    warnings: list[str] = []
    secret = bind_password(cfg.directory, warnings)
    if admin_password_file is not None:
        try:
            secret = admin_password_file.read_text(encoding="utf-8").rstrip("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{admin_password_file}: cannot read: {exc}") from exc
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    # bound first: root's ldapi identity is fixed at the bind, and the audit log is the
    # service user's (root switches to it before writing a file of syncd's)
    conn = admin_bind(cfg.directory, cfg.domain, admin_url, admin_dn, secret)
    try:
        if not dry_run:
            run_as_service_user(cfg, ["syncd", *sys.argv[1:]])
            check_access(cfg)
        run_id, who = new_run_id(), operator_identity()
        audit = None if dry_run else open_audit(cfg)
        rule = cfg.effective.password

        def done(change: Any) -> None:
            click.echo(f"changed {change.dn}: {change.why}")
            assert audit is not None
            audit.record(
                run_id=run_id,
                action="policy-apply",
                uid=None,
                dn=change.dn,
                attributes={a: list(v) for _, a, v in change.mods}
                or {k: list(v) for k, v in change.attributes.items()},
                reason=change.why,
                article=rule.article,
                operator=who,
                result="ok",
            )

        try:
            report = apply(conn, cfg.directory, cfg.effective, dry_run=dry_run, applied=done)
        finally:
            if audit is not None:
                audit.close()
    finally:
        conn.unbind()
    if dry_run:  # LDIF for ldapmodify; the comparison as comments
        click.echo(report.ldif(), nl=False)
    elif not report.changes:
        click.echo("nothing to do: the directory's policy is in line with the regulation")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)


_run_options = [
    click.option(
        "--roster",
        "rosters",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="Run on this roster file (repeatable) instead of the inbox.",
    ),
    click.option("--now", "now", default=None, help="Evaluate at this date-time (ISO)."),
    click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    click.option(
        "--allow-mass-change",
        is_flag=True,
        help="Override the safety limits for this run (audited).",
    ),
    click.option(
        "--latest",
        is_flag=True,
        help="Re-apply the latest accepted roster of every organisation, as the daemon's "
        "nightly run does (with --allow-mass-change: release what a filed roster held back).",
    ),
]


F = TypeVar("F", bound=Callable[..., Any])


def run_options(fn: F) -> F:
    for option in reversed(_run_options):
        fn = option(fn)
    return fn


@contextlib.contextmanager
def _json_errors(as_json: bool, what: str = "plan") -> Iterator[None]:
    """``plan``, ``reconcile --json`` and ``check --json``: an error (the configuration, a
    folder, the directory, a roster's file, a run applying meanwhile) is a JSON document on
    stdout too, not an empty one (``what``: the key the document's result would have)."""
    try:
        yield
    except (SyncdError, BadInput) as exc:
        if as_json:
            code = exit_code_for(exc) if isinstance(exc, SyncdError) else exc.exit_code
            error = {"message": str(exc), "kind": type(exc).__name__, "exit": code}
            click.echo(json.dumps({what: None, "error": error}, ensure_ascii=False, indent=1))
        raise


def _stopper(stop: threading.Event) -> Callable[[int, Any], None]:
    """The signal handler of an applying run: the first SIGTERM or Ctrl-C asks it to stop
    after the actions in flight; a second Ctrl-C interrupts at once (the journal mends it)."""

    def handler(sig: int, _frame: Any) -> None:
        if sig == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        click.echo("stopping after the actions in flight (Ctrl-C again: at once)", err=True)

    return handler


def _do_run(
    ctx: click.Context,
    rosters: tuple[Path, ...],
    now: str | None,
    as_json: bool,
    allow_mass_change: bool,
    dry_run: bool,
    wait: float = 300.0,
    latest: bool = False,
) -> None:
    with _json_errors(as_json):
        cfg = _config(ctx)
        if latest and rosters:
            raise BadInput("give --roster FILE or --latest, not both")
        accepted = SnapshotRegistry(cfg.paths.state).latest() if latest else None
        bar: Any = None

        def on_plan(plan: Plan) -> None:
            nonlocal bar
            if sys.stderr.isatty() and not as_json and not dry_run and len(plan.actions) > 50:
                bar = click.progressbar(length=len(plan.actions), label="applying", file=sys.stderr)
                bar.__enter__()

        def progress(_: Action) -> None:
            if bar is not None:
                bar.update(1)

        # SIGTERM (a `timeout`, systemd-run, a shutdown) and Ctrl-C stop an applying run as
        # SIGTERM stops the daemon: the actions in flight finish and are audited, the rest is ended
        # as skipped and planned again by the next run, the report says so and the exit code is 1
        # (attacks found the command killed outright with no report, then a stopped run exiting
        # 0). A plan applies nothing: the defaults stay.
        stop = threading.Event()
        before = {
            sig: signal.signal(sig, _stopper(stop))
            for sig in (() if dry_run else (signal.SIGTERM, signal.SIGINT))
        }
        try:
            outcome = runner.run(
                cfg,
                rosters=sorted(accepted) if accepted is not None else list(rosters) or None,
                restrict=accepted,
                full=accepted is not None,
                now=_parse_now(now),
                dry_run=dry_run,
                allow_mass_change=allow_mass_change,
                should_stop=stop.is_set,
                progress=progress,
                on_plan=on_plan,
                lock_timeout=wait,
            )
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
            if bar is not None:
                bar.__exit__(None, None, None)
        if as_json:
            data = {
                "plan": plan_dict(outcome.plan) if outcome.plan else None,
                **summary_dict(outcome),
            }
            click.echo(json.dumps(data, ensure_ascii=False, indent=1))
        else:
            # the table names each account a refused or held-back stage would have touched
            if outcome.plan is not None and (dry_run or outcome.plan.refused or outcome.plan.held):
                click.echo(plan_table(outcome.plan, limit=None if dry_run else 40))
                click.echo("")
            # the files the run read: --latest's are the accepted copies (as in the report file)
            files = sorted(accepted) if accepted is not None else list(rosters) or inbox_files(cfg)
            click.echo(report_text(outcome, files), nl=False)
        sys.exit(outcome.exit_code)


@main.command("plan")
@run_options
@click.pass_context
def plan_cmd(
    ctx: click.Context,
    rosters: tuple[Path, ...],
    now: str | None,
    as_json: bool,
    allow_mass_change: bool,
    latest: bool,
) -> None:
    """Show what a reconcile would do, changing nothing."""
    _do_run(ctx, rosters, now, as_json, allow_mass_change, dry_run=True, latest=latest)


@main.command("reconcile")
@run_options
@click.option("--dry-run", is_flag=True, help="Plan only (the same as `syncd plan`).")
@click.option(
    "--wait",
    default=300.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait for another run (the daemon) to finish.",
)
@click.pass_context
def reconcile_cmd(
    ctx: click.Context,
    rosters: tuple[Path, ...],
    now: str | None,
    as_json: bool,
    allow_mass_change: bool,
    latest: bool,
    dry_run: bool,
    wait: float,
) -> None:
    """Apply the plan: create, link, update, move, reset, restore, lock, revoke, purge."""
    _do_run(
        ctx, rosters, now, as_json, allow_mass_change, dry_run=dry_run, wait=wait, latest=latest
    )


@main.command("rules")
@click.pass_context
def rules_cmd(ctx: click.Context) -> None:
    """Print the effective rules: each with its article and where its value comes from."""
    cfg = _config(ctx)
    p = cfg.effective
    click.echo(f"{p.id} — {p.title}   (configuration: {cfg.source})")
    click.echo(f"  {'naming scheme':<22} {cfg.scheme.id:<12} [{cfg.scheme.article}]")
    pw = p.password
    need = [f"≥{pw.min_length} chars"] + [
        n for n, on in (("upper", pw.upper), ("lower", pw.lower), ("digit", pw.digit)) if on
    ]
    if pw.special:
        need.append(f"special {pw.special}")
    click.echo(f"  {'password':<22} {', '.join(need)} [{pw.article}]")
    click.echo(f"  {'first login':<22} must change the one-time password [{p.must_change_article}]")
    lc = p.lifecycle
    for key in CLOCKS:
        clock = getattr(lc, key)
        value = f"after {clock.after}" if clock.after else "off"
        click.echo(f"  {key:<22} {value:<12} [{clock.article}]  ({clock.source})")
    act = lc.activity
    click.echo(
        f"  {'activity counts':<22} {' / '.join(act.sources):<12} [{act.article}]  ({act.source})"
    )
    # how exact the directory's login times are is the directory profile's to say (AD's lag)
    note = getattr(directory_profile(cfg.directory.profile), "ACTIVITY_NOTE", None)
    if note:
        click.echo(f"  {'':<22} login times: {note}")
    dol = lc.delete_on_leave
    leaver = "deleted" if dol.value else "revoked"
    click.echo(f"  {'a leaver is':<22} {leaver:<12} [{dol.article}]  ({dol.source})")
    flag = lc.locked_receives_mail
    click.echo(
        f"  {'locked receives mail':<22} {'yes' if flag.value else 'no':<12} [{flag.article}]"
        f"  ({flag.source})"
    )
    for reason, article in lc.manual_lock.items():
        click.echo(f"  lock --reason {reason:<21} [{article}]")
    for line in _mailbox_rules(cfg):
        click.echo(line)
    fwd = p.forwarding
    if fwd is not None:  # Hưng Yên Đ4.5: where automatic forwarding may go
        # only a profile that maps the forwarding field reads it (its FIELD_ATTRIBUTES)
        fields = getattr(directory_profile(cfg.directory.profile), "FIELD_ATTRIBUTES", {})
        done = ("removed" if fwd.remove else "reported") if fields.get("forwarding") else None
        click.echo(
            f"  {'forwarding elsewhere':<22} {done or 'NOT CHECKED':<12} [{fwd.article}]  "
            f"({fwd.source}); state mail: {cfg.domain}, {', '.join(fwd.state_domains)} "
            + (
                "(the site's list, replacing the regulation's)"
                if fwd.domains_source != f"profile {p.id}"
                else "(the regulation's list)"
            )
        )
        if done is None:
            click.echo(
                f"  {'':<22} the {cfg.directory.profile} profile does not read forwarding: "
                "the mail server's own setting must keep the rule (docs/mail-server.md)"
            )
    s = cfg.safety
    click.echo(
        f"  {'safety per run':<22} lock ≤{s.max_lock_count}/{s.max_lock_share:.0%}, "
        f"revoke ≤{s.max_revoke_count}/{s.max_revoke_share:.0%}, "
        f"purge ≤{s.max_purge_count}/{s.max_purge_share:.0%}"
    )


def _mailbox_rules(cfg: Config) -> list[str]:
    """The regulation's mailbox rules, and who keeps each: syncd (the quota it writes, where
    the directory profile carries one) or the mail server (docs/mail-server.md)."""
    mb, d = cfg.effective.mailbox, cfg.directory
    out = []
    if mb.quota is not None:
        q = mb.quota
        attribute = getattr(directory_profile(d.profile), "QUOTA_ATTRIBUTE", None)
        kept = (
            f"syncd writes {d.quota_mb} / {d.org_quota_mb} MiB to {attribute}"
            if attribute
            else f"the mail server's quota must meet it ({d.profile} carries none)"
        )
        out.append(
            f"  {'mailbox quota':<22} ≥{q.personal_min_mb} MiB personal, "
            f"≥{q.organisation_min_mb} MiB organisation: {kept} [{q.article}]"
        )
    if mb.attachment_max_mb is not None:
        rule = mb.attachment_max_mb
        out.append(
            f"  {'attachments':<22} ≤{rule.value} MB: the mail server's message size limit "
            f"(docs/mail-server.md) [{rule.article}]"
        )
    if mb.quota_warning is not None:
        out.append(
            f"  {'quota warning':<22} the mail server warns the owner near the quota "
            f"(docs/mail-server.md) [{mb.quota_warning.article}]"
        )
    return out


@main.command("forecast")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650))
@click.option("--now", "now", default=None, help="Start from this date-time (ISO).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def forecast_cmd(ctx: click.Context, days: int, now: str | None, as_json: bool) -> None:
    """List the locks, revokes and purges coming in the next DAYS days, by organisation."""
    cfg = _config(ctx)
    start = _parse_now(now) or datetime.now(UTC)
    events = runner.forecast(cfg, start, days)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "date": ev.when.isoformat(),
                        "action": ev.kind.value,
                        "uid": acc.uid,
                        "org": acc.org,
                        "rule": ev.rule,
                        "reason": ev.reason,
                        "article": ev.article,
                    }
                    for ev, acc in events
                ],
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    if not events:
        click.echo(f"Nothing in the next {days} days.")
        return
    by_org: dict[str, list[str]] = {}
    for ev, acc in events:
        when = "due now" if ev.when <= start else in_zone(ev.when, cfg.zone, date_only=True)
        by_org.setdefault(acc.org or "?", []).append(
            f"  {when:<11} {ev.kind.value:<7} {acc.uid:<28} {ev.reason} [{ev.article}]"
        )
    for org in sorted(by_org):
        click.echo(f"{org} ({len(by_org[org])})")
        click.echo("\n".join(by_org[org]))


def _operator(ctx: click.Context, uid: str, kind: ActionKind, reason: str, article: str) -> None:
    cfg = _config(ctx)
    who = operator_identity()
    # a refused change (TransitionRefused: lock a revoked mailbox, restore an active one)
    # raises before anything is written: one line, exit 2, via SyncdGroup.invoke
    outcome = runner.operator_action(
        cfg, uid, kind, f"{reason}; by {operator_label(who)}", article, operator=who
    )
    click.echo(report_text(outcome, []), nl=False)
    sys.exit(outcome.exit_code)


@main.command("lock")
@click.argument("uid")
@click.option(
    "--reason",
    "why",
    required=True,
    type=click.Choice(list(LOCK_REASONS)),
    help="Why: each reason cites the profile's article.",
)
@click.option("--note", default="", help="Free text kept in the audit record.")
@click.pass_context
def lock_cmd(ctx: click.Context, uid: str, why: str, note: str) -> None:
    """Lock a mailbox for a non-clock reason (compromised, spam, malware, misuse)."""
    cfg = _config(ctx)
    article = cfg.effective.lifecycle.manual_lock[why]
    text = f"{MANUAL_LOCK}{why}" + (f" — {note}" if note else "")
    _operator(ctx, uid, ActionKind.LOCK, text, article)


@main.command("restore")
@click.argument("uid")
@click.option("--note", default="", help="The organisation's request (number, date).")
@click.pass_context
def restore_cmd(ctx: click.Context, uid: str, note: str) -> None:
    """Restore a locked or revoked mailbox: new one-time password, lock clock cleared."""
    cfg = _config(ctx)
    p = cfg.effective
    text = "restored on request (khôi phục)" + (f" — {note}" if note else "")
    _operator(ctx, uid, ActionKind.RESTORE, text, f"{p.request_article}; {p.must_change_article}")


main.add_command(restore_cmd, "unlock")


@main.command("run")
@click.pass_context
def run_cmd(ctx: click.Context) -> None:
    """Run as a daemon in the foreground (systemd supervises it): inbox watch, nightly
    reconcile, daily lifecycle sweep."""
    from connectors.daemon import Daemon, configure_logging
    from connectors.secrets import bind_password

    # Before READY=1: as the service user, with usable files and a readable bind secret, or one
    # line saying what to fix (never "ready" and then every file failing).
    cfg = _config(ctx)
    bind_password(cfg.directory, [])  # the warnings come with each run
    configure_logging(json_lines=not sys.stdout.isatty())
    daemon = Daemon(ctx.obj)
    sys.exit(daemon.run())


@main.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """What the daemon last did, what comes next, the inbox backlog, pending decisions."""
    cfg = _config(ctx, writes=False)
    path = cfg.paths.state / "status.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BadInput(f"{path}: no status yet (is `syncd run` running?)") from None
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=1))
        return
    last = data.get("last_run") or {}
    click.echo(
        f"daemon pid {data.get('pid')}, status written {data.get('updated')}"
        + (f", stopped {data['stopped']}" if data.get("stopped") else "")
    )
    click.echo(
        f"directory: {data.get('directory')}"
        + (f" ({data['directory_error']})" if data.get("directory_error") else "")
    )
    if last:
        click.echo(
            f"last run: {last.get('kind')} {last.get('when')} exit {last.get('exit_code')}"
            f" — {last.get('counts') or 'no changes'}"
        )
    for job, when in sorted((data.get("next_runs") or {}).items()):
        click.echo(f"next {job}: {when}")
    click.echo(
        f"inbox backlog: {data.get('inbox_backlog')}; pending decisions: "
        f"{data.get('pending_decisions')}"
    )
    left = data.get("inbox_left_folders") or []
    if left:
        click.echo(
            f"folders left in the inbox, not read (reported in rejected/; HR empties or "
            f"deletes them): {', '.join(safe_name(str(n)) for n in left)}"
        )
    waiting = data.get("inbox_filing_waits") or []
    if waiting:
        click.echo(
            f"applied, waiting to be filed ({cfg.paths.inbox.parent / 'processed'} could not "
            f"be written; see the log): {', '.join(safe_name(str(n)) for n in waiting)}"
        )


@main.group("audit")
def audit_group() -> None:
    """The audit log."""


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
@click.pass_context
def audit_verify(ctx: click.Context, as_json: bool) -> None:
    """Check the keyed chain from its start (or retention anchor) to the head kept in the state
    directory: an edited, inserted, deleted or missing record is named; exit 1 if any."""
    from connectors.audit import verify_audit

    cfg = _config(ctx)
    result = verify_audit(cfg.paths.audit_log, cfg.paths.state)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    else:
        for problem in result.problems:
            click.echo(problem, err=True)
        click.echo(result.summary(), err=not result.ok)
        for note in result.notes:
            click.echo(f"note: {note}")
    if not result.ok:
        sys.exit(EXIT_FAILED)


@main.command("history")
@click.argument("uid")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_cmd(ctx: click.Context, uid: str, as_json: bool) -> None:
    """One account's whole story from the audit log (renames followed); UID or its address."""
    from connectors.audit import history

    cfg = _config(ctx)
    local, at, where = uid.strip().partition("@")
    if at and where.lower() == cfg.domain.lower():
        uid = local  # the records name the uid (found by an attack: an address found nothing)
    records = history(cfg.paths.audit_log, uid)
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False, indent=1))
        return
    if not records:
        raise BadInput(f"{uid}: nothing in the audit log")
    for r in records:
        name = str(r.get("uid")) + (f" → {r['new_uid']}" if r.get("new_uid") else "")
        click.echo(
            f"{in_zone(r.get('time'), cfg.zone):<19}  {r.get('action', ''):<18} {name:<28} "
            f"{r.get('result', '')}: {r.get('reason', '')} [{r.get('article', '')}]"
        )


@main.command("decisions")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def decisions_cmd(ctx: click.Context, as_json: bool) -> None:
    """List what waits for an operator (uid collisions, uncertain matches, unlinked accounts)."""
    cfg = _config(ctx)
    state = StateStore(cfg.paths.state).load()
    pending = [d for k, d in state.decisions.items() if k not in state.resolutions]
    if as_json:
        click.echo(json.dumps([decision_dict(d) for d in pending], ensure_ascii=False, indent=1))
    else:
        click.echo(decisions_text(pending))


def _check_chosen_uid(cfg: Config, uid: str, org: str | None, tombstones: set[str]) -> None:
    """What can be told without the directory: a valid mailbox name, not reserved, not a
    tombstone, and (where the scheme puts the organisation in the uid) the person's own
    organisation. Whether it is free is checked by the next plan against the whole directory."""
    problem = check_local_part(uid)
    if problem:
        raise BadInput(f"--uid {uid}: {problem}")
    catalogue = load_catalogue(cfg.orgs)
    if uid in RESERVED or uid in catalogue.mailboxes:
        raise BadInput(f"--uid {uid}: reserved (a role or an organisation mailbox)")
    if uid in tombstones:
        raise BadInput(f"--uid {uid}: belonged to someone before (tombstone); never given again")
    if cfg.scheme.needs_org and org and not uid.endswith(f".{org}"):
        raise BadInput(
            f"--uid {uid}: scheme {cfg.scheme.id} puts the organisation in the uid: it must "
            f"end with .{org} ({cfg.scheme.article})"
        )
    holder = _holder(cfg, uid)
    if holder:
        raise BadInput(f"--uid {uid}: already taken in the directory by {holder}; choose another")


def _holder(cfg: Config, uid: str) -> str:
    """The entry that holds ``uid`` as its uid, an address or an old address kept after a
    transfer ("" when none does): told to the operator now, not by the next plan's notice
    (found by an attack: a uid a hand-made entry held was recorded, then never given)."""
    return _holders(cfg, [uid], f"--uid {uid}").get(uid, "")


def _holders(
    cfg: Config,
    names: Sequence[str],
    what: str,
    people: dict[str, str] | None = None,
) -> dict[str, str]:
    """Of ``names`` (lower case), those an entry holds, with its DN. The whole namespace,
    through the snapshot read-only as a plan reads it; a directory that cannot be reached
    leaves the check to the next plan, with a warning naming ``what``. ``people`` (employee
    key → ""): filled with the uid each of them holds a mailbox under, in the same read."""
    warnings: list[str] = []
    wanted = set(names)
    found: dict[str, str] = {}
    try:
        directory = runner.open_directory(cfg, warnings)
        try:
            runner.use_snapshot(directory, cfg.paths.state, keep=False)
            for n in directory.names():
                for name in names_held(n, cfg.domain) & wanted:
                    found.setdefault(name, n.dn)
                if people and n.employee_number:
                    key = emp_key(n.employee_number)
                    if key in people and not people[key]:
                        people[key] = n.uid
        finally:
            runner.close_directory(directory)
    except DirectoryError as exc:
        if people:
            # whether a person still works here is the directory's word alone, and no plan
            # asks it again once the name is released (found by an attack: released with
            # the directory down, it went to another person the next run)
            raise DirectoryError(
                f"cannot check {what} in the directory ({exc}): whether the people they are "
                "kept for still have a mailbox is not known; nothing released"
            ) from None
        click.echo(
            f"Warning: could not check {what} in the directory ({exc}); the next plan "
            "does, and asks again if it is taken",
            err=True,
        )
    return found


def _operator_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--by`` and ``--wait`` of the commands that change the state between runs (decide,
    release-name): who decided, and how long to wait for a run that saves the same state."""
    command = click.option(
        "--wait",
        default=300.0,
        show_default=True,
        type=click.FloatRange(0),
        help="Seconds to wait for a run in progress (it saves the same state).",
    )(command)
    return click.option("--by", default="", help="Who decided, if not the operator running this.")(
        command
    )


@main.command("decide")
@click.argument("decision_id")
@click.option("--link", "link_uid", help="This person already has the mailbox UID.")
@click.option("--uid", "chosen_uid", help="Create the mailbox with this uid.")
@click.option("--ignore", is_flag=True, help="Do nothing for this person or account.")
@click.option(
    "--revoke",
    is_flag=True,
    help="An unlinked account (no employee number, on no roster): revoke it.",
)
@_operator_options
@click.pass_context
def decide_cmd(
    ctx: click.Context,
    decision_id: str,
    link_uid: str | None,
    chosen_uid: str | None,
    ignore: bool,
    revoke: bool,
    by: str,
    wait: float,
) -> None:
    """Resolve a pending decision; the next reconcile carries it out."""
    cfg = _config(ctx)
    given = [x for x in (link_uid, chosen_uid, ignore or None, revoke or None) if x]
    if len(given) != 1:
        raise BadInput("give exactly one of --link UID, --uid UID, --ignore, --revoke")
    who = operator_identity()
    store = StateStore(cfg.paths.state)
    # a run loads the state, plans and saves it: a decision saved meanwhile would be lost
    with RunLock(cfg.paths.state, f"syncd decide {decision_id}", wait):
        state = store.load()
        decision = state.decisions.get(decision_id)
        if decision is None:
            raise BadInput(f"no pending decision {decision_id!r}; see `syncd decisions`")
        unlinked = decision.kind is DecisionKind.UNLINKED_ACCOUNT
        if revoke and not unlinked:
            raise BadInput(
                f"{decision_id} is a {decision.kind.value} decision: --revoke is only for an "
                "unlinked account (no employee number, matching nobody on its organisation's "
                "roster); here: --link UID, --uid UID or --ignore"
            )
        if unlinked and not (ignore or revoke):
            raise BadInput(
                f"{decision_id} is an unlinked account: it is linked from its person's "
                "decision; here: --revoke or --ignore"
            )
        if link_uid:
            res = Resolution(Resolve.LINK, link_uid.lower())
        elif chosen_uid:
            _check_chosen_uid(cfg, chosen_uid.lower(), decision.org, state.tombstones)
            owner = state.former.get(chosen_uid.lower())
            if owner is not None and emp_key(owner) != emp_key(decision.employee_number):
                # found by an attack: accepted here, refused by every plan, and the decision
                # vanished from `syncd decisions` while its person waited for a mailbox
                raise BadInput(
                    f"--uid {chosen_uid}: belonged to "
                    f"{'another person (' + owner + ')' if owner else 'a mailbox of unknown owner'}"
                    " whose mailbox vanished from the directory; never given to someone else "
                    "(docs/architecture.md, 'Names that belonged to someone')"
                )
            res = Resolution(Resolve.UID, chosen_uid.lower())
        elif revoke:
            res = Resolution(Resolve.REVOKE)
        else:
            res = Resolution(Resolve.IGNORE)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        state.resolutions[decision_id] = Resolution(
            res.how, res.value, by or operator_label(who), stamp
        )
        # the account the decision is about, for `syncd history`; audited before the state
        # is saved: a decision the log does not hold is never carried out (as release-name)
        subject = res.value or (
            decision.candidates[0] if unlinked and len(decision.candidates) == 1 else None
        )
        audit = open_audit(cfg)
        try:
            audit.record(
                run_id=new_run_id(),
                action="decide",
                uid=subject,
                org=decision.org,
                employee_number=decision.employee_number,
                decision=decision_id,
                decision_kind=decision.kind.value,
                resolution=res.how.value,
                value=res.value or None,
                reason=f"operator decision: {decision.summary}",
                article=decision.article or None,
                by=by or None,
                operator=who,
                result="ok",
            )
        finally:
            audit.close()
        store.save(state)
    click.echo(
        f"{decision_id}: {res.how.value} {res.value} recorded; the next reconcile applies it"
    )


@main.command("release-name")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--reason",
    required=True,
    help="Why the name may now go to someone else (kept in the audit log).",
)
@_operator_options
@click.pass_context
def release_name_cmd(
    ctx: click.Context, names: tuple[str, ...], reason: str, by: str, wait: float
) -> None:
    """Let names kept for a vanished mailbox's person go to someone else (audited).

    A mailbox deleted or hidden by hand leaves its uid and addresses kept for its person
    (`syncd show NAME` says for whom); no plan gives them to anyone else. When the operator
    knows they may be (the person will not come back, the entry was a test), this releases
    them: each NAME (a uid, or an address in the domain) leaves the kept names, with one audit
    record naming whose it was and why. A name purged by syncd (a tombstone) is never
    released; one an entry holds stays taken by that entry; one kept for a person who still
    has a mailbox (a transfer's old address whose alias ended) is theirs while they work
    here."""
    cfg = _config(ctx)
    why, by = _printable(reason), _printable(by)
    if not why:
        raise BadInput("--reason: say why these names may go to someone else (it is audited)")
    wanted: list[str] = []
    for raw in names:
        local, at, where = raw.strip().lower().partition("@")
        if not local or (at and where != cfg.domain.lower()) or _printable(local) != local:
            raise BadInput(f"{raw!r}: not a name or an address in {cfg.domain}")
        if local not in wanted:
            wanted.append(local)
    who = operator_identity()
    store = StateStore(cfg.paths.state)
    with RunLock(cfg.paths.state, "syncd release-name", wait):
        state = store.load()
        purged = [n for n in wanted if n in {t.lower() for t in state.tombstones}]
        if purged:
            raise BadInput(
                f"{', '.join(map(repr, purged))}: purged by syncd (a tombstone): never given "
                "again; nothing released"
            )
        # the uid pool compares kept names without case; a key edited by hand may have some
        keys = {n: [k for k in state.former if k.lower() == n] for n in wanted}
        unknown = [n for n in wanted if not keys[n]]
        if unknown:
            raise BadInput(
                f"{', '.join(map(repr, unknown))}: not kept for anyone (`syncd show NAME` says "
                "who holds a name; a mailbox deleted since the last run is kept by the next "
                "one: run `syncd reconcile --latest` first); nothing released"
            )
        holders = {
            n: next((state.former[k] for k in keys[n] if state.former[k]), "") for n in wanted
        }
        people = {emp_key(h): "" for h in holders.values() if h}
        live = _holders(cfg, wanted, "the names", people)
        if live:
            raise BadInput(
                "; ".join(f"{n!r} is held now by {dn}" for n, dn in live.items())
                + ": taken by that entry whatever is kept; nothing released"
            )
        here = {n: people[emp_key(h)] for n, h in holders.items() if h and people[emp_key(h)]}
        if here:
            # an old address whose transfer alias ended is kept for its person, who still
            # works here: theirs again if they move back (found by an attack: released, the
            # next run gave it to another person of the same name)
            raise BadInput(
                "; ".join(
                    f"{n!r} is kept for {holders[n]}, who still has a mailbox ({uid})"
                    for n, uid in here.items()
                )
                + ": theirs while they work here; release it once they have left; nothing "
                "released"
            )
        # audited first: a release the log does not hold must never happen (found by an
        # attack: a bad audit key failed the command after the state was saved); a state
        # that fails to save after the records leaves the name kept, and a retry records again
        audit = open_audit(cfg)
        try:
            run_id = new_run_id()
            for name, holder in holders.items():
                audit.record(
                    run_id=run_id,
                    action="release-name",
                    uid=name,
                    employee_number=holder or None,  # whose it was ("" unknown)
                    reason=f"operator release: {why}",
                    by=by or None,
                    operator=who,
                    result="ok",
                )
        finally:
            audit.close()
        for name in wanted:
            for k in keys[name]:
                del state.former[k]
        store.save(state)
    for name, holder in holders.items():
        whose = f"the person {holder}" if holder else "a mailbox of unknown owner"
        click.echo(f"{name}: released (kept for {whose}); the next plan may give it to anyone")


def _printable(text: str) -> str:
    """``text`` on one line without control characters (an audit record a terminal shows)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


@main.command("schemes")
def schemes_cmd() -> None:
    """List the uid schemes with their article and the regulation's own example."""
    for scheme in SCHEMES.values():
        click.echo(f"{scheme.id}")
        click.echo(f"    pattern:   {scheme.pattern}   collision: {scheme.collision.value}")
        click.echo(f"    article:   {scheme.article}")
        click.echo(f"    rule:      {scheme.description}")
        click.echo(f"    example:   {scheme.example}")


def _read_taken(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the taken-uid list: {exc}") from exc
    return [line.strip().lower() for line in text.splitlines() if line.strip()]


@main.command("uid")
@click.option("--scheme", "scheme_id", required=True, help="Scheme id (see `syncd schemes`).")
@click.option("--org", default=None, help="Organisation abbreviation (uid suffix).")
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV with columns full_name[,org]; writes CSV to stdout.",
)
@click.option(
    "--taken",
    "taken_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File of already-issued uids, one per line.",
)
@click.argument("full_name", required=False)
def uid_cmd(
    scheme_id: str,
    org: str | None,
    input_path: Path | None,
    taken_path: Path | None,
    full_name: str | None,
) -> None:
    """Print the uid for FULL_NAME, or allocate a whole CSV batch in order."""
    scheme = get_scheme(scheme_id)
    pool = UidPool.build(taken=_read_taken(taken_path) if taken_path else ())
    if input_path is None:
        if not full_name:
            raise BadInput("give a FULL_NAME or --input FILE")
        result = allocate(scheme, full_name, org, pool)
        if result.status is Status.OK:
            click.echo(result.uid)
            return
        msg = result.detail
        if result.candidates:
            msg += "; candidates: " + ", ".join(result.candidates)
        click.echo(f"{result.status.value}: {msg}", err=True)
        sys.exit(EXIT_BAD_INPUT if result.status is Status.INVALID else EXIT_FAILED)
    _uid_batch(scheme_id, input_path, pool)


def _uid_batch(scheme_id: str, path: Path, pool: UidPool) -> None:
    scheme = get_scheme(scheme_id)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read as UTF-8 CSV: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "full_name" not in fields:
        raise BadInput(f"{path}: row 1: header has no column 'full_name' (found {fields})")
    if scheme.needs_org and "org" not in fields:
        raise BadInput(f"{path}: row 1: scheme {scheme.id} needs a column 'org'")
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["full_name", "org", "uid", "status", "detail"])
    for row in reader:
        row = {(k or "").strip(): (v or "") for k, v in row.items()}
        name, org = row.get("full_name", ""), row.get("org", "").strip()
        result = allocate(scheme, name, org or None, pool)
        detail = result.detail
        if result.candidates:
            detail = f"{detail}; candidates: {' '.join(result.candidates)}"
        out.writerow([name, org, result.uid, result.status.value, detail])


@main.command("check")
@click.argument("roster", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--offline",
    is_flag=True,
    help="Validate only, without reading the directory (no who-would-be-created list).",
)
@click.option(
    "--out",
    "outs",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the HR result to FILE.xlsx or FILE.html (repeatable).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def check_cmd(
    ctx: click.Context, roster: Path, offline: bool, outs: tuple[Path, ...], as_json: bool
) -> None:
    """Check a roster before sending it, as a reconcile would, changing nothing.

    Exit 0 valid, 2 rejected (each problem with row, column, value and what to change),
    3 a safety limit would refuse it or hold a stage back, 1 the directory failed.
    """
    from connectors import hr_commands

    with _json_errors(as_json, "check"):
        result, code = hr_commands.check(_config(ctx), roster, offline)
    for out in outs:
        hr_commands.write_check(result, out)
    click.echo(hr_commands.result_json(result) if as_json else hr_commands.check_text(result))
    sys.exit(code)


@main.command("template")
@click.option(
    "--out",
    default="mau-danh-sach.xlsx",
    show_default=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the workbook.",
)
@click.option(
    "--no-catalogue", is_flag=True, help="Leave out the sheet of organisations and offices."
)
@click.pass_context
def template_cmd(ctx: click.Context, out: Path, no_catalogue: bool) -> None:
    """Write the official roster template (XLSX): headers, drop-down lists, explanations."""
    from connectors import hr_commands

    catalogue = None if no_catalogue else load_catalogue(_config(ctx).orgs)
    write_private(out, hr_commands.template_bytes(catalogue), mode=0o644)
    click.echo(f"{out}: the roster template (sheet 'Danh sách'; 'Hướng dẫn' explains it)")


@main.command("show")
@click.argument("query")
@click.option("--now", "now", default=None, help="Count the clocks from this date-time (ISO).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show_cmd(ctx: click.Context, query: str, now: str | None, as_json: bool) -> None:
    """One account by uid, address, employee number or full name: state, clocks with their
    articles, aliases, decisions, requests, last activity and its audit history."""
    from connectors import hr_commands

    cfg = _config(ctx)
    items = hr_commands.show(cfg, query, _parse_now(now) or datetime.now(UTC))
    click.echo(hr_commands.show_json(items) if as_json else hr_commands.show_text(items, cfg.zone))


@main.command("report")
@click.option("--year", type=click.IntRange(2000, 2100), required=True)
@click.option(
    "--half",
    type=click.IntRange(1, 2),
    default=None,
    help="Only the first (1) or second (2) half of the year (Cao Bằng 2011 Đ17).",
)
@click.option("--org", "org", default=None, help="Only this organisation (its code).")
@click.option(
    "--out",
    "folder",
    default=None,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the XLSX and HTML files (default: publish.folder/baocao, else .).",
)
@click.option("--now", "now", default=None, help="Make it as of this date-time (ISO).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON too.")
@click.pass_context
def report_cmd(
    ctx: click.Context,
    year: int,
    half: int | None,
    org: str | None,
    folder: Path | None,
    now: str | None,
    as_json: bool,
) -> None:
    """The report on mailbox use each organisation owes, and the province's summary: accounts
    by state, created, transferred, locked (by reason and article), revoked, deleted and
    restored in the period, never-logged-in and inactive counts, per office; XLSX and HTML."""
    from connectors import usage_report

    cfg = _config(ctx)
    when = _parse_now(now) or datetime.now(UTC)
    made = usage_report.make(cfg, year, half, org, folder, when)
    click.echo(usage_report.summary_json(made) if as_json else usage_report.summary_text(made))


@main.command("addressbook")
@click.option("--org", "org", default=None, help="Only this organisation (its code).")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["xlsx", "csv", "vcf", "html"]),
    help="Repeatable; default: all four.",
)
@click.option(
    "--out",
    "folder",
    default=None,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the files (default: publish.folder/danhba, else .).",
)
@click.pass_context
def addressbook_cmd(
    ctx: click.Context, org: str | None, formats: tuple[str, ...], folder: Path | None
) -> None:
    """Each organisation's address list (danh bạ): its own and its offices' mailboxes first,
    then its people by office with name, title and address; only mailboxes that receive mail."""
    from connectors import addressbook_files

    cfg = _config(ctx)
    for path in addressbook_files.publish(cfg, org, formats or None, folder):
        click.echo(str(path))


if __name__ == "__main__":  # pragma: no cover
    main()  # pylint: disable=no-value-for-parameter
