"""What starts and steers runs from the log: requests (``trackwire workflows ...``) and tracker events.

An in-process ordering group (the engine's: durable position, retries, dead letters) hands the
service every ``trackwire.workflow.request.*`` event and every tracker event a flow's ``[[start]]``
rule matches. The handler returns only once the resulting records are in the log, so a request is
never lost between the two; a request delivered twice starts the run once (its id comes from the
request event's id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trackwire.core.event import Event
from trackwire.core.matching import Filter
from trackwire.core.workflows.spec import RunMode
from trackwire.errors import Fail
from trackwire.runtime.inprocess import InProcessConsumer

if TYPE_CHECKING:
    from trackwire.runtime.daemon import Daemon
    from trackwire.workflows.service import WorkflowService

__all__ = ["REQUEST", "StartRule", "add_intake", "request_event", "sequence_of"]

log = logging.getLogger("trackwire.workflows")

REQUEST = "trackwire.workflow.request."
RECORDS = "trackwire.workflow."
GROUP = "workflows"


@dataclass(frozen=True)
class StartRule:
    flow: str
    event: str
    sequence: str
    filter: Filter


def sequence_of(template: str, event: Event) -> str:
    """``{entity}``, ``{entity_type}``, ``{entity_id}``, ``{project}``, ``{id}``, ``{new}``... of the event."""
    fields: dict[str, Any] = {
        "entity": str(event.entity) if event.entity else "",
        "entity_type": event.entity.type if event.entity else "",
        "entity_id": event.entity.id if event.entity else "",
        "project": str(event.project) if event.project else "",
        "id": event.id,
        "type": event.type,
        "attribute": event.attribute or "",
        "new": event.new,
        "old": event.old,
    }
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise Fail(f"sequence template {template!r} cannot be filled from the event: {exc}") from exc


def rules_of(flows: Mapping[str, Any]) -> list[StartRule]:
    rules = []
    for flow in flows.values():
        for start in flow.starts:
            where = tuple((str(k), v) for k, v in dict(start.get("where") or {}).items())
            flt = Filter(types=tuple(start["types"]), where=where)
            rules.append(StartRule(flow.name, str(start["event"]), str(start.get("sequence", "{entity}")), flt))
    return rules


def request_event(kind: str, data: dict[str, Any], *, source: str = "trackwire.cli") -> Event:
    """A request for the daemon's workflow service (what the CLI appends)."""
    import uuid

    return Event(source=source, source_id=uuid.uuid4().hex, type=REQUEST + kind, data=data, key="workflow:requests")


def _types_except(prefix: str) -> tuple[str, ...]:
    """Type globs matching every type that does not start with ``prefix`` (``[!t]*``, ``t[!r]*``, ...,
    and the proper prefixes themselves), so the workflow service's own records are never offered to the
    intake (the type index settles that once per type, without decoding an event)."""
    globs = [f"{glob_escape(prefix[:i])}[!{prefix[i]}]*" for i in range(len(prefix))]
    exact = [glob_escape(prefix[:i]) for i in range(1, len(prefix))]
    return (*globs, *exact)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


INTAKE_TYPES = (*_types_except(RECORDS), REQUEST + "*")


class _Intake:
    """Requests, and the tracker events the flows loaded *now* start on (definitions are reloaded
    while the daemon runs, so the types are not fixed: every event is offered, cheaply refused)."""

    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    def type_patterns(self) -> tuple[str, ...] | None:
        return INTAKE_TYPES

    def matches(self, event: Event) -> bool:
        kind = event.type
        if kind.startswith(REQUEST):
            return True
        if kind.startswith(RECORDS):
            return False
        return any(rule.filter.matches(event) for rule in self.service.rules)


async def add_intake(daemon: Daemon, service: WorkflowService) -> None:
    async def handle(event: Event) -> None:
        if event.type.startswith(REQUEST):
            await _request(service, event)
            return
        for rule in list(service.rules):
            if rule.filter.matches(event):
                seq = sequence_of(rule.sequence, event)
                run_id = f"{rule.flow}-{event.id}"
                await service.start_run(rule.flow, [(seq, rule.event)], run_id=run_id)
                log.info("tracker event %s started run %s (sequence %s)", event.id, run_id, seq)

    await daemon.add_consumer_group(
        GROUP, [InProcessConsumer("workflows.intake", _Intake(service), handle)], start=await _first_start(daemon)
    )


async def _first_start(daemon: Daemon) -> str | int:
    """Where the intake starts the first time: "now", or the first request already waiting in the log
    (``trackwire workflows start`` before the daemon ever ran with workflows)."""
    store = daemon.store
    assert store is not None
    known = await asyncio.to_thread(store.groups)
    if any(g.name == GROUP for g in known):
        return "now"
    kinds = [REQUEST + k for k in ("start", "trigger", "cancel", "retry", "continue")]
    first = await asyncio.to_thread(store.read_after, 0, 1, kinds)
    return first[0].id if first else "now"


async def _request(service: WorkflowService, event: Event) -> None:
    from trackwire.workflows.service import WorkflowError

    kind = event.type.removeprefix(REQUEST)
    data = event.data
    try:
        if kind == "start":
            pairs = [(str(s), str(e)) for s, e in data.get("triggers", ())]
            mode = RunMode(str(data.get("mode", "restart")))
            run_id = data.get("run_id") or (None if mode is not RunMode.RESTART else f"{data['flow']}-{event.id}")
            await service.start_run(str(data["flow"]), pairs, run_id=run_id, mode=mode)
        elif kind == "trigger":
            await service.trigger(str(data["run"]), str(data.get("seq", "")), str(data["event"]))
        elif kind == "cancel":
            await service.cancel(str(data["run"]))
        elif kind == "retry":
            await service.resume(str(data["run"]), mode="retry", retry_failed=True)
        elif kind == "continue":
            await service.resume(str(data["run"]), mode="continue")
        else:
            raise Fail(f"unknown workflow request {kind!r}")
    except WorkflowError as exc:
        raise Fail(str(exc)) from exc
