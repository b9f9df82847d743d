"""The blocks of docs/mail-server.md as a user copies them, for the tests that run them.

Why a module of its own: the document says "replace only the server, the base and the read-only
account; every other line is needed", and both mail-server test files (slapd and Samba AD) must
take the blocks exactly so. A test that added a line itself (the old ``dn``/``dnpass``) would
prove a configuration nobody was told to write.
"""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "mail-server.md"

# what the document lets the user replace (and nothing else): the server, the base, the
# read-only account and its password; with TLS, the CA file
DOVECOT = ("uris", "base", "dn", "dnpass")
POSTFIX = ("server_host", "search_base", "bind_dn", "bind_pw")
PASSWORD_KEYS = {"dnpass", "bind_pw"}


def block(marker: str) -> str:
    """The text of the fenced block right after ``<!-- <marker>`` in docs/mail-server.md."""
    text = DOCS.read_text(encoding="utf-8")
    opening = f"<!-- {marker}"
    assert opening in text, f"docs/mail-server.md has no block marked {opening}"
    return text.split(opening, 1)[1].split("```", 2)[1].split("\n", 1)[1]


def settings(marker: str, placeholders: tuple[str, ...]) -> dict[str, str]:
    """The ``key = value`` lines of the block, in order, as written. Each of ``placeholders``
    must be there (a block without its ``dn``/``dnpass`` fails here, the block named), a
    password as a marked ``<placeholder>``; the caller replaces those and nothing else."""
    out: dict[str, str] = {}
    for line in block(marker).splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    for key in placeholders:
        assert key in out, f"docs/mail-server.md, block {marker}: no `{key} =` line"
        if key in PASSWORD_KEYS:
            assert out[key].startswith("<") and out[key].endswith(">"), (
                f"docs/mail-server.md, block {marker}: {key} is not a marked <placeholder>"
            )
    return out


def lines(values: dict[str, str]) -> str:
    """A Dovecot or Postfix LDAP file: one ``key = value`` per line."""
    return "".join(f"{k} = {v}\n" for k, v in values.items())
