"""CPU hygiene of a run (issue 14): each distinct name folded once, directory timestamps
parsed once each and without ``strptime``."""

from __future__ import annotations

import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.directory import openldap
from syncd import model
from syncd.naming import text

ROOT = Path(__file__).resolve().parents[2]


def test_a_name_asked_again_is_not_folded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = unicodedata.normalize

    def counting(form: str, s: str) -> str:
        calls.append(s)
        return real(form, s)

    monkeypatch.setattr(text.unicodedata, "normalize", counting)
    name = "Nguyễn Thị Ánh Tuyết (cache probe)"
    for fn in (text._normalise, text.to_ascii, text.fold_words, text.name_key):
        getattr(fn, "cache_clear", lambda: None)()  # a cold start
    first = (text.fold_words(name), text.to_ascii(name), text.name_key(name))
    once = len(calls)
    for _ in range(25):  # intake, matching, transfers, context: the same name many times
        assert (text.fold_words(name), text.to_ascii(name), text.name_key(name)) == first
    assert once > 0 and len(calls) == once


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_ascii_text_skips_the_cache_and_comes_back_as_the_slow_path_makes_it(raw: str) -> None:
    assert text.normalise(raw) == text._normalise.__wrapped__(raw)


def test_a_roster_of_distinct_employee_numbers_does_not_fill_the_names_cache() -> None:
    text._normalise.cache_clear()
    numbers = [f"E{i:06d}" for i in range(5000)]
    assert [text.normalise(n) for n in numbers] == numbers
    assert all(text.normalise(n) is n for n in numbers)  # no copy either
    assert text._normalise.cache_info().currsize == 0
    assert text.normalise(" E1\t2 ") == "E1 2"  # not normal yet: the slow path
    assert text._normalise.cache_info().currsize == 1


def test_employee_keys_of_equal_numbers_are_one_string() -> None:
    a, b = model.emp_key("".join(["A-", "0021"])), model.emp_key(" a-0021 ")
    assert a == "a-0021" and a is b


def test_directory_stamps_parse_to_utc_and_each_distinct_stamp_once() -> None:
    got = openldap._since("20250301083005.123456Z")
    assert got == datetime(2025, 3, 1, 8, 30, 5, tzinfo=UTC)
    assert openldap._since("20250301083005Z") is got  # parsed once, the same object back
    for bad in (
        "",
        None,
        "2025030108300",
        "20251301083005Z",
        "2025-03-01T08:3Z",
        "２０２５0301083005Z",
    ):
        assert openldap._since(bad) is None


def test_importing_the_legacy_cell_rules_does_not_walk_every_code_point() -> None:
    """Every ``syncd`` command imports them; walking all 1.1 million code points at import
    cost each command 0.15-0.9 s before it did anything."""
    probe = (
        "import unicodedata\n"
        "calls = 0\n"
        "real = unicodedata.category\n"
        "def counting(ch):\n"
        "    global calls\n"
        "    calls += 1\n"
        "    return real(ch)\n"
        "unicodedata.category = counting\n"
        "import syncd.naming.legacy_cells as cells\n"
        "print(calls)\n"
        "assert cells._strip_invisible('Lê\\u200bThị\\u00adMai\\ufeff') == 'LêThị\\u00adMai'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert int(done.stdout) < 1000
