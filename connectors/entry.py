"""The ``syncd`` command's entry point: a regulation file or a module that cannot be loaded
is one clear line and exit 2, never a traceback before the CLI's own error handling starts."""

from __future__ import annotations

import sys

from syncd.errors import SyncdError


def main() -> None:
    try:
        from connectors.cli import main as cli_main
    except SyncdError as exc:  # e.g. a broken syncd/regulation/<id>.yaml
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
    cli_main()
