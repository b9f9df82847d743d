"""Configuration and regulation files an operator could plausibly get wrong, or an attacker
could write: each is one clear error (exit 2 at the CLI), never a crash or a silent change.
Found by a fresh engineer's attack on the architecture."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connectors.config import ConfigError
from connectors.loading import load_config
from connectors.regulations import load
from syncd.regulation import Duration, ProfileError

REGULATIONS = Path(__file__).resolve().parents[2] / "syncd" / "regulation"
GOOD = (Path(__file__).resolve().parents[2] / "config" / "syncd.example.yaml").read_text()


def test_a_configuration_that_is_not_utf8_is_a_config_error_naming_the_line(
    tmp_path: Path,
) -> None:
    f = tmp_path / "syncd.yaml"
    f.write_bytes(GOOD.encode() + b"# Cao B\xe8ng\n")
    with pytest.raises(ConfigError, match=r"syncd.yaml:\d+: not UTF-8 \(byte 0xe8"):
        load_config(f)


def test_yaml_aliases_are_refused_before_they_expand(tmp_path: Path) -> None:
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
    )
    f = tmp_path / "syncd.yaml"
    f.write_text(GOOD + bomb)
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_config(f)


def test_a_configuration_nested_too_deep_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "syncd.yaml"
    f.write_text(GOOD + "x: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"nested too deep|not valid YAML"):
        load_config(f)


@pytest.mark.parametrize("text", ["9999y", "3000000d", "99999999999m", "0d"])
def test_a_duration_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(ProfileError, match="between 1"):
        Duration.parse(text)


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "regulation"
    shutil.copytree(REGULATIONS, folder)
    return folder


def test_a_regulation_whose_id_is_not_its_file_name_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    text = (folder / "caobang-2025.yaml").read_text(encoding="utf-8")
    (folder / "daklak-2026.yaml").write_text(text, encoding="utf-8")  # copied, id unchanged
    with pytest.raises(ProfileError, match="id 'caobang-2025' must be the file's name"):
        load(folder)


def test_a_scheme_defined_twice_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    text = (folder / "caobang-2025.yaml").read_text(encoding="utf-8")
    text = text.replace("id: caobang-2025\n", "id: daklak-2026\n", 1)
    (folder / "daklak-2026.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match="scheme 'caobang-2025' is already defined"):
        load(folder)


def test_a_misspelt_key_in_a_regulation_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    f = folder / "hungyen-2025.yaml"
    f.write_text(f.read_text(encoding="utf-8").replace("  activity:", "  activty:"), "utf-8")
    with pytest.raises(ProfileError, match=r"unknown key\(s\) \['activty'\]"):
        load(folder)


@pytest.mark.parametrize(
    ("months", "ok"), [("0", True), ("6", True), ("1200", True), ("5", False), ("100000", False)]
)
def test_retention_months_is_0_or_between_6_and_1200(tmp_path: Path, months: str, ok: bool) -> None:
    """Found by an attack: 100000 was taken, and every nightly sweep then failed on the date."""
    f = tmp_path / "syncd.yaml"
    assert GOOD.count("\n  months: 24\n") == 1  # retention's
    f.write_text(GOOD.replace("\n  months: 24\n", f"\n  months: {months}\n"))
    if ok:
        assert load_config(f).retention.months == int(months)
    else:
        with pytest.raises(ConfigError, match=r"retention\.months"):
            load_config(f)
