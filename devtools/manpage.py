"""``syncd(8)``, generated from the click command tree at package build time.

Why generated: a hand-written page drifts from the CLI the day a command or an option is added;
this one is the CLI's own help text (every command and sub-command, every option with its
default), laid out as roff. help2man would see only the top-level ``--help``, not the
sub-commands an operator actually types. ``make deb`` runs it; ``debian/rules`` installs the
result as ``/usr/share/man/man8/syncd.8.gz``.

Usage: ``python -m devtools.manpage [--date YYYY-MM-DD] > syncd.8``
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

import click

SECTION = "8"  # a daemon and its administration commands


def _escape(text: str) -> str:
    """Text as roff reads it literally: backslashes, a leading dot or quote, hyphens."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _paragraphs(help_text: str) -> str:
    """click's help (paragraphs split by blank lines, ``\\b`` keeps a block as typed)."""
    out: list[str] = []
    for block in help_text.strip().split("\n\n"):
        if block.startswith("\b\n"):
            out.append(".nf\n" + _escape(block[2:]) + "\n.fi")
        else:
            out.append(_escape(" ".join(line.strip() for line in block.splitlines())))
    return "\n.PP\n".join(out)


def _options(command: click.Command, ctx: click.Context) -> str:
    out: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or param.name == "help":  # the same on every command
            continue
        names, help_text = record
        out.append(f".TP\n.B {_escape(names)}\n{_escape(help_text) or ' '}")
    return "\n".join(out)


def _commands(group: click.Group, ctx: click.Context, prefix: str) -> list[str]:
    out: list[str] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub_ctx = click.Context(command, info_name=name, parent=ctx)
        usage = " ".join(command.collect_usage_pieces(sub_ctx))
        full = f"{prefix} {name}".strip()
        out.append(f".SS {_escape(full)}")
        out.append(f".B syncd {_escape(full)}\n{_escape(usage)}")
        if command.help:
            out.append(".PP\n" + _paragraphs(command.help))
        options = _options(command, sub_ctx)
        if options:
            out.append(options)
        if isinstance(command, click.Group):
            out.extend(_commands(command, sub_ctx, full))
    return out


def render(group: click.Group, date: str) -> str:
    """The whole page: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, COMMANDS, FILES, SEE ALSO."""
    ctx = click.Context(group, info_name="syncd")
    first, _, rest = (group.help or "").strip().partition("\n\n")
    sections = [
        f'.TH SYNCD {SECTION} "{date}" "syncd {version("syncd")}" "System Administration"',
        ".SH NAME",
        "syncd \\- " + _escape(first.strip().rstrip(".").removeprefix("syncd ")),
        ".SH SYNOPSIS",
        ".B syncd\n[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        _paragraphs(first + ("\n\n" + rest if rest else "")),
        ".SH OPTIONS",
        _options(group, ctx),
        ".SH COMMANDS",
        *_commands(group, ctx, ""),
        ".SH FILES",
        ".TP\n.I /etc/syncd/syncd.yaml\nThe configuration "
        "(\\fI/usr/share/doc/syncd/examples/syncd.example.yaml\\fR describes every key).",
        ".TP\n.I /etc/syncd/bind.pw\nThe directory bind password, given to the service as the "
        "systemd credential \\fIbind\\-password\\fR.",
        ".TP\n.I /var/lib/syncd/inbox\nWhere HR drops roster files (group \\fIhrdrop\\fR).",
        ".TP\n.I /var/lib/syncd/state\nDecisions, requests done, run reports (mode 0700).",
        ".SH SEE ALSO",
        "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fI/usr/share/doc/syncd/install.md.gz\\fR",
    ]
    return "\n".join(s for s in sections if s) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", default="", help="the page's date (the package's changelog)")
    args = parser.parse_args()
    from connectors.cli import main as cli

    sys.stdout.write(render(cli, args.date))


if __name__ == "__main__":
    main()
