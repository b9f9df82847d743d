"""Normalisation and ASCII folding of Vietnamese text."""

import unicodedata

import pytest

from syncd.naming.text import fold_words, normalise, to_ascii


def test_d_with_stroke_folds_to_d_although_it_has_no_decomposition() -> None:
    assert unicodedata.normalize("NFD", "đ") == "đ"  # why the naive recipe fails
    assert to_ascii("Đặng Đình Đạt") == "dangdinhdat"


@pytest.mark.parametrize(("old", "new"), [("Thuỷ", "Thủy"), ("Hoà", "Hòa"), ("Khoẻ", "Khỏe")])
def test_old_and_new_tone_placement_fold_the_same(old: str, new: str) -> None:
    assert old != new
    assert to_ascii(old) == to_ascii(new)


def test_nfd_and_windows_1258_style_input_normalise_to_nfc() -> None:
    nfc = "Nguyễn Thị Hương"
    nfd = unicodedata.normalize("NFD", nfc)
    cp1258_style = "Nguyê\u0303n Thi\u0323 Hương"  # precomposed ê + combining tilde
    assert normalise(nfd) == nfc
    assert normalise(cp1258_style) == nfc


def test_every_kind_of_whitespace_collapses_to_one_space() -> None:
    assert normalise(" Lê\u00a0\u00a0Thị\tMai \u200b ") == "Lê Thị Mai"


def test_to_ascii_keeps_only_lowercase_letters_and_digits() -> None:
    assert to_ascii("Ngô-Văn  Ân (2) ✓ 😀") == "ngovanan2"


def test_fold_words_is_the_unaccented_full_name() -> None:
    assert fold_words("  NGUYỄN  văn\u00a0Đạt ") == "nguyen van dat"
    assert fold_words("Y-Bih Niê") == "y bih nie"
