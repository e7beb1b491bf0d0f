"""Engine benchmarks (issue 2): durable dispatch throughput, emit-to-callback latency, many callbacks, memory.

    .venv/bin/python benchmarks/engine.py            # all of them
    .venv/bin/python benchmarks/engine.py throughput --events 100000

Each figure is printed with what it measured. The daemon runs in this process (web off), its plugins in
worker processes, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trackwire.config import Settings, load_settings
from trackwire.core.event import Event, Ref
from trackwire.runtime.daemon import Daemon
from trackwire.store.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent


def _plugin(
    folder: Path, name: str, callbacks: int, *, types: list[str] | None = None, record: Path | None = None
) -> None:
    lines = ["from __future__ import annotations", "import time", "from trackwire import on", ""]
    if record is not None:
        lines.append(f"_OUT = open({str(record)!r}, 'a', buffering=1)")
    for i in range(callbacks):
        pattern = repr(types[i]) if types else ""
        body = "pass"
        if record is not None and i == 0:
            body = "_OUT.write(f\"{time.time() - event.data['t']:.6f}\\n\")"
        lines += [f"@on({pattern})", f"def cb{i}(event, ctx):", f"    {body}", ""]
    (folder / f"{name}.py").write_text("\n".join(lines))


def _settings(folder: Path, plugin_dir: Path, group: str | None = None, **engine: object) -> Settings:
    overrides: dict[str, object] = {
        "store.url": f"sqlite:///{folder / 'bench.db'}",
        "web.enabled": False,
        "log.file": "",
        "log.level": "WARNING",
    }
    for key, value in engine.items():
        overrides[f"engine.{key}"] = value
    settings = load_settings(None, overrides=overrides)
    from trackwire.config import PluginPathSettings

    entry = PluginPathSettings(path=plugin_dir, start="beginning", group=group)
    return settings.model_copy(update={"plugins": (entry,)})


def _fill(store: SqliteStore, count: int, entities: int, types: list[str]) -> None:
    rng = random.Random(7)
    batch: list[Event] = []
    for i in range(count):
        batch.append(
            Event(
                source="bench",
                source_id=str(i),
                type=rng.choice(types),
                entity=Ref("Shot", i % entities),
                attribute="sg_status_list",
                new="ip",
                data={"i": i},
            )
        )
        if len(batch) == 5000:
            store.append(batch)
            batch = []
    if batch:
        store.append(batch)


def _cpu_seconds(pid: int | str = "self") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, float] = {}


async def _drain(settings: Settings, store: SqliteStore, target: int) -> tuple[float, int]:
    daemon = Daemon(settings, store=store)
    ready = asyncio.Event()
    task = asyncio.create_task(daemon.run(install_signals=False, ready=lambda _d: ready.set()))
    await ready.wait()
    pids = [r.worker.pid for r in daemon.runners.values() if r.worker is not None and r.worker.pid]
    cpu0 = _cpu_seconds(), sum(_cpu_seconds(p) for p in pids)
    started = time.perf_counter()
    peak = 0
    while True:
        positions = [g.position for g in store.groups()]
        peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        if positions and min(positions) >= target and all(r.ledger.outstanding == 0 for r in daemon.runners.values()):
            break
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    CPU["daemon"] = _cpu_seconds() - cpu0[0]
    CPU["workers"] = sum(_cpu_seconds(p) for p in pids) - cpu0[1]
    daemon.request_stop()
    await task
    return elapsed, peak


def throughput(events: int, callbacks: int, files: int, disjoint: bool, group: str | None = None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plugins = folder / "plugins"
        plugins.mkdir()
        types = [f"Type_{i}" for i in range(callbacks)] if disjoint else ["Shotgun_Shot_Change"]
        per_file = callbacks // files
        for f in range(files):
            _plugin(
                plugins, f"p{f:03d}", per_file, types=types[f * per_file : (f + 1) * per_file] if disjoint else None
            )
        settings = _settings(folder, plugins, group)
        store = SqliteStore(folder / "bench.db")
        _fill(store, events, 200, types)
        elapsed, _ = asyncio.run(_drain(settings, store, store.last_id()))
        rate = events / elapsed
        label = f"{callbacks} {'disjoint ' if disjoint else ''}no-op callbacks in {files} plugin file(s)"
        if group is not None:
            label += f" sharing one ordering group (group = {group!r})"
        print(
            f"durable dispatch, {label}: {events} events in {elapsed:.2f} s = {rate:,.0f} events/s"
            f" (CPU per event: daemon {CPU['daemon'] / events * 1e6:.1f} us,"
            f" workers {CPU['workers'] / events * 1e6:.1f} us)"
        )
        return rate


def bare_loop(events: int) -> float:
    """The floor: Python + SQLite doing the same durable work (read events, call 10 no-ops, commit progress)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bare.db")
        _fill(store, events, 200, ["Shotgun_Shot_Change"])
        store.register_group("g", 0)
        conn = sqlite3.connect(Path(tmp) / "bare.db", isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")
        noops: list[Callable[[Any], None]] = [lambda e: None for _ in range(10)]
        started = time.perf_counter()
        position = 0
        while True:
            rows = conn.execute(
                "SELECT id, type, key, body FROM events WHERE id > ? ORDER BY id LIMIT 1000", (position,)
            ).fetchall()
            if not rows:
                break
            for row in rows:
                event = json.loads(row[3])
                for fn in noops:
                    fn(event)
            position = rows[-1][0]
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE groups SET position = ? WHERE name = 'g'", (position,))
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        store.close()
        rate = events / elapsed
        print(f"bare Python + SQLite loop (same durable work, one process): {rate:,.0f} events/s")
        return rate


def latency(rate: float, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plugins = folder / "plugins"
        plugins.mkdir()
        record = folder / "latency.txt"
        _plugin(plugins, "timed", 1, record=record)
        settings = _settings(folder, plugins)
        store = SqliteStore(folder / "bench.db")

        async def scenario() -> None:
            daemon = Daemon(settings, store=store)
            ready = asyncio.Event()
            task = asyncio.create_task(daemon.run(install_signals=False, ready=lambda _d: ready.set()))
            await ready.wait()
            # The emitter is another process, like `trackwire emit`, appending at a steady rate.
            emitter = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    textwrap.dedent(f"""
                import time
                from trackwire.core.event import Event, Ref
                from trackwire.store.sqlite import SqliteStore
                store = SqliteStore({str(folder / "bench.db")!r})
                start = time.perf_counter()
                n = int({rate} * {seconds})
                for i in range(n):
                    target = start + i / {rate}
                    while time.perf_counter() < target:
                        time.sleep(max(0.0, min(0.001, target - time.perf_counter())))
                    store.append([Event(source='emit', source_id=str(i), type='Shotgun_Shot_Change',
                                        entity=Ref('Shot', i % 200), data={{'t': time.time()}})])
                store.close()
            """),
                ]
            )
            while emitter.poll() is None:
                await asyncio.sleep(0.05)
            deadline = time.monotonic() + 10
            expected = int(rate * seconds)
            while time.monotonic() < deadline:
                if record.exists() and len(record.read_text().splitlines()) >= expected:
                    break
                await asyncio.sleep(0.05)
            daemon.request_stop()
            await task

        asyncio.run(scenario())
        samples = sorted(float(x) for x in record.read_text().split())
        p50 = statistics.median(samples) * 1000
        p99 = samples[int(len(samples) * 0.99) - 1] * 1000
        print(
            f"latency emit -> callback start at {rate:.0f} events/s for {seconds:.0f} s ({len(samples)} events,"
            f" emitter in another process): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
        return p50, p99


def memory(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plugins = folder / "plugins"
        plugins.mkdir()
        _plugin(plugins, "noop", 10)
        settings = _settings(folder, plugins)
        store = SqliteStore(folder / "bench.db")
        start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        filled = 0
        chunk = 100_000
        t0 = time.perf_counter()
        while filled < events:
            _fill_offset(store, filled, min(chunk, events - filled))
            filled += chunk
        fill_s = time.perf_counter() - t0
        after_fill = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        elapsed, peak = asyncio.run(_drain(settings, store, store.last_id()))
        print(
            f"memory over {events:,} events (10 no-op callbacks): daemon peak RSS {peak / 1024:.0f} MB "
            f"(before dispatch {after_fill / 1024:.0f} MB, at start {start_rss / 1024:.0f} MB); "
            f"appended in {fill_s:.1f} s ({events / fill_s:,.0f} events/s), dispatched in {elapsed:.1f} s "
            f"({events / elapsed:,.0f} events/s)"
        )


def _fill_offset(store: SqliteStore, offset: int, count: int) -> None:
    batch = [
        Event(
            source="bench",
            source_id=str(offset + i),
            type="Shotgun_Shot_Change",
            entity=Ref("Shot", i % 200),
            data={"i": offset + i},
        )
        for i in range(count)
    ]
    for start in range(0, len(batch), 5000):
        store.append(batch[start : start + 5000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", help="all (default), throughput, bare, latency, callbacks, memory")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--memory-events", type=int, default=1_000_000)
    args = parser.parse_args()
    which = set(args.which or ["all"])
    unknown = which - {"all", "throughput", "bare", "latency", "callbacks", "memory"}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    everything = "all" in which
    print(
        f"# engine benchmarks on {os.cpu_count()} cores, Python {sys.version.split()[0]},"
        f" SQLite {sqlite3.sqlite_version}"
    )
    if everything or "bare" in which:
        bare_loop(args.events)
    if everything or "throughput" in which:
        throughput(args.events, 10, 1, disjoint=False)
        throughput(args.events, 10, 10, disjoint=False)
        throughput(args.events, 10, 10, disjoint=False, group="pipeline")
    if everything or "callbacks" in which:
        ten = throughput(args.events, 10, 1, disjoint=True)
        thousand = throughput(args.events, 1000, 1, disjoint=True)
        print(f"per-event cost with 1,000 disjoint callbacks = {ten / thousand:.2f}x that of 10")
    if everything or "latency" in which:
        latency(200.0, 10.0)
    if everything or "memory" in which:
        memory(args.memory_events)


if __name__ == "__main__":
    main()
