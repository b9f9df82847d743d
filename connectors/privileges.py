"""Who syncd runs as on a host where its daemon runs, and whether that user can do its work.

The service user is **the owner of the state directory** (``paths.state``). install.md creates
that directory for the user the unit names (``User=syncd``), so the owner is the one fact both
the daemon and the CLI can see without another setting that could disagree with it; a state
directory owned by root (a developer's machine, ``make demo``, the tests) means "no service user":
everything runs as the caller, as before.

The ``syncd`` command run by root on such a host **switches to the service user** (its groups
from the user database, as systemd's ``User=`` gives them, and the unit's ``UMask=0077``) as soon
as it has read the configuration, before it opens or creates any other file. We switch rather
than refuse because:

- every file a command then creates is owned by the service user by construction: no list of
  files to chown afterwards that a new file could be missing from, no window in which the daemon
  meets a root-owned ``state.json``;
- the root part is as small as systemd's: read the configuration and, for
  ``directory.bind_credential``, the credential's source file (root-only, exactly as
  ``LoadCredential=`` reads it for the unit), then drop for good. Refusing would send the
  operator to ``sudo -u syncd``, which cannot read a root-only credential, and so would push the
  bind password into a group-readable file;
- the drop is irreversible (real, effective and saved ids; checked: regaining root must fail),
  so the HR rosters, which are untrusted input, are never parsed as root.

Anybody else (neither root nor the owner) is refused with one line saying what to run: a
command of theirs would fail half-way on the first private file, or leave files the daemon
cannot write.

:func:`check_access` is what the daemon does at start (and every command after the switch):
each file and folder syncd writes must be readable and writable by the user it runs as, else one
line naming the file, its owner and mode, and the ``chown`` that fixes it — never a traceback
later, and never ``READY=1`` first.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors.config import Config
from syncd.errors import SyncdError

SERVICE_UMASK = 0o077  # config/systemd/syncd.service: UMask=0077


class PrivilegeError(SyncdError):
    """The command cannot run as whom it was started: one line saying what to do instead."""


@dataclass(frozen=True)
class Switch:
    """Whom a root command switched from: the audit's operator (cli.operator_identity)."""

    from_uid: int
    from_user: str
    to_user: str


_switched: Switch | None = None


def switched() -> Switch | None:
    """The switch this process made, if any."""
    return _switched


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def service_user(cfg: Config) -> pwd.struct_passwd | None:
    """The owner of the state directory, unless it is root or the directory does not exist."""
    try:
        owner = cfg.paths.state.stat().st_uid
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PrivilegeError(
            f"{cfg.paths.state}: cannot look at the state directory: {exc.strerror}"
        ) from exc
    if owner == 0:
        return None
    try:
        return pwd.getpwuid(owner)
    except KeyError:
        raise PrivilegeError(
            f"{cfg.paths.state}: the state directory belongs to uid {owner}, which is no user on "
            "this host; chown it to the service user (e.g. chown -R syncd:syncd it)"
        ) from None


def run_as_service_user(cfg: Config, argv: list[str]) -> None:
    """Switch root to the service user, or refuse a caller who is neither; see the module doc.

    ``argv`` is the command line, quoted back in the refusal so it can be copied."""
    user = service_user(cfg)
    euid = os.geteuid()
    if user is None or euid == user.pw_uid:
        return
    if euid != 0:
        again = " ".join(["sudo", "-u", user.pw_name, *argv])
        raise PrivilegeError(
            f"{cfg.paths.state} belongs to the service user {user.pw_name}; you are "
            f"{_user_name(euid)}: run `{again}` (or the command as root, which switches to "
            f"{user.pw_name} by itself)"
        )
    # The credential's source is root-only, as LoadCredential= reads it: read it before the drop.
    from connectors.secrets import preload_credential

    preload_credential(cfg.directory)
    _drop_to(user)
    _check_code_readable()


def _check_code_readable() -> None:
    """After the drop, modules still load lazily: the service user must reach Python and syncd
    (as the daemon must). Say so in one line, rather than an ImportError half-way."""
    import sysconfig

    paths = sysconfig.get_paths()
    for path in (Path(paths["stdlib"]), Path(paths["purelib"]), Path(__file__).parent):
        if not os.access(path, os.R_OK | os.X_OK):
            raise PrivilegeError(
                f"{path}: the service user {_switched.to_user if _switched else '?'} cannot read "
                "Python or syncd there, so neither this command nor the daemon can run as it; "
                "install syncd where the service user can read it (the Debian package does)"
            )


def _drop_to(user: pwd.struct_passwd) -> None:
    global _switched
    before = Switch(from_uid=os.getuid(), from_user=_user_name(os.getuid()), to_user=user.pw_name)
    os.initgroups(user.pw_name, user.pw_gid)  # the user's groups, e.g. hrdrop, as User= gives
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - the kernel would have to ignore setresuid
        raise SystemExit("syncd: could not drop root privileges; stopping")
    os.umask(SERVICE_UMASK)
    os.environ.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    _switched = before


def check_readable(paths: Iterable[Path]) -> None:
    """After a switch: the files the operator named (``--roster``) must be readable by the
    service user, or one line says so — root could read them, so "Permission denied" alone
    would puzzle; never a run that rejects the file half-way."""
    if _switched is None:
        return
    for path in paths:
        if path.is_file() and not os.access(path, os.R_OK):
            st = path.stat()
            raise PrivilegeError(
                f"{path}: {_switched.to_user} cannot read it (owner {_user_name(st.st_uid)}:"
                f"{_group_name(st.st_gid)}, mode {stat.S_IMODE(st.st_mode):04o}); syncd run "
                f"by root works as the service user {_switched.to_user}: make the file readable "
                f"by it (e.g. chmod 0644, or copy it beside the inbox)"
            )


# -- what the daemon checks at start -------------------------------------------------------------


def _writable_places(cfg: Config) -> Iterator[tuple[Path, bool]]:
    """(path, recurse): the folders syncd writes; the state directory is checked file by file."""
    p = cfg.paths
    yield p.state, True
    yield p.outbox, False
    yield p.inbox, False
    for name in ("processing", "processed", "rejected"):  # connectors/inbox.py, beside the inbox
        yield p.inbox.parent / name, False
    yield p.audit_log.parent, False
    yield p.audit_log, False


def _problem(path: Path, st: os.stat_result, what: str, fix_root: Path) -> PrivilegeError:
    me = _user_name(os.geteuid())
    group = _group_name(os.getegid())
    if os.statvfs(path).f_flag & os.ST_RDONLY:  # no chown helps (found by an attack)
        return PrivilegeError(
            f"{path}: on a read-only file system; syncd must {what} it: remount it read-write"
        )
    return PrivilegeError(
        f"{path}: {me} cannot {what} it (owner {_user_name(st.st_uid)}:{_group_name(st.st_gid)}, "
        f"mode {stat.S_IMODE(st.st_mode):04o}); as root: chown -R {me}:{group} {fix_root}"
    )


def _check(path: Path, fix_root: Path) -> None:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise _problem(path, st, "read and write in", fix_root)
    elif not os.access(path, os.R_OK | os.W_OK):
        raise _problem(path, st, "read and write", fix_root)


def check_access(cfg: Config) -> None:
    """Raise one :class:`PrivilegeError` for the first file or folder syncd cannot use.

    A folder that does not exist yet needs its nearest existing parent to be writable (syncd
    creates it); everything in the state directory is checked, since any of it may be rewritten
    (state, debts, rosters, the run lock, the journal)."""
    for place, recurse in _writable_places(cfg):
        try:
            st = place.lstat()
        except FileNotFoundError:
            parent = place.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            if not os.access(parent, os.W_OK | os.X_OK):
                raise _problem(parent, parent.stat(), f"create {place} in", parent) from None
            continue
        except OSError as exc:
            raise PrivilegeError(f"{place}: cannot look at it: {exc.strerror}") from exc
        fix_root = place if stat.S_ISDIR(st.st_mode) else place.parent
        _check(place, fix_root)
        if recurse:
            for root, dirs, files in os.walk(place):
                for name in dirs + files:
                    _check(Path(root) / name, place)
