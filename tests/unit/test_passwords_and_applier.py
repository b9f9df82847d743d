"""One-time passwords per profile, and the applier's isolation of failures (fake directory)."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.regulations import PROFILES
from syncd.applier import apply_plan
from syncd.model import Account, Action, ActionKind, Field, Plan, State
from syncd.orgs import parse_catalogue
from syncd.passwords import Context, Draws, generate, violations
from syncd.ports import DirectoryError, Scope

NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_generated_passwords_satisfy_the_profile_rule(profile: str) -> None:
    rule = PROFILES[profile].password
    ctx = Context(
        account="nhphuc.khcn",
        full_name="Nguyễn Hoàng Phúc",
        birth_date=date(1990, 5, 17),
        org_names=("Sở Khoa học và Công nghệ",),
    )
    rng = random.Random(1)
    for _ in range(300):
        password = generate(rule, ctx, rng)
        assert violations(password, rule, ctx) == []
        assert password[0] not in "=+-@"  # never read as a formula when a slip is opened


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_passwords_from_the_system_source_satisfy_the_rule_with_one_read_each(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default source reads the system's randomness once per password (it read it once
    per character and per swap of the shuffle), and its passwords keep every rule."""
    rule = PROFILES[profile].password
    ctx = Context(account="nhphuc.khcn", full_name="Nguyễn Hoàng Phúc")
    reads = {"n": 0}
    real = secrets.token_bytes

    def counted(n: int | None = None) -> bytes:
        reads["n"] += 1
        return real(n)

    monkeypatch.setattr(secrets, "token_bytes", counted)
    passwords = [generate(rule, ctx) for _ in range(300)]
    assert all(violations(p, rule, ctx) == [] and p[0] not in "=+-@" for p in passwords)
    assert len(set(passwords)) == 300
    # one read per password; now and then a second, when attempts refused (a start a
    # spreadsheet reads as a formula: Tuyên Quang's symbols include - = +) used up its bytes
    assert 300 <= reads["n"] <= 330


def test_the_system_source_draws_every_value_equally_often() -> None:
    """No modulo bias: 57 values from bytes (256 = 4 × 57 + 28) would make the first 28
    a quarter likelier if a byte were simply taken modulo 57."""
    draws = Draws()
    counts = Counter(draws.below(57) for _ in range(57_000))
    assert sorted(counts) == list(range(57))
    low = sum(counts[v] for v in range(28)) / 28
    high = sum(counts[v] for v in range(28, 57)) / 29
    assert abs(low - high) < 60  # ±1000 each; a modulo bias is ~220 apart
    assert max(counts.values()) < 1200 and min(counts.values()) > 800  # ±6 sigma
    items = list("abcd")
    orders: Counter[str] = Counter()
    for _ in range(24_000):
        shuffled = items[:]
        draws.shuffle(shuffled)
        orders["".join(shuffled)] += 1
    assert len(orders) == 24 and min(orders.values()) > 800  # each order ~1000 times


def test_hungyen_rule_rejects_name_account_and_birth_date() -> None:
    rule = PROFILES["hungyen-2025"].password
    ctx = Context(
        account="nhphuc.khcn", full_name="Nguyễn Hoàng Phúc", birth_date=date(1990, 5, 17)
    )
    assert violations("MatKhou$789", rule, ctx) == []  # the regulation's own good example
    assert any("'phuc'" in v for v in violations("Phuc$12345x", rule, ctx))
    assert any("'nhphuc'" in v for v in violations("Xnhphuc$123", rule, ctx))
    assert any("'17051990'" in v for v in violations("Ab$17051990", rule, ctx))
    assert any(
        "shorter than 9" in v and "hungyen-2025 Đ8.2" in v
        for v in violations("Ab$1234x", rule, ctx)
    )


def test_caobang_rule_requires_its_special_characters() -> None:
    rule = PROFILES["caobang-2025"].password
    assert any("special" in v for v in violations("Abcdefg12", rule))
    assert violations("Abcdefg1!", rule) == []


class FakeDirectory:
    """Records calls; fails on one uid. Pure unit test of the applier, not of LDAP."""

    def __init__(self, fail_uid: str) -> None:
        self.fail_uid = fail_uid
        self.calls: list[tuple[str, str]] = []

    def read(self, scope: Scope) -> list[Account]:
        return []

    def names(self) -> list[Account]:
        return []

    def create(self, action: Action, password: str, *, since: datetime | None = None) -> str:
        if action.uid == self.fail_uid:
            raise DirectoryError("constraintViolation")
        self.calls.append(("create", action.uid))
        return f"uid={action.uid}"

    def update(
        self,
        dn: str,
        attrs: Mapping[Field, tuple[str, ...]],
        *,
        link: bool = False,
        since: datetime | None = None,
    ) -> str:
        self.calls.append(("update", dn))
        return dn

    def move(self, dn: str, new_uid: str, attrs: Mapping[Field, tuple[str, ...]]) -> str:
        self.calls.append(("move", dn))
        return f"uid={new_uid}"

    def set_password(self, dn: str, password: str) -> None:
        self.calls.append(("password", dn))

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        self.calls.append((f"state:{state.value}", dn))

    def export(self, dn: str) -> str:
        return f"dn: {dn}\n"

    def delete(self, dn: str) -> None:
        self.calls.append(("delete", dn))


class ListAudit:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record(self, **fields: Any) -> None:
        self.records.append(fields)

    def commit(self) -> None:
        pass


def test_one_failed_action_does_not_stop_the_others_and_no_password_is_audited() -> None:
    creates = [
        Action(
            ActionKind.CREATE,
            uid,
            "skhcn",
            "new",
            "caobang-2025 Đ7.1",
            full_name="A B",
            attrs={Field.UID: (uid,)},
        )
        for uid in ("a.skhcn", "b.skhcn", "c.skhcn")
    ]
    actions = (*creates, Action(ActionKind.REVOKE, "d.skhcn", "skhcn", "left", "art", dn="uid=d"))
    directory, audit = FakeDirectory(fail_uid="b.skhcn"), ListAudit()
    cat = parse_catalogue([("e", {"code": "skhcn", "name": "Sở", "mailbox": "so"})])
    result = apply_plan(
        Plan(NOW, actions),
        directory,
        audit,
        PROFILES["caobang-2025"],
        cat,
        "x.gov.vn",
        "run1",
        clock=lambda: NOW,
    )
    assert [o.ok for o in result.outcomes] == [True, False, True, True]
    assert "constraintViolation" in result.failed[0].error
    assert ("state:revoked", "uid=d") in directory.calls
    assert [s.uid for s in result.slips] == ["a.skhcn", "c.skhcn"]
    text = repr(audit.records) + repr(result.slips)
    assert all(s.password not in text for s in result.slips)
    assert [r["result"] for r in audit.records] == ["ok", "failed", "ok", "ok"]


def test_a_refused_plan_is_never_applied() -> None:
    with pytest.raises(ValueError, match="refused"):
        apply_plan(
            Plan(NOW, (), refused="too many"),
            FakeDirectory(""),
            ListAudit(),
            PROFILES["caobang-2025"],
            parse_catalogue([]),
            "x",
            "r",
            clock=lambda: NOW,
        )


def test_the_audit_log_is_written_whatever_the_logging_level(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import logging

    from connectors.audit import AuditLog
    from connectors.daemon import configure_logging

    configure_logging(json_lines=True, level=logging.CRITICAL)
    try:
        log = AuditLog(tmp_path / "audit.jsonl", tmp_path / "state")
        log.record(action="create", uid="a.skhcn", result="ok")
        log.close()
    finally:
        import sys

        configure_logging(json_lines=False, stream=sys.stderr, level=logging.WARNING)
    assert '"uid":"a.skhcn"' in (tmp_path / "audit.jsonl").read_text()


class FlakyDirectory(FakeDirectory):
    """Fails with transient errors for the first ``flaky`` calls, or for ever."""

    def __init__(self, flaky: int, permanent_uid: str = "") -> None:
        super().__init__(fail_uid=permanent_uid)
        self.flaky = flaky
        self.attempts = 0

    def set_state(
        self, dn: str, state: State, since: datetime, reason: str, *, delivery: bool
    ) -> None:
        self.attempts += 1
        if self.flaky < 0 or self.attempts <= self.flaky:
            raise DirectoryError("busy (51)", transient=True)
        super().set_state(dn, state, since, reason, delivery=delivery)


def _revokes(n: int) -> Plan:
    return Plan(
        NOW,
        tuple(
            Action(ActionKind.REVOKE, f"u{i}", "skhcn", "left", "art", dn=f"uid=u{i}")
            for i in range(n)
        ),
    )


def test_a_transient_error_is_retried_with_backoff_and_then_succeeds() -> None:
    directory, waits = FlakyDirectory(flaky=2), []
    result = apply_plan(
        _revokes(1),
        directory,
        ListAudit(),
        PROFILES["caobang-2025"],
        parse_catalogue([]),
        "x",
        "r",
        clock=lambda: NOW,
        sleep=waits.append,
        retries=(0.5, 2.0, 5.0),
    )
    assert [o.ok for o in result.outcomes] == [True]
    assert waits == [0.5, 2.0] and directory.attempts == 3


def test_a_permanent_error_fails_that_action_only_without_retry() -> None:
    directory, waits = FakeDirectory(fail_uid="b"), []
    plan = Plan(
        NOW,
        tuple(
            Action(ActionKind.CREATE, uid, "skhcn", "new", "art", attrs={Field.UID: (uid,)})
            for uid in ("a", "b", "c")
        ),
    )
    result = apply_plan(
        plan,
        directory,
        ListAudit(),
        PROFILES["caobang-2025"],
        parse_catalogue([]),
        "x",
        "r",
        clock=lambda: NOW,
        sleep=waits.append,
    )
    assert [o.ok for o in result.outcomes] == [True, False, True] and waits == []


def test_a_directory_that_stays_down_stops_the_run_instead_of_waiting_on_every_action() -> None:
    directory, waits = FlakyDirectory(flaky=-1), []
    result = apply_plan(
        _revokes(100),
        directory,
        ListAudit(),
        PROFILES["caobang-2025"],
        parse_catalogue([]),
        "x",
        "r",
        clock=lambda: NOW,
        sleep=waits.append,
        retries=(0.5, 2.0),
        give_up_after=3,
    )
    assert result.stopped and len(result.outcomes) == 6  # the rest is planned again next run
    assert len(waits) == 3 * 2  # only the first three actions waited


def test_an_action_after_a_move_in_the_same_run_addresses_the_new_dn() -> None:
    """A transfer whose destination file arrives after the source's revoke: move, then restore
    the same entry; the restore must follow the rename, not fail with noSuchObject."""
    old = "uid=hungdv.skhcn"
    actions = (
        Action(
            ActionKind.MOVE, "hungdv.skhcn", "syt", "moved", "art", dn=old, new_uid="hungdv.syt"
        ),
        Action(ActionKind.RESTORE, "hungdv.skhcn", "syt", "transfer in", "art", dn=old),
    )
    directory, audit = FakeDirectory(fail_uid=""), ListAudit()
    cat = parse_catalogue([("e", {"code": "syt", "name": "Sở Y tế", "mailbox": "soyte"})])
    result = apply_plan(
        Plan(now=datetime(2026, 11, 25, tzinfo=UTC), actions=actions),
        directory,
        audit,
        PROFILES["caobang-2025"],
        cat,
        "x.gov.vn",
        "run1",
        clock=lambda: datetime(2026, 11, 25, tzinfo=UTC),
        sleep=lambda _: None,
    )
    assert not result.failed
    assert ("state:active", "uid=hungdv.syt") in directory.calls
    assert ("password", "uid=hungdv.syt") in directory.calls
