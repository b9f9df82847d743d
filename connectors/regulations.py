"""The built-in regulations, read from ``syncd/regulation/*.yaml`` (package data).

The core owns what a regulation means (``syncd.regulation``); reading the files is this
module's job, once, at import. ``PROFILES`` by profile id, ``SCHEMES`` every uid scheme the
regulations define (a province's own and its allowed variants).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import yaml

from syncd.errors import SchemeError
from syncd.naming.schemes import Scheme
from syncd.regulation import Profile, parse_profile


def _load() -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    folder = resources.files("syncd") / "regulation"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text(encoding="utf-8"))
            profile = parse_profile(data, f"config/profiles/{entry.name}")
            out[profile.id] = profile
    return out


PROFILES: dict[str, Profile] = _load()
SCHEMES: dict[str, Scheme] = {
    sid: scheme for p in PROFILES.values() for sid, scheme in p.schemes.items()
}


def get_scheme(scheme_id: str, extra: Mapping[str, Scheme] | None = None) -> Scheme:
    """Look a scheme up by id among the regulations' and any configured templates."""
    schemes = {**SCHEMES, **(extra or {})}
    try:
        return schemes[scheme_id]
    except KeyError:
        raise SchemeError(
            f"unknown scheme {scheme_id!r}; known: {', '.join(sorted(schemes))}"
        ) from None
