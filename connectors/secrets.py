"""The directory bind password: from a file, a systemd credential or an environment variable.

The CLI gets it exactly as the daemon does, so a command that works proves the daemon will:

- ``bind_password_file``: read by whoever runs syncd — the service user (the daemon, and the CLI
  after root switched to it: :mod:`connectors.privileges`). Mode 0600 owned by the service user,
  or 0640 ``root:<service group>``; readable by others is warned about.
- ``bind_credential``: under systemd, ``$CREDENTIALS_DIRECTORY/<name>`` (``LoadCredential=``:
  systemd reads the root-only source as root and hands the service a private copy). Outside
  systemd — the CLI — the same source file, named in ``bind_credential_file``, read by root
  before the switch to the service user, exactly as systemd does. We do not parse the installed
  unit for it: the configuration says where the file is, in one place an operator can read.
- ``bind_password_env``: the environment, kept across the switch.

A secret that cannot be read is one line naming the file, its owner and mode, and what to
change; the daemon checks it at start, before telling systemd it is ready.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

from connectors.config import DirectoryConfig
from syncd.errors import SyncdError


class SecretError(SyncdError):
    pass


# The credential's source read by root before the switch to the service user, by path: the
# password, or why root could not read it (reported when a command needs the secret).
_preloaded: dict[Path, str | SecretError] = {}


def _credential_source(cfg: DirectoryConfig) -> Path:
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        return Path(creds) / str(cfg.bind_credential)
    if cfg.bind_credential_file is None:
        raise SecretError(
            f"directory.bind_credential: {cfg.bind_credential!r} needs systemd's LoadCredential= "
            "($CREDENTIALS_DIRECTORY is not set, so this is not the service); for the syncd "
            "command set directory.bind_credential_file to the file LoadCredential= reads "
            "(e.g. /etc/syncd/bind.pw) and run it as root"
        )
    return cfg.bind_credential_file


def preload_credential(cfg: DirectoryConfig) -> None:
    """Read the credential's source while still root (see :mod:`connectors.privileges`).

    Only for ``bind_credential`` outside systemd: the other ways are read as the service user,
    as the daemon reads them. A failure here is left for :func:`bind_password` to report when a
    command needs the secret (``syncd uid`` or ``status`` does not)."""
    if cfg.bind_credential is None or os.environ.get("CREDENTIALS_DIRECTORY"):
        return
    if cfg.bind_credential_file is None:
        return
    try:
        _preloaded[cfg.bind_credential_file] = _read(cfg.bind_credential_file, [])
    except SecretError as exc:
        _preloaded[cfg.bind_credential_file] = exc


def _describe(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return ""
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f" (owner {owner}:{group}, mode {stat.S_IMODE(st.st_mode):04o})"


def _me() -> tuple[str, str]:
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = str(os.geteuid())
    try:
        group = grp.getgrgid(os.getegid()).gr_name
    except KeyError:
        group = str(os.getegid())
    return user, group


def _read(path: Path, warn: list[str], credential: bool = False) -> str:
    try:
        mode = path.stat().st_mode
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        user, group = _me()
        if isinstance(exc, FileNotFoundError):
            fix = "create it holding only the password (docs/install.md: the bind password)"
        elif credential:
            fix = "run the syncd command as root (it reads the credential, then switches)"
        else:
            fix = f"as root: chown root:{group} {path} && chmod 0640 {path}"
        raise SecretError(
            f"{path}: {user} cannot read the bind password: {exc.strerror}{_describe(path)}; {fix}"
        ) from exc
    if mode & stat.S_IRWXO or mode & stat.S_IWGRP:
        warn.append(
            f"{path} is readable or writable by others (mode {stat.S_IMODE(mode):04o}); "
            "chmod 0640 it (group: the service's) or 0600"
        )
    if not value:
        raise SecretError(f"{path}: the bind password file is empty")
    return value


def bind_password(cfg: DirectoryConfig, warn: list[str]) -> str:
    """Read the secret the configuration names; warn when its file is readable by others."""
    if cfg.bind_password_file is not None:
        return _read(cfg.bind_password_file, warn)
    if cfg.bind_credential is not None:
        path = _credential_source(cfg)
        known = _preloaded.get(path)
        if isinstance(known, SecretError):
            raise known
        if known is not None:
            return known
        return _read(path, warn, credential=path == cfg.bind_credential_file)
    assert cfg.bind_password_env is not None
    value = os.environ.get(cfg.bind_password_env)
    if not value:
        raise SecretError(f"directory.bind_password_env: ${cfg.bind_password_env} is not set")
    return value
