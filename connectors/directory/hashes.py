"""Whether a stored ``userPassword`` value is the hash of a given password (RFC 2307 schemes).

Why syncd checks a hash at all: a create whose answer was lost (the connection dropped with
adds in flight) is read back, and only the password that slapd stored tells whether the entry
holds the one-time password this action sent (docs/architecture.md, "Creates whose answer was
lost"). Binding with it would tell too, but a bind is a login: ppolicy's ``pwdLastSuccess`` and
lastbind's ``authTimestamp`` would record one the person never made, which the inactivity
rules read. The service DN may read the hash (it writes ``userPassword``); nothing here keeps
or logs it.

Only the schemes slapd itself offers without a module that Python cannot check with the
standard library: ``{SSHA}`` (slapd's default), ``{SHA}``, ``{SMD5}``, ``{MD5}``, and the
``pw-sha2`` ones. Another scheme (``{ARGON2}``, ``{PBKDF2-…}``, ``{CRYPT}``) answers None:
not checked, so the caller owes the account a new password rather than guess.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

# scheme → (hashlib name, salted)
SCHEMES: dict[str, tuple[str, bool]] = {
    "SHA": ("sha1", False),
    "SSHA": ("sha1", True),
    "MD5": ("md5", False),
    "SMD5": ("md5", True),
    "SHA256": ("sha256", False),
    "SSHA256": ("sha256", True),
    "SHA384": ("sha384", False),
    "SSHA384": ("sha384", True),
    "SHA512": ("sha512", False),
    "SSHA512": ("sha512", True),
}


def matches(stored: bytes, password: str) -> bool | None:
    """True if ``stored`` is ``password`` (hashed or, without a ``{scheme}``, in clear), False
    if it is another password, None if the scheme cannot be checked here."""
    sent = password.encode("utf-8")
    if not stored.startswith(b"{"):
        return hmac.compare_digest(stored, sent)
    scheme, closed, rest = stored[1:].partition(b"}")
    known = SCHEMES.get(scheme.decode("ascii", "replace").upper()) if closed else None
    if known is None:
        return None
    name, salted = known
    try:
        raw = base64.b64decode(rest, validate=True)
    except (binascii.Error, ValueError):
        return None
    size = hashlib.new(name).digest_size
    digest, salt = raw[:size], raw[size:]
    if len(digest) != size or (salt and not salted):
        return None
    return hmac.compare_digest(hashlib.new(name, sent + salt).digest(), digest)
