"""The read model shared by the dashboard and the JSON API: plain dicts, built from the store and,
when embedded, from the daemon's live state (read on its event loop)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trackwire.core.event import decode_event, loads
from trackwire.core.ledger import State
from trackwire.ports import GroupRecord
from trackwire.store.sqlite.browse import EventQuery, FoundEvent, StoredDelivery
from trackwire.web.backend import Backend

__all__ = [
    "EventFilters",
    "dead_letter",
    "dead_letters",
    "event_detail",
    "events_page",
    "group_detail",
    "groups",
    "overview",
]

PAGE = 50
SCAN_WINDOW = 100_000


@dataclass(frozen=True, slots=True)
class EventFilters:
    source: str | None = None
    type: str | None = None
    entity: str | None = None
    project: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = PAGE

    def query_args(self) -> dict[str, str]:
        args = {"source": self.source, "type": self.type, "entity": self.entity, "project": self.project}
        out = {k: v for k, v in args.items() if v}
        if self.since:
            out["since"] = self.since.isoformat()
        if self.until:
            out["until"] = self.until.isoformat()
        return out


def _delivery(d: StoredDelivery) -> dict[str, Any]:
    row = d.row
    return {
        "group": d.group,
        "event_id": row.event_id,
        "key": row.key,
        "state": row.state.value,
        "attempts": row.attempts,
        "consumers": list(row.consumers),
        "error": row.error,
        "traceback": row.traceback,
        "updated": d.updated,
    }


def _summary(found: FoundEvent) -> dict[str, Any]:
    event = decode_event(found.body, found.id)
    return {
        "id": found.id,
        "received": found.received,
        "occurred": event.occurred.isoformat() if isinstance(event.occurred, datetime) else str(event.occurred),
        "source": event.source,
        "type": event.type,
        "entity": str(event.entity) if event.entity else None,
        "project": str(event.project) if event.project else None,
        "user": str(event.user) if event.user else None,
        "attribute": event.attribute,
        "old": event.old,
        "new": event.new,
    }


def _counts(raw: dict[str, int]) -> dict[str, int]:
    return {s.value: raw.get(s.value, 0) for s in State}


async def _group_rows(b: Backend) -> tuple[int, list[GroupRecord], dict[str, dict[str, int]]]:
    store = b.store
    browse = b.browse
    last = await b.call(store.last_id)
    records = await b.call(store.groups)
    counts = await b.call(browse.delivery_counts) if browse else {}
    return last, records, counts


def _group_summary(b: Backend, record: GroupRecord, last: int, counts: dict[str, int]) -> dict[str, Any]:
    runner = b.runner(record.name)
    position = record.position
    state = record.state
    out: dict[str, Any] = {
        "name": record.name,
        "state": state,
        "reason": record.reason,
        "position": position,
        "lag": max(0, last - position),
        "deliveries": _counts(counts),
        "updated": record.updated.isoformat() if record.updated else None,
        "live": runner is not None,
    }
    if runner is not None:
        out["position"] = runner.ledger.position
        out["lag"] = max(0, max(last, runner.tail.last) - runner.ledger.position)
        out["state"] = "deactivated" if runner.deactivated is not None else "active"
        out["reason"] = runner.deactivated if runner.deactivated is not None else record.reason
        out["in_memory"] = runner.ledger.outstanding
        out["running"] = runner.ledger.running
        stats = runner.stats
        out["stats"] = {
            "delivered": stats.delivered,
            "failed": stats.failed,
            "retried": stats.retried,
            "dead": stats.dead,
            "interrupted": stats.interrupted,
            "worker_restarts": stats.worker_restarts,
        }
        out["last_error"] = stats.last_error
        out["worker"] = "running" if runner.worker is not None and runner.worker.alive else "stopped"
    return out


async def groups(b: Backend) -> list[dict[str, Any]]:
    last, records, counts = await _group_rows(b)
    return [_group_summary(b, r, last, counts.get(r.name, {})) for r in records]


async def _sources(b: Backend) -> list[dict[str, Any]]:
    browse = b.browse
    cursors = await b.call(browse.cursors) if browse else []
    out: dict[str, dict[str, Any]] = {}
    for name, cursor, updated in cursors:
        out[name] = {"name": name, "cursor": cursor, "last_poll": updated, "state": "stored", "error": None}
    if b.daemon is not None:
        for source in b.daemon.sources:
            out.setdefault(source.name, {"name": source.name, "cursor": None, "last_poll": None, "error": None})
            out[source.name]["state"] = "running"
        for name, health in b.daemon.source_health.items():
            entry = out.setdefault(name, {"name": name, "cursor": None, "last_poll": None, "error": None})
            entry["state"] = health.get("state", "running")
            entry["error"] = health.get("error")
            for key in ("last_poll", "last_error"):
                if health.get(key) is not None:
                    entry[key] = health[key]
    return sorted(out.values(), key=lambda s: str(s["name"]))


def _chart(per_minute: dict[str, int], now: datetime) -> list[dict[str, Any]]:
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
    bars = []
    for i in range(60):
        minute = start + timedelta(minutes=i)
        label = minute.strftime("%Y-%m-%dT%H:%M")
        bars.append({"minute": label, "count": per_minute.get(label, 0)})
    return bars


async def overview(b: Backend) -> dict[str, Any]:
    now = datetime.now(UTC)
    browse = b.browse
    group_list = await groups(b)
    last = await b.call(b.store.last_id)
    per_minute: dict[str, int] = {}
    failures: list[dict[str, Any]] = []
    failure_count = 0
    if browse is not None:
        per_minute = await b.call(browse.events_per_minute, now - timedelta(minutes=59), 60)
        failure_count, rows = await b.call(browse.recent_failures, now - timedelta(hours=1), 20)
        failures = [_delivery(r) for r in rows]
    chart = _chart(per_minute, now)
    return {
        "mode": "daemon" if b.live else "standalone",
        "uptime": round(time.time() - b.started, 1),
        "last_event": last,
        "events_last_hour": sum(bar["count"] for bar in chart),
        "chart": chart,
        "sources": await _sources(b),
        "groups": group_list,
        "dead_letters": sum(g["deliveries"]["dead"] for g in group_list),
        "failures_last_hour": failure_count,
        "failures": failures,
    }


async def events_page(b: Backend, f: EventFilters) -> dict[str, Any]:
    browse = b.browse
    if browse is None:
        return {"items": [], "next_before": None, "sources": [], "types": [], "supported": False}
    etype = eid = None
    if f.entity:
        kind, _, ident = f.entity.partition(":")
        etype, eid = kind or None, ident or None
    project = f.project.partition(":")[2] or f.project if f.project else None
    low = await b.call(browse.first_id_received_at, f.since) if f.since else 0
    before = f.before
    if f.until is not None:
        upper = await b.call(browse.first_id_received_at, f.until)
        before = upper if before is None else min(before, upper)
    # With two filters or more, all but one are checked row by row: look at most SCAN_WINDOW ids
    # per page, so a rare combination costs a bounded page, and the next page looks further back.
    window_low = low
    filters = sum(x is not None for x in (f.source, f.type, etype, project))
    if filters >= 2:
        top = before if before is not None else await b.call(b.store.last_id) + 1
        window_low = max(low, top - SCAN_WINDOW)
    query = EventQuery(f.source, f.type, etype, eid, project, before, window_low, f.limit)
    found = await b.call(browse.search_events, query)
    items = [_summary(e) for e in found]
    next_before = items[-1]["id"] if len(items) == f.limit else None
    if next_before is None and window_low > max(low, 1):
        next_before = window_low  # nothing more in this window: the next page searches older events
    return {
        "items": items,
        "next_before": next_before,
        "searched_from": window_low,
        "filters": f.query_args(),
        "sources": await b.call(browse.distinct_sources),
        "types": await b.call(browse.distinct_types),
        "supported": True,
    }


def _matched(b: Backend, name: str, event_body: str, event_id: int) -> list[str] | None:
    runner = b.runner(name)
    if runner is None:
        return None
    event = decode_event(event_body, event_id)
    return [runner.names[p] for p in runner.index.match(event) if p < len(runner.names)]


def _fate(b: Backend, record: GroupRecord, event_id: int, body: str, stored: StoredDelivery | None) -> dict[str, Any]:
    """What happened to one event in one group."""
    runner = b.runner(record.name)
    out: dict[str, Any] = {"group": record.name, "error": None, "traceback": None, "attempts": 0, "consumers": []}
    item = runner.ledger.items.get(event_id) if runner is not None else None
    if item is not None:
        state = item.state.value
        if state == "pending" and event_id in runner.ledger.running_ids:  # type: ignore[union-attr]
            state = "running"
        out.update(
            state="retrying" if state == "retry" else state,
            attempts=item.attempts,
            consumers=list(item.consumers),
            error=item.error,
            traceback=item.traceback,
        )
        return out
    if stored is not None:
        row = stored.row
        state = "retrying" if row.state is State.RETRY else row.state.value
        out.update(
            state=state, attempts=row.attempts, consumers=list(row.consumers), error=row.error, traceback=row.traceback
        )
        return out
    position = record.position if runner is None else max(runner.ledger.position, runner.ledger.read_pos)
    if event_id > position:
        out["state"] = "not yet reached"
        return out
    matched = _matched(b, record.name, body, event_id)
    if matched is None:
        out["state"] = "done"
        out["detail"] = "delivered, or skipped by filter (start the daemon to tell which)"
    elif matched:
        out["state"] = "delivered"
        out["consumers"] = matched
    else:
        out["state"] = "skipped by filter"
    return out


async def event_detail(b: Backend, event_id: int) -> dict[str, Any] | None:
    store = b.store
    records = await b.call(store.get_records, [event_id])
    if not records:
        return None
    record = records[0]
    browse = b.browse
    stored: dict[str, StoredDelivery | None] = {}
    group_records = await b.call(store.groups)
    for g in group_records:
        stored[g.name] = await b.call(browse.get_delivery, g.name, event_id) if browse else None
    payload = loads(record.body)
    payload["id"] = event_id
    return {
        "id": event_id,
        "event": payload,
        "summary": _summary(FoundEvent(event_id, str(payload.get("received") or ""), record.body)),
        "fates": [_fate(b, g, event_id, record.body, stored[g.name]) for g in group_records],
    }


async def group_detail(b: Backend, name: str, after: int = 0) -> dict[str, Any] | None:
    last, records, counts = await _group_rows(b)
    record = next((r for r in records if r.name == name), None)
    if record is None:
        return None
    out = _group_summary(b, record, last, counts.get(name, {}))
    browse = b.browse
    rows = await b.call(browse.group_rows, name, after, PAGE) if browse else []
    out["rows"] = [_delivery(r) for r in rows]
    out["next_after"] = rows[-1].row.event_id if len(rows) == PAGE else None
    runner = b.runner(name)
    traceback = None
    if runner is not None:
        traceback = runner.stats.last_traceback
        out["load_errors"] = list(runner.load_errors)
        out["consumers"] = list(runner.names)
        spec = runner.spec
        out["spec"] = {
            "files": [str(p) for p in spec.files],
            "policy": spec.policy,
            "timeout": spec.timeout,
            "max_attempts": spec.max_attempts,
            "concurrency": spec.concurrency,
        }
    if out.get("last_error") is None and browse is not None:
        stored = await b.call(browse.last_error, name)
        if stored is not None:
            out["last_error"] = stored.row.error
            traceback = stored.row.traceback
            out["last_error_event"] = stored.row.event_id
    out["last_traceback"] = traceback
    return out


async def dead_letters(b: Backend, group: str | None, after: tuple[str, int] | None) -> dict[str, Any]:
    rows = await b.call(b.store.dead_letters, group, after=after, limit=PAGE)
    items = [
        {
            "group": g,
            "event_id": r.event_id,
            "key": r.key,
            "attempts": r.attempts,
            "consumers": list(r.consumers),
            "error": r.error,
        }
        for g, r in rows
    ]
    last = items[-1] if len(items) == PAGE else None
    return {"items": items, "next_after": f"{last['group']}:{last['event_id']}" if last else None, "group": group}


async def dead_letter(b: Backend, group: str, event_id: int) -> dict[str, Any] | None:
    browse = b.browse
    if browse is None:
        return None
    stored = await b.call(browse.get_delivery, group, event_id)
    if stored is None or stored.row.state is not State.DEAD:
        return None
    records = await b.call(b.store.get_records, [event_id])
    out = _delivery(stored)
    out["event"] = loads(records[0].body) if records else None
    return out
