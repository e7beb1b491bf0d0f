"""A slow plugin never holds up another ordering group; SIGTERM stops the daemon quickly and keeps progress."""

from __future__ import annotations

import time
from pathlib import Path

from tests.acceptance.harness import FIXTURES, daemon, records, write_config
from tests.conftest import wait_for
from trackwire.core.event import Event, Ref
from trackwire.store import open_store


def _config(tmp_path: Path, *files: str, **engine: object) -> Path:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    plugins = [
        {"path": FIXTURES / "isolation" / name, "start": "beginning", "options": {"out": str(out)}} for name in files
    ]
    return write_config(tmp_path, plugins, engine)


def _iso(number: int, entity: int, **data: object) -> Event:
    return Event(source="test", source_id=str(number), type="Iso_Change", entity=Ref("Shot", entity), data=data)


def test_a_no_op_plugin_keeps_up_while_a_slow_plugin_on_the_same_events_falls_behind(tmp_path: Path) -> None:
    config = _config(tmp_path, "slow.py", "fast.py")
    total = 400
    lags: list[tuple[int, int]] = []  # (fast lag, slow lag) sampled while events arrive
    with daemon(config) as d:
        d.start()
        d.wait_running()
        store = open_store(f"sqlite:///{d.db}")
        try:
            for start in range(0, total, 10):
                # ten entities per batch: the slow plugin could run them in parallel, but its
                # concurrency is 1, so it handles 5 events a second
                store.append([_iso(n, n % 10) for n in range(start + 1, start + 11)])
                time.sleep(0.05)  # pacing the producer (about 200 events/s), not waiting for work
                lags.append((d.lag("fast"), d.lag("slow")))
            wait_for(lambda: d.lag("fast") == 0, 10, what="the no-op plugin to reach the end")
            slow_lag = d.lag("slow")
        finally:
            store.close()
        code, _ = d.stop()
        assert code == 0, d.output()
    assert slow_lag > total // 2, f"the slow plugin should be far behind, its lag is {slow_lag}"
    behind = [fast for fast, slow in lags if slow > 100]
    assert len(behind) >= 10, f"the slow plugin was never far behind while sampling: {lags}"
    # 200 events/s arrive; a lag of 60 events is 0.3 s of work, far from the slow plugin's hundreds.
    assert max(behind) <= 60, f"the no-op plugin lagged while the slow one was behind: {behind}"
    per_entity: dict[str, list[int]] = {}
    for _, mark, event_id, entity, _, _ in records(tmp_path / "out" / "slow.log"):
        if mark == "E":
            per_entity.setdefault(entity, []).append(event_id)
    assert per_entity and all(ids == sorted(ids) for ids in per_entity.values()), "per-entity order broken"


def test_sigterm_stops_the_daemon_within_five_seconds_during_a_long_callback_and_keeps_progress(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, "slow.py", shutdown_grace=2.5, timeout=60.0)
    out = tmp_path / "out" / "slow.log"
    with daemon(config) as d:
        d.start()
        d.wait_running()
        store = open_store(f"sqlite:///{d.db}")
        try:
            # events 1..5 are quick, event 6 sleeps 30 s, 7..10 are quick again (other entities too)
            store.append([_iso(n, n % 3, sleep=30 if n == 6 else 0.01) for n in range(1, 11)])
        finally:
            store.close()

        def started(event_id: int) -> bool:
            return any(e == event_id and mark == "S" for _, mark, e, _, _, _ in records(out))

        wait_for(lambda: started(6), 30, what="the long callback to start")
        code, took = d.stop()
        assert code == 0, d.output()
        assert took < 5.0, f"SIGTERM took {took:.1f} s with a callback running"
        first_life = records(out)
        finished = {e for _, mark, e, _, _, _ in first_life if mark == "E"}
        assert 6 not in finished
        assert set(range(1, 6)) <= finished
        assert "stopping" in d.log()

        # Restart: what finished is not run again; the interrupted event and the rest are.
        d.start()
        d.wait_running()
        wait_for(lambda: started(6), 30, what="the interrupted event to run again")
        d.stop()
    second_life = [(mark, e) for life, mark, e, _, _, _ in records(out) if life == 2]
    again = {e for mark, e in second_life if mark == "S"} & finished
    assert not again, f"events finished before SIGTERM ran again after the restart: {sorted(again)}"
