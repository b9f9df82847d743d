"""The regulations: one ``<profile>.yaml`` per province beside this file, and the engine that
turns one into a typed :class:`Profile` (``connectors.regulations`` reads the files)."""

from syncd.regulation.profile import (
    ACTIVITY_KINDS,
    CLOCKS,
    LOCK_REASONS,
    Activity,
    Clock,
    Duration,
    Flag,
    Forwarding,
    Lifecycle,
    PasswordRule,
    Profile,
    ProfileError,
    parse_profile,
    with_overrides,
)

__all__ = [
    "ACTIVITY_KINDS",
    "CLOCKS",
    "LOCK_REASONS",
    "Activity",
    "Clock",
    "Duration",
    "Flag",
    "Forwarding",
    "Lifecycle",
    "PasswordRule",
    "Profile",
    "ProfileError",
    "parse_profile",
    "with_overrides",
]
