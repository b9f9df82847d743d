"""state.json is shared by runs, `syncd decide`, `syncd lock` and `syncd restore`: nobody's
update is lost, and `syncd plan` changes nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from connectors import runner
from connectors.cli import main
from connectors.store import Debts, StateStore
from syncd.model import Action, Decision, DecisionKind
from syncd.state import LocalState, Resolution, Resolve
from tests.conftest import MakeConfig
from tests.helpers import write_roster


def _decision(i: str, org: str = "khcn") -> Decision:
    return Decision(i, DecisionKind.AMBIGUOUS_MATCH, org, f"decision {i}")


def test_two_writers_keep_each_others_changes(tmp_path: Path) -> None:
    seed = StateStore(tmp_path)
    state = LocalState(decisions={d.id: d for d in (_decision("d1"), _decision("d2"))})
    state.done_requests = {"r0"}
    seed.save(state)
    run, decide = StateStore(tmp_path), StateStore(tmp_path)
    by_run, by_decide = run.load(), decide.load()
    by_decide.resolutions["d1"] = Resolution(Resolve.UID, "x.khcn", "op", "now")
    decide.save(by_decide)
    by_run.decisions = {d.id: d for d in (_decision("d1"), _decision("d3"))}  # d2 went, d3 came
    by_run.done_requests.add("r1")
    by_run.tombstones.add("gone.khcn")
    run.save(by_run)
    by_run.warned.add("x|2026-01-01")  # a later save of the same run adds only what is new
    run.save(by_run)
    final = StateStore(tmp_path).load()
    assert final.resolutions == {"d1": Resolution(Resolve.UID, "x.khcn", "op", "now")}
    assert set(final.decisions) == {"d1", "d3"}
    assert final.done_requests == {"r0", "r1"}
    assert final.tombstones == {"gone.khcn"} and final.warned == {"x|2026-01-01"}

    one, two = StateStore(tmp_path), StateStore(tmp_path)
    a, b = one.load_debts(), two.load_debts()
    a.passwords["u1"] = "run1"
    one.save_debts(a)
    b.audit["run1#0"] = {"run_id": "run1", "kind": "create", "uid": "u2"}
    two.save_debts(b)
    c = StateStore(tmp_path).load_debts()
    assert c == Debts({"u1": "run1"}, {"run1#0": {"run_id": "run1", "kind": "create", "uid": "u2"}})
    del a.passwords["u1"]  # paid by one writer, while the other added a debt: both hold
    one.save_debts(a)
    assert StateStore(tmp_path).load_debts() == Debts({}, c.audit)


def test_a_decision_saved_during_a_run_is_not_lost_when_the_run_saves(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """Whatever else serialises them (`syncd decide` also waits for the run lock), a state
    update saved while a run applies survives the run's own saves."""
    cfg = make_config(profile="hungyen-2025")
    people = ["E1,Nguyễn Hoàng Phúc,khcn,,,,,", "E2,Nguyễn Hồng Phúc,khcn,,,,,"]
    first = runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", people)])
    [decision] = first.plan.decisions  # type: ignore[union-attr]
    roster = write_roster(tmp_path / "b.csv", [*people, "E3,Lê Văn Tám,khcn,,,,,"])

    def progress(_: Action) -> None:  # the run is applying: another process decides now
        store = StateStore(cfg.paths.state)
        state = store.load()
        if decision.id not in state.resolutions:
            state.resolutions[decision.id] = Resolution(Resolve.UID, "nhphuc2.khcn", "op", "t")
            store.save(state)

    assert runner.run(cfg, rosters=[roster], progress=progress).exit_code == 0
    assert StateStore(cfg.paths.state).load().resolutions[decision.id].value == "nhphuc2.khcn"
    after = runner.run(cfg, rosters=[roster])
    assert [(a.kind.value, a.uid) for a in after.plan.actions] == [("create", "nhphuc2.khcn")]  # type: ignore[union-attr]


def test_a_plan_saves_nothing_not_even_the_pending_decisions(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config(profile="hungyen-2025")
    people = ["E1,Nguyễn Hoàng Phúc,khcn,,,,,", "E2,Nguyễn Hồng Phúc,khcn,,,,,"]
    runner.run(cfg, rosters=[write_roster(tmp_path / "a.csv", people)])
    state = cfg.paths.state / "state.json"
    before = state.read_bytes()
    assert StateStore(cfg.paths.state).load().decisions  # one pending decision
    # a plan whose own plan has no decision (E2 is not in it), then a whole plan
    result = CliRunner().invoke(
        main,
        [
            "-c",
            str(tmp_path / "syncd.yaml"),
            "plan",
            "--roster",
            str(write_roster(tmp_path / "b.csv", people[:1])),
        ],
    )
    assert result.exit_code == 0, result.output
    runner.run(cfg, dry_run=True, sweep=True)
    assert state.read_bytes() == before
    assert not (cfg.paths.state / "debts.json").exists()
