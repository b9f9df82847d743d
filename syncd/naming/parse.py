"""Split a Vietnamese full name into the words a uid is built from.

Rules (DIGEST §1, issue "foundation"): split on whitespace and hyphens; apostrophes inside
words are deleted (``H'Hen`` → ``hhen``); the last word is the given name and every earlier word
— family name, middle names, the first part of a compound given name, Ede/Jrai prefixes ``Y`` and
``H'`` — contributes one initial. A one-word name has no initials.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from syncd.errors import NameError_
from syncd.naming.text import is_latin_letter, normalise, to_ascii

_SPLIT = re.compile(r"[\s\-\u2010-\u2015]+")
_APOSTROPHES = "'’ʼ‘`´"
_STRIP_APOSTROPHES = dict.fromkeys(map(ord, _APOSTROPHES))
# The common case: Latin letters (Vietnamese included), spaces, hyphens, apostrophes, digits.
_PLAIN = re.compile(
    r"^[A-Za-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\u0300-\u036f '’ʼ‘`´\-]*$"
)


@lru_cache(maxsize=65536)
def _fold_word(raw: str) -> str:
    """One word to ASCII; cached because rosters reuse a small vocabulary of syllables."""
    return to_ascii(raw.translate(_STRIP_APOSTROPHES))


@dataclass(frozen=True)
class ParsedName:
    """A full name as ASCII words; ``words[-1]`` is the given name."""

    display: str
    words: tuple[str, ...]

    @property
    def given(self) -> str:
        return self.words[-1]

    @property
    def others(self) -> tuple[str, ...]:
        """Family, middle and compound-first words: each gives one initial."""
        return self.words[:-1]

    @property
    def initials(self) -> str:
        return "".join(w[0] for w in self.others)

    @property
    def folded(self) -> str:
        """The unaccented full name, as regulations compare names."""
        return " ".join(self.words)


MAX_NAME = 100  # characters; the longest real Vietnamese names are far shorter
_ALLOWED_PUNCT = set(" -'’ʼ‘`´.\u2010\u2011\u2012\u2013\u2014\u2015")


@lru_cache(maxsize=131072)
def parse_name(full_name: str) -> ParsedName:
    """Parse ``full_name``; raise :class:`NameError_` with the reason when it is unusable.

    Cached: a province's rosters repeat the same names, and every run re-reads them all.
    """
    display = normalise(full_name)
    if not display:
        raise NameError_("empty name")
    if len(display) > MAX_NAME:
        raise NameError_(f"name is {len(display)} characters long; at most {MAX_NAME}")
    for ch in "" if _PLAIN.match(display) else display:
        if ch.isalpha() and not is_latin_letter(ch):
            raise NameError_(
                f"name contains {ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, '?')}), "
                "which is not a Latin letter"
            )
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            raise NameError_(f"name contains the control character U+{ord(ch):04X}")
        if not (ch.isalpha() or ch.isdigit() or unicodedata.combining(ch) or ch in _ALLOWED_PUNCT):
            raise NameError_(
                f"name contains {ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, '?')}), "
                "which has no place in a person's name"
            )
    words = [w for w in map(_fold_word, _SPLIT.split(display)) if w]
    if not words:
        raise NameError_(f"name {display!r} has no letters to build a mailbox name from")
    return ParsedName(display=display, words=tuple(words))
