"""The directory bind password: from a file, a systemd credential or an environment variable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from connectors.config import DirectoryConfig
from syncd.errors import SyncdError


class SecretError(SyncdError):
    pass


def bind_password(cfg: DirectoryConfig, warn: list[str]) -> str:
    """Read the secret the configuration names; warn when its file is readable by others."""
    if cfg.bind_password_file is not None:
        path = cfg.bind_password_file
    elif cfg.bind_credential is not None:
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if not creds:
            raise SecretError(
                f"directory.bind_credential: {cfg.bind_credential!r} needs systemd's "
                "LoadCredential= ($CREDENTIALS_DIRECTORY is not set)"
            )
        path = Path(creds) / cfg.bind_credential
    else:
        assert cfg.bind_password_env is not None
        value = os.environ.get(cfg.bind_password_env)
        if not value:
            raise SecretError(f"directory.bind_password_env: ${cfg.bind_password_env} is not set")
        return value
    try:
        mode = path.stat().st_mode
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"{path}: cannot read the bind password: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn.append(
            f"{path} is readable by group or others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    if not value:
        raise SecretError(f"{path}: the bind password file is empty")
    return value
