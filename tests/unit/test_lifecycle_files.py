"""The activity and exemptions files: what a careless export or a hostile line cannot do."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.lifecycle_files import InputFileError, read_exemptions


def test_an_absence_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "exempt.csv"
    f.write_text("employee_number,reason,from,until\nE1,ốm,01/03/2027,01/01/2027\n")
    with pytest.raises(InputFileError, match=r"row 2, column 'until'.*ends before it starts"):
        read_exemptions(f)
