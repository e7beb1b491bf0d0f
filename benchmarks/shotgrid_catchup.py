"""Catch-up throughput of shotgunEvents plugins on Trackwire: 20,000 EventLogEntry rows from the fake site.

    .venv/bin/python benchmarks/shotgrid_catchup.py [--events 20000] [--concurrency 64]

    .venv/bin/python benchmarks/shotgrid_catchup.py --shotgunevents ~/src/shotgunEvents/src  # + baseline
    SHOTGUNEVENTS_SRC=~/src/shotgunEvents/src make bench                                     # the same

Three runs of `trackwire run` (a subprocess, SQLite store, real shotgun-api3 client against the fake
ShotGrid server in this process): 1 no-op plugin, 10 no-op plugins, and 10 plugins that each wait
5 ms of I/O per event. Printed: events/s from the first event appended to the last one handled by
every plugin, and the same including daemon start-up. shotgunEvents reaches about 3,000 events/s
no-op on a 2-core machine and about 20 events/s in the I/O case (its callbacks run one after another).

With ``--shotgunevents`` (a checkout's ``src`` folder, which is copied, never modified) the same three
workloads also run through shotgunEvents' own daemon (``foreground``) against the same fake site, right
after Trackwire's, so both are measured under the same machine load; its I/O case uses fewer events.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.shotgrid_server import FakeShotgrid
from tests.fakes.shotgunevents_conf import shotgunevents_conf

from trackwire.store.sqlite import SqliteStore

NOOP = """
def registerCallbacks(reg):
    reg.registerCallback("trackwire", "secret", noop, None)


def noop(sg, logger, event, args):
    pass
"""

IO_WAIT = """
import time


def registerCallbacks(reg):
    reg.registerCallback("trackwire", "secret", wait_for_io, None)


def wait_for_io(sg, logger, event, args):
    time.sleep(0.005)  # 5 ms of I/O (a database call, an HTTP request)
"""


def serve_fake(events: int, entities: int, urls: multiprocessing.Queue[str]) -> None:
    """The fake site in its own process, so the measuring loop never slows it down."""
    fake = FakeShotgrid().start()
    fake.add_events(events, entities=entities)
    urls.put(fake.url)
    threading.Event().wait()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by the daemon process and by its worker processes (its children)."""
    children = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            continue
    return _cpu_seconds(pid), children


def run(label: str, plugins: int, body: str, events: int, concurrency: int, url: str, verbose: bool = True) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plugin_dir = folder / "plugins"
        plugin_dir.mkdir()
        for n in range(plugins):
            (plugin_dir / f"plugin{n:02d}.py").write_text(body)
        (folder / "trackwire.toml").write_text(
            f"""
[store]
url = "sqlite:///{folder}/tw.db"
[web]
enabled = false
[log]
file = ""
level = "INFO"
[engine]
shutdown_grace = 1.0
[shotgrid]
site = "{url}"
script_name = "trackwire"
script_key = "secret"
start = 1
fetch_interval = 1.0
[[plugins]]
path = "{plugin_dir}"
kind = "shotgunevents"
concurrency = {concurrency}
"""
        )
        started = time.monotonic()
        output = (folder / "daemon.out").open("wb")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "trackwire"), "run", "-c", str(folder / "trackwire.toml")],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        try:
            while b"ShotGrid source" not in (folder / "daemon.out").read_bytes():  # store created and migrated
                if proc.poll() is not None:
                    raise RuntimeError((folder / "daemon.out").read_text())
                time.sleep(0.01)
            store = SqliteStore(folder / "tw.db")
            first_event = None
            cpu_start = (0.0, 0.0)
            filled = None
            while True:
                last = store.last_id()
                if first_event is None and last > 0:
                    first_event = time.monotonic()
                    cpu_start = _tree_cpu(proc.pid)
                if filled is None and last >= events:
                    filled = time.monotonic()
                groups = store.groups()
                if last >= events and groups and groups[0].position >= last:
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited with {proc.returncode}")
                time.sleep(0.02)
            done = time.monotonic()
            cpu_end = _tree_cpu(proc.pid)
            store.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            output.close()
        assert first_event is not None and filled is not None
        rate = events / (done - first_event)
        daemon_us = (cpu_end[0] - cpu_start[0]) / events * 1e6
        workers_us = (cpu_end[1] - cpu_start[1]) / events * 1e6
        if verbose:
            print(
                f"  (the poller appended all events in {filled - first_event:.2f} s; CPU per event: daemon"
                f" {daemon_us:.0f} us, plugin workers {workers_us:.0f} us)"
            )
        print(
            f"{label:<34} {rate:>9,.0f} events/s   ({done - first_event:6.2f} s catch-up;"
            f" {events / (done - started):,.0f} events/s with start-up)",
            flush=True,
        )
        return rate


MARK = """
import os, time


def _mark(event):
    if event["id"] in (2, int(os.environ["SED_LAST"])):
        with open(os.environ["SED_MARKS"], "a") as handle:
            handle.write(repr(time.time()) + "\\n")
"""


def run_shotgunevents(label: str, src: Path, plugins: int, body: str, events: int, url: str) -> float:
    """shotgunEvents' own daemon over ids 2..events (its id file says plugin state 1)."""
    import pickle
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(src, folder / "src")
        plugin_dir = folder / "plugins"
        plugin_dir.mkdir()
        for n in range(plugins):
            code = body
            if n == 0:  # the first plugin also notes when the first and the last event reach it
                code = (
                    (MARK + body)
                    .replace("    pass\n", "    _mark(event)\n")
                    .replace("    time.sleep(0.005)", "    time.sleep(0.005)\n    _mark(event)")
                )
            (plugin_dir / f"plugin{n:02d}.py").write_text(code)
        conf = shotgunevents_conf(folder, url, str(plugin_dir), name="trackwire", key="secret", level=30)
        (folder / "src" / "shotgunEventDaemon.conf").write_text(conf)
        # shotgunEvents' id file: plugin folder -> plugin name -> (last event id, backlog of id -> timeout)
        state: dict[str, dict[str, tuple[int, dict[int, object]]]] = {
            str(plugin_dir): {f"plugin{n:02d}": (1, {}) for n in range(plugins)}
        }
        (folder / "sed.id").write_bytes(pickle.dumps(state))
        marks = folder / "marks"
        env = dict(os.environ, SED_LAST=str(events), SED_MARKS=str(marks))
        proc = subprocess.Popen(
            [sys.executable, str(folder / "src" / "shotgunEventDaemon.py"), "foreground"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not (marks.exists() and len(marks.read_text().split()) >= 2):
                if proc.poll() is not None:
                    raise RuntimeError(f"shotgunEvents exited with {proc.returncode}")
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(30)
        first, last = (float(x) for x in marks.read_text().split()[:2])
        rate = (events - 2) / (last - first)
        print(f"{label:<34} {rate:>9,.0f} events/s   ({events - 1:,} events in {last - first:6.2f} s)", flush=True)
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--entities", type=int, default=500, help="distinct shots the events touch")
    parser.add_argument("--concurrency", type=int, default=64, help="entities handled at once by the group")
    parser.add_argument(
        "--shotgunevents",
        type=Path,
        default=os.environ.get("SHOTGUNEVENTS_SRC") or None,
        help="a shotgunEvents checkout's src folder: measure it too (default: $SHOTGUNEVENTS_SRC)",
    )
    parser.add_argument("--io-events", type=int, default=600, help="events for shotgunEvents' 5 ms I/O case")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    urls: multiprocessing.Queue[str] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve_fake, args=(args.events, args.entities, urls), daemon=True)
    server.start()
    try:
        url = urls.get(timeout=120)
        print(
            f"{args.events:,} EventLogEntry rows, {args.entities} shots, group concurrency {args.concurrency},"
            f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        noop1 = run("1 no-op plugin", 1, NOOP, args.events, args.concurrency, url)
        noop10 = run("10 no-op plugins", 10, NOOP, args.events, args.concurrency, url)
        io10 = run("10 plugins x 5 ms I/O per event", 10, IO_WAIT, args.events, args.concurrency, url)
        if args.shotgunevents:
            src = args.shotgunevents
            print(f"shotgunEvents ({src}), same fake site, load average {os.getloadavg()[0]:.1f}:")
            base = (
                run_shotgunevents("  1 no-op plugin", src, 1, NOOP, args.events, url),
                run_shotgunevents("  10 no-op plugins", src, 10, NOOP, args.events, url),
                run_shotgunevents("  10 plugins x 5 ms I/O", src, 10, IO_WAIT, args.io_events, url),
            )
            print(
                f"Trackwire vs shotgunEvents, same conditions: {noop1 / base[0]:.1f}x, {noop10 / base[1]:.1f}x,"
                f" {io10 / base[2]:.0f}x"
            )
    finally:
        server.terminate()
        server.join()
    print(
        f"vs shotgunEvents (~3,000 / ~3,000 / ~20 events/s): {noop1 / 3000:.1f}x, {noop10 / 3000:.1f}x,"
        f" {io10 / 20:.0f}x"
    )


if __name__ == "__main__":
    main()
