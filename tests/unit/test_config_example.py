"""One home for the configuration: the models are the schema, the defaults and the example."""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from connectors.config import (
    EXAMPLE_COMMAND,
    EXAMPLE_PATH,
    AdoptionConfig,
    Config,
    SafetySettings,
    _fields,
    _section_type,
    example_config,
    main,
    render_example,
)
from syncd.settings import AdoptionSettings, Safety


def test_the_committed_example_is_what_the_models_generate() -> None:
    committed = EXAMPLE_PATH.read_text(encoding="utf-8")
    assert committed == render_example(), (
        f"{EXAMPLE_PATH.name} is out of date with connectors/config.py; regenerate it with: "
        f"{EXAMPLE_COMMAND}"
    )


def test_the_generated_example_is_valid_and_shows_the_defaults() -> None:
    cfg = example_config()
    assert cfg.profile == "caobang-2025" and cfg.timezone == "Asia/Ho_Chi_Minh"
    assert cfg.safety == SafetySettings() and cfg.adoption == AdoptionConfig()
    assert cfg.directory.retry_delays == (0.5, 2.0, 5.0)
    assert cfg.daemon.reconcile_cron == "0 2 * * *" and cfg.daemon.metrics is None
    text = render_example()
    for key in ("retry_delays:", "# metrics: 127.0.0.1:9187", "timezone: Asia/Ho_Chi_Minh"):
        assert key in text


def _all_fields(cls: object, path: str = "") -> list[tuple[str, FieldInfo]]:
    out = []
    for name, info in _fields(cls).items():
        out.append((f"{path}{name}", info))
        sub = _section_type(info.annotation)
        if sub is not None:
            out += _all_fields(sub, f"{path}{name}.")
    return out


@pytest.mark.parametrize("key,info", _all_fields(Config), ids=[k for k, _ in _all_fields(Config)])
def test_every_setting_explains_itself_to_the_operator(key: str, info: FieldInfo) -> None:
    assert info.description, f"{key}: add a description (it is the comment in the example)"
    if _section_type(info.annotation) is not None:
        return
    if info.is_required() or info.get_default(call_default_factory=True) in (None, {}):
        assert info.examples, f"{key}: add an example value for config/syncd.example.yaml"


def test_the_core_settings_are_declared_once_with_their_core_defaults() -> None:
    for core, model in ((Safety, SafetySettings), (AdoptionSettings, AdoptionConfig)):
        names = {f.name for f in fields(core)}
        declared = set(model.__annotations__)
        assert names <= declared, f"{model.__name__} must validate and describe {names - declared}"
        assert issubclass(model, core)
        assert {f.name: getattr(model(), f.name) for f in fields(core)} == {
            f.name: getattr(core(), f.name) for f in fields(core)
        }


def test_syncd_config_is_gone() -> None:
    assert importlib.util.find_spec("syncd.config") is None


def test_the_command_prints_the_example_and_checks_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--example"]) == 0
    assert capsys.readouterr().out == render_example()
    bad = tmp_path / "syncd.yaml"
    bad.write_text(render_example().replace("domain: caobang.gov.vn", "domain: x"))
    assert main(["--check", str(bad)]) == 2
    assert f"{bad}:" in capsys.readouterr().out
