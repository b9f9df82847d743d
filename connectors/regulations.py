"""The built-in regulations, read from ``syncd/regulation/*.yaml`` (package data).

The core owns what a regulation means (``syncd.regulation``); reading the files is this
module's job, once, at import. ``PROFILES`` by profile id, ``SCHEMES`` every uid scheme the
regulations define (a province's own and its allowed variants).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from syncd.errors import SchemeError
from syncd.naming.schemes import Scheme
from syncd.regulation import Profile, ProfileError, parse_profile

# libyaml's safe loader where PyYAML was built with it (Debian's and PyPI's wheels are): the
# same documents, about six times faster than the pure-Python one. Every process loads the
# regulation files at start (12 ms against 2 ms here), and the catalogue with them.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` through :data:`SAFE_LOADER` (a safe loader: plain data only)."""
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - the safe loader, in C


def load(folder: Traversable | None = None) -> dict[str, Profile]:
    """Every ``<id>.yaml`` of ``folder`` (default ``syncd/regulation``): the id is the file's
    name, and no two files may define the same scheme (a copied file must never replace
    another province's rules)."""
    out: dict[str, Profile] = {}
    owner: dict[str, str] = {}
    folder = folder or resources.files("syncd") / "regulation"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        where = f"syncd/regulation/{entry.name}"
        try:
            data = safe_load(entry.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{where}: not valid UTF-8 YAML: {exc}") from None
        profile = parse_profile(data, where)
        stem = entry.name.removesuffix(".yaml")
        if profile.id != stem:
            raise ProfileError(f"{where}: id {profile.id!r} must be the file's name ({stem!r})")
        for sid in profile.schemes:
            if sid in owner:
                raise ProfileError(f"{where}: scheme {sid!r} is already defined by {owner[sid]}")
            owner[sid] = where
        if profile.scheme not in profile.schemes and profile.scheme not in owner:
            raise ProfileError(f"{where}: naming.scheme {profile.scheme!r} is defined nowhere")
        out[profile.id] = profile
    return out


PROFILES: dict[str, Profile] = load()
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
