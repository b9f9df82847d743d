"""The ``syncd`` command: the composition root that wires the core to its connectors.

It lives in :mod:`connectors` because it is itself an adapter (terminal, files, LDAP): the core
package stays free of any outside-world import, which the import-linter contract enforces.

Exit codes: 0 done, 1 some actions failed, 2 bad input or configuration, 3 refused by a
safety limit.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import click

from syncd.errors import SyncdError
from syncd.naming import BUILTIN, Status, UidPool, allocate, get_scheme

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3


class BadInput(click.ClickException):
    """Bad input or configuration: exit code 2, message on stderr."""

    exit_code = EXIT_BAD_INPUT


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="syncd")
def main() -> None:
    """syncd keeps a province's official mail directory in step with HR and the regulation."""


@main.command("schemes")
def schemes_cmd() -> None:
    """List the uid schemes with their article and the regulation's own example."""
    for scheme in BUILTIN.values():
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
    try:
        scheme = get_scheme(scheme_id)
    except SyncdError as exc:
        raise BadInput(str(exc)) from exc
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


if __name__ == "__main__":  # pragma: no cover
    main()
