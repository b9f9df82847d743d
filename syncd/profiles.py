"""Province profiles: which naming scheme, password rule and HR articles each regulation sets.

Every rule carries the profile and article it enforces, so audit records and reports can cite
it (``caobang-2025 Đ6``). Lifecycle clocks (lock, revoke, purge) join these profiles with the
lifecycle work.
"""

from __future__ import annotations

from dataclasses import dataclass

SPECIALS_2025 = "!@#%$*&"


@dataclass(frozen=True)
class PasswordRule:
    """What a password must look like (DIGEST §2)."""

    article: str
    min_length: int = 8
    upper: bool = True
    lower: bool = True
    digit: bool = True
    special: str = SPECIALS_2025  # allowed and required special characters; "" = none needed
    forbid_account: bool = False  # must not contain the account name (Hưng Yên Đ8.2)
    forbid_name: bool = False  # … the person's name (Hưng Yên Đ8.2, Tuyên Quang Đ6)
    forbid_birth_date: bool = False  # … the date of birth (Hưng Yên Đ8.2)
    forbid_org: bool = False  # … the organisation or office name (Tuyên Quang Đ6)


@dataclass(frozen=True)
class Profile:
    """One province's regulation as syncd enforces it."""

    id: str
    title: str
    scheme: str
    password: PasswordRule
    must_change_article: str  # the default password must be changed at first login
    hr_article: str  # create / change / revoke follow personnel decisions
    request_article: str  # requests from the organisation (form, list)


PROFILES: dict[str, Profile] = {
    p.id: p
    for p in (
        Profile(
            id="caobang-2025",
            title="Cao Bằng, QĐ 16/2025/QĐ-UBND",
            scheme="caobang-2025",
            password=PasswordRule(article="caobang-2025 Đ6", min_length=8),
            must_change_article="caobang-2025 Đ6",
            hr_article="caobang-2025 Đ7.1",
            request_article="caobang-2025 Đ7.2",
        ),
        Profile(
            id="caobang-2011",
            title="Cao Bằng, QĐ 75/QĐ-UBND (2011)",
            scheme="caobang-2011",
            # 2011 sets no composition rule; syncd still issues strong one-time passwords.
            password=PasswordRule(article="caobang-2011 Đ13.4", min_length=8),
            must_change_article="caobang-2011 Đ13.4",
            hr_article="caobang-2011 Đ8.2",
            request_article="caobang-2011 Đ8.1",
        ),
        Profile(
            id="hungyen-2025",
            title="Hưng Yên, Quy chế 2025",
            scheme="hungyen-2025",
            password=PasswordRule(
                article="hungyen-2025 Đ8.2",
                min_length=9,
                forbid_account=True,
                forbid_name=True,
                forbid_birth_date=True,
            ),
            must_change_article="hungyen-2025 Đ8.2",
            hr_article="hungyen-2025 Đ6.2a",
            request_article="hungyen-2025 Đ6.2c",
        ),
        Profile(
            id="tuyenquang-2025",
            title="Tuyên Quang, Quy chế 2025",
            scheme="tuyenquang-2025",
            password=PasswordRule(
                article="tuyenquang-2025 Đ6",
                min_length=8,
                lower=False,
                special="!@#%$*&^()-_=+?",
                forbid_name=True,
                forbid_org=True,
            ),
            must_change_article="tuyenquang-2025 Đ6",
            hr_article="tuyenquang-2025 Đ7.1a",
            request_article="tuyenquang-2025 Đ7.1c",
        ),
    )
}
