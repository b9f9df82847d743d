"""Legacy Vietnamese encodings (TCVN3/ABC and VNI): converters and a file-level detector.

Text typed with ``.VnTime`` (TCVN3) or ``VNI-Times`` fonts was stored as single bytes that a
Unicode program shows as Latin-1/Windows-1252 characters: ``NguyÔn V¨n §¹t`` (TCVN3) and
``Nguyeãn Vaên Ñaït`` (VNI). The converters here take such *strings* (whatever a CSV decoder or
openpyxl produced) and return proper Unicode.

:func:`detect` decides for a whole 8-bit file; :mod:`syncd.naming.legacy_cells` decides cell by
cell inside a table of Unicode cells.
"""

from __future__ import annotations

import contextlib
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


def as_seen(byte: int) -> set[str]:
    """The characters a legacy byte shows up as: Latin-1 and, where it differs, Windows-1252."""
    seen = {chr(byte)}
    with contextlib.suppress(UnicodeDecodeError):
        seen.add(bytes([byte]).decode("cp1252"))
    return seen


_TCVN3_DECODE: dict[str, str] = {
    ch: uni for byte, uni in _TCVN3_BYTES.items() for ch in as_seen(byte)
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
