"""The code this process runs, as it was when it started.

A digest of every module and data file of the ``syncd`` and ``connectors`` packages by path,
size and mtime, taken once at import: a daemon left running across an upgrade of the files on
disk still runs the old code, and what it records (a quiet run, connectors/quiet.py; the
snapshot's names cache, connectors/directory_snapshot.py) must say so. Found by an attack:
keyed on the files at run time, an old daemon's record matched the new code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import connectors
import syncd

_PACKAGES = (Path(syncd.__file__).parent, Path(connectors.__file__).parent)


def _files() -> str:
    lines = []
    for package in _PACKAGES:
        for path in sorted(package.rglob("*")):
            if path.suffix in (".py", ".yaml", ".yml", ".json") and path.is_file():
                st = path.stat()
                lines.append(f"{path.relative_to(package.parent)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(lines)


CODE = hashlib.sha256(_files().encode()).hexdigest()
