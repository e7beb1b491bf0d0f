"""A deactivated shotgunEvents plugin still handles the older events of other entities still in flight.

Trackwire runs different entities in parallel: when a plugin fails on event N, events older than N (other
entities) may not have reached it yet. shotgunEvents, one event at a time, had run them all before the
failure, and the replay after a change of the file starts at N: they must run, not be skipped for good.
Found by scripts/compare_shotgunevents.py with shotgunEvents' version_status_update_task_status example.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trackwire.core.event import Event
from trackwire.plugins.api import Context
from trackwire.plugins.shotgunevents import load_plugin

PLUGIN = """
import os

SEEN = os.path.join(os.path.dirname(__file__), "seen.txt")


def registerCallbacks(reg):
    reg.registerCallback("script", "key", on_version_status, {"Shotgun_Version_Change": ["sg_status_list"]})


def on_version_status(sg, logger, event, args):
    if event["meta"]["new_value"] == "boom":
        raise ValueError("no Status with this code")
    with open(SEEN, "a") as handle:
        handle.write(f"{event['id']}\\n")
"""


def _event(log_id: int, version: int, status: str) -> Event:
    entry: dict[str, Any] = {
        "id": 1000 + log_id,
        "event_type": "Shotgun_Version_Change",
        "attribute_name": "sg_status_list",
        "entity": {"type": "Version", "id": version, "name": f"v{version:03d}"},
        "meta": {"type": "attribute_change", "entity_id": version, "new_value": status},
        "session_uuid": None,
    }
    event = Event(source="shotgrid", source_id=str(entry["id"]), type=entry["event_type"], data=entry)
    event.id = log_id
    return event


def _context(event: Event) -> Context:
    return Context("statuses", "statuses.on_version_status", logging.getLogger("test"), 1, {}, event)


def test_after_a_failure_older_events_still_run_and_the_failed_one_and_newer_ones_do_not(tmp_path: Path) -> None:
    path = tmp_path / "statuses.py"
    path.write_text(PLUGIN)
    options = {"_trackwire": {"shotgrid": {"site": "http://127.0.0.1:9", "use_session_uuid": False}}}
    loaded = load_plugin("statuses", path, options)
    (consumer,) = loaded.consumers

    failing, older, newer = _event(32, 1, "boom"), _event(31, 3, "apr"), _event(33, 2, "apr")
    consumer.invoke(failing, _context(failing))  # Version 1's event got there first (another worker thread)
    for event in (older, failing, newer):
        consumer.invoke(event, _context(event))

    seen = (tmp_path / "seen.txt").read_text().split() if (tmp_path / "seen.txt").exists() else []
    assert seen == ["1031"]  # event 31 ran, as under shotgunEvents; 32 (failed) and 33 wait for the replay
