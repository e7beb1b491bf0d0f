"""With ``concurrency = 1`` shotgunEvents plugins see the events in log order, across entities, as before.

A batch of events from several shots used to run shot by shot (each shot's events as one chain), so a
plugin reading state that another shot's callback changes saw it in a different order than under
shotgunEvents. Found by scripts/compare_shotgunevents.py (shotgunEvents' version_finaled example).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.fakes.shotgrid_server import FakeShotgrid
from tests.integration.sg_support import RunningDaemon, sg_settings

PLUGIN = """
import os


def registerCallbacks(reg):
    reg.registerCallback("trackwire", "secret", note, {"Shotgun_Shot_Change": ["sg_status_list"]})


def note(sg, logger, event, args):
    with open(os.environ["SG_ORDER_FILE"], "a") as handle:
        handle.write(f"{event['id']}\\n")
"""


def test_events_of_different_shots_run_in_log_order_at_concurrency_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "order.py").write_text(PLUGIN)
    seen = tmp_path / "order.txt"
    monkeypatch.setenv("SG_ORDER_FILE", str(seen))
    with FakeShotgrid() as fake:
        ids = [  # shots 1, 2, 3, 1, 2, 3...: all read in one batch
            fake.add_event(
                entity={"type": "Shot", "id": 1 + n % 3, "name": f"SH{1 + n % 3:03d}"},
                attribute_name="sg_status_list",
                meta={"type": "attribute_change", "attribute_name": "sg_status_list", "new_value": "ip"},
            )
            for n in range(12)
        ]
        settings = sg_settings(tmp_path, fake, plugins, plugin={"concurrency": 1})
        with RunningDaemon(settings):
            wait_for(lambda: seen.exists() and len(seen.read_text().split()) >= len(ids), 60)
    assert [int(x) for x in seen.read_text().split()] == ids
