"""The ``ad`` profile's part of ``syncd policy check|apply``: the domain's password policy.

Active Directory keeps the domain password policy on the domain object itself (the root of the
default naming context): ``minPwdLength``, ``pwdProperties`` (bit ``DOMAIN_PASSWORD_COMPLEX``),
``maxPwdAge`` (negative, in 100-nanosecond units; ``-2^63`` is "never"). That is what a DC
enforces and what ``samba-tool domain passwordsettings`` writes. **On a Windows DC** the Default
Domain Policy GPO is the source of these values and rewrites them at its next refresh: there the
values ``apply`` prints must be set in the GPO (``check`` then confirms them); a Samba DC takes
them as written.

What AD's complexity is, said as it is: a password must hold three of the four classes (upper,
lower, digit, other) and must not contain the ``sAMAccountName`` nor a part of three or more
characters of the ``displayName`` — so "not the account name, not the person's name" (Hưng Yên
Đ8.2, Tuyên Quang Đ6) is enforced by the DC for everyone, but "all four classes" (Cao Bằng Đ6,
Hưng Yên Đ8.2) only for syncd's own one-time passwords. The change at first login is
``pwdLastSet: 0`` and a lock ``ACCOUNTDISABLE``, both per account (the ``ad`` profile writes
them): no domain setting to check. A maximum age would also expire the service account's
password: ``DONT_EXPIRE_PASSWORD`` on it is checked, and set by ``apply``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ldap3 import Connection

from connectors.config import DirectoryConfig
from connectors.directory.policy import SYNCD_OWN, Line, PolicyReport
from connectors.directory.setup import Change
from syncd.ports import DirectoryError
from syncd.regulation import Profile

COMPLEX = 0x1  # DOMAIN_PASSWORD_COMPLEX in pwdProperties
DONT_EXPIRE_PASSWORD = 0x10000  # userAccountControl
TICKS_PER_DAY = 864_000_000_000  # 100 ns
NEVER = -(2**63)


def _attrs(conn: Connection, dn: str, names: list[str]) -> dict[str, str]:
    ok = conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=names)
    found = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
    if not ok or not found:
        raise DirectoryError(
            f"reading {dn}: {conn.result.get('description')} ({conn.result.get('result')})"
        )
    out: dict[str, str] = {}
    for key, value in found[0]["attributes"].items():
        values = value if isinstance(value, list) else [value]
        if values:
            out[key.lower()] = str(values[0])
    return out


def _int(value: str, default: int = 0) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def ad_policy(
    conn: Connection,
    cfg: DirectoryConfig,
    profile: Profile,
    report: PolicyReport,
    shortest_days: int | None,
) -> None:
    """Compare the domain policy with ``profile`` into ``report``, with the changes ``apply``
    makes. ``shortest_days``: the regulation's maximum age in days (None: no maximum)."""
    root = _attrs(conn, "", ["defaultNamingContext"]).get("defaultnamingcontext", "")
    if not root:
        raise DirectoryError(f"{cfg.url}: the root DSE names no defaultNamingContext")
    have = _attrs(conn, root, ["minPwdLength", "pwdProperties", "maxPwdAge"])
    report.where = f"the domain policy of {root}"
    pw, art = profile.password, profile.password.article
    length = have.get("minpwdlength", "")
    props = _int(have.get("pwdproperties", "0"))
    max_age = _int(have.get("maxpwdage", "0"))
    lines = [
        Line(
            "min length",
            art,
            "minPwdLength",
            "ok" if length and _int(length) >= pw.min_length else "drift",
            length,
            f"at least {pw.min_length}",
        ),
        Line(
            "complexity",
            art,
            "pwdProperties",
            "ok" if props & COMPLEX else "drift",
            str(props),
            f"bit {COMPLEX} (complex) set",
            "the DC then refuses a password with fewer than 3 of the 4 classes, or holding the "
            "sAMAccountName or a 3+ character part of the displayName",
        ),
    ]
    mods: list[tuple[str, str, Sequence[str]]] = []
    if lines[0].status == "drift":
        mods.append(("replace", "minPwdLength", [str(pw.min_length)]))
    if not props & COMPLEX:
        mods.append(("replace", "pwdProperties", [str(props | COMPLEX)]))
    if shortest_days is not None:
        want = -shortest_days * TICKS_PER_DAY
        ok = max_age not in (0, NEVER) and want <= max_age < 0
        days = f"{-max_age // TICKS_PER_DAY} days" if max_age not in (0, NEVER) else "never"
        lines.append(
            Line(
                "max age",
                art,
                "maxPwdAge",
                "ok" if ok else "drift",
                f"{max_age} ({days})",
                f"at most {shortest_days} days ({want})",
            )
        )
        if not ok:
            mods.append(("replace", "maxPwdAge", [str(want)]))
    classes = [
        what
        for flag, what in (
            (pw.upper, "upper"),
            (pw.lower, "lower"),
            (pw.digit, "digit"),
            (bool(pw.special), "special"),
        )
        if flag
    ]
    if len(classes) == 4:
        lines.append(
            Line(
                "all four classes",
                art,
                "pwdProperties",
                "server cannot",
                str(props),
                ", ".join(classes),
                f"AD's complexity asks 3 of the 4; {SYNCD_OWN}",
            )
        )
    if pw.forbid_birth_date or pw.forbid_org:
        lines.append(
            Line(
                "must not contain",
                art,
                "pwdProperties",
                "server cannot",
                str(props),
                "not the date of birth, the organisation's name",
                f"AD checks only the account and display names; {SYNCD_OWN}",
            )
        )
    lines.append(
        Line(
            "must change",
            profile.must_change_article,
            "pwdLastSet",
            "ok",
            "per account",
            "0 on each one-time password",
            "the ad profile writes it with every password",
        )
    )
    report.lines += lines
    if mods:
        report.changes.append(
            Change(
                f"the domain password policy the regulation asks for ({art}); on Windows set "
                "the same in the Default Domain Policy GPO",
                root,
                "modify",
                mods=mods,
            )
        )
    if shortest_days is not None:
        service = _attrs(conn, cfg.bind_dn, ["userAccountControl"])
        uac = _int(service.get("useraccountcontrol", "0"))
        ok = bool(uac & DONT_EXPIRE_PASSWORD)
        report.lines.append(
            Line(
                "service password",
                "syncd",
                "userAccountControl",
                "ok" if ok else "drift",
                str(uac),
                f"bit {DONT_EXPIRE_PASSWORD} (password never expires)",
                f"{cfg.bind_dn}: with a maximum age its own password would expire and every "
                "run fail",
            )
        )
        if not ok:
            report.changes.append(
                Change(
                    "syncd's service account: its password never expires",
                    cfg.bind_dn,
                    "modify",
                    mods=[("replace", "userAccountControl", [str(uac | DONT_EXPIRE_PASSWORD)])],
                )
            )


__all__ = ["ad_policy"]
