"""Prometheus metrics, one registry per daemon (never the global one), refreshed at each scrape.

Counters follow the engine's own tallies (each group's ``stats``) by adding what changed since the
last scrape; gauges are set from the live state and the store; callback durations reported by the
worker processes since the last scrape feed the histogram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from trackwire.web.backend import Backend

__all__ = ["Metrics"]

OUTCOMES = ("delivered", "failed", "retried", "dead", "interrupted")
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    _seen: dict[tuple[str, str], int] = field(default_factory=dict)
    _counted_upto: int | None = None

    def __post_init__(self) -> None:
        r = self.registry
        self.appended = Counter(
            "trackwire_events_appended", "Events appended to the log, by source", ["source"], registry=r
        )
        self.hooks = Counter(
            "trackwire_webhook_requests", "Webhook events received, by hook and result", ["hook", "result"], registry=r
        )
        self.deliveries = Counter(
            "trackwire_deliveries", "Deliveries finished, by group and outcome", ["group", "outcome"], registry=r
        )
        self.lag = Gauge(
            "trackwire_consumer_lag_events", "Events in the log not yet handled, per group", ["group"], registry=r
        )
        self.waiting = Gauge(
            "trackwire_deliveries_waiting",
            "Stored unfinished or dead deliveries, by group and state (pending, running, retry, dead)",
            ["group", "state"],
            registry=r,
        )
        self.deactivated = Gauge("trackwire_group_deactivated", "1 when a group is deactivated", ["group"], registry=r)
        self.duration = Histogram(
            "trackwire_callback_duration_seconds",
            "How long callbacks took, per group",
            ["group"],
            buckets=BUCKETS,
            registry=r,
        )
        self.last_event = Gauge("trackwire_last_event_id", "Id of the newest event in the log", registry=r)

    def start_at(self, last_id: int) -> None:
        """Count appended events from this id on (the log's end when the app starts)."""
        self._counted_upto = last_id

    def hook_received(self, hook: str, stored: int, duplicates: int) -> None:
        self.hooks.labels(hook, "stored").inc(stored)
        self.hooks.labels(hook, "duplicate").inc(duplicates)

    async def render(self, backend: Backend) -> bytes:
        """Refresh every metric from the store (in a thread) and the live state (here), then render."""
        snapshot = await backend.call(self._store_snapshot, backend)
        self._apply(backend, snapshot)
        return generate_latest(self.registry)

    def _store_snapshot(self, backend: Backend) -> dict[str, Any]:
        store = backend.store
        browse = backend.browse
        last = store.last_id()
        if self._counted_upto is None:
            self._counted_upto = last
        per_source = browse.events_per_source(self._counted_upto, last) if browse else {}
        return {
            "last": last,
            "groups": store.groups(),
            "counts": browse.delivery_counts() if browse else {},
            "per_source": per_source,
        }

    def _apply(self, backend: Backend, snap: dict[str, Any]) -> None:
        last: int = snap["last"]
        self.last_event.set(last)
        for source, n in snap["per_source"].items():
            self.appended.labels(source).inc(n)
        self._counted_upto = max(self._counted_upto or 0, last)
        runners = backend.runners()
        for record in snap["groups"]:
            runner = runners.get(record.name)
            position = runner.ledger.position if runner is not None else record.position
            self.lag.labels(record.name).set(max(0, last - position))
            deactivated = runner.deactivated is not None if runner is not None else record.state == "deactivated"
            self.deactivated.labels(record.name).set(1 if deactivated else 0)
            counts = snap["counts"].get(record.name, {})
            for state in ("pending", "running", "retry", "dead"):
                self.waiting.labels(record.name, state).set(counts.get(state, 0))
        for name, runner in runners.items():
            stats = runner.stats
            for outcome in OUTCOMES:
                value = int(getattr(stats, outcome))
                before = self._seen.get((name, outcome), 0)
                if value > before:
                    self.deliveries.labels(name, outcome).inc(value - before)
                self._seen[(name, outcome)] = value
            # The engine keeps up to 10,000 durations; take them (on the event loop, like the engine).
            durations = stats.durations[:]
            stats.durations.clear()
            histogram = self.duration.labels(name)
            for seconds in durations:
                histogram.observe(seconds)
