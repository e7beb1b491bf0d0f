"""The configuration: one TOML file, environment overrides, and errors that name file, key path and reason.

These tests write small TOML files into pytest's tmp_path: reading the file is what is under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trackwire.config import Settings, load_settings
from trackwire.demo import STARTER_CONFIG
from trackwire.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRACKWIRE_* variable of the developer's shell leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("TRACKWIRE_"):
            monkeypatch.delenv(name)


def _write(tmp_path: Path, text: str, name: str = "trackwire.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unknown_key_names_the_file_the_key_path_and_the_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, "[engine]\nmax_atempts = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    error = caught.value
    assert error.path == str(path)
    assert error.key == "engine.max_atempts"
    assert str(path) in str(error)
    assert "engine.max_atempts" in str(error)
    assert "not permitted" in str(error)


def test_an_unknown_top_level_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, "[engnie]\nmax_attempts = 3\n"))
    assert caught.value.key == "engnie"


def test_a_wrong_type_inside_a_list_of_tables_names_the_index(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[plugins]]\npath = "a"\n\n[[plugins]]\npath = "b"\nconcurrency = "many"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "plugins[1].concurrency"
    assert "plugins[1].concurrency" in str(caught.value)
    assert "valid integer" in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_value_out_of_range_names_the_key_and_the_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, '[[plugins]]\npath = "p"\nconcurrency = 0\n'))
    assert caught.value.key == "plugins[0].concurrency"
    assert "greater than or equal to 1" in str(caught.value)


def test_every_problem_is_listed_not_only_the_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, '[engine]\nmax_attempts = "x"\n\n[web]\nport = 70000\n'))
    assert "engine.max_attempts" in str(caught.value)
    assert "web.port" in str(caught.value)


def test_a_toml_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "[engine]\nmax_attempts = 3\ntimeout = = 4\n[web]\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert str(path) in message
    assert "not valid TOML" in message
    assert "line 3" in message


def test_an_explicit_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "missing.toml")


def test_the_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "[engine]\nmax_attempts = 3\ntimeout = 9.0\n")
    monkeypatch.setenv("TRACKWIRE_ENGINE__MAX_ATTEMPTS", "8")
    settings = load_settings(path)
    assert settings.engine.max_attempts == 8
    assert settings.engine.timeout == 9.0, "the other keys of the section still come from the file"


def test_the_environment_overrides_a_section_missing_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKWIRE_WEB__PORT", "9100")
    assert load_settings(_write(tmp_path, "")).web.port == 9100


def test_a_wrong_type_from_the_environment_is_refused_with_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKWIRE_ENGINE__MAX_ATTEMPTS", "lots")
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, ""))
    assert caught.value.key == "engine.max_attempts"


def test_the_config_file_can_be_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "[engine]\nmax_attempts = 2\n", name="elsewhere.toml")
    monkeypatch.setenv("TRACKWIRE_CONFIG", str(path))
    settings = load_settings()
    assert settings.engine.max_attempts == 2
    assert settings.base_dir == tmp_path.resolve()


def test_relative_paths_resolve_against_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "studio" / "conf"
    folder.mkdir(parents=True)
    path = _write(
        folder,
        '[store]\nurl = "sqlite:///data/trackwire.db"\n\n[[plugins]]\npath = "plugins"\n\n'
        '[[plugins]]\npath = "/opt/shared/plugins"\n',
    )
    monkeypatch.chdir(tmp_path)  # the current folder must not matter
    settings = load_settings(Path("studio/conf/trackwire.toml"))
    assert settings.base_dir == folder.resolve()
    assert settings.resolve(settings.plugins[0].path) == folder.resolve() / "plugins"
    assert settings.resolve(settings.plugins[1].path) == Path("/opt/shared/plugins")
    assert settings.store_url == f"sqlite:///{folder.resolve() / 'data' / 'trackwire.db'}"
    assert path.exists()


def test_a_bare_store_path_is_a_sqlite_file_next_to_the_config(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, '[store]\nurl = "events.db"\n'))
    assert settings.store_url == f"sqlite:///{tmp_path.resolve() / 'events.db'}"


def test_overrides_from_the_command_line_win(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, "[web]\nport = 1\n"), overrides={"web.port": 2, "demo.enabled": True})
    assert settings.web.port == 2
    assert settings.demo.enabled is True


def test_settings_are_immutable(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, ""))
    with pytest.raises(ValueError, match="frozen"):
        settings.engine.max_attempts = 9  # type: ignore[misc]


def test_the_starter_config_of_trackwire_init_parses_and_validates(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, STARTER_CONFIG))
    assert isinstance(settings, Settings)
    assert settings.engine.max_attempts == 5
    assert [p.path for p in settings.plugins] == [Path("plugins")]
    assert settings.resolve(settings.plugins[0].path) == tmp_path.resolve() / "plugins"
    assert settings.store_url == f"sqlite:///{tmp_path.resolve() / 'trackwire.db'}"
    assert settings.web.port == 8787
