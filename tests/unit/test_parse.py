"""Parsing a full name into the given name and the words that give initials."""

import pytest

from syncd.errors import NameError_
from syncd.naming.parse import parse_name


def test_last_word_is_given_name_and_every_earlier_word_gives_one_initial() -> None:
    name = parse_name("Nguyễn Hoàng Phúc")
    assert name.given == "phuc"
    assert name.initials == "nh"


def test_hyphen_splits_words_and_apostrophes_are_deleted() -> None:
    assert parse_name("H'Hen Niê").words == ("hhen", "nie")
    assert parse_name("H’Hen Niê").words == ("hhen", "nie")
    assert parse_name("Y-Bih Niê").initials == "yb"
    assert parse_name("Nguyễn Thị Kim-Anh").words == ("nguyen", "thi", "kim", "anh")


def test_one_word_name_has_no_initials() -> None:
    name = parse_name("Ksor")
    assert (name.given, name.initials) == ("ksor", "")


@pytest.mark.parametrize("bad", ["", "   ", "\u00a0\t", "😀 ✓", "***"])
def test_empty_or_letterless_name_is_an_error(bad: str) -> None:
    with pytest.raises(NameError_):
        parse_name(bad)


def test_non_latin_script_is_an_error_that_names_the_character() -> None:
    with pytest.raises(NameError_, match="U\\+0645"):
        parse_name("محمد Văn")


@pytest.mark.parametrize("ch", [*'*()\\,+"<>;=#|@/{}[]', "\x00", "😀", "✓"])
def test_ldap_specials_symbols_and_nul_are_refused_with_the_character_named(ch: str) -> None:
    with pytest.raises(NameError_, match=r"U\+"):
        parse_name(f"Nguyễn Văn{ch} An")


def test_a_name_longer_than_100_characters_is_refused() -> None:
    with pytest.raises(NameError_, match="at most 100"):
        parse_name("Nguyễn " * 20 + "An")
