"""Vietnamese text normalisation and folding to ASCII.

Why not just "NFD then strip combining marks": ``đ``/``Đ`` has no Unicode decomposition, so that
recipe leaves it in place (a classic bug). And HR text arrives in every shape: NFD from macOS,
Windows-1258 style (precomposed vowel + combining tone), NO-BREAK SPACEs from Word, tabs from
Excel. Everything is brought to one NFC, single-spaced form first.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from unidecode import unidecode

_WS = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# Invisible characters that Word/Excel paste into names; they are never part of a name.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Every function here is pure str → str and a run asks the same names again and again (a
# person's name is folded by intake, matching, transfers, the address book and the planner's
# context: 5 to 27 times each before this cache). A bounded cache folds each distinct text once;
# 2**17 entries covers a 100,000-person province with room for the directory's own names.
_CACHE = 1 << 17


def normalise(text: str) -> str:
    """Return ``text`` in NFC with invisible characters removed and whitespace collapsed.

    NFC also composes Windows-1258 style text (base vowel + combining tone mark).

    Printable ASCII already single-spaced and trimmed (employee numbers, codes, dates, most
    titles: every row's own) is returned as it is, without the cache: such text is its own
    normal form (no invisible character, no mark, no other space is ASCII), and a cache
    filled with 100,000 distinct employee numbers held each raw cell, its copy and an entry
    (~25 MiB at 100k) while evicting the names it exists for.
    """
    if text.isascii() and text.isprintable() and "  " not in text and text.strip() == text:
        return str(text)  # the same object for a str; a plain str for a StrEnum member
    return _normalise(text)


@lru_cache(maxsize=_CACHE)
def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    return _WS.sub(" ", text).strip()


@lru_cache(maxsize=_CACHE)
def is_latin_letter(ch: str) -> bool:
    """True for letters of the Latin script (with any marks), which is what a name may hold."""
    if ch in "đĐ":
        return True
    try:
        return unicodedata.category(ch).startswith("L") and "LATIN" in unicodedata.name(ch)
    except ValueError:
        return False


@lru_cache(maxsize=_CACHE)
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


@lru_cache(maxsize=_CACHE)
def fold_words(text: str) -> str:
    """Unaccented lowercase form of a full text, words kept apart by single spaces.

    This is the "unaccented full name" the regulations compare (Tuyên Quang Đ5.2) and the key
    used to match accounts that predate syncd.
    """
    words = (to_ascii(w) for w in re.split(r"[\s\-]+", normalise(text)))
    return " ".join(w for w in words if w)


# The five Vietnamese tone marks (the sixth tone has none); vowel marks (breve, circumflex,
# horn) and đ are part of the letter, not the tone.
_TONES = {"\u0300": "2", "\u0301": "1", "\u0303": "4", "\u0309": "3", "\u0323": "5"}


@lru_cache(maxsize=_CACHE)
def name_key(text: str) -> str:
    """The full name as a person owns it: case and spacing aside, every mark kept.

    Used to decide that an account without an employee number belongs to a person: ``Lý Thị
    Hòa`` is not ``Lý Thị Hoa`` (tone marks separate different names), while the old and new
    tone placements ``Hoà``/``Hòa``, ``Thuỷ``/``Thủy`` are the same name written two ways, so
    each word is compared as its letters plus which tone it carries, wherever the mark sits.
    """
    words = []
    for word in normalise(text).lower().split(" "):
        decomposed = unicodedata.normalize("NFD", word)
        tones = "".join(_TONES[ch] for ch in decomposed if ch in _TONES)
        letters = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
        words.append(f"{letters}{tones}")
    return " ".join(words)
