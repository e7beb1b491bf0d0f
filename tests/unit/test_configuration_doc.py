"""The configuration reference in docs/ is the one the settings model generates."""

from __future__ import annotations

from pathlib import Path

from trackwire.configdoc import config_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_docs_configuration_md_is_regenerated_when_the_settings_change() -> None:
    assert DOC.read_text(encoding="utf-8") == config_reference(), (
        "docs/configuration.md is stale: run `trackwire config-reference > docs/configuration.md`"
    )


def test_every_section_of_the_settings_is_documented() -> None:
    text = config_reference()
    for section in ("[store]", "[engine]", "[[plugins]]", "[log]", "[web]"):
        assert f"`{section}`" in text
