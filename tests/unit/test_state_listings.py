"""state.json keeps who each organisation lists, grouped under the listing that began them
(``listings``: one stamp per run, not one per person: 4.5 MB of JSON at 100,000 people
became ~1 MB, issue 14). What is saved reads back the same; a state file an older syncd wrote
(``listed``: a stamp per person) reads the same; the first save after an upgrade writes the
new shape, and the old key is gone, also when another process wrote in between."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.store import StateStore
from syncd.state import LocalState

stamps = st.tuples(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(["2026-11-26T13:25:38+00:00", "2025-01-02T03:04:05+07:00"]),
)
listed = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.dictionaries(st.text(min_size=1, max_size=10), stamps, max_size=30),
    max_size=5,
)


@given(listed, st.integers(min_value=0, max_value=10_000))
def test_who_each_organisation_lists_reads_back_as_saved(
    listed: dict[str, dict[str, tuple[int, str]]], runs: int
) -> None:
    state = LocalState(listed=listed, listing_runs=runs)
    text = json.dumps(state.to_dict(), ensure_ascii=False)
    again = LocalState.from_dict(json.loads(text))
    assert again.listed == listed and again.listing_runs == runs
    assert "listed" not in json.loads(text)


def test_a_stamp_is_written_once_per_run_not_once_per_person() -> None:
    one = (3, "2026-11-26T13:25:38+00:00")
    state = LocalState(listed={"skhcn": {f"e{i:06d}": one for i in range(1000)}})
    data = state.to_dict()
    assert list(data["listings"]["skhcn"]) == ["3 2026-11-26T13:25:38+00:00"]
    again = LocalState.from_dict(data)
    assert len({id(v) for v in again.listed["skhcn"].values()}) == 1  # held once in memory


def test_an_older_syncds_state_file_reads_alike_and_is_rewritten_in_the_new_shape(
    tmp_path: Path,
) -> None:
    old = {
        "decisions": [],
        "tombstones": ["gone.skhcn"],
        "listed": {
            "skhcn": {
                "e1": [1, "2026-01-01T00:00:00+00:00"],
                "e2": [2, "2026-02-01T00:00:00+00:00"],
            },
            "stc": {"e3": [1, "2026-01-01T00:00:00+00:00"]},
        },
        "listing_runs": 2,
    }
    (tmp_path / "state.json").write_text(json.dumps(old), encoding="utf-8")
    run, decide = StateStore(tmp_path), StateStore(tmp_path)
    state, other = run.load(), decide.load()
    assert state.listed == {
        "skhcn": {"e1": (1, "2026-01-01T00:00:00+00:00"), "e2": (2, "2026-02-01T00:00:00+00:00")},
        "stc": {"e3": (1, "2026-01-01T00:00:00+00:00")},
    }
    other.tombstones.add("also.skhcn")  # another process, saving in between (syncd decide)
    decide.save(other)
    state.listed["stc"]["e4"] = (3, "2026-03-01T00:00:00+00:00")
    run.save(state)
    on_disk = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
    assert "listed" not in on_disk
    assert on_disk["listings"]["stc"] == {
        "1 2026-01-01T00:00:00+00:00": ["e3"],
        "3 2026-03-01T00:00:00+00:00": ["e4"],
    }
    final = StateStore(tmp_path).load()
    assert final.listed["skhcn"] == state.listed["skhcn"]
    assert final.tombstones == {"gone.skhcn", "also.skhcn"}


def test_listings_damaged_by_hand_are_refused_naming_the_value_not_misread() -> None:
    """Found by an attack: a string where the employees belong was read one character per
    employee; now the value is named. An employee under two stamps keeps the newer."""
    for bad in (
        {"skhcn": {"1 2026-01-01": "e1x"}},
        {"skhcn": {"x 2026": ["e1"]}},
        {"skhcn": []},
        {"skhcn": {"1 not-a-date": ["e1"]}},
    ):
        with pytest.raises(ValueError, match=r"state\.json: listings of 'skhcn'"):
            LocalState.from_dict({"listings": bad})
    twice = {"skhcn": {"3 2026-03-01": ["e1"], "1 2026-01-01": ["e1", "e2"]}}
    assert LocalState.from_dict({"listings": twice}).listed["skhcn"] == {
        "e1": (3, "2026-03-01"),
        "e2": (1, "2026-01-01"),
    }


def test_a_damaged_state_file_is_bad_input_naming_it_not_an_internal_error(tmp_path: Path) -> None:
    """Found by an attack: a hand-damaged value ended as exit 70 with a crash file."""
    from connectors.cli import EXIT_BAD_INPUT, exit_code_for
    from connectors.store import StateFileError

    for text in ('{"listings": {"skhcn": {"3 2026-01-01": "e1"}}}', '{"listings": '):
        (tmp_path / "state.json").write_text(text, encoding="utf-8")
        with pytest.raises(StateFileError, match=r"state\.json") as info:
            StateStore(tmp_path).load()
        assert exit_code_for(info.value) == EXIT_BAD_INPUT == 2
