"""Vietnamese text normalisation and folding to ASCII.

Why not just "NFD then strip combining marks": ``đ``/``Đ`` has no Unicode decomposition, so that
recipe leaves it in place (a classic bug). And HR text arrives in every shape: NFD from macOS,
Windows-1258 style (precomposed vowel + combining tone), NO-BREAK SPACEs from Word, tabs from
Excel. Everything is brought to one NFC, single-spaced form first.
"""

from __future__ import annotations

import re
import unicodedata

from unidecode import unidecode

_WS = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# Invisible characters that Word/Excel paste into names; they are never part of a name.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Return ``text`` in NFC with invisible characters removed and whitespace collapsed.

    NFC also composes Windows-1258 style text (base vowel + combining tone mark).
    """
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    return _WS.sub(" ", text).strip()


def is_latin_letter(ch: str) -> bool:
    """True for letters of the Latin script (with any marks), which is what a name may hold."""
    if ch in "đĐ":
        return True
    try:
        return unicodedata.category(ch).startswith("L") and "LATIN" in unicodedata.name(ch)
    except ValueError:
        return False


def to_ascii(text: str) -> str:
    """Fold Vietnamese text to lowercase ``[a-z0-9]`` only.

    ``đ`` becomes ``d`` explicitly; every tone and vowel mark is dropped; old and new tone
    placement (``Thuỷ``/``Thủy``, ``Hoà``/``Hòa``) give the same result because all marks go.
    Latin letters outside Vietnamese go through unidecode (``ø`` → ``o``); anything else
    (emoji, other scripts, punctuation) is dropped.
    """
    text = normalise(text).lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    out = []
    for ch in stripped:
        if ch.isascii():
            out.append(ch)
        elif is_latin_letter(ch):
            out.append(unidecode(ch).lower())
    return _NON_ALNUM.sub("", "".join(out))


def fold_words(text: str) -> str:
    """Unaccented lowercase form of a full text, words kept apart by single spaces.

    This is the "unaccented full name" the regulations compare (Tuyên Quang Đ5.2) and the key
    used to match accounts that predate syncd.
    """
    words = (to_ascii(w) for w in re.split(r"[\s\-]+", normalise(text)))
    return " ".join(w for w in words if w)
