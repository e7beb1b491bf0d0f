"""Who may frame the action pages: origins read from the configuration, checked and written into the CSP."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackwire.config import http_origin, load_settings
from trackwire.errors import ConfigError
from trackwire.web.headers import content_security_policy, frame_origins


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://studio.shotgrid.autodesk.com", "https://studio.shotgrid.autodesk.com"),
        ("https://Studio.ShotGrid.autodesk.com/", "https://studio.shotgrid.autodesk.com"),
        ("HTTPS://studio.shotgunstudio.com:443", "https://studio.shotgunstudio.com"),
        ("http://sg.studio.lan:8080", "http://sg.studio.lan:8080"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_an_origin_is_lower_cased_and_loses_its_default_port_and_trailing_slash(given: str, origin: str) -> None:
    assert http_origin(given) == origin


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("https://studio.shotgrid.autodesk.com/page/12", "more than an origin"),
        ("https://studio.shotgrid.autodesk.com?x=1", "more than an origin"),
        ("studio.shotgrid.autodesk.com", "not an http(s) origin"),
        ("ftp://studio.example.com", "not an http(s) origin"),
        ("'self'", "not an http(s) origin"),
        ("https://*.shotgrid.autodesk.com", "wildcard"),
        ("https://admin:secret@studio.example.com", "user name or password"),
        ("https://a.example.com https://b.example.com", "does not name a host"),
        ("https://a.example.com;script-src *", "does not name a host"),
        ("https://a.example.com:99999", "not an origin"),
    ],
)
def test_anything_but_an_http_origin_is_refused_with_the_reason(given: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        http_origin(given)


def test_a_site_url_gives_its_origin_when_its_path_is_allowed() -> None:
    assert http_origin("https://studio.shotgrid.autodesk.com/page/12#x", whole=False) == (
        "https://studio.shotgrid.autodesk.com"
    )


def test_web_frame_ancestors_are_read_normalised_and_deduplicated(tmp_path: Path) -> None:
    path = tmp_path / "trackwire.toml"
    path.write_text(
        '[web]\nframe_ancestors = ["https://Studio.shotgunstudio.com/", "https://studio.shotgunstudio.com:443"]\n',
        encoding="utf-8",
    )
    assert load_settings(path).web.frame_ancestors == ("https://studio.shotgunstudio.com",)


def test_a_frame_ancestor_with_a_path_stops_start_up_naming_the_key_and_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "trackwire.toml"
    path.write_text(
        '[web]\nframe_ancestors = ["https://ok.example.com", "https://studio.shotgrid.autodesk.com/page/3"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "web.frame_ancestors"
    assert caught.value.path == str(path)
    message = str(caught.value)
    assert "web.frame_ancestors" in message and "entry 1" in message
    assert "'https://studio.shotgrid.autodesk.com/page/3' has more than an origin" in message


def test_a_frame_ancestor_from_the_environment_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "trackwire.toml"
    path.write_text("", encoding="utf-8")
    monkeypatch.setenv("TRACKWIRE_WEB__FRAME_ANCESTORS", '["https://*.shotgrid.autodesk.com"]')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "web.frame_ancestors"
    assert "wildcard" in str(caught.value)


def test_the_shotgrid_site_comes_first_and_an_origin_given_twice_is_listed_once() -> None:
    origins = frame_origins(
        "https://studio.shotgrid.autodesk.com/",
        ["https://studio.shotgrid.autodesk.com", "https://studio.shotgunstudio.com"],
    )
    assert origins == ("https://studio.shotgrid.autodesk.com", "https://studio.shotgunstudio.com")


def test_a_shotgrid_site_without_a_scheme_gives_no_origin_rather_than_a_broken_policy() -> None:
    assert frame_origins("studio.shotgrid.autodesk.com", ()) == ()


def test_the_policy_frames_nowhere_or_in_trackwire_and_the_named_origins_only() -> None:
    assert content_security_policy(None).endswith("; frame-ancestors 'none'")
    assert content_security_policy(()).endswith("; frame-ancestors 'self'")
    framed = content_security_policy(("https://studio.shotgrid.autodesk.com", "https://studio.shotgunstudio.com"))
    assert framed.endswith(
        "; frame-ancestors 'self' https://studio.shotgrid.autodesk.com https://studio.shotgunstudio.com"
    )
    assert framed.startswith("default-src 'self'; script-src 'self';")


def test_kitsu_origins_are_normalised_so_the_browsers_origin_header_matches(tmp_path: Path) -> None:
    path = tmp_path / "trackwire.toml"
    path.write_text(
        '[hosted_actions]\nkitsu_origins = ["https://Kitsu.Studio.com/", "https://kitsu.studio.com:443"]\n',
        encoding="utf-8",
    )
    assert load_settings(path).hosted_actions.kitsu_origins == ("https://kitsu.studio.com",)


def test_a_kitsu_origin_with_a_path_stops_start_up_naming_the_key_and_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "trackwire.toml"
    path.write_text('[hosted_actions]\nkitsu_origins = ["https://kitsu.studio.com/api"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "hosted_actions.kitsu_origins"
    assert "entry 0" in str(caught.value) and "has more than an origin" in str(caught.value)
