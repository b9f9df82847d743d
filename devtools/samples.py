"""Realistic Vietnamese names, generated deterministically, for demos, tests and benchmarks.

The frequencies roughly follow real rosters: a handful of family names (Nguyễn, Trần, Lê …)
cover most people, middle names are dominated by Văn/Thị, and given names repeat, so same-name
collisions appear as they do in a real province.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

FAMILY = (
    ["Nguyễn"] * 38 + ["Trần"] * 11 + ["Lê"] * 9 + ["Phạm"] * 7 + ["Hoàng"] * 5 + ["Vũ"] * 4
    + ["Đặng"] * 3 + ["Bùi"] * 3 + ["Đỗ"] * 3 + ["Hồ"] * 2 + ["Ngô"] * 2 + ["Dương"] * 2
    + ["Lý", "Nông", "Đàm", "Lương", "Hà", "Triệu", "Ma", "Bế", "Lục", "Mạc", "Chu", "Quách",
       "Trương", "Đinh", "Tô", "Thân", "Phùng", "Khổng", "Lã", "Vương", "Ông", "Diệp", "Hứa"]
)  # fmt: skip
MIDDLE_MALE = ["Văn"] * 12 + ["Đức", "Minh", "Quang", "Hữu", "Xuân", "Thanh", "Công", "Ngọc",
                              "Tiến", "Mạnh", "Quốc", "Trọng", "Đình", "Duy", "Anh"]  # fmt: skip
MIDDLE_FEMALE = ["Thị"] * 12 + ["Thu", "Ngọc", "Thanh", "Thuỳ", "Hồng", "Phương", "Bích",
                                "Minh", "Kim", "Mỹ", "Diệu"]  # fmt: skip
GIVEN_MALE = ("Hùng Dũng Đạt Phúc Tuấn Hải Nam Long Sơn Thắng Cường Quân Huy Khánh Trung Tùng "
              "Việt Bình Toàn Kiên Hiếu Thành Lâm Hưng Vinh Chiến Lộc Tài Thịnh Trường Quyết "
              "Nghĩa Đông Phong Hoà Khoa Luân Giang An Bảo").split()  # fmt: skip
GIVEN_FEMALE = ("Hoa Lan Hương Mai Linh Nga Hạnh Huyền Thảo Trang Yến Nhung Thuỷ Hằng Loan Hà "
                "Oanh Phượng Quyên Tâm Vân Dung Ngọc Liên Nhàn Xuân Hiền Thu Hồng Duyên Giang "
                "Thoa Ánh Uyên Tuyết Chi Quỳnh Khuê Diệp Ly").split()  # fmt: skip


def full_name(rng: random.Random) -> str:
    """One plausible Vietnamese full name (family, 1–2 middle names, given)."""
    female = rng.random() < 0.5
    family = rng.choice(FAMILY)
    middle = [rng.choice(MIDDLE_FEMALE if female else MIDDLE_MALE)]
    if rng.random() < 0.15:
        middle.insert(0, rng.choice(MIDDLE_FEMALE if female else MIDDLE_MALE[12:]))
    given = rng.choice(GIVEN_FEMALE if female else GIVEN_MALE)
    return " ".join([family, *middle, given])


def names(count: int, seed: int = 2025) -> Iterator[str]:
    """``count`` names from a seeded generator: the same seed gives the same list."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    for _ in range(count):
        yield full_name(rng)
