"""Legacy TCVN3/VNI text is decided per cell: a cell already in Unicode is never rewritten.

Issue "A province over the years", item 7: a name column mixing TCVN3 text (pasted into Excel
from an old file) and proper Unicode used to be converted whole, turning ``Lê Văn Tám`` into
``Lờ Văn Tỏm`` and then into the permanent uid ``tomlv``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from connectors.roster import read_table
from devtools import samples
from syncd.intake import read_roster
from syncd.naming.legacy import unicode_to_tcvn3, unicode_to_vni
from syncd.naming.syllable import is_syllable
from syncd.orgs import parse_catalogue
from syncd.roster import Table

CAT = parse_catalogue(
    [("e1", {"code": "skhcn", "name": "Sở Khoa học và Công nghệ", "mailbox": "sokhcn"})]
)
HEADERS = ["Mã cán bộ", "Họ và tên", "Mã đơn vị"]
UNICODE = ["Lê Văn Tám", "Nguyễn Thị Ánh", "Hoàng Văn Phúc"]
LEGACY = ["Nguyễn Văn Đạt", "Trần Thị Thuỷ", "Phạm Đức Cường", "Bùi Thị Hương"]


def _table(names: list[str], decoded_as: str = "xlsx") -> Table:
    rows = [[f"E{i}", n, "skhcn"] for i, n in enumerate(names, start=1)]
    return Table("hr.xlsx", HEADERS, list(enumerate(rows, start=2)), decoded_as)


def _names(names: list[str]) -> list[str]:
    snap = read_roster(_table(names), CAT)
    assert not snap.errors, snap.errors
    return [p.full_name for p in snap.people]


@pytest.mark.parametrize(
    ("encode", "label"), [(unicode_to_tcvn3, "TCVN3"), (unicode_to_vni, "VNI")]
)
def test_a_mixed_column_keeps_unicode_cells_and_converts_the_legacy_ones(encode, label) -> None:  # type: ignore[no-untyped-def]
    cells = [encode(n) for n in LEGACY[:2]] + UNICODE + [encode(n) for n in LEGACY[2:]]
    snap = read_roster(_table(cells), CAT)
    got = [p.full_name for p in snap.people]
    assert got == LEGACY[:2] + UNICODE + LEGACY[2:]
    for name in UNICODE:  # byte-identical, not merely equal after normalisation
        assert name.encode() in [g.encode() for g in got]
    assert "tomlv" not in str(got)
    note = next(n for n in snap.notes if f"typed in {label}" in n)
    assert "rows 2, 3, 7, 8" in note and "3 cell(s) already in Unicode kept" in note


def test_the_reported_case_le_van_tam_stays_le_van_tam() -> None:
    cells = [unicode_to_tcvn3(n) for n in samples.names(30, seed=3)] + ["Lê Văn Tám"]
    assert _names(cells)[-1] == "Lê Văn Tám"


@pytest.mark.parametrize(
    ("encode", "label"), [(unicode_to_tcvn3, "TCVN3"), (unicode_to_vni, "VNI")]
)
def test_a_pure_legacy_column_still_converts(encode, label) -> None:  # type: ignore[no-untyped-def]
    names = [*LEGACY, "Hoàng Văn Phúc", "Lương Đức Cường", "Đặng Ngọc Ánh", "Ưng Hoà"]
    snap = read_roster(_table([encode(n) for n in names]), CAT)
    assert [p.full_name for p in snap.people] == names
    assert any(f"typed in {label}" in n for n in snap.notes)


def test_tcvn3_and_vni_cells_in_one_column_each_convert_from_their_own_encoding() -> None:
    cells = [unicode_to_tcvn3(LEGACY[0]), unicode_to_vni(LEGACY[1]), UNICODE[0]]
    assert _names(cells) == [LEGACY[0], LEGACY[1], UNICODE[0]]


def test_an_ambiguous_cell_is_left_as_it_is_and_a_note_says_so() -> None:
    # "Lê Thu Hà" is valid Unicode Vietnamese, and read as TCVN3 it is "Lờ Thu HỔ" (also made
    # of syllables): it must stay, and the report must say it was a close call.
    cells = [unicode_to_tcvn3(n) for n in LEGACY] + ["Lê Thu Hà"]
    snap = read_roster(_table(cells), CAT)
    assert [p.full_name for p in snap.people] == [*LEGACY, "Lê Thu Hà"]
    [note] = [n for n in snap.notes if "ambiguous" in n]
    assert "row 6" in note and "'Lê Thu Hà'" in note and "TCVN3" in note and "left as it is" in note


def test_an_ambiguous_cell_in_a_pure_legacy_column_is_left_too_with_a_note() -> None:
    # TCVN3 for "Vũ Thu Mai" is "Vò Thu Mai", itself a valid Unicode name.
    tcvn3 = unicode_to_tcvn3("Vũ Thu Mai")
    assert tcvn3 == "Vò Thu Mai"
    snap = read_roster(_table([unicode_to_tcvn3(n) for n in LEGACY] + [tcvn3]), CAT)
    assert snap.people[-1].full_name == "Vò Thu Mai"
    assert any("'Vò Thu Mai'" in n and "'Vũ Thu Mai'" in n for n in snap.notes)


def test_no_ambiguity_notes_without_any_legacy_text_in_the_column() -> None:
    snap = read_roster(_table(["Lê Thu Hà", "Tô Hoài An", *UNICODE]), CAT)
    assert [p.full_name for p in snap.people] == ["Lê Thu Hà", "Tô Hoài An", *UNICODE]
    assert snap.notes == ()


@pytest.mark.parametrize(
    ("encode", "label"), [(unicode_to_tcvn3, "TCVN3"), (unicode_to_vni, "VNI")]
)
def test_a_legacy_looking_name_that_does_not_convert_cleanly_is_held_not_guessed(  # type: ignore[no-untyped-def]
    encode, label
) -> None:
    # "Kdăm" is not a Vietnamese syllable, so the legacy reading is not valid Vietnamese and the
    # cell is not converted; left as it is (VNI "Kdaêm" is all Latin letters) it would build a
    # wrong permanent uid, so the row is an error saying what the cell would read as.
    cells = [encode(n) for n in LEGACY] + [encode("Y Bih Niê Kdăm")]
    snap = read_roster(_table(cells), CAT)
    [error] = snap.errors
    assert error.row == 6 and error.column == "Họ và tên" and snap.rejected
    assert label in error.message and "'Y Bih Niê Kdăm'" in error.message
    assert any("row 6" in n and "cannot be converted safely" in n for n in snap.notes)


@pytest.mark.parametrize(
    ("cell", "label", "reads"),
    [
        ("Nguyễn Văn Ñaït", "VNI", "Nguyễn Văn Đạt"),  # all Latin letters: parse_name passes it
        ("Nguyễn Văn §¹t", "TCVN3", "Nguyễn Văn Đạt"),
        ("Trần Thò Hoa", None, None),  # "Thò" is a syllable: nothing legacy-looking
    ],
)
def test_a_unicode_name_with_one_legacy_word_is_held_not_kept_silently(
    cell: str, label: str | None, reads: str | None
) -> None:
    snap = read_roster(_table([*UNICODE, cell]), CAT)
    if label is None:
        assert snap.people[-1].full_name == cell and not snap.errors
        return
    [error] = snap.errors
    assert error.row == 5 and error.value == cell
    assert label in error.message and repr(reads) in error.message


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff", "\u2060", "\u00a0", "\u2003"])
@pytest.mark.parametrize("encode", [unicode_to_tcvn3, unicode_to_vni])
def test_legacy_cells_with_pasted_invisible_characters_or_odd_spaces_still_convert(  # type: ignore[no-untyped-def]
    encode, invisible: str
) -> None:
    between = invisible if invisible.isspace() else " " + invisible  # a space, or beside one
    cells = [encode(n).replace(" ", between, 1) + invisible for n in LEGACY]
    assert _names([*cells, *UNICODE]) == [*LEGACY, *UNICODE]


def test_foreign_and_minority_unicode_names_next_to_legacy_cells_are_untouched() -> None:
    others = ["Ksor H'Hen", "Y Bih Niê Kdăm", "Lò Văn Pửa", "José Đỗ", "José", "Hélène Lê"]
    cells = [unicode_to_tcvn3(n) for n in LEGACY] + others
    snap = read_roster(_table(cells), CAT)
    assert [p.full_name for p in snap.people] == LEGACY + others


def test_a_header_row_typed_in_tcvn3_is_still_converted() -> None:
    headers = [unicode_to_tcvn3(h) for h in HEADERS]
    table = Table("hr.xlsx", headers, [(2, ["E1", "Lê Văn Tám", "skhcn"])], "xlsx")
    snap = read_roster(table, CAT)
    assert snap.people[0].full_name == "Lê Văn Tám"
    assert any("header row was typed in TCVN3" in n for n in snap.notes)


@pytest.mark.parametrize(
    ("encode", "label"), [(unicode_to_tcvn3, "TCVN3"), (unicode_to_vni, "VNI")]
)
def test_an_xlsx_with_legacy_and_unicode_cells_reads_right_end_to_end(  # type: ignore[no-untyped-def]
    tmp_path: Path, encode, label
) -> None:
    wb = Workbook()
    wb.active.append(HEADERS)
    cells = [encode(LEGACY[0]), UNICODE[0], encode(LEGACY[1]), UNICODE[1], UNICODE[2]]
    for i, name in enumerate(cells):
        wb.active.append([f"E{i}", name, "skhcn"])
    buf = io.BytesIO()
    wb.save(buf)
    (tmp_path / "hr.xlsx").write_bytes(buf.getvalue())
    snap = read_roster(read_table(tmp_path / "hr.xlsx"), CAT)
    assert [p.full_name for p in snap.people] == [
        LEGACY[0],
        UNICODE[0],
        LEGACY[1],
        UNICODE[1],
        UNICODE[2],
    ]


def test_a_utf8_csv_with_pasted_tcvn3_rows_reads_right(tmp_path: Path) -> None:
    lines = ["Mã cán bộ,Họ và tên,Mã đơn vị", f"E1,{unicode_to_tcvn3(LEGACY[0])},skhcn"]
    lines += [f"E{i},{n},skhcn" for i, n in enumerate(UNICODE, start=2)]
    (tmp_path / "hr.csv").write_bytes("\r\n".join(lines).encode())
    snap = read_roster(read_table(tmp_path / "hr.csv"), CAT)
    assert [p.full_name for p in snap.people] == [LEGACY[0], *UNICODE]


def test_windows_1258_decomposed_text_is_unicode_and_kept() -> None:
    # Windows-1258 style: precomposed base vowel + combining tone mark (what a cp1258 decoder
    # gives); with legacy cells around it, it must not be touched (only normalised to NFC).
    decomposed = ["Nguyê\u0303n Văn Ta\u0301m", "Lê Thi\u0323 Ha\u0300"]
    cells = [unicode_to_tcvn3(n) for n in LEGACY] + decomposed
    assert _names(cells) == [*LEGACY, "Nguyễn Văn Tám", "Lê Thị Hà"]


# --- property: valid Unicode Vietnamese names are never changed --------------------------------

_SAMPLE_WORDS = sorted(
    set(
        samples.FAMILY
        + samples.MIDDLE_MALE
        + samples.MIDDLE_FEMALE
        + samples.GIVEN_MALE
        + samples.GIVEN_FEMALE
    )
)
_ONSETS = ["", "b", "c", "ch", "d", "đ", "g", "gh", "h", "kh", "l", "m", "n", "ng", "nh", "ph"]
_ONSETS += ["qu", "r", "s", "t", "th", "tr", "v", "x"]
_RHYMES = ["a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y", "ai", "ao", "au", "ay"]
_RHYMES += ["oa", "oe", "uy", "ươ", "uô", "iê", "ưa", "ua", "ia", "ôi", "ơi", "ui", "oi", "êu"]
_FINALS = ["", "c", "ch", "m", "n", "ng", "nh", "p", "t"]
_TONES = ["", "\u0301", "\u0300", "\u0309", "\u0303", "\u0323"]


def _compose(onset: str, rhyme: str, final: str, tone: str, where: int) -> str:
    import unicodedata

    pos = min(where, len(rhyme) - 1)
    word = onset + rhyme[: pos + 1] + tone + rhyme[pos + 1 :] + final
    return unicodedata.normalize("NFC", word)


_composed = st.builds(
    _compose,
    st.sampled_from(_ONSETS),
    st.sampled_from(_RHYMES),
    st.sampled_from(_FINALS),
    st.sampled_from(_TONES),
    st.integers(0, 2),
).filter(is_syllable)
_word = st.one_of(st.sampled_from(_SAMPLE_WORDS), _composed)
_case = st.sampled_from([str.title, str.upper, str.lower, lambda s: s])
_name = st.one_of(
    st.builds(samples.full_name, st.randoms(use_true_random=False)),
    st.builds(
        lambda words, case: case(" ".join(words)), st.lists(_word, min_size=1, max_size=5), _case
    ),
)
_legacy_cell = st.builds(
    lambda name, enc: enc(name),
    st.builds(samples.full_name, st.randoms(use_true_random=False)),
    st.sampled_from([unicode_to_tcvn3, unicode_to_vni]),
)


@given(
    names=st.lists(_name, min_size=1, max_size=6),
    legacy=st.lists(_legacy_cell, min_size=0, max_size=6),
    data=st.data(),
)
def test_property_valid_unicode_names_pass_through_unchanged(names, legacy, data) -> None:  # type: ignore[no-untyped-def]
    from syncd.naming.legacy_cells import convert_cells

    cells = list(legacy)
    for name in names:
        cells.insert(data.draw(st.integers(0, len(cells))), name)
    out = convert_cells(cells).values
    assert [v for v, c in zip(out, cells, strict=True) if c in names] == [
        c for c in cells if c in names
    ]
    # and through the whole roster reader (normalisation aside, which NFC input survives)
    snap = read_roster(_table(cells), CAT)
    by_row = {p.source: p.full_name for p in snap.people}
    for row, cell in enumerate(cells, start=2):
        if cell in names and f"hr.xlsx:{row}" in by_row:
            assert by_row[f"hr.xlsx:{row}"] == " ".join(cell.split())
