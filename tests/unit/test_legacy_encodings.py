"""TCVN3 and VNI converters, checked against glibc iconv and by round trip, and the detector."""

import shutil
import subprocess

import pytest

from devtools.samples import names
from syncd.naming.legacy import (
    Encoding,
    detect,
    tcvn3_to_unicode,
    unicode_to_tcvn3,
    unicode_to_vni,
    vni_to_unicode,
)

NAMES = [*names(60, seed=7), "Hoàng Văn Phúc", "Nông Văn Đạt", "Trương Thị Thuỷ", "Ưng Hoà",
         "Đặng Ngọc Ánh", "Bùi Thị Ngọc Diệp", "Phùng Khắc Khoan", "Lã Thị Ưng"]  # fmt: skip
ICONV = shutil.which("iconv")


def _iconv_tcvn(raw: bytes) -> str:
    assert ICONV
    out = subprocess.run(
        [ICONV, "-f", "TCVN5712-1", "-t", "UTF-8"], input=raw, capture_output=True, check=True
    )
    return out.stdout.decode("utf-8")


@pytest.mark.skipif(ICONV is None, reason="glibc iconv not installed")
def test_every_tcvn3_byte_decodes_as_glibc_iconv_does() -> None:
    import unicodedata

    for byte in range(0x80, 0x100):
        if byte == 0xA0 or 0xB0 <= byte <= 0xB4:
            continue  # NBSP, and lone combining tones (they only exist on a base letter)
        expected = unicodedata.normalize("NFC", _iconv_tcvn(bytes([byte])))
        assert tcvn3_to_unicode(chr(byte)) == expected, hex(byte)


@pytest.mark.skipif(ICONV is None, reason="glibc iconv not installed")
def test_tcvn3_names_decode_as_glibc_iconv_does() -> None:
    for name in NAMES:
        raw = unicode_to_tcvn3(name).encode("latin-1")
        assert tcvn3_to_unicode(raw.decode("latin-1")) == _iconv_tcvn(raw) == name


def test_tcvn3_text_seen_through_windows_1252_converts_too() -> None:
    # Excel shows byte 0x80 as '€' in cp1252; TCVN5712-1 has À there.
    assert tcvn3_to_unicode(b"\x80nh".decode("cp1252")) == "Ành"


def test_regulation_style_examples_convert() -> None:
    assert tcvn3_to_unicode("NguyÔn V¨n §¹t") == "Nguyễn Văn Đạt"
    assert vni_to_unicode("Nguyeãn Vaên Ñaït") == "Nguyễn Văn Đạt"


@pytest.mark.parametrize("name", NAMES)
def test_vni_round_trip(name: str) -> None:
    encoded = unicode_to_vni(name)
    assert encoded.encode("cp1252")  # VNI text is made of cp1252 characters
    assert vni_to_unicode(encoded) == name


def test_vni_covers_every_vietnamese_letter_in_both_cases() -> None:
    letters = "aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ"
    for ch in letters + letters.upper():
        assert vni_to_unicode(unicode_to_vni(ch)) == ch, ch


def test_detector_is_right_on_each_single_name_in_every_encoding() -> None:
    wrong = []
    for name in NAMES:
        for enc, text in (
            (Encoding.UNICODE, name),
            (Encoding.TCVN3, unicode_to_tcvn3(name)),
            (Encoding.VNI, unicode_to_vni(name)),
        ):
            if detect([text]).encoding is not enc:
                wrong.append((enc, name, text))
    assert len(NAMES) >= 40
    assert wrong == []


def test_detector_never_converts_valid_unicode_even_with_foreign_names() -> None:
    column = ["Nguyễn Văn An", "Ksor H'Hen", "Y Bih Niê Kdăm", "Lò Văn Pửa", "José Đỗ"]
    assert detect(column).encoding is Encoding.UNICODE


def test_detector_decides_for_the_whole_column() -> None:
    column = [unicode_to_tcvn3(n) for n in NAMES[:10]] + ["Ma Van A"]
    decision = detect(column)
    assert decision.encoding is Encoding.TCVN3
    assert decision.converted


def test_pure_ascii_column_stays_unicode() -> None:
    assert detect(["Nguyen Van An", "Tran Thi B"]).encoding is Encoding.UNICODE
