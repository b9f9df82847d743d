"""uid schemes: every regulation example, collision rules, reserved names and tombstones."""

import pytest

from connectors.regulations import get_scheme
from syncd.errors import SchemeError
from syncd.naming import Status, UidPool, allocate
from syncd.naming.allocate import RESERVED
from syncd.naming.schemes import Collision, scheme_from_mapping


def _uids(scheme_id: str, people: list[tuple[str, str | None]], pool: UidPool | None = None):
    pool = pool or UidPool.build()
    scheme = get_scheme(scheme_id)
    return [allocate(scheme, name, org, pool) for name, org in people]


def test_caobang_2025_regulation_example_phuchv_tgg() -> None:
    [a] = _uids("caobang-2025", [("Hoàng Văn Phúc", "tgg")])
    assert (a.status, a.uid) == (Status.OK, "phuchv.tgg")


def test_caobang_2025_same_name_in_same_org_gets_1_then_2() -> None:
    a, b, c = _uids(
        "caobang-2025",
        [("Đàm Văn Hùng", "skhcn"), ("Đặng Văn Hùng", "skhcn"), ("Đinh Văn Hùng", "skhcn")],
    )
    assert [a.uid, b.uid, c.uid] == ["hungdv.skhcn", "hungdv1.skhcn", "hungdv2.skhcn"]
    assert "caobang-2025 Đ5.2" in b.detail


def test_caobang_2025_same_name_in_another_org_is_no_collision() -> None:
    a, b = _uids("caobang-2025", [("Đàm Văn Hùng", "skhcn"), ("Đàm Văn Hùng", "syt")])
    assert (a.uid, b.uid) == ("hungdv.skhcn", "hungdv.syt")


def test_caobang_2011_datnv_then_datnv2_province_wide() -> None:
    a, b = _uids("caobang-2011", [("Nông Văn Đạt", None), ("Nguyễn Văn Đạt", "soyte")])
    assert (a.uid, b.uid) == ("datnv", "datnv2")


def test_caobang_2011_unit_variant_takes_the_unit_name() -> None:
    a, b = _uids("caobang-2011-unit", [("Nông Văn Đạt", "sgd"), ("Nông Văn Đạt", "soyte")])
    assert (a.uid, b.uid) == ("datnv", "datnv.soyte")


def test_hungyen_2025_regulation_example_nhphuc_khcn() -> None:
    [a] = _uids("hungyen-2025", [("Nguyễn Hoàng Phúc", "khcn")])
    assert a.uid == "nhphuc.khcn"


def test_hungyen_2025_collision_never_invents_a_uid() -> None:
    a, b = _uids("hungyen-2025", [("Nguyễn Hoàng Phúc", "khcn"), ("Nguyễn Hồng Phúc", "khcn")])
    assert a.status is Status.OK
    assert b.status is Status.NEEDS_DECISION
    assert b.uid == ""
    assert "nhphuc1.khcn" in b.candidates
    assert "nghphuc.khcn" in b.candidates
    assert "hungyen-2025 Đ5.2, Đ5.3" in b.detail


def test_hungyen_2025_candidates_are_all_free() -> None:
    pool = UidPool.build(taken=["nhphuc.khcn", "nhphuc1.khcn"], tombstones=["nhphuc2.khcn"])
    [b] = _uids("hungyen-2025", [("Nguyễn Hoàng Phúc", "khcn")], pool)
    assert b.candidates[:2] == ("nhphuc3.khcn", "nhphuc4.khcn")


def test_tuyenquang_2025_different_name_lengthens_left_to_right() -> None:
    pool = UidPool.build()
    scheme = get_scheme("tuyenquang-2025")
    assert allocate(scheme, "Nguyễn Văn An", "stc", pool).uid == "nvan.stc"
    assert allocate(scheme, "Ngô Văn An", "stc", pool).uid == "ngvan.stc"
    assert allocate(scheme, "Ngọc Văn An", "stc", pool).uid == "ngovan.stc"
    # Nguyễn fully spelled before the middle name is lengthened
    assert allocate(scheme, "Nguyễn Vũ An", "stc", pool).uid == "nguvan.stc"


def test_tuyenquang_2025_identical_unaccented_name_gets_an_order_number() -> None:
    a, b, c = _uids(
        "tuyenquang-2025", [("Ngô Văn An", "stc"), ("Ngô Văn Ân", "stc"), ("Ngô Văn An", "stc")]
    )
    assert [a.uid, b.uid, c.uid] == ["nvan.stc", "nvan1.stc", "nvan2.stc"]


def test_tuyenquang_2025_holder_unknown_counts_as_a_different_name() -> None:
    pool = UidPool.build(taken=["nvan.stc"])
    [a] = _uids("tuyenquang-2025", [("Ngô Văn An", "stc")], pool)
    assert a.uid == "ngvan.stc"


@pytest.mark.parametrize("reserved", sorted(RESERVED - {"no-reply", "mailer-daemon"}))
def test_reserved_names_are_never_given(reserved: str) -> None:
    [a] = _uids("caobang-2011", [(reserved, None)])
    assert a.uid != reserved
    assert a.uid == f"{reserved}2"


def test_organisation_mailboxes_are_reserved() -> None:
    pool = UidPool.build(reserved=["tienlu"])
    [a] = _uids("caobang-2011", [("Tiến Lư", None)], pool)  # would be "lut"
    [b] = _uids("caobang-2011", [("Tiên Lu", None)], UidPool.build(reserved=["lut"]))
    assert a.uid == "lut"
    assert b.uid == "lut2"


def test_tombstoned_uid_is_never_reissued() -> None:
    pool = UidPool.build(tombstones=["phuchv.tgg"])
    [a] = _uids("caobang-2025", [("Hoàng Văn Phúc", "tgg")], pool)
    assert a.uid == "phuchv1.tgg"
    assert "tombstoned" in a.detail


def test_too_long_name_is_a_clear_error_not_a_truncation() -> None:
    name = "Nguyễn Văn " + "A" * 65  # fits the name limit, not a mailbox name
    [a] = _uids("caobang-2025", [(name, "skhcn")])
    assert a.status is Status.INVALID
    assert "at most 64" in a.detail


@pytest.mark.parametrize("org", ["SKHCN", "sở", "s.k", "s-k", ""])
def test_org_code_must_be_lowercase_ascii(org: str) -> None:
    [a] = _uids("caobang-2025", [("Hoàng Văn Phúc", org)])
    assert a.status is Status.INVALID


def test_template_scheme_from_configuration() -> None:
    scheme = scheme_from_mapping(
        {
            "id": "daklak-2026",
            "pattern": "{family}{given}.{org}",
            "collision": "numeric",
            "numeric_start": 10,
            "article": "daklak-2026 Đ3",
        }
    )
    pool = UidPool.build()
    assert allocate(scheme, "Ksor H'Hen", "sgd", pool).uid == "ksorhhen.sgd"
    assert allocate(scheme, "Ksor H'Hen", "sgd", pool).uid == "ksorhhen10.sgd"
    assert scheme.collision is Collision.NUMERIC


def test_template_number_position_token() -> None:
    scheme = scheme_from_mapping(
        {"id": "t", "pattern": "{initials}.{given}{n}.{org}", "article": "x", "numeric_start": 1}
    )
    pool = UidPool.build(taken=["nv.an.stc"])
    assert allocate(scheme, "Ngô Văn An", "stc", pool).uid == "nv.an1.stc"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "t", "pattern": "{given}{oops}", "article": "x"}, "unknown token"),
        ({"id": "t", "pattern": "{initials}", "article": "x"}, "lacks"),
        ({"id": "t", "pattern": "{given}", "article": "x", "collision": "magic"}, "collision"),
        ({"id": "t", "pattern": "{given}"}, "article"),
        ({"id": "t", "pattern": "{given}", "article": "x", "colour": 1}, "unknown key"),
        ({"id": "t", "pattern": "{given}_x", "article": "x"}, "only"),
    ],
)
def test_template_scheme_errors_are_clear(data: dict, message: str) -> None:
    with pytest.raises(SchemeError, match=message):
        scheme_from_mapping(data)


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(SchemeError, match="caobang-2025"):
        get_scheme("nowhere-2030")


def test_tuyenquang_2025_identical_name_found_after_lengthening_gets_a_number() -> None:
    """Đ5.2: ``ngovan`` is held by Ngô Văn An; Ngô Văn Ấn's unaccented name is identical, so
    lengthening further (``ngovaan``) would be wrong: the order number goes on ``ngovan``."""
    pool = UidPool.build(
        taken={
            "nvan.stc": "nguyen van an",
            "ngvan.stc": "nghiem van an",
            "ngovan.stc": "ngo van an",
        }
    )
    [uid] = _uids("tuyenquang-2025", [("Ngô Văn Ấn", "stc")], pool)
    assert uid.uid == "ngovan1.stc"
