"""The run report's warnings stay one readable line however many accounts they concern."""

from __future__ import annotations

from connectors.runner import _some


def test_a_warning_names_the_first_ten_uids_and_counts_the_rest() -> None:
    uids = {f"u{i:03d}.skhcn" for i in range(190)}
    line = _some(uids)
    assert line.startswith("u000.skhcn, u001.skhcn, ") and line.endswith(" and 180 more")
    assert line.count(",") == 9
    assert _some({"b.skhcn", "a.skhcn"}) == "a.skhcn, b.skhcn"
