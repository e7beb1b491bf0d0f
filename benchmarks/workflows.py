"""Workflow benchmarks (issue 7): no-op chains, a wide fan-out with an AND join, and timer lateness.

    .venv/bin/python benchmarks/workflows.py                 # everything (about 15 s)
    .venv/bin/python benchmarks/workflows.py --timers 0      # skip the 10 s timers

The daemon runs in this process (web off) with the workflow service; steps run in its worker process,
as in production, and every state change is appended (fsync'd) to the SQLite log. A figure is the
wall time from the start request until the run's ``run.finished`` record is written; starting the
daemon and its worker process is not counted. For comparison, eventor 5.1.9 needs 8.4-9.5 s for the
100-step chain with its loop sleep at 0 (35 s at its default), growing quadratically with length.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from trackwire.config import load_settings
from trackwire.core.workflows.spec import FlowSpec
from trackwire.runtime.daemon import Daemon
from trackwire.workflows import Workflow
from trackwire.workflows.service import WorkflowService


def noop() -> None:
    return None


def chain(name: str, n: int) -> FlowSpec:
    flow = Workflow(name)
    events = [flow.add_event(f"e{i}") for i in range(n)]
    for i in range(n):
        triggers = {"success": (events[i + 1],)} if i + 1 < n else {}
        flow.add_assoc(events[i], flow.add_step(f"s{i}", noop, triggers=triggers))
    return flow.spec()


def fan_out(name: str, width: int) -> FlowSpec:
    flow = Workflow(name)
    go = flow.add_event("go")
    done = []
    for i in range(width):
        ev = flow.add_event(f"done{i}")
        flow.add_assoc(go, flow.add_step(f"s{i}", noop, triggers={"success": (ev,)}))
        done.append(ev)
    joined = flow.add_event("joined", expr=tuple(done))
    flow.add_assoc(joined, flow.add_step("join", noop))
    return flow.spec()


def timers(name: str, count: int, delay: float) -> FlowSpec:
    flow = Workflow(name)
    go = flow.add_event("go")
    for i in range(count):
        later = flow.add_event(f"later{i}")
        flow.add_assoc(go, later, delay=delay + i * 0.01)
        flow.add_assoc(later, flow.add_step(f"s{i}", noop))
    return flow.spec()


async def measure(service: WorkflowService, flow: str, first: str) -> float:
    started = time.perf_counter()
    run_id = await service.start_run(flow, [("1", first)])
    status = await service.wait_finished(run_id, 600)
    elapsed = time.perf_counter() - started
    assert status == "success", (flow, status)
    return elapsed


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="trackwire-wf-bench-"))
    settings = load_settings(
        None, overrides={"store.url": f"sqlite:///{folder / 'bench.db'}", "web.enabled": False, "log.file": ""}
    )
    flows = {
        f.name: f
        for f in (
            chain("chain100", 100),
            chain("chain1000", 1000),
            chain("chain10", 10),
            fan_out("fan100", 100),
            timers("timers", args.timers, args.delay),
        )
    }
    service = WorkflowService(flows, workers=16)
    daemon = Daemon(settings, services=[service])
    runner = asyncio.create_task(daemon.run(install_signals=False))
    await asyncio.wait_for(service.ready.wait(), 120)
    try:
        await measure(service, "chain10", "e0")  # warm-up: imports in the worker process
        for name, label, steps, first in (
            ("chain100", "100-step no-op chain", 100, "e0"),
            ("fan100", "100-wide fan-out + AND join", 101, "go"),
            ("chain1000", "1,000-step no-op chain", 1000, "e0"),
        ):
            times = [await measure(service, name, first) for _ in range(args.repeat)]
            best = min(times)
            print(
                f"{label:32s} {best:7.3f} s  ({best / steps * 1000:5.2f} ms/step; "
                f"runs: {', '.join(f'{t:.3f}' for t in times)})"
            )
        if args.timers:
            service.lateness.clear()
            await measure(service, "timers", "go")
            late = sorted(service.lateness)
            print(
                f"{args.timers} timers of {args.delay:g} s: lateness median {statistics.median(late) * 1000:.1f} ms, "
                f"max {late[-1] * 1000:.1f} ms"
            )
    finally:
        daemon.request_stop()
        await asyncio.wait_for(runner, 60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timers", type=int, default=20, help="how many 10 s timers (0: skip)")
    parser.add_argument("--delay", type=float, default=10.0)
    sys.exit(asyncio.run(main(parser.parse_args())))
