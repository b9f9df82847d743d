"""Legacy text pasted among Unicode cells: the per-cell decision for roster columns.

Inside a table of Unicode cells, legacy text arrives pasted next to proper Unicode (an old file
copied into Excel), so :func:`convert_cells` decides per cell, with one rule above all others:
**a cell that is already valid Unicode Vietnamese is never rewritten**. A cell is converted
only when it cannot be Unicode Vietnamese (a word that is not a syllable as it stands) and a
legacy reading makes every word a syllable. A cell that reads as Vietnamese both ways is left
as it is and reported as ambiguous.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from syncd.naming.legacy import Encoding, as_seen, convert
from syncd.naming.syllable import is_syllable

# Every character a legacy byte can show up as (Latin-1 and Windows-1252 readings). A cell with
# any other non-ASCII character (ă, ơ, ư, đ, ễ, a combining mark, …) cannot be legacy text.
_LEGACY_SEEN = frozenset(ch for byte in range(0x80, 0x100) for ch in as_seen(byte))
_WORDS = re.compile(r"[\s\-]+")
_LEGACY = (Encoding.TCVN3, Encoding.VNI)


class Verdict(StrEnum):
    """What happened to one cell."""

    KEPT = "kept"  # Unicode (or nothing a legacy reading would change): left as it is
    CONVERTED = "converted"  # legacy text; the legacy reading is valid Vietnamese
    AMBIGUOUS = "ambiguous"  # valid Vietnamese as it stands *and* as legacy text: left as is
    # looks like legacy text, but cannot be converted safely (no reading makes every word a
    # syllable, or a Unicode cell has a legacy word in it): left as is
    UNCONVERTIBLE = "unconvertible"


@dataclass(frozen=True)
class CellDecision:
    """The decision for one cell. ``alternative`` is the legacy reading that was not taken."""

    original: str
    text: str
    verdict: Verdict
    encoding: Encoding = Encoding.UNICODE
    alternative: str = ""


@functools.lru_cache(maxsize=4096)
def _visible(ch: str) -> bool:
    # Zero-width spaces, joiners and BOMs pasted by Word/Excel say nothing about the encoding;
    # U+00AD (a soft hyphen in Unicode) is the letter ư in TCVN3, so it counts.
    return ch == "\u00ad" or unicodedata.category(ch) != "Cf"


def _strip_invisible(text: str) -> str:
    """``text`` without its invisible format characters (category Cf; U+00AD stays).

    Checked per character (cached), not with a regex of every Cf character: building that
    walked all 1.1 million code points, 0.15-0.9 s that every ``syncd`` command paid at import
    (issue 14)."""
    if text.isascii():
        return text
    return "".join(ch for ch in text if ch.isascii() or _visible(ch))


def _words(text: str) -> list[str]:
    """The words of ``text`` with a non-ASCII character, invisible characters left out."""
    text = _strip_invisible(unicodedata.normalize("NFC", text))
    return [w for w in _WORDS.split(text) if w and not w.isascii()]


_is_syllable = functools.lru_cache(maxsize=65536)(is_syllable)


def _valid_words(text: str) -> tuple[int, int]:
    """(well-formed syllables, words) among the words of ``text`` with a non-ASCII character."""
    words = _words(text)
    return sum(map(_is_syllable, words)), len(words)


def all_syllables(text: str) -> bool:
    """True when every word of ``text`` with a non-ASCII character is a Vietnamese syllable."""
    valid, words = _valid_words(text)
    return valid == words


def is_unicode_only(text: str) -> bool:
    """True when ``text`` holds a letter or mark no legacy byte shows up as (so it is Unicode).

    Spaces and invisible characters do not count: they get into legacy text too, when pasted.
    """
    return any(
        not ch.isascii() and ch not in _LEGACY_SEEN and not ch.isspace() and _visible(ch)
        for ch in text
    )


def _legacy_words(value: str) -> tuple[Encoding, str] | None:
    """In a Unicode cell, words that are not syllables but are in a legacy encoding.

    ``Nguyễn Văn Ñaït``: someone retyped part of a VNI name. Returns the encoding and the
    cell with those words converted; None when there are none.
    """
    for enc in _LEGACY:
        found = False
        out = []
        for word in _WORDS.split(value):
            converted = _legacy_word(word, enc)
            if converted is not None:
                found = True
                word = converted
            out.append(word)
        if found:
            return enc, " ".join(out)
    return None


@functools.lru_cache(maxsize=16384)
def _legacy_word(word: str, enc: Encoding) -> str | None:
    """``word`` read as ``enc`` when it is legacy text in it (not Unicode-only, no syllable as
    it stands, a syllable once converted), else None. Cached by word: a roster's names are a
    few hundred distinct syllables, while whole names rarely repeat (100,000 people, 100,000
    cells checked word by word for each legacy encoding: a tenth of a no-op run; issue 14)."""
    w = _strip_invisible(word)
    if not w or w.isascii() or is_unicode_only(w) or is_syllable(w):
        return None
    converted = convert(w, enc)
    return converted if converted != w and is_syllable(converted) else None


@dataclass(frozen=True)
class _Readings:
    unicode_ok: bool  # every non-ASCII word is a syllable as it stands (or Unicode-only)
    unicode_valid: int
    valid: tuple[Encoding, ...]  # legacy readings that differ and make every word a syllable
    better: tuple[Encoding, ...]  # legacy readings with more syllables than the text as it is
    text: dict[Encoding, str]


@functools.lru_cache(maxsize=65536)
def _readings(value: str) -> _Readings | None:
    """None when no legacy reading is possible or would change anything."""
    if value.isascii():
        return None
    if is_unicode_only(value):  # Unicode; but a word of it may still be legacy text
        mixed = _legacy_words(value)
        if mixed is None:
            return None
        return _Readings(False, 0, (), (mixed[0],), {mixed[0]: mixed[1]})
    unicode_valid, words = _valid_words(value)
    nfc = unicodedata.normalize("NFC", value)
    text = {enc: convert(value, enc) for enc in _LEGACY}
    text = {enc: t for enc, t in text.items() if t != nfc}
    if not words or not text:
        return None
    scores = {enc: _valid_words(t)[0] for enc, t in text.items()}
    return _Readings(
        unicode_ok=unicode_valid == words,
        unicode_valid=unicode_valid,
        valid=tuple(enc for enc in text if scores[enc] == words),
        better=tuple(enc for enc in text if scores[enc] > unicode_valid),
        text=text,
    )


def _decide(value: str, hint: Encoding | None) -> CellDecision:
    r = _readings(value)
    if r is None:
        return CellDecision(value, value, Verdict.KEPT)

    def pick(encs: tuple[Encoding, ...]) -> Encoding:
        return hint if hint in encs else encs[0]

    if r.unicode_ok:  # already valid Unicode Vietnamese: never rewritten
        if r.valid:
            enc = pick(r.valid)
            return CellDecision(value, value, Verdict.AMBIGUOUS, enc, r.text[enc])
        return CellDecision(value, value, Verdict.KEPT)
    distinct = {r.text[e] for e in r.valid}
    if len(distinct) == 1 or (len(r.valid) > 1 and hint in r.valid):
        enc = pick(r.valid)
        return CellDecision(value, r.text[enc], Verdict.CONVERTED, enc)
    if r.valid:  # TCVN3 and VNI both give (different) valid Vietnamese; nothing to prefer
        enc = r.valid[0]
        return CellDecision(value, value, Verdict.AMBIGUOUS, enc, r.text[enc])
    if r.better:
        enc = pick(r.better)
        return CellDecision(value, value, Verdict.UNCONVERTIBLE, enc, r.text[enc])
    return CellDecision(value, value, Verdict.KEPT)


@dataclass(frozen=True)
class ColumnConversion:
    """The per-cell decisions for one column, in order."""

    cells: tuple[CellDecision, ...]
    encoding: Encoding  # the legacy encoding most converted cells were in, or UNICODE

    @property
    def values(self) -> list[str]:
        return [c.text for c in self.cells]

    def with_verdict(self, verdict: Verdict) -> list[int]:
        """Indexes of the cells with ``verdict``."""
        return [i for i, c in enumerate(self.cells) if c.verdict is verdict]

    @property
    def legacy_seen(self) -> bool:
        """Some cell is, or looks like, legacy text (so ambiguous cells deserve a word)."""
        return any(c.verdict in (Verdict.CONVERTED, Verdict.UNCONVERTIBLE) for c in self.cells)


def convert_cells(values: Iterable[str]) -> ColumnConversion:
    """Decide each cell of a column on its own; the column only breaks TCVN3-vs-VNI ties.

    A cell is converted only when it is not valid Unicode Vietnamese as it stands and its
    legacy reading is (every word with a non-ASCII character a well-formed syllable). Cells
    with a character outside what legacy bytes show up as are Unicode and never touched.
    """
    values = list(values)
    first = [_decide(v, None) for v in values]
    counts = {
        enc: sum(1 for c in first if c.verdict is Verdict.CONVERTED and c.encoding is enc)
        for enc in _LEGACY
    }
    hint = max(_LEGACY, key=lambda e: counts[e]) if any(counts.values()) else None
    if hint is not None and counts[Encoding.TCVN3] == counts[Encoding.VNI]:
        hint = None
    cells = tuple(_decide(v, hint) for v in values) if hint is not None else tuple(first)
    return ColumnConversion(cells, hint or Encoding.UNICODE)
