"""Dashboard and API page latency with a large log (issue 5): pages must stay fast with 1M events.

    .venv/bin/python benchmarks/web_pages.py                   # 1,000,000 events (built once, reused)
    .venv/bin/python benchmarks/web_pages.py --events 200000 --db /tmp/tw-bench.db

Fills a SQLite store (kept at --db, reused when it already holds enough events), then times the read
model behind each page (the same code the HTML and JSON endpoints call), median and worst of --repeat
runs, in milliseconds. The first page and a page deep in the log must cost about the same: pages are
keyed by event id, never by OFFSET.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trackwire.core.event import Event, Ref, encode_event, ordering_key
from trackwire.core.ledger import Checkpoint, DeliveryRow, State
from trackwire.store.sqlite import SqliteStore
from trackwire.store.sqlite import queries as q
from trackwire.web import views
from trackwire.web.backend import Backend

TYPES = ("Shotgun_Task_Change", "Shotgun_Version_New", "Shotgun_Shot_Change", "Shotgun_Note_New", "rare.type")


def _event(i: int) -> Event:
    kind = TYPES[4] if i % 10_000 == 0 else TYPES[i % 4]
    return Event(
        source=("shotgrid:studio", "kitsu:main", "ftrack:hub")[i % 3],
        source_id=str(i),
        type=kind,
        entity=Ref("Shot", i % 5_000),
        project=Ref("Project", 60 + i % 20),
        attribute="sg_status_list",
        old="ip",
        new="rev",
        data={"entry": i, "meta": {"type": "attribute_change", "new_value": "rev"}},
    )


def fill(store: SqliteStore, total: int, batch: int = 50_000) -> None:
    """Bulk-load with the store's own INSERT_EVENT statement (one transaction per batch), received
    stamps spread over the last 24 hours in id order, as a daemon would have written them."""
    have = store.last_id()
    started = time.perf_counter()
    end = datetime.now(UTC)
    span = timedelta(hours=24)
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    for start in range(have, total, batch):
        rows = []
        for i in range(start + 1, min(total, start + batch) + 1):
            event = _event(i)
            received = end - span + span * (i / total)
            rows.append(
                (
                    event.source,
                    event.source_id,
                    event.type,
                    ordering_key(event),
                    "Shot",
                    str(i % 5_000),
                    str(60 + i % 20),
                    event.occurred.isoformat(),
                    received.isoformat(),
                    encode_event(event.with_id(0, received)),
                )
            )
        conn.execute("BEGIN")
        conn.executemany(q.INSERT_EVENT.replace("RETURNING id", ""), rows)
        conn.execute("COMMIT")
        print(f"\r  loaded {start + len(rows):,} events", end="", flush=True)
    conn.close()
    if total > have:
        print(f" in {time.perf_counter() - started:.0f} s")
    if not store.groups():
        last = store.last_id()
        store.register_group("notify", 0)
        dead = tuple(
            DeliveryRow(i, f"Shot:{i % 5000}", State.DEAD, 5, None, ("notify.cb",), "KeyError: 'x'", "Traceback")
            for i in range(1, last, max(1, last // 2_000))
        )
        store.write_checkpoint("notify", Checkpoint(last, dead, ()))
        store.register_group("audit", 0)
        store.write_checkpoint("audit", Checkpoint(last // 2, (), ()))


async def measure(name: str, fn: Callable[[], Awaitable[Any]], repeat: int) -> None:
    await fn()  # warm the page cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - started) * 1000)
    print(f"  {name:<46} median {statistics.median(times):8.1f} ms   worst {max(times):8.1f} ms")


async def run(store: SqliteStore, repeat: int) -> None:
    b = Backend.for_store(store)
    last = store.last_id()
    middle = last // 2
    now = datetime.now(UTC)
    first_received = views.EventFilters(limit=1, before=2)
    oldest = (await views.events_page(b, first_received))["items"][0]["received"]
    since = datetime.fromisoformat(oldest) + (now - datetime.fromisoformat(oldest)) / 2
    F = views.EventFilters
    pages: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("overview (chart, groups, failures)", lambda: views.overview(b)),
        ("events: newest page", lambda: views.events_page(b, F())),
        (f"events: page before id {middle:,}", lambda: views.events_page(b, F(before=middle))),
        ("events: page before id 100", lambda: views.events_page(b, F(before=100))),
        ("events: type=Shotgun_Version_New", lambda: views.events_page(b, F(type="Shotgun_Version_New"))),
        ("events: type=rare.type (1 in 10,000)", lambda: views.events_page(b, F(type="rare.type"))),
        ("events: source=kitsu:main, deep", lambda: views.events_page(b, F(source="kitsu:main", before=middle))),
        ("events: entity=Shot:1234", lambda: views.events_page(b, F(entity="Shot:1234"))),
        ("events: project=Project:71 + type (matches)", lambda: views.events_page(b, F(project="71", type=TYPES[3]))),
        ("events: project=Project:71 + type (no match)", lambda: views.events_page(b, F(project="71", type=TYPES[1]))),
        ("events: since the middle of the log's time", lambda: views.events_page(b, F(since=since))),
        ("events: until one hour ago", lambda: views.events_page(b, F(until=now - timedelta(hours=1)))),
        (f"event page {middle:,} (fates of every group)", lambda: views.event_detail(b, middle)),
        ("consumers", lambda: views.groups(b)),
        ("group page notify", lambda: views.group_detail(b, "notify")),
        ("dead letters: first page", lambda: views.dead_letters(b, None, None)),
        ("dead letters: deep page", lambda: views.dead_letters(b, "notify", ("notify", middle))),
    ]
    print(f"page latencies with {store.count_events():,} events in the log ({repeat} runs each):")
    for name, fn in pages:
        await measure(name, fn, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/trackwire-web-bench.db"))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    store = SqliteStore(args.db, synchronous="NORMAL")
    try:
        fill(store, args.events)
        asyncio.run(run(store, args.repeat))
    finally:
        store.close()


if __name__ == "__main__":
    main()
