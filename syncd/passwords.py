"""One-time passwords that satisfy the province's rule (DIGEST §2).

Randomness is injected so tests can be repeatable; by default each attempt at a password is
drawn from one read of the system's randomness (``secrets.token_bytes``, :class:`Draws`), not
``secrets.SystemRandom``, which reads the system once per character and once per swap of the
shuffle (about 30 ``getrandom`` calls a password: 4 % of a run of 5,000 creates by py-spy).
The generated password is only ever handed to the directory and to the credential slip.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date

from syncd.naming.text import fold_words
from syncd.regulation import PasswordRule

# Letters that are not confused on a printed slip (no l/1/I, O/0).
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_LOWER = "abcdefghijkmnopqrstuvwxyz"
_DIGITS = "23456789"
_FORMULA_START = "=+-@"


@dataclass(frozen=True)
class Context:
    """What a password must not contain, per the rule."""

    account: str = ""
    full_name: str = ""
    birth_date: date | None = None
    org_names: tuple[str, ...] = ()


def _forbidden(rule: PasswordRule, ctx: Context) -> list[str]:
    parts: list[str] = []
    if rule.forbid_account and ctx.account:
        parts += [p for p in ctx.account.lower().split(".") if len(p) >= 3]
    if rule.forbid_name and ctx.full_name:
        parts += [w for w in fold_words(ctx.full_name).split() if len(w) >= 3]
        parts.append(fold_words(ctx.full_name).replace(" ", ""))
    if rule.forbid_birth_date and ctx.birth_date:
        d = ctx.birth_date
        parts += [f"{d:%d%m%Y}", f"{d:%Y%m%d}", f"{d:%d%m%y}", f"{d:%Y}"]
    if rule.forbid_org:
        for name in ctx.org_names:
            parts += [w for w in fold_words(name).split() if len(w) >= 4]
            parts.append(fold_words(name).replace(" ", ""))
    return [p for p in parts if p]


def violations(password: str, rule: PasswordRule, ctx: Context = Context()) -> list[str]:
    """Every way ``password`` breaks ``rule``, each citing the article; empty when compliant."""
    art = rule.article
    out = []
    if len(password) < rule.min_length:
        out.append(f"shorter than {rule.min_length} characters ({art})")
    if rule.upper and not any(c.isupper() for c in password):
        out.append(f"no upper-case letter ({art})")
    if rule.lower and not any(c.islower() for c in password):
        out.append(f"no lower-case letter ({art})")
    if rule.digit and not any(c.isdigit() for c in password):
        out.append(f"no digit ({art})")
    if rule.special and not any(c in rule.special for c in password):
        out.append(f"no special character from {rule.special} ({art})")
    lowered = password.lower()
    out += [f"contains {p!r} ({art})" for p in _forbidden(rule, ctx) if p in lowered]
    return out


class Draws:
    """Unbiased choices and shuffles from one read of the system's randomness per password.

    Each draw takes bytes from a buffer of ``secrets.token_bytes`` and rejects the values
    past the largest multiple of the range (no modulo bias: every item is exactly as likely);
    the buffer is read again only if rejections use it all, which a password of 14
    characters practically never does.
    """

    SIZE = 128

    def __init__(self) -> None:
        self._bytes = secrets.token_bytes(self.SIZE)
        self._at = 0

    def below(self, n: int) -> int:
        """A uniform integer in ``[0, n)``, ``0 < n <= 256``."""
        if not 0 < n <= 256:
            raise ValueError(f"a draw from 1 to 256 values, not {n}")
        limit = 256 - 256 % n
        while True:
            if self._at == len(self._bytes):
                self._bytes, self._at = secrets.token_bytes(self.SIZE), 0
            value = self._bytes[self._at]
            self._at += 1
            if value < limit:
                return value % n

    def choice(self, items: str) -> str:
        return items[self.below(len(items))]

    def shuffle(self, items: list[str]) -> None:
        for i in range(len(items) - 1, 0, -1):  # Fisher-Yates
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def generate(
    rule: PasswordRule,
    ctx: Context = Context(),
    rng: random.Random | None = None,
    length: int = 14,
) -> str:
    """A random password that satisfies ``rule`` and avoids ``ctx``'s forbidden words."""
    length = max(length, rule.min_length)
    pools = [_UPPER, _LOWER, _DIGITS] + ([rule.special] if rule.special else [])
    alphabet = "".join(pools)
    source: random.Random | Draws = rng if rng is not None else Draws()
    for _ in range(1000):
        chars = [source.choice(p) for p in pools]
        chars += [source.choice(alphabet) for _ in range(length - len(chars))]
        source.shuffle(chars)
        candidate = "".join(chars)
        if candidate[0] in _FORMULA_START:
            continue  # a slip opened in a spreadsheet must not read it as a formula
        if not violations(candidate, rule, ctx):
            return candidate
    raise RuntimeError("could not generate a compliant password")  # pragma: no cover


__all__ = ["Context", "Draws", "generate", "violations"]
