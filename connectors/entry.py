"""The ``syncd`` command's entry point: a regulation file or a module that cannot be loaded
is one clear line and exit 2, never a traceback before the CLI's own error handling starts."""

from __future__ import annotations

import gc
import sys

from syncd.errors import SyncdError


def main() -> None:
    # No cyclic collection while the modules load: every object they make stays alive, and
    # each time a generation filled the collector walked them all to find nothing (~30 ms of
    # a 0.5 s command on this machine, issue 14). Frozen afterwards, later collections (the
    # daemon's) never walk them again.
    gc.disable()
    try:
        from connectors.cli import main as cli_main
    except SyncdError as exc:  # e.g. a broken syncd/regulation/<id>.yaml
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        gc.freeze()
        gc.enable()
    cli_main()
