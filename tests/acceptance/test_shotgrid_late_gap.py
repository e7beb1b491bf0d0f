"""The issue's late gap id in real time: an EventLogEntry id that commits 2 minutes after the ids around it
(a long ShotGrid transaction) is still delivered with the default 5-minute backlog timeout, while the
events after it were handled long before. This test takes a little over two minutes by design; the
compressed variant in ``test_shotgrid_daemon.py`` also covers the expiry of an id that never comes.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.test_shotgrid_daemon import Daemon
from tests.conftest import wait_for
from tests.fakes.shotgrid_server import FakeShotgrid

pytestmark = pytest.mark.slow

LATE_BY = 120.0  # seconds, as the issue says


@pytest.fixture
def fake() -> Iterator[FakeShotgrid]:
    server = FakeShotgrid().start()
    yield server
    server.stop()


def test_a_gap_id_committed_two_minutes_late_is_still_delivered_with_the_default_backlog_timeout(
    tmp_path: Path, fake: FakeShotgrid
) -> None:
    fake.add_events(5)
    daemon = Daemon(tmp_path, fake)  # backlog_timeout left at its default (300 s)
    daemon.start()
    try:
        wait_for(lambda: len(set(daemon.ids())) == 5, 60, what="the first 5 events")
        (late_id,) = fake.skip_ids(1)
        newer = fake.add_events(200)
        gap_at = time.monotonic()
        wait_for(lambda: set(newer) <= set(daemon.ids()), 30, what="the 200 events after the gap")
        handled_after = time.monotonic() - gap_at
        assert handled_after < 10.0, f"the events after the gap waited {handled_after:.1f} s for it"
        assert late_id not in daemon.ids()

        time.sleep(max(0.0, LATE_BY - (time.monotonic() - gap_at)))
        assert late_id not in daemon.ids()
        fake.add_event(
            "Shotgun_Shot_Change",
            id=late_id,
            entity={"type": "Shot", "id": 1, "name": "SH0001"},
            attribute_name="code",
        )
        wait_for(lambda: late_id in daemon.ids(), 15, what="the gap id that committed 2 minutes late")
        assert daemon.ids().count(late_id) == 1
        assert "Timeout elapsed on backlog" not in daemon.log()
        assert daemon.signal(signal.SIGTERM) < 5.0
    finally:
        daemon.stop()
