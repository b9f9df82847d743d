"""Reconcile HR rosters into a real slapd: plan, apply, adopt, transfer, revoke, guard."""

from __future__ import annotations

import json
import random
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ldap3 import Connection

from connectors import runner
from connectors.outcome import EXIT_BAD_INPUT, EXIT_REFUSED, report_text, summary_dict
from devtools.samples import full_name
from devtools.slapd_sandbox import Sandbox
from syncd.model import ActionKind, DecisionKind
from syncd.state import Resolution, Resolve
from tests.conftest import MakeConfig
from tests.helpers import entries, write_roster

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _run(cfg, *rosters: Path, **kw):  # type: ignore[no-untyped-def]
    return runner.run(cfg, rosters=list(rosters), now=kw.pop("now", NOW), **kw)


def test_new_people_get_compliant_mailboxes_and_a_second_run_plans_nothing(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    roster = write_roster(
        tmp_path / "skhcn.csv",
        [
            "E1,Đàm Văn Hùng,skhcn,Văn phòng Sở,Chuyên viên,01/02/1980,Đang công tác,",
            "E2,Đặng Văn Hùng,skhcn,,Trưởng phòng,,,",
            "E3,Hoàng Văn Phúc,Phường Tân Giang,,,,,",
        ],
    )
    first = _run(cfg, roster)
    assert first.exit_code == 0, report_text(first, [roster])
    got = entries(admin, base_dn)
    assert {
        "hungdv.skhcn",
        "hungdv1.skhcn",
        "phuchv.tgg",
        "sokhcn",
        "ubndtangiang",
        "vanphong.skhcn",
    } <= set(got)
    hung = got["hungdv.skhcn"]
    assert hung["cn"] == ["Đàm Văn Hùng"] and hung["mail"] == ["hungdv.skhcn@test.gov.vn"]
    assert hung["departmentNumber"] == ["vp"] and hung["pwdReset"] == ["TRUE"]
    second = _run(cfg, roster)
    assert second.plan is not None and second.plan.actions == ()
    assert second.exit_code == 0


def test_slips_are_private_and_the_audit_log_holds_no_password(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config()
    roster = write_roster(tmp_path / "r.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    outcome = _run(cfg, roster)
    assert outcome.result is not None
    passwords = [s.password for s in outcome.result.slips]
    assert len(passwords) == 3  # the person and the two organisation mailboxes in scope
    for path in outcome.slip_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    slip = (cfg.paths.outbox / outcome.run_id / "skhcn.csv").read_text(encoding="utf-8-sig")
    assert "hungdv.skhcn@test.gov.vn" in slip and "Mật khẩu tạm thời" in slip
    audit = cfg.paths.audit_log.read_text(encoding="utf-8")
    report = outcome.report_path.read_text(encoding="utf-8") if outcome.report_path else ""
    slips = "".join(p.read_text(encoding="utf-8-sig") for p in outcome.slip_files)
    for pw in passwords:
        assert pw in slips
        assert pw not in audit and pw not in report
    records = [json.loads(line) for line in audit.splitlines()]
    create = next(r for r in records if r["uid"] == "hungdv.skhcn")
    assert create["result"] == "ok" and create["one_time_password_issued"] is True
    assert "caobang-2025 Đ5.2" in create["article"] and create["run_id"] == outcome.run_id


def test_a_2011_mailbox_is_linked_not_duplicated(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    admin.add(
        f"uid=datnv,{base_dn}",
        ["inetOrgPerson"],
        {
            "uid": "datnv",
            "cn": "Nông Văn Đạt",
            "sn": "Nông",
            "ou": "skhcn",
            "mail": "datnv@test.gov.vn",
        },
    )
    cfg = make_config()
    roster = write_roster(tmp_path / "r.csv", ["E7,NÔNG VĂN ĐẠT,skhcn,,,,,"])
    outcome = _run(cfg, roster)
    assert outcome.plan is not None
    kinds = {a.uid: a.kind for a in outcome.plan.actions}
    assert kinds["datnv"] is ActionKind.LINK
    assert not any(a.kind is ActionKind.CREATE for a in outcome.plan.actions)
    got = entries(admin, base_dn)
    assert got["datnv"]["employeeNumber"] == ["E7"] and "datnv.skhcn" not in got
    assert _run(cfg, roster).plan.actions == ()  # type: ignore[union-attr]


def test_transfer_renames_the_mailbox_and_keeps_the_old_address_as_alias(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    _run(cfg, write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"]))
    moved = _run(cfg, write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,syt,,,,,"]))
    assert moved.exit_code == 0
    got = entries(admin, base_dn)
    assert "hungdv.skhcn" not in got
    assert set(got["hungdv.syt"]["mail"]) == {"hungdv.syt@test.gov.vn", "hungdv.skhcn@test.gov.vn"}
    assert got["hungdv.syt"]["ou"] == ["syt"]
    # a newcomer at skhcn with the same name does not get the alias that is still kept
    c = _run(cfg, write_roster(tmp_path / "c.csv", ["E2,Đặng Văn Hùng,skhcn,,,,,"]))
    assert [a.uid for a in c.plan.actions if a.kind is ActionKind.CREATE] == ["hungdv1.skhcn"]  # type: ignore[union-attr]
    # the alias expires after transfer.alias_days
    later = _run(
        cfg,
        write_roster(tmp_path / "d.csv", ["E1,Đàm Văn Hùng,syt,,,,,"]),
        now=datetime(2027, 12, 1, tzinfo=UTC),
    )
    assert later.exit_code == 0
    assert entries(admin, base_dn)["hungdv.syt"]["mail"] == ["hungdv.syt@test.gov.vn"]
    # an address that was someone's is never given to another person, even after it expired
    e = _run(
        cfg,
        write_roster(tmp_path / "e.csv", ["E3,Đào Văn Hưng,skhcn,,,,,"]),
        now=datetime(2027, 12, 2, tzinfo=UTC),
    )
    assert [a.uid for a in e.plan.actions if a.kind is ActionKind.CREATE] == ["hungdv2.skhcn"]  # type: ignore[union-attr]
    # but it is still its own person's: moving back after the alias ended gives it back,
    # not a fourth name (before: the expired alias was a tombstone, and E1 got hungdv3.skhcn)
    back = _run(
        cfg,
        write_roster(
            tmp_path / "f.csv",
            [
                "E1,Đàm Văn Hùng,skhcn,,,,,",
                "E2,Đặng Văn Hùng,skhcn,,,,,",
                "E3,Đào Văn Hưng,skhcn,,,,,",
            ],
        ),
        now=datetime(2027, 12, 3, tzinfo=UTC),
    )
    assert [(a.kind, a.new_uid) for a in back.plan.actions] == [(ActionKind.MOVE, "hungdv.skhcn")]  # type: ignore[union-attr]
    got = entries(admin, base_dn)
    assert got["hungdv.skhcn"]["employeeNumber"] == ["E1"] and "hungdv.syt" not in got


def test_transfer_in_a_scheme_without_org_only_updates_ou(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config(profile="caobang-2011")
    _run(cfg, write_roster(tmp_path / "a.csv", ["E1,Nông Văn Đạt,skhcn,,,,,"]))
    _run(cfg, write_roster(tmp_path / "b.csv", ["E1,Nông Văn Đạt,syt,,,,,"]))
    got = entries(admin, base_dn)
    assert got["datnv"]["ou"] == ["syt"]


def test_leaving_and_missing_people_are_revoked_and_cannot_log_in(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str, slapd: Sandbox
) -> None:
    cfg = make_config(extra="safety: {max_revoke_share: 0.5}\n")
    rows = [f"E{i},Trần Văn Người{i},skhcn,,,,," for i in range(6)]
    _run(cfg, write_roster(tmp_path / "a.csv", rows))
    rows[0] = "E0,Trần Văn Người0,skhcn,,,,Nghỉ hưu,"
    after = _run(cfg, write_roster(tmp_path / "b.csv", rows[:5]))  # E5 is gone
    assert after.exit_code == 0
    revoked = {a.uid: a.reason for a in after.plan.actions if a.kind is ActionKind.REVOKE}  # type: ignore[union-attr]
    assert set(revoked) == {"nguoi0tv.skhcn", "nguoi5tv.skhcn"}
    assert "nghỉ hưu" in revoked["nguoi0tv.skhcn"]
    assert "no longer on the roster of skhcn" in revoked["nguoi5tv.skhcn"]
    got = entries(admin, base_dn)
    assert got["nguoi5tv.skhcn"]["syncdState"] == ["revoked"]
    assert got["nguoi5tv.skhcn"]["pwdAccountLockedTime"]


def test_a_file_for_one_org_never_touches_another(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    _run(
        cfg,
        write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Thị Mai,syt,,,,,"]),
    )
    only_skhcn = _run(cfg, write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"]))
    assert only_skhcn.plan.actions == ()  # type: ignore[union-attr]
    assert entries(admin, base_dn)["mailt.syt"].get("syncdState") == ["active"]


def test_mass_revocation_is_refused_and_nothing_changes(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    rows = [f"E{i},Trần Văn Người{i},skhcn,,,,," for i in range(20)]
    _run(cfg, write_roster(tmp_path / "a.csv", rows))
    before = entries(admin, base_dn)
    truncated = write_roster(tmp_path / "b.csv", rows[:8])
    refused = _run(cfg, truncated)
    assert refused.exit_code == EXIT_REFUSED
    assert "max_org_drop_share" in (refused.plan.refused or "")  # type: ignore[union-attr]
    assert refused.result is None
    assert entries(admin, base_dn) == before
    forced = _run(cfg, truncated, allow_mass_change=True)
    assert forced.exit_code == 0
    assert sum(e.get("syncdState") == ["revoked"] for e in entries(admin, base_dn).values()) == 12
    audit = cfg.paths.audit_log.read_text(encoding="utf-8")
    assert '"action":"allow-mass-change"' in audit


def test_hungyen_collision_waits_for_an_operator_then_uses_the_chosen_uid(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config(profile="hungyen-2025")
    roster = write_roster(
        tmp_path / "a.csv", ["E1,Nguyễn Hoàng Phúc,khcn,,,,,", "E2,Nguyễn Hồng Phúc,khcn,,,,,"]
    )
    first = _run(cfg, roster)
    [decision] = first.plan.decisions  # type: ignore[union-attr]
    assert decision.kind is DecisionKind.UID_COLLISION and "nhphuc1.khcn" in decision.candidates
    assert "nhphuc.khcn" in entries(admin, base_dn)
    store = runner.StateStore(cfg.paths.state)
    state = store.load()
    state.resolutions[decision.id] = Resolution(Resolve.UID, "nhphuc2.khcn")
    store.save(state)
    second = _run(cfg, roster)
    assert second.plan.decisions == ()  # type: ignore[union-attr]
    assert entries(admin, base_dn)["nhphuc2.khcn"]["employeeNumber"] == ["E2"]


def test_reset_password_request_is_done_once_per_file(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox
) -> None:
    cfg = make_config()
    _run(cfg, write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"]))
    request = write_roster(tmp_path / "b.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,Cấp lại mật khẩu"])
    first = _run(cfg, request)
    assert [a.kind for a in first.plan.actions] == [ActionKind.RESET_PASSWORD]  # type: ignore[union-attr]
    [slip] = first.result.slips  # type: ignore[union-attr]
    assert Connection(slapd.url, f"uid=hungdv.skhcn,{cfg.directory.base_dn}", slip.password).bind()
    assert _run(cfg, request).plan.actions == ()  # type: ignore[union-attr]


def test_restore_request_brings_back_a_revoked_account_with_a_new_password(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    _run(
        cfg,
        write_roster(
            tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,"]
        ),
    )
    _run(
        cfg,
        write_roster(
            tmp_path / "b.csv", ["E1,Đàm Văn Hùng,skhcn,,,,Nghỉ việc,", "E2,Lê Văn Tám,skhcn,,,,,"]
        ),
    )
    assert entries(admin, base_dn)["hungdv.skhcn"]["syncdState"] == ["revoked"]
    back = _run(
        cfg,
        write_roster(
            tmp_path / "c.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,Khôi phục", "E2,Lê Văn Tám,skhcn,,,,,"]
        ),
    )
    [slip] = back.result.slips  # type: ignore[union-attr]
    got = entries(admin, base_dn)["hungdv.skhcn"]
    assert got["syncdState"] == ["active"] and "pwdAccountLockedTime" not in got
    assert got["pwdReset"] == ["TRUE"]
    assert Connection(slapd.url, f"uid=hungdv.skhcn,{base_dn}", slip.password).bind()


def test_unmanaged_accounts_are_never_touched(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    admin.add(
        f"uid=giamdoc.skhcn,{base_dn}",
        ["inetOrgPerson", "syncdAccount"],
        {
            "uid": "giamdoc.skhcn",
            "cn": "Giám đốc",
            "sn": "x",
            "ou": "skhcn",
            "employeeNumber": "E99",
            "syncdManaged": "FALSE",
        },
    )
    cfg = make_config()
    outcome = _run(cfg, write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"]))
    assert all(a.uid != "giamdoc.skhcn" for a in outcome.plan.actions)  # type: ignore[union-attr]
    assert entries(admin, base_dn)["giamdoc.skhcn"].get("syncdState") is None


BAD_ROWS = {
    "empty name": ("E1,,skhcn,,,,,", "Họ và tên", "empty name"),
    "unknown organisation": ("E1,Lê Văn A,nowhere,,,,,", "Mã đơn vị", "unknown organisation"),
    "unparseable date": ("E1,Lê Văn A,skhcn,,,31/31/1990,,", "Ngày sinh", "unparseable date"),
    "unknown status": ("E1,Lê Văn A,skhcn,,,,Đi chơi,", "Trạng thái", "unknown status"),
    "duplicate employee number": ("E0,Lê Văn B,skhcn,,,,,", "Mã cán bộ", "duplicate"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_rejects_the_file_with_row_column_value_and_changes_nothing(
    case: str, make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    row, column, message = BAD_ROWS[case]
    cfg = make_config()
    roster = write_roster(tmp_path / "bad.csv", ["E0,Trần Thị Hà,skhcn,,,,,", row])
    outcome = _run(cfg, roster)
    assert outcome.exit_code == EXIT_BAD_INPUT
    [rejected] = outcome.rejected
    text = "\n".join(rejected.errors)
    assert f"bad.csv: row 3, column {column!r}" in text and message in text
    assert entries(admin, base_dn) == {}


def test_missing_required_column_rejects_the_file(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config()
    roster = write_roster(tmp_path / "bad.csv", ["E1,skhcn"], header="Mã cán bộ,Mã đơn vị\n")
    outcome = _run(cfg, roster)
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert "missing required column(s) 'Họ và tên'" in outcome.rejected[0].errors[0]
    assert entries(admin, base_dn) == {}


def test_accept_valid_rows_applies_the_good_rows_and_removes_nobody(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    cfg = make_config(extra="roster: {accept_valid_rows: true}\nsafety: {max_revoke_share: 1}\n")
    _run(cfg, write_roster(tmp_path / "a.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"]))
    outcome = _run(
        cfg, write_roster(tmp_path / "b.csv", ["E2,Lê Văn Tám,skhcn,,,,,", "E3,,skhcn,,,,,"])
    )
    assert outcome.exit_code == EXIT_BAD_INPUT  # reported, though the good row applied
    got = entries(admin, base_dn)
    assert "tamlv.skhcn" in got
    assert got["hungdv.skhcn"]["syncdState"] == ["active"]  # E1 not removed: skhcn had errors


def test_a_run_stopped_early_reports_the_actions_it_never_tried(
    make_config: MakeConfig, tmp_path: Path, admin: Connection, base_dn: str
) -> None:
    """A run that stops early (SIGTERM here; the directory lost does the same) says how many
    planned actions it never tried: "applied: 64 ok, 0 failed" alone read as if nothing were
    missing (an attack saw "180 ok, 12 failed" with 2,811 creates never tried)."""
    cfg = make_config()
    rng = random.Random(3)
    names = list(dict.fromkeys(full_name(rng) for _ in range(200)))[:100]
    roster = write_roster(
        tmp_path / "skhcn.csv", [f"E{i},{name},skhcn,,,,," for i, name in enumerate(names)]
    )
    asked = iter([False])  # the first batch goes, then a stop is asked
    outcome = _run(cfg, roster, allow_mass_change=True, should_stop=lambda: next(asked, True))
    assert outcome.plan is not None and outcome.result is not None
    tried = len(outcome.result.outcomes)
    assert 0 < tried < len(outcome.plan.actions)
    left = len(outcome.plan.actions) - tried
    assert f"NOT ATTEMPTED: {left} planned action(s)" in report_text(outcome, [roster])
    assert json.loads(json.dumps(summary_dict(outcome)))["not_attempted"] == left
    assert len(entries(admin, base_dn)) == tried  # what it says it did, and no more
    again = _run(cfg, roster, allow_mass_change=True)
    assert again.result is not None and not again.result.failed
    assert "NOT ATTEMPTED" not in report_text(again, [roster])
    people = [e for e in entries(admin, base_dn).values() if e.get("employeeNumber")]
    assert len(people) == len(names)  # and the organisations' mailboxes besides


def test_a_scoped_run_where_nothing_vanished_never_decodes_the_whole_namespace(
    make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: one organisation's unchanged file at 100k took 0.81 s and 144 MiB instead of
    0.48 s and 87 MiB once the run's look for names kept walked the whole namespace, decoding
    every name the snapshot holds, though nothing had vanished. The namespace is decoded only
    when a step gives out a name (the uid pool) or an entry was found gone."""
    from connectors.directory import openldap
    from connectors.directory_snapshot import Rows

    cfg = make_config()
    skhcn = write_roster(tmp_path / "skhcn.csv", ["E1,Đàm Văn Hùng,skhcn,,,,,"])
    syt = write_roster(tmp_path / "syt.csv", ["E2,Lê Thị Lan,syt,,,,,"])
    assert _run(cfg, skhcn, syt, full=True).exit_code == 0
    assert _run(cfg, skhcn, syt, full=True).exit_code == 0  # the snapshot and its names cache

    def refuse(*_: object) -> None:
        raise AssertionError("the whole namespace was decoded")

    monkeypatch.setattr(openldap, "_names_of_parts", refuse)
    monkeypatch.setattr(Rows, "names", refuse)
    quiet = _run(cfg, skhcn)
    assert quiet.exit_code == 0 and quiet.plan is not None and not quiet.plan.actions
