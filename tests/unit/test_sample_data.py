"""The committed Cao Bằng sample is exactly what its generator writes."""

from pathlib import Path

from connectors.loading import load_catalogue
from connectors.roster import read_table
from devtools.sample_data import write_sample
from syncd.intake import read_roster

COMMITTED = Path(__file__).resolve().parents[2] / "config" / "examples" / "caobang"


def test_committed_sample_matches_its_generator(tmp_path: Path) -> None:
    paths = write_sample(tmp_path)
    for path in [tmp_path / "orgs.yaml", *paths]:
        rel = path.relative_to(tmp_path)
        if path.suffix == ".xlsx":  # zip timestamps differ; compare the cells instead
            assert read_table(path).rows == read_table(COMMITTED / rel).rows
        else:
            assert path.read_bytes() == (COMMITTED / rel).read_bytes(), rel


def test_sample_is_valid_large_enough_and_has_a_legacy_file() -> None:
    catalogue = load_catalogue(COMMITTED / "orgs.yaml")
    assert len(catalogue.all()) >= 8 and catalogue.offices
    snaps = [
        read_roster(read_table(p), catalogue) for p in sorted((COMMITTED / "rosters").iterdir())
    ]
    assert all(not s.errors for s in snaps)
    assert sum(len(s.people) for s in snaps) >= 300
    assert any("TCVN3" in n for s in snaps for n in s.notes)
