"""Kitsu source figures against a real zou (booted with scripts/kitsu-dev):

1. ingest: events/s the source appends when it catches up on a burst already in zou's log;
2. latency: from a gazu update (``PUT /data/tasks/<id>``) to the plugin call, in a real daemon,
   with polling only (poll_interval 1 s) and with the socket.io wake-up.

    .venv/bin/python benchmarks/kitsu_ingest.py [--burst 1000] [--samples 15]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gazu
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trackwire.config import load_settings  # noqa: E402
from trackwire.core.kitsu_cursor import KitsuCursor  # noqa: E402
from trackwire.runtime.daemon import Daemon  # noqa: E402
from trackwire.sources.kitsu import KitsuAPI, KitsuCredentials, KitsuSource  # noqa: E402
from trackwire.store.memory import MemoryStore  # noqa: E402

RECORDER = """
from __future__ import annotations
import os, time
from trackwire import on

@on("task:update")
def record(event, ctx):
    fd = os.open(ctx.options["out"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{event.data['data']['task_id']} {time.time()}\\n".encode())
    os.close(fd)
"""


def boot() -> dict[str, str]:
    out = subprocess.run([str(ROOT / "scripts" / "kitsu-dev"), "start"], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def client(env: dict[str, str]) -> Any:
    c = gazu.client.create_client(env["KITSU_URL"])
    gazu.log_in(env["KITSU_EMAIL"], env["KITSU_PASSWORD"], client=c)  # type: ignore[no-untyped-call]  # gazu is unannotated
    return c


def tasks(env: dict[str, str], count: int) -> list[dict[str, Any]]:
    c = client(env)
    project = gazu.project.new_project(f"Bench {time.time():.0f}", production_type="featurefilm", client=c)
    sequence = gazu.shot.new_sequence(project, "SQ01", client=c)
    kind = gazu.task.get_task_type_by_name("Animation", client=c)
    return [
        gazu.task.new_task(gazu.shot.new_shot(project, sequence, f"SH{i:03d}", client=c), kind, client=c)
        for i in range(count)
    ]


def ingest(env: dict[str, str], burst: int) -> None:
    targets = tasks(env, 8)
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(seconds=1)
    clients = [client(env) for _ in range(8)]

    def write(i: int) -> None:
        gazu.client.put(f"data/tasks/{targets[i % 8]['id']}", {"data": {"n": i}}, client=clients[i % 8])

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(burst)))
    made = time.monotonic() - began
    creds = KitsuCredentials(email=env["KITSU_EMAIL"], password=SecretStr(env["KITSU_PASSWORD"]))
    source = KitsuSource(env["KITSU_URL"], creds, overlap=10)
    store = MemoryStore()

    async def catch_up() -> tuple[int, float]:
        api = KitsuAPI(env["KITSU_URL"], creds)
        await api.login()
        began = time.monotonic()
        _, count = await source.poll(api, store, KitsuCursor(start, {}))
        elapsed = time.monotonic() - began
        await api.aclose()
        return count, elapsed

    count, elapsed = asyncio.run(catch_up())
    print(f"zou wrote {burst} task updates from 8 threads in {made:.1f} s ({burst / made:.0f}/s)")
    print(f"ingest: {count} events appended in one catch-up poll in {elapsed:.2f} s = {count / elapsed:.0f} events/s")


def latency(env: dict[str, str], samples: int, wakeup: bool) -> list[float]:
    folder = Path(tempfile.mkdtemp(prefix="kitsu-bench-"))
    (folder / "record.py").write_text(RECORDER)
    (folder / "trackwire.toml").write_text("")
    out = folder / "calls.txt"
    settings = load_settings(
        folder / "trackwire.toml",
        overrides={
            "store.url": f"sqlite:///{folder / 'tw.db'}",
            "log.file": "",
            "log.level": "WARNING",
            "web.enabled": False,
            "plugins": [{"path": str(folder / "record.py"), "options": {"out": str(out)}}],
            "kitsu": {
                "enabled": True,
                "url": env["KITSU_URL"],
                "event_url": env["KITSU_EVENT_URL"],
                "email": env["KITSU_EMAIL"],
                "password": env["KITSU_PASSWORD"],
                "poll_interval": 1.0,
                "wakeup": wakeup,
            },
        },
    )
    daemon = Daemon(settings)
    loops: list[asyncio.AbstractEventLoop] = []
    ready = threading.Event()

    def run() -> None:
        async def main() -> None:
            loops.append(asyncio.get_running_loop())
            await daemon.run(install_signals=False, ready=lambda _: ready.set())

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(120)
    while not (daemon.store and daemon.store.get_cursor("kitsu")):
        time.sleep(0.05)
    time.sleep(2.0)  # let the event stream connect
    target = tasks(env, 1)[0]
    c = client(env)
    figures = []
    for n in range(samples):
        before = len(out.read_text().splitlines()) if out.exists() else 0
        sent = time.time()
        gazu.client.put(f"data/tasks/{target['id']}", {"data": {"n": n}}, client=c)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = out.read_text().splitlines() if out.exists() else []
            if len(lines) > before:
                figures.append(float(lines[before].split()[1]) - sent)
                break
            time.sleep(0.005)
        time.sleep(random.uniform(0.1, 0.6))
    loops[0].call_soon_threadsafe(daemon.request_stop)
    thread.join(60)
    return figures


def describe(name: str, figures: list[float]) -> None:
    ms = sorted(f * 1000 for f in figures)
    p90 = ms[int(len(ms) * 0.9) - 1] if ms else float("nan")
    print(f"latency {name}: n={len(ms)} median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, max {ms[-1]:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    env = boot()
    ingest(env, args.burst)
    describe("gazu update -> plugin call, polling every 1 s", latency(env, args.samples, wakeup=False))
    describe("gazu update -> plugin call, socket.io wake-up", latency(env, args.samples, wakeup=True))


if __name__ == "__main__":
    main()
