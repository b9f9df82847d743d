"""The activity and exemptions files: what a careless export or a hostile line cannot do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.lifecycle_files import InputFileError, read_activity, read_exemptions


def test_activity_in_the_future_is_refused_with_its_row(tmp_path: Path) -> None:
    """Found by an attack: a 2099 date kept a mailbox open for ever, silently."""
    f = tmp_path / "activity.csv"
    later = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    f.write_text(
        f"address,last_activity,kind\na@x.gov.vn,2026-01-01,send\nb@x.gov.vn,{later},send\n"
    )
    with pytest.raises(InputFileError, match=r"row 3, column 'last_activity'.*in the future"):
        read_activity(f)


def test_an_absence_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "exempt.csv"
    f.write_text("employee_number,reason,from,until\nE1,ốm,01/03/2027,01/01/2027\n")
    with pytest.raises(InputFileError, match=r"row 2, column 'until'.*ends before it starts"):
        read_exemptions(f)
