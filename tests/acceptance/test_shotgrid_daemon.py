"""`trackwire run` as a subprocess against the fake ShotGrid server: gaps, outages, SIGTERM and SIGKILL.

Time is compressed where the issue allows it, and each test says by how much.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.fakes.shotgrid_server import FakeShotgrid
from trackwire.store.sqlite import SqliteStore

PLUGINS = Path(__file__).parents[1] / "fixtures" / "sg_plugins" / "record"
TRACKWIRE = [str(Path(sys.executable).parent / "trackwire")]

pytestmark = pytest.mark.slow


class Daemon:
    """One `trackwire run` process; its output goes to a file the test can read."""

    def __init__(self, folder: Path, fake: FakeShotgrid, **shotgrid: object) -> None:
        self.folder = folder
        self.record = folder / "record.txt"
        self.output = folder / "daemon.out"
        settings = {"fetch_interval": 0.2, "start": 1, "retry_base": 0.2, "retry_cap": 2.0, **shotgrid}
        lines = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in settings.items())
        (folder / "trackwire.toml").write_text(
            f"""
[store]
url = "sqlite:///{folder}/trackwire.db"
[web]
enabled = false
[log]
file = ""
[engine]
shutdown_grace = 1.0
[shotgrid]
site = "{fake.url}"
script_name = "trackwire"
script_key = "secret"
{lines}
[[plugins]]
path = "{PLUGINS}"
kind = "shotgunevents"
concurrency = 4
""",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, SG_RECORD_FILE=str(self.record))
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                [*TRACKWIRE, "run", "-c", str(self.folder / "trackwire.toml")],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )

    def ids(self) -> list[int]:
        if not self.record.exists():
            return []
        return [int(line.split()[0]) for line in self.record.read_text().splitlines() if line.strip()]

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def signal(self, sig: int) -> float:
        """Send ``sig`` and return how long the process took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(30)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def fake() -> Iterator[FakeShotgrid]:
    server = FakeShotgrid().start()
    yield server
    server.stop()


@pytest.fixture
def daemon_factory(tmp_path: Path, fake: FakeShotgrid) -> Iterator[list[Daemon]]:
    made: list[Daemon] = []
    yield made
    for daemon in made:
        daemon.stop()


def make(made: list[Daemon], tmp_path: Path, fake: FakeShotgrid, **shotgrid: object) -> Daemon:
    daemon = Daemon(tmp_path, fake, **shotgrid)
    made.append(daemon)
    return daemon


def test_newer_events_after_a_gap_arrive_within_one_poll_and_a_late_gap_id_is_still_delivered(
    tmp_path: Path, fake: FakeShotgrid, daemon_factory: list[Daemon]
) -> None:
    # Time compressed 50x: the backlog timeout is 6 s instead of 300 s, and the late id arrives after
    # 2.4 s instead of 2 minutes (the same 40 % of the timeout).
    fake.add_events(10)
    daemon = make(daemon_factory, tmp_path, fake, backlog_timeout=6.0)
    daemon.start()
    wait_for(lambda: len(set(daemon.ids())) == 10, 60, what="the first 10 events")

    late_id, never_id = fake.skip_ids(2)
    reads_before = len(fake.read_log)
    newer = fake.add_events(1000)
    gap_at = time.monotonic()
    store = SqliteStore(tmp_path / "trackwire.db")
    wait_for(lambda: store.count_events() >= 1010, 30, what="the 1,000 events after the gap to be appended")
    appended_after = time.monotonic() - gap_at
    store.close()
    assert late_id not in daemon.ids()
    # Newer events are appended by the polls that first see them (two reads of 500), long before the
    # 6 s backlog timeout, and no read ever goes back behind the gap (shotgunEvents re-reads that window).
    assert appended_after < 6.0, f"the newer events took {appended_after:.1f} s to be appended"
    wait_for(lambda: set(newer) <= set(daemon.ids()), 60, what="the 1,000 events to be handled")
    wait_for(
        lambda: any(
            c["relation"] == "greater_than" and c["values"][0] == newer[-1] for _, conds in fake.read_log for c in conds
        ),
        10,
        what="a read after the newest id",
    )
    main_reads = [c for _, conds in fake.read_log[reads_before:] for c in conds if c["relation"] == "greater_than"]
    windows = [c["values"][0] for c in main_reads]  # each read asks for ids greater than this
    assert windows == sorted(windows), "a read went back behind the gap"
    assert newer[0] - 1 not in windows

    time.sleep(max(0.0, 2.4 - (time.monotonic() - gap_at)))  # the "2 minutes late" commit
    fake.add_event(
        "Shotgun_Shot_Change",
        id=late_id,
        entity={"type": "Shot", "id": 1, "name": "SH0001"},
        attribute_name="code",
    )
    wait_for(lambda: late_id in daemon.ids(), 15, what="the late gap id")
    wait_for(lambda: "Timeout elapsed on backlog EventLogEntry ids" in daemon.log(), 20, what="the expiry log line")
    assert never_id not in daemon.ids()
    assert daemon.log().count("Timeout elapsed on backlog EventLogEntry ids") == 1
    assert str(never_id) in daemon.log()
    assert daemon.signal(signal.SIGTERM) < 5.0


def test_an_outage_is_survived_sigterm_during_it_is_quick_and_nothing_is_lost_after_restart(
    tmp_path: Path, fake: FakeShotgrid, daemon_factory: list[Daemon]
) -> None:
    # A real 60 s outage of the fake server (retry cap 2 s so the end of the outage is noticed quickly).
    fake.add_events(20)
    daemon = make(daemon_factory, tmp_path, fake)
    daemon.start()
    wait_for(lambda: len(set(daemon.ids())) == 20, 60, what="the first 20 events")

    outage_started = time.monotonic()
    fake.go_down()
    during = fake.add_events(50)  # committed on the site while the daemon cannot reach it
    wait_for(lambda: "ShotGrid is unreachable" in daemon.log(), 20, what="the outage to be noticed")
    assert daemon.signal(signal.SIGTERM) <= 5.0
    assert daemon.proc is not None and daemon.proc.returncode == 0

    daemon.start()  # start-up while ShotGrid is down waits and retries
    time.sleep(max(0.0, 60.0 - (time.monotonic() - outage_started)))
    assert daemon.proc is not None and daemon.proc.poll() is None, "the daemon gave up during the outage"
    fake.come_up()
    after = fake.add_events(10)
    wait_for(lambda: set(during + after) <= set(daemon.ids()), 60, what="every event after the outage")
    assert set(range(1, 81)) == set(daemon.ids())
    log = daemon.log()
    assert log.count("ShotGrid is unreachable") == 2  # once per process, not once per attempt
    assert "ShotGrid is reachable again" in log


def test_sigkill_at_random_moments_loses_nothing(
    tmp_path: Path, fake: FakeShotgrid, daemon_factory: list[Daemon]
) -> None:
    rng = random.Random(7)
    daemon = make(daemon_factory, tmp_path, fake)
    expected: set[int] = set()
    for _round in range(4):
        daemon.start()
        expected.update(fake.add_events(600))
        time.sleep(rng.uniform(0.3, 2.5))  # a random moment: starting up, catching up or idle
        daemon.signal(signal.SIGKILL)
    daemon.start()
    wait_for(lambda: expected <= set(daemon.ids()), 90, what="every event after the kills")
    assert set(daemon.ids()) == expected
