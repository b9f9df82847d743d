"""Legacy Vietnamese encodings (TCVN3/ABC and VNI): converters, a file-level detector and the
per-cell decision used for roster columns.

Text typed with ``.VnTime`` (TCVN3) or ``VNI-Times`` fonts was stored as single bytes that a
Unicode program shows as Latin-1/Windows-1252 characters: ``NguyÔn V¨n §¹t`` (TCVN3) and
``Nguyeãn Vaên Ñaït`` (VNI). The converters here take such *strings* (whatever a CSV decoder or
openpyxl produced) and return proper Unicode.

:func:`detect` decides for a whole 8-bit file. Inside a table of Unicode cells, legacy text
arrives pasted next to proper Unicode (an old file copied into Excel), so :func:`convert_cells`
decides per cell, with one rule above all others: **a cell that is already valid Unicode
Vietnamese is never rewritten**. A cell is converted only when it cannot be Unicode Vietnamese
(a word that is not a syllable as it stands) and a legacy reading makes every word a syllable.
A cell that reads as Vietnamese both ways is left as it is and reported as ambiguous.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from syncd.naming.syllable import is_syllable


class Encoding(StrEnum):
    """What a column was typed in."""

    UNICODE = "unicode"
    TCVN3 = "tcvn3"
    VNI = "vni"


# TCVN 5712:1993 (VN3 "ABC" range 0xA1-0xFE plus the VN1 capitals at 0x80-0x9F), as glibc's
# TCVN5712-1 decodes it; the tests compare every byte with `iconv -f TCVN5712-1`.
_TCVN3_BYTES = {
    0x80: "À", 0x81: "Ả", 0x82: "Ã", 0x83: "Á", 0x84: "Ạ", 0x85: "Ặ", 0x86: "Ậ", 0x87: "È",
    0x88: "Ẻ", 0x89: "Ẽ", 0x8A: "É", 0x8B: "Ẹ", 0x8C: "Ệ", 0x8D: "Ì", 0x8E: "Ỉ", 0x8F: "Ĩ",
    0x90: "Í", 0x91: "Ị", 0x92: "Ò", 0x93: "Ỏ", 0x94: "Õ", 0x95: "Ó", 0x96: "Ọ", 0x97: "Ộ",
    0x98: "Ờ", 0x99: "Ở", 0x9A: "Ỡ", 0x9B: "Ớ", 0x9C: "Ợ", 0x9D: "Ù", 0x9E: "Ủ", 0x9F: "Ũ",
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ", 0xA8: "ă",
    0xA9: "â", 0xAA: "ê", 0xAB: "ô", 0xAC: "ơ", 0xAD: "ư", 0xAE: "đ", 0xAF: "Ằ",
    0xB0: "\u0300", 0xB1: "\u0309", 0xB2: "\u0303", 0xB3: "\u0301", 0xB4: "\u0323",
    0xB5: "à", 0xB6: "ả", 0xB7: "ã", 0xB8: "á", 0xB9: "ạ", 0xBA: "Ẳ", 0xBB: "ằ", 0xBC: "ẳ",
    0xBD: "ẵ", 0xBE: "ắ", 0xBF: "Ẵ", 0xC0: "Ắ", 0xC1: "Ầ", 0xC2: "Ẩ", 0xC3: "Ẫ", 0xC4: "Ấ",
    0xC5: "Ề", 0xC6: "ặ", 0xC7: "ầ", 0xC8: "ẩ", 0xC9: "ẫ", 0xCA: "ấ", 0xCB: "ậ", 0xCC: "è",
    0xCD: "Ể", 0xCE: "ẻ", 0xCF: "ẽ", 0xD0: "é", 0xD1: "ẹ", 0xD2: "ề", 0xD3: "ể", 0xD4: "ễ",
    0xD5: "ế", 0xD6: "ệ", 0xD7: "ì", 0xD8: "ỉ", 0xD9: "Ễ", 0xDA: "Ế", 0xDB: "Ồ", 0xDC: "ĩ",
    0xDD: "í", 0xDE: "ị", 0xDF: "ò", 0xE0: "Ổ", 0xE1: "ỏ", 0xE2: "õ", 0xE3: "ó", 0xE4: "ọ",
    0xE5: "ồ", 0xE6: "ổ", 0xE7: "ỗ", 0xE8: "ố", 0xE9: "ộ", 0xEA: "ờ", 0xEB: "ở", 0xEC: "ỡ",
    0xED: "ớ", 0xEE: "ợ", 0xEF: "ù", 0xF0: "Ỗ", 0xF1: "ủ", 0xF2: "ũ", 0xF3: "ú", 0xF4: "ụ",
    0xF5: "ừ", 0xF6: "ử", 0xF7: "ữ", 0xF8: "ứ", 0xF9: "ự", 0xFA: "ỳ", 0xFB: "ỷ", 0xFC: "ỹ",
    0xFD: "ý", 0xFE: "ỵ", 0xFF: "Ố",
}  # fmt: skip


def _as_seen(byte: int) -> set[str]:
    """The characters a legacy byte shows up as: Latin-1 and, where it differs, Windows-1252."""
    seen = {chr(byte)}
    with contextlib.suppress(UnicodeDecodeError):
        seen.add(bytes([byte]).decode("cp1252"))
    return seen


_TCVN3_DECODE: dict[str, str] = {
    ch: uni for byte, uni in _TCVN3_BYTES.items() for ch in _as_seen(byte)
}
_TCVN3_ENCODE: dict[str, str] = {
    uni: chr(byte) for byte, uni in _TCVN3_BYTES.items() if not unicodedata.combining(uni)
}

# VNI-Windows: a base letter followed by a mark character. Tones in the order
# (none, sắc, huyền, hỏi, ngã, nặng); lowercase marks, the uppercase ones are their capitals.
_VNI_TONES_PLAIN = ("", "ù", "ø", "û", "õ", "ï")  # after a, e, o, u, y, ơ, ư
_VNI_TONES_HAT = ("â", "á", "à", "å", "ã", "ä")  # after a/e/o: circumflex + tone
_VNI_TONES_BREVE = ("ê", "é", "è", "ú", "ü", "ë")  # after a: breve + tone
_TONE_COMBINING = ("", "\u0301", "\u0300", "\u0309", "\u0303", "\u0323")


def _build_vni() -> dict[str, str]:
    table: dict[str, str] = {}

    def add(vni_lower: str, uni_lower: str) -> None:
        table[vni_lower] = uni_lower
        table[vni_lower.upper()] = uni_lower.upper()

    for tone, comb in enumerate(_TONE_COMBINING):
        for base, vni_base in (
            ("a", "a"),
            ("e", "e"),
            ("o", "o"),
            ("u", "u"),
            ("ơ", "ô"),
            ("ư", "ö"),
        ):
            add(vni_base + _VNI_TONES_PLAIN[tone], unicodedata.normalize("NFC", base + comb))
        if tone in (0, 1, 2, 3, 4):
            add("y" + _VNI_TONES_PLAIN[tone], unicodedata.normalize("NFC", "y" + comb))
        for base in ("a", "e", "o"):
            add(base + _VNI_TONES_HAT[tone], unicodedata.normalize("NFC", base + "\u0302" + comb))
        add("a" + _VNI_TONES_BREVE[tone], unicodedata.normalize("NFC", "a\u0306" + comb))
    # i takes single-character forms; ỵ too; đ.
    for vni, uni in (
        ("í", "í"),
        ("ì", "ì"),
        ("æ", "ỉ"),
        ("ó", "ĩ"),
        ("ò", "ị"),
        ("î", "ỵ"),
        ("ñ", "đ"),
    ):
        add(vni, uni)
    table.pop("", None)
    # Plain letters map to themselves; drop identity entries so only real conversions remain.
    return {k: v for k, v in table.items() if k != v}


_VNI_DECODE = _build_vni()
assert max(map(len, _VNI_DECODE)) == 2  # base letter + mark: decoding looks two ahead
_VNI_ENCODE = {v: k for k, v in sorted(_VNI_DECODE.items(), key=lambda kv: -len(kv[0]))}


def tcvn3_to_unicode(text: str) -> str:
    """Convert a TCVN3 (ABC) string, as a Latin-1/cp1252 program shows it, to NFC Unicode."""
    return unicodedata.normalize("NFC", "".join(_TCVN3_DECODE.get(ch, ch) for ch in text))


def unicode_to_tcvn3(text: str) -> str:
    """The inverse of :func:`tcvn3_to_unicode` (as Latin-1 characters), for round-trip tests."""
    return "".join(_TCVN3_ENCODE.get(ch, ch) for ch in unicodedata.normalize("NFC", text))


def vni_to_unicode(text: str) -> str:
    """Convert a VNI-Windows string (``Nguyeãn Vaên Ñaït``) to NFC Unicode."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        pair = text[i : i + 2]
        if len(pair) == 2 and pair in _VNI_DECODE:
            out.append(_VNI_DECODE[pair])
            i += 2
        else:
            out.append(_VNI_DECODE.get(text[i], text[i]))
            i += 1
    return unicodedata.normalize("NFC", "".join(out))


def unicode_to_vni(text: str) -> str:
    """The inverse of :func:`vni_to_unicode`, for round-trip tests and sample data."""
    return "".join(_VNI_ENCODE.get(ch, ch) for ch in unicodedata.normalize("NFC", text))


_DECODERS: dict[Encoding, Callable[[str], str]] = {
    Encoding.UNICODE: lambda s: s,
    Encoding.TCVN3: tcvn3_to_unicode,
    Encoding.VNI: vni_to_unicode,
}


def convert(text: str, encoding: Encoding) -> str:
    """Decode ``text`` from ``encoding`` (identity for Unicode)."""
    return _DECODERS[encoding](text)


@dataclass(frozen=True)
class Detection:
    """The decision for one column or file, with the evidence behind it."""

    encoding: Encoding
    words: int
    valid: dict[Encoding, int]

    @property
    def converted(self) -> bool:
        return self.encoding is not Encoding.UNICODE


MAX_EVIDENCE = 2000  # words; plenty to decide a column, and keeps big files fast


def _evidence(values: Iterable[str]) -> list[str]:
    """The words that can tell encodings apart: those with a non-ASCII character."""
    return [
        word
        for value in values
        # not normalise(): it drops U+00AD, which in TCVN3 is the letter ư
        for word in re.split(r"[\s\-]+", unicodedata.normalize("NFC", value))
        if word and not word.isascii()
    ]


def detect(values: Iterable[str]) -> Detection:
    """Decide the encoding of a whole column (or file) from its values.

    Every hypothesis decodes the column; the one with the most well-formed syllables among the
    words that carry non-ASCII characters wins. Unicode wins ties, and a legacy encoding must
    beat it by a clear margin, so valid Unicode Vietnamese is never converted.
    """
    evidence = _evidence(values)[:MAX_EVIDENCE]
    words = len(evidence)
    scores = {enc: sum(is_syllable(convert(w, enc)) for w in evidence) for enc in Encoding}
    best = max(Encoding, key=lambda e: (scores[e], e is Encoding.UNICODE))
    if best is not Encoding.UNICODE:
        unicode_ok = scores[Encoding.UNICODE]
        # A legacy reading must explain clearly more words than the text as it stands.
        if scores[best] - unicode_ok < max(1, words // 4) or unicode_ok >= 0.9 * words:
            best = Encoding.UNICODE
    return Detection(best, words, scores)


# ---------------------------------------------------------------------------------------------
# Per-cell decisions for the columns of a table of Unicode cells.

# Every character a legacy byte can show up as (Latin-1 and Windows-1252 readings). A cell with
# any other non-ASCII character (ă, ơ, ư, đ, ễ, a combining mark, …) cannot be legacy text.
_LEGACY_SEEN = frozenset(ch for byte in range(0x80, 0x100) for ch in _as_seen(byte))
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


def _visible(ch: str) -> bool:
    # Zero-width spaces, joiners and BOMs pasted by Word/Excel say nothing about the encoding;
    # U+00AD (a soft hyphen in Unicode) is the letter ư in TCVN3, so it counts.
    return ch == "\u00ad" or unicodedata.category(ch) != "Cf"


_INVISIBLE = re.compile(
    "[" + "".join(re.escape(chr(c)) for c in range(0x110000) if not _visible(chr(c))) + "]"
)


def _words(text: str) -> list[str]:
    """The words of ``text`` with a non-ASCII character, invisible characters left out."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", text))
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
            w = _INVISIBLE.sub("", word)
            if (
                w
                and not w.isascii()
                and not is_unicode_only(w)
                and not is_syllable(w)
                and convert(w, enc) != w
                and is_syllable(convert(w, enc))
            ):
                found = True
                word = convert(w, enc)
            out.append(word)
        if found:
            return enc, " ".join(out)
    return None


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
