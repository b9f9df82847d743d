"""uid schemes: data (a pattern and a collision rule) selected by id, each citing its article.

The built-in schemes are part of each province's regulation file (``syncd/regulation/*.yaml``,
``naming.schemes``); a site may add a template scheme in its configuration.

The four regulations differ only in word order, whether the organisation is part of the uid,
and what to do on a collision, so every built-in scheme is an instance of the same template
mechanism a site can configure in YAML for a province whose rule is not listed.

Pattern tokens: ``{given}`` (given name), ``{initials}`` (one letter per earlier word, or more
when a collision lengthens them), ``{family}`` (the whole family name), ``{middle}`` (the whole
middle words), ``{org}`` (organisation abbreviation) and ``{n}`` (where a collision number goes;
by default the end of the name part, before the first dot).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from syncd.errors import SchemeError

_TOKENS = frozenset({"given", "initials", "family", "middle", "org", "n"})


class Collision(StrEnum):
    """What to do when the first candidate is not free."""

    NUMERIC = "numeric"  # append start, start+1, … to the name part
    ORG_SUFFIX = "org-suffix"  # try "<name>.<org>", then numbers (Cao Bằng 2011 variant)
    EXPAND = "expand"  # lengthen abbreviated words; identical full names get numbers
    MANUAL = "manual"  # never invent: hold for an operator with proposed candidates


@dataclass(frozen=True)
class Scheme:
    """A uid scheme. ``pattern`` uses the tokens above; ``article`` is what the audit cites."""

    id: str
    pattern: str
    collision: Collision
    article: str
    numeric_start: int = 1
    example: str = ""
    description: str = ""
    _layout: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {f for _, f, _, _ in string.Formatter().parse(self.pattern) if f is not None}
        unknown = names - _TOKENS
        if unknown:
            raise SchemeError(
                f"scheme {self.id}: unknown token(s) {sorted(unknown)} in pattern {self.pattern!r}"
            )
        if "given" not in names:
            raise SchemeError(f"scheme {self.id}: pattern {self.pattern!r} lacks {{given}}")
        if self.numeric_start < 0:
            raise SchemeError(f"scheme {self.id}: numeric_start must be ≥ 0")
        layout = self.pattern
        if "n" not in names:
            dot = layout.find(".")
            layout = layout + "{n}" if dot < 0 else layout[:dot] + "{n}" + layout[dot:]
        object.__setattr__(self, "_layout", layout)

    @property
    def needs_org(self) -> bool:
        return "{org}" in self.pattern

    def tokens(
        self, words: tuple[str, ...], org: str = "", lengths: tuple[int, ...] | None = None
    ) -> dict[str, str]:
        """Token values for one person; ``lengths`` = letters taken from each earlier word."""
        others = words[:-1]
        if lengths is None:
            initials = "".join([w[0] for w in others])
        else:
            initials = "".join([w[:k] for w, k in zip(others, lengths, strict=True)])
        return {
            "given": words[-1],
            "initials": initials,
            "family": others[0] if others else "",
            "middle": "".join(others[1:]),
            "org": org,
        }

    def render(
        self,
        words: tuple[str, ...],
        org: str = "",
        n: int | None = None,
        lengths: tuple[int, ...] | None = None,
    ) -> str:
        """Build one candidate uid."""
        return self.render_tokens(self.tokens(words, org, lengths), n)

    def render_tokens(self, tokens: dict[str, str], n: int | None = None) -> str:
        tokens["n"] = "" if n is None else str(n)
        return self._layout.format_map(tokens)


def scheme_from_mapping(data: Mapping[str, Any], source: str = "config") -> Scheme:
    """Build a ``template`` scheme from configuration (YAML), with clear errors."""
    allowed = {"id", "pattern", "collision", "numeric_start", "article", "example", "description"}
    unknown = set(data) - allowed
    if unknown:
        raise SchemeError(f"{source}: unknown key(s) {sorted(unknown)} in scheme")
    for key in ("id", "pattern", "article"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise SchemeError(f"{source}: scheme.{key}: required string")
    try:
        collision = Collision(data.get("collision", "numeric"))
    except ValueError:
        raise SchemeError(
            f"{source}: scheme.collision: {data.get('collision')!r} is not one of "
            f"{[c.value for c in Collision]}"
        ) from None
    start = data.get("numeric_start", 1)
    if not isinstance(start, int):
        raise SchemeError(f"{source}: scheme.numeric_start: must be an integer")
    if re.search(r"[^a-z0-9.{}]", data["pattern"]):
        raise SchemeError(f"{source}: scheme.pattern: only [a-z0-9.] and tokens are allowed")
    return Scheme(
        id=data["id"],
        pattern=data["pattern"],
        collision=collision,
        numeric_start=start,
        article=data["article"],
        example=str(data.get("example", "")),
        description=str(data.get("description", "")),
    )
