"""Automation benchmark: matched trigger evaluations per second, and event-to-action latency under a burst.

    python benchmarks/automations.py            # both parts
    python benchmarks/automations.py --core     # only the pure evaluator

Part 1 loads 100 automations (reactive thresholds with ``for_each`` over 1,000 shots, plus some proactive
and compound ones), feeds events that every automation's type filter accepts, and counts one "matched
evaluation" per (event, automation) pair that reached bucket logic. Part 2 (see ``burst``) runs the real
service on SQLite and measures, for a burst of 1,000 events, the time from append to each action's start.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

from trackwire.core.event import Event, Ref
from trackwire.core.triggers import Automation, CompoundTrigger, Evaluator, EventTrigger, parse_predicate


def automations(count: int = 100) -> list[Automation]:
    out: list[Automation] = []
    for i in range(count):
        kind = i % 10
        if kind < 7:
            trig: EventTrigger | CompoundTrigger = EventTrigger(
                expect=("Shotgun_Shot_Change",),
                for_each=("entity.id",),
                threshold=3 + i % 5,
                within=300,
                where=parse_predicate({"path": "data.frames", "op": "gt", "value": i % 50}),
            )
        elif kind < 9:
            trig = EventTrigger(
                after=("Shotgun_Shot_Change",),
                expect=("Shotgun_Shot_Change",),
                posture="proactive",
                for_each=("entity.id",),
                within=600,
            )
        else:
            trig = CompoundTrigger(
                (
                    EventTrigger(expect=("Shotgun_Shot_Change",), for_each=("entity.id",), threshold=2, within=60),
                    EventTrigger(expect=("Shotgun_Shot_Change",), for_each=("entity.id",), threshold=4, within=60),
                ),
                require=2,
                within=120,
            )
        out.append(Automation(f"auto{i}", trig))
    return out


def events(n: int, keys: int = 1000) -> list[Event]:
    rng = random.Random(7)
    base = time.time() - 3600
    return [
        Event(
            source="bench",
            source_id=str(i),
            type="Shotgun_Shot_Change",
            entity=Ref("Shot", rng.randrange(keys)),
            occurred=datetime.fromtimestamp(base + i * 0.01, UTC),
            data={"frames": rng.randrange(100)},
            id=i + 1,
        )
        for i in range(n)
    ]


def core(n: int = 20_000) -> float:
    autos = automations()
    evaluator = Evaluator(autos)
    batch = events(n)
    now = time.time()
    started = time.perf_counter()
    fired = 0
    for event in batch:
        fired += len(evaluator.on_event(event, now))
    elapsed = time.perf_counter() - started
    rate = n * len(autos) / elapsed
    print(
        f"core evaluator: {n} events x {len(autos)} automations (for_each over 1,000 shots) in {elapsed:.2f} s: "
        f"{rate:,.0f} matched trigger evaluations/s, {n / elapsed:,.0f} events/s, {fired} firings, "
        f"{len(evaluator.state)} buckets"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--core", action="store_true", help="only the pure evaluator")
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    core(args.events)


if __name__ == "__main__":
    main()
