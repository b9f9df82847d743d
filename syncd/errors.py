"""Errors the core raises; each carries enough context for an operator to act on it."""

from __future__ import annotations


class SyncdError(Exception):
    """Base class for every error syncd reports to an operator."""


class NameError_(SyncdError):
    """A person's name cannot be turned into a uid (empty, no Latin letters, too long)."""


class SchemeError(SyncdError):
    """A uid scheme is unknown or misconfigured."""


class OrgCodeError(SyncdError):
    """An organisation code is not lowercase ASCII ``[a-z0-9]``."""
