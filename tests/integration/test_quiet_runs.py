"""Quiet runs (connectors/quiet.py) against a real slapd: a whole run whose inputs are those of
the last quiet run plans nothing again, and any change a plan could see makes it plan in full:
an entry changed or deleted by hand, a person logging in, a roster, the state, the
configuration, or the clock reaching the next step of a lifecycle."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ldap3 import MODIFY_REPLACE, NONE, Connection, Server

from connectors import runner
from connectors.config import Config
from connectors.directory_snapshot import FULL_EVERY, SNAPSHOT_FILE
from connectors.loading import load_config
from connectors.outcome import RunOutcome, report_text
from connectors.quiet import QUIET_FILE
from devtools.slapd_sandbox import Sandbox
from syncd.model import ActionKind
from tests.conftest import MakeConfig
from tests.helpers import write_roster

NOW = datetime.now(UTC).replace(microsecond=0)
PASSWORDS: dict[str, str] = {}  # the credential slips of the last ``quiet`` fixture
ROWS = ["E1,Đàm Văn Hùng,skhcn,,,,,", "E2,Lê Văn Tám,skhcn,,,,,", "E3,Ngô Thị Cúc,skhcn,,,,,"]


def _whole(cfg: Config, roster: Path, when: datetime, **kw: Any) -> RunOutcome:
    """The nightly run: the roster stands for every organisation."""
    return runner.run(cfg, rosters=[roster], full=True, now=when, **kw)


@pytest.fixture
def quiet(make_config: MakeConfig, tmp_path: Path) -> tuple[Config, Path, RunOutcome]:
    """Three people created, then a whole run with nothing to do: the quiet run."""
    cfg = make_config()
    roster = write_roster(tmp_path / "r.csv", ROWS)
    created = runner.run(cfg, rosters=[roster], now=NOW)
    assert created.result is not None
    PASSWORDS.update({s.uid: s.password for s in created.result.slips})
    # the first whole run makes the catalogue's other organisation mailboxes
    settle = _whole(cfg, roster, NOW + timedelta(minutes=50))
    assert settle.plan is not None and settle.plan.actions
    first = _whole(cfg, roster, NOW + timedelta(hours=1))
    assert first.plan is not None and not first.plan.actions and first.repeats is None
    return cfg, roster, first


def _no_planning(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("planned although nothing changed")

    monkeypatch.setattr(runner, "make_plan", refuse)


def test_a_whole_run_with_the_inputs_of_the_last_quiet_one_plans_nothing_again(
    quiet: tuple[Config, Path, RunOutcome], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, roster, first = quiet
    _no_planning(monkeypatch)
    again = _whole(cfg, roster, NOW + timedelta(hours=2))
    assert again.repeats == first.run_id and again.exit_code == 0
    assert again.plan is not None and not again.plan.actions
    assert again.accounts_by_state == first.accounts_by_state == {"active": 3}
    text = report_text(again, [roster])
    assert f"nothing changed since run {first.run_id}" in text
    # a plan (dry run) repeats it too, and writes nothing
    before = (cfg.paths.state / QUIET_FILE).read_bytes()
    plan = _whole(cfg, roster, NOW + timedelta(hours=3), dry_run=True)
    assert plan.repeats == first.run_id
    assert (cfg.paths.state / QUIET_FILE).read_bytes() == before


def test_a_plan_alone_never_records_a_quiet_run(make_config: MakeConfig, tmp_path: Path) -> None:
    cfg = make_config()
    roster = write_roster(tmp_path / "r.csv", ROWS)
    runner.run(cfg, rosters=[roster], now=NOW)
    for hours in (1, 2):
        plan = _whole(cfg, roster, NOW + timedelta(hours=hours), dry_run=True)
        assert plan.repeats is None
    assert not (cfg.paths.state / QUIET_FILE).exists()


def _bind(slapd: Sandbox, dn: str, password: str) -> None:
    assert Connection(Server(slapd.url, get_info=NONE), dn, password).bind()


def _change_entry(cfg: Config, slapd: Sandbox, base: str, roster: Path) -> None:
    admin = slapd.admin()
    assert admin.modify(f"uid=hungdv.skhcn,{base}", {"title": [(MODIFY_REPLACE, ["Phó phòng"])]})


def _delete_entry(cfg: Config, slapd: Sandbox, base: str, roster: Path) -> None:
    admin = slapd.admin()
    assert admin.delete(f"uid=cucnt.skhcn,{base}"), admin.result


def _log_in(cfg: Config, slapd: Sandbox, base: str, roster: Path) -> None:
    _bind(slapd, f"uid=hungdv.skhcn,{base}", PASSWORDS["hungdv.skhcn"])


def _roster(cfg: Config, slapd: Sandbox, base: str, roster: Path) -> None:
    write_roster(roster, [*ROWS[:2], "E3,Ngô Thị Cúc,skhcn,Văn phòng,,,,"])


def _state(cfg: Config, slapd: Sandbox, base: str, roster: Path) -> None:
    path = cfg.paths.state / "state.json"
    path.write_text(path.read_text().replace('"warned": []', '"warned": ["x.skhcn|2027-01-01"]'))


def _configuration(cfg: Config, slapd: Sandbox, base: str, roster: Path) -> None:
    cfg.source.write_text(cfg.source.read_text() + "safety: {max_lock_share: 0.5}\n")


Change = Callable[[Config, Sandbox, str, Path], None]


@pytest.mark.parametrize(
    "change",
    [_change_entry, _delete_entry, _log_in, _roster, _state, _configuration],
    ids=lambda f: f.__name__.strip("_"),
)
def test_any_change_a_plan_could_see_makes_the_next_run_plan_in_full(
    quiet: tuple[Config, Path, RunOutcome],
    slapd: Sandbox,
    base_dn: str,
    change: Change,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg, roster, _ = quiet
    if change is _state:
        assert '"warned": []' in (cfg.paths.state / "state.json").read_text()
    change(cfg, slapd, base_dn, roster)
    if change is _configuration:
        cfg = load_config(cfg.source)
    planned: list[object] = []
    real = runner.make_plan
    monkeypatch.setattr(runner, "make_plan", lambda inp: planned.append(inp) or real(inp))
    again = _whole(cfg, roster, NOW + timedelta(hours=2), dry_run=True)
    assert again.repeats is None and len(planned) == 1


def test_the_run_at_the_next_step_of_a_lifecycle_plans_it(
    quiet: tuple[Config, Path, RunOutcome],
) -> None:
    cfg, roster, first = quiet
    assert first.plan is not None and first.plan.quiet_until is not None
    until = first.plan.quiet_until
    at = _whole(cfg, roster, until, dry_run=True, allow_mass_change=True)
    assert at.repeats is None and at.plan is not None
    assert {a.kind for a in at.plan.actions} == {ActionKind.LOCK}


def test_a_repeat_holds_no_longer_than_the_interval_of_full_reads(
    quiet: tuple[Config, Path, RunOutcome],
) -> None:
    """The nightly full read repairs what entryCSNs cannot show (an entry edited offline
    keeps its CSN): the plan is made again at least as often."""
    cfg, roster, first = quiet
    ends = NOW + timedelta(hours=1) + FULL_EVERY
    last = _whole(cfg, roster, ends - timedelta(seconds=1), dry_run=True)
    assert last.repeats == first.run_id
    assert _whole(cfg, roster, ends, dry_run=True).repeats is None


def test_a_run_that_reads_the_directory_in_full_plans_in_full(
    quiet: tuple[Config, Path, RunOutcome],
) -> None:
    cfg, roster, _ = quiet
    (cfg.paths.state / SNAPSHOT_FILE).unlink()  # lost: the next read is a full one
    assert _whole(cfg, roster, NOW + timedelta(hours=2)).repeats is None


def test_a_daemon_keys_on_the_configuration_it_loaded_not_the_file_edited_since(
    quiet: tuple[Config, Path, RunOutcome],
) -> None:
    """Found by an attack: a daemon not yet reloaded plans with the old configuration, and
    its quiet run must not stand for the new one."""
    cfg, roster, first = quiet
    cfg.source.write_text(cfg.source.read_text() + "rules: {lock_inactive: {after: 1d}}\n")
    old = _whole(cfg, roster, NOW + timedelta(hours=2))  # the daemon's loaded configuration
    assert old.repeats == first.run_id
    # reloaded (SIGHUP) or `syncd plan` with the file as it is now: planned in full, and the
    # old configuration's record no longer stands for it
    reloaded = load_config(cfg.source)
    assert _whole(reloaded, roster, NOW + timedelta(hours=3), dry_run=True).repeats is None
    later = _whole(reloaded, roster, NOW + timedelta(days=2), dry_run=True)
    assert later.plan is not None  # the new rule: everyone quiet for a day is locked
    assert {a.kind for a in later.plan.held_actions} == {ActionKind.LOCK}


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: {**r, "since": r["since"][:19]},  # no UTC offset
        lambda r: {**r, "until": "never"},
        lambda r: {**r, "since": None},
        lambda r: [],
    ],
    ids=["naive-time", "not-a-time", "no-since", "not-a-record"],
)
def test_a_damaged_record_means_planning_in_full_not_a_failing_run(
    quiet: tuple[Config, Path, RunOutcome], edit: Callable[[Any], Any]
) -> None:
    cfg, roster, _ = quiet
    path = cfg.paths.state / QUIET_FILE
    records = json.loads(path.read_text())
    path.write_text(json.dumps({k: edit(r) for k, r in records.items()}))
    again = _whole(cfg, roster, NOW + timedelta(hours=2), dry_run=True)
    assert again.repeats is None and again.exit_code == 0


def test_a_run_before_the_quiet_one_is_planned_in_full(
    quiet: tuple[Config, Path, RunOutcome],
) -> None:
    cfg, roster, _ = quiet
    earlier = _whole(cfg, roster, NOW + timedelta(minutes=30), dry_run=True)
    assert earlier.repeats is None
