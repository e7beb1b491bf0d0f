"""Hot reload against the real daemon: edit a plugin file while ``trackwire run`` runs."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.harness import DaemonProcess, append, daemon, notes
from tests.conftest import wait_for
from tests.integration.test_plugins_bad import _bad, _setup


def _handled_by(d: DaemonProcess, event_id: int) -> set[int]:
    """The plugin versions that finished ``event_id``."""
    return {
        n["version"] for n in notes(d.folder / "out" / "behave.jsonl") if n["event"] == event_id and n["mark"] == "E"
    }


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_an_edited_plugin_handles_the_next_events_and_a_broken_save_keeps_the_old_version_running(
    tmp_path: Path,
) -> None:
    config = _setup(tmp_path, [{"path": "behave.py"}])
    plugin = tmp_path / "plugins" / "behave.py"
    with daemon(config) as d:
        d.start()
        d.wait_running()
        append(d.db, [_bad(1, 1)])
        wait_for(lambda: _handled_by(d, 1) == {1}, 30, what="version 1 to handle event 1")

        _edit(plugin, "version=1", "version=2")
        wait_for(lambda: "behave.py changed, reloading" in d.log(), 15, what="the reload")
        append(d.db, [_bad(2, 1)])
        wait_for(lambda: _handled_by(d, 2) == {2}, 30, what="version 2 to handle event 2")

        lines = plugin.read_text(encoding="utf-8").count("\n")
        plugin.write_text(plugin.read_text(encoding="utf-8") + "\ndef half_typed(:\n", encoding="utf-8")
        wait_for(lambda: f"{plugin}:{lines + 2}: SyntaxError" in d.log(), 15, what="the syntax error in the log")
        assert "keeping the previous version running" in d.log()
        append(d.db, [_bad(3, 2)])
        wait_for(lambda: _handled_by(d, 3) == {2}, 30, what="the previous version to handle event 3")

        plugin.write_text(
            plugin.read_text(encoding="utf-8").replace("\ndef half_typed(:\n", "").replace("version=2", "version=3"),
            encoding="utf-8",
        )
        wait_for(lambda: d.log().count("behave.py changed, reloading") >= 2, 15, what="the second reload")
        append(d.db, [_bad(4, 1)])
        wait_for(lambda: _handled_by(d, 4) == {3}, 30, what="version 3 to handle event 4")
        assert all(len(_handled_by(d, n)) == 1 for n in (1, 2, 3, 4)), "an event ran twice across reloads"
        assert d.stop()[0] == 0
