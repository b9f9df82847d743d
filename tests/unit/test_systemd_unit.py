"""The shipped systemd unit: what it must say, and systemd's own verdict on it."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "config" / "systemd" / "syncd.service"


def _service() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return dict(parser["Service"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("Restart", "on-failure"),
        ("User", "syncd"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/syncd /var/log/syncd"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("LoadCredential", "bind-password:/etc/syncd/bind.pw"),
        ("WatchdogSec", "120s"),
        # issue "A safe inbox": a hostile roster may not take the host's memory, nor see others
        ("MemoryMax", "2G"),
        ("ProtectProc", "invisible"),
        ("ProcSubset", "pid"),
    ],
)
def test_unit_has_the_directive(key: str, value: str) -> None:
    assert _service().get(key) == value


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    syncd = Path(sys.executable).with_name("syncd")
    assert syncd.exists(), "the syncd console script is installed beside the interpreter"
    unit = tmp_path / "syncd.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/syncd", str(syncd)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "syncd.service" not in result.stderr, result.stderr  # no warning about our unit
