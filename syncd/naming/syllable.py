"""A Vietnamese syllable model: legal onset, vowel cluster, final, at most one tone, on a vowel
where the orthography puts it (old and new placement both accepted: ``hoà`` and ``hòa``).

The legacy-encoding detector scores a column by how many of its words are well-formed
Vietnamese syllables. Mis-decoded text (``NguyÔn``, ``Nguyeãn``) almost never is, while real
names almost always are, which makes the decision robust without a dictionary.
"""

from __future__ import annotations

import re
import unicodedata

# Combining marks for the five tones (sắc, huyền, hỏi, ngã, nặng).
TONE_MARKS = frozenset("\u0301\u0300\u0309\u0303\u0323")

_ONSETS = ("ngh ng nh ch gh gi kh ph qu th tr b c d đ g h k l m n p q r s t v x").split()
_VOWELS = ("a ă â e ê i o ô ơ u ư y ia iê oa oă oe oo uâ uê uô uơ uy ươ yê uyê").split()
# Clusters that end in a glide (i/y/o/u): they never take a final consonant ("phaum" is not
# Vietnamese). Telling the two apart is what separates VNI from TCVN3 readings of a name.
_OPEN_VOWELS = (
    "ai ao au ay âu ây eo êu iu oi ôi ơi ua ui ưa ưi ưu "
    "iêu oai oao oay oeo uây uôi uya uyu ươi ươu yêu"
).split()
_FINALS = "ch ng nh c m n p t".split()


def _alt(items: list[str]) -> str:
    return "|".join(sorted(items, key=len, reverse=True))


_SYLLABLE = re.compile(
    f"^(?P<onset>{_alt(_ONSETS)})?"
    f"(?:(?P<open>{_alt(_OPEN_VOWELS)})|(?P<vowel>{_alt(_VOWELS)})(?P<final>{_alt(_FINALS)})?)$"
)

_MARKED = frozenset("ăâêôơư")
_EITHER = frozenset({"oa", "oe", "uy"})  # old (hoà, thuỷ) and new (hòa, thủy) placement


def split_tone(word: str) -> tuple[str, int]:
    """Return the word without tone marks (vowel marks kept) and how many tone marks it had."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = sum(1 for ch in decomposed if ch in TONE_MARKS)
    bare = "".join(ch for ch in decomposed if ch not in TONE_MARKS)
    return unicodedata.normalize("NFC", bare), tones


def _tone_positions(vowel: str, has_final: bool) -> set[int]:
    """Where in the vowel cluster the tone mark may stand."""
    marked = [i for i, ch in enumerate(vowel) if ch in _MARKED]
    if marked:
        return {marked[-1]}
    if has_final or len(vowel) == 1:
        return {len(vowel) - 1}
    if len(vowel) == 3:
        return {1}
    return {0, 1} if vowel in _EITHER else {0}


def is_syllable(word: str) -> bool:
    """True when ``word`` is a well-formed Vietnamese syllable (case-insensitive)."""
    bare, tones = split_tone(word)
    match = _SYLLABLE.match(bare)
    if tones > 1 or not match:
        return False
    if tones == 0:
        return True
    chars = unicodedata.normalize("NFC", word.lower())
    if len(chars) != len(bare):
        return False
    toned = next(
        i for i, ch in enumerate(chars) if TONE_MARKS & set(unicodedata.normalize("NFD", ch))
    )
    onset = match.group("onset") or ""
    vowel = match.group("open") or match.group("vowel")
    final = match.group("final")
    return toned - len(onset) in _tone_positions(vowel, bool(final))
