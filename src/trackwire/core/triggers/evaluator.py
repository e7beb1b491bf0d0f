"""Trigger evaluation: facts in (events, the time), firings out. No I/O, no sleeping, no threads.

All state lives in one dict, ``state``, keyed by ``(automation, trigger path, for_each key)`` and made of
JSON-friendly values, so the runtime can persist exactly the entries listed in ``dirty`` in the same
transaction as the firings they produced (a restart then resumes from the same buckets).

Times are event times (``occurred``) in seconds since the epoch; ``now`` is the evaluator's clock and is
only used to decide when proactive windows are final (``end + lateness <= now``) and for ``timediff_*``.
"""

from __future__ import annotations

import hashlib
import itertools
from bisect import insort
from collections import deque
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from trackwire.core.event import Event, decode_event, encode_event
from trackwire.core.matching import TypeIndex
from trackwire.core.triggers.model import (
    Automation,
    CompoundTrigger,
    EventTrigger,
    SequenceTrigger,
    Trigger,
    bucket_key,
)
from trackwire.core.triggers.predicates import related_why_not

__all__ = ["Evaluator", "Firing", "StateKey", "event_depth", "event_origin"]

StateKey = tuple[str, str, str]
PARKED = "\x00parked"
MAX_WINDOWS_PER_SWEEP = 1000


@dataclass(frozen=True, slots=True)
class Firing:
    """An automation (or one of its child triggers) fired. ``id`` is stable: it is the idempotency key."""

    id: str
    automation: str
    path: str
    key: str
    at: float
    reason: str
    events: tuple[int, ...]
    count: int
    window: tuple[float, float]
    triggering_event: int | None = None


def event_depth(event: Event) -> int:
    """How many automation firings led to this event (0 for events from trackers)."""
    meta = event.data.get("trackwire") if isinstance(event.data, dict) else None
    return int(meta.get("depth", 0)) if isinstance(meta, dict) else 0


def event_origin(event: Event) -> str | None:
    meta = event.data.get("trackwire") if isinstance(event.data, dict) else None
    return str(meta["automation"]) if isinstance(meta, dict) and meta.get("automation") else None


def _fid(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class _Leaf:
    automation: Automation
    path: str
    trigger: EventTrigger
    parents: tuple[tuple[str, CompoundTrigger | SequenceTrigger, int], ...]
    name: str = ""
    filtered: bool = False  # has match / match_related / where conditions beyond the event type
    instant: bool = False  # reactive, threshold 1, no ``after``: fires on every match, keeps no state

    def type_patterns(self) -> tuple[str, ...] | None:
        return self.trigger.type_patterns()

    def matches(self, event: Event) -> bool:
        return True


def _digest(automation: Automation) -> str:
    return _fid(repr(automation.trigger))


@dataclass
class Evaluator:
    automations: Iterable[Automation]
    state: MutableMapping[StateKey, dict[str, Any]] = field(default_factory=dict)
    lateness: float = 60.0
    max_depth: int = 8
    follow_bound: float = 900.0
    trace: Callable[[str], None] | None = None

    dirty: set[StateKey] = field(default_factory=set, init=False)
    by_name: dict[str, Automation] = field(default_factory=dict, init=False)
    _leaves: list[_Leaf] = field(default_factory=list, init=False)
    _index: TypeIndex = field(init=False)
    _seen: set[int] = field(default_factory=set, init=False)
    _seen_order: deque[int] = field(default_factory=deque, init=False)
    _digests: dict[str, str] = field(default_factory=dict, init=False)
    _parked: dict[str, list[StateKey]] = field(default_factory=dict, init=False)
    _by_type: dict[str, list[tuple[_Leaf, bool, bool]]] = field(default_factory=dict, init=False)
    _proactive: set[StateKey] = field(default_factory=set, init=False)
    _next_due: float = field(default=float("-inf"), init=False)
    version: int = field(default=0, init=False)  # counts entries put or dropped (a sweep that changed state)

    def __post_init__(self) -> None:
        self.reload(self.automations)

    def reload(self, automations: Iterable[Automation]) -> None:
        """Use a new set of definitions, keeping the state of every automation whose trigger is unchanged."""
        self.automations = list(automations)
        self.by_name = {a.name: a for a in self.automations if a.enabled}
        self._digests = {name: _digest(a) for name, a in self.by_name.items()}
        self._leaves = []
        for automation in self.by_name.values():
            self._collect(automation, automation.trigger, "t", ())
        self._index = TypeIndex(self._leaves)
        self._by_type = {}
        self._parked = {}
        self._proactive = {k for k, v in self.state.items() if v.get("p")}
        self._next_due = float("-inf")
        for skey in list(self.state):
            name = skey[0]
            if name == PARKED:
                self._parked.setdefault(skey[1], []).append(skey)
                continue
            if self._digests.get(name) != self.state[skey].get("v"):
                del self.state[skey]
                self.dirty.add(skey)

    def _collect(
        self,
        automation: Automation,
        trigger: Trigger,
        path: str,
        parents: tuple[tuple[str, CompoundTrigger | SequenceTrigger, int], ...],
    ) -> None:
        if isinstance(trigger, EventTrigger):
            filtered = bool(trigger.match.items or trigger.match_related or trigger.where is not None)
            instant = trigger.posture == "reactive" and trigger.threshold == 1 and not trigger.after
            self._leaves.append(_Leaf(automation, path, trigger, parents, automation.name, filtered, instant))
            return
        for index, child in enumerate(trigger.triggers):
            self._collect(automation, child, f"{path}.{index}", ((path, trigger, index), *parents))

    def _note(self, text: str) -> None:
        if self.trace is not None:
            self.trace(text)

    def _put(self, skey: StateKey, value: dict[str, Any]) -> None:
        value["v"] = self._digests.get(skey[0], "")
        self.state[skey] = value
        self.dirty.add(skey)
        self.version += 1
        if value.get("p"):
            self._proactive.add(skey)
            for window in value["windows"]:
                self._next_due = min(self._next_due, window["e"] + self.lateness)

    def _drop(self, skey: StateKey) -> None:
        if self.state.pop(skey, None) is not None:
            self.version += 1
            self.dirty.add(skey)
            self._proactive.discard(skey)

    # -- events ----------------------------------------------------------------------------------

    def on_event(self, event: Event, now: float, low_water: int = 0) -> list[Firing]:
        """Evaluate one event. ``low_water``: every event with an id up to it has been evaluated before."""
        label = f"event {event.id} ({event.type})"
        depth = event_depth(event)
        if depth >= self.max_depth:
            self._note(f"{label}: ignored, it is {depth} firings deep (recursion guard, max_depth={self.max_depth})")
            return []
        leader = event.follows
        if leader is not None and leader not in self._seen and leader > low_water and event.id is not None:
            received = (event.received or event.occurred).timestamp()
            if now - received < self.follow_bound:
                self._note(f"{label}: waits for event {leader}, which it follows")
                skey = (PARKED, str(leader), str(event.id))
                self._put(skey, {"since": received, "body": encode_event(event)})
                self._parked.setdefault(str(leader), []).append(skey)
                return []
        firings = self._evaluate(event, now)
        if event.id is not None:
            firings.extend(self._mark_seen(event.id, now))
        return firings

    def _mark_seen(self, event_id: int, now: float) -> list[Firing]:
        self._seen.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > 100_000:
            self._seen.discard(self._seen_order.popleft())
        waiting = self._parked.pop(str(event_id), None)
        return self._release(waiting, now) if waiting else []

    def _release(self, keys: list[StateKey], now: float) -> list[Firing]:
        followers = []
        for skey in keys:
            entry = self.state[skey]
            self._drop(skey)
            followers.append(decode_event(entry["body"]))
        out: list[Firing] = []
        for follower in sorted(followers, key=lambda e: (e.occurred, e.id or 0)):
            self._note(f"event {follower.id}: released after event {follower.follows}")
            out.extend(self._evaluate(follower, now))
            if follower.id is not None:
                out.extend(self._mark_seen(follower.id, now))
        return out

    def _evaluate(self, event: Event, now: float) -> list[Firing]:
        interested = self._interested(event)
        if not interested:
            return []
        out: list[Firing] = []
        origin = event_origin(event)
        trace = self.trace
        t = event.occurred.timestamp()
        ident = event.id or 0
        keys: dict[tuple[str, ...], str] = {}
        values: dict[str, Any] = {}  # paths resolved once per event, shared by every trigger
        for leaf, expected, opens in interested:
            trigger = leaf.trigger
            name = leaf.name
            if origin == name and not leaf.automation.allow_self:
                if trace is not None:
                    self._note(f"{name} {leaf.path}: event {event.id} came from this automation's own action")
                continue
            if trace is not None:
                problem = trigger.why_not(event, now)
                if problem is not None:
                    self._note(f"{name} {leaf.path}: event {event.id} does not match: {problem}")
                    continue
            elif leaf.filtered:
                if trigger.match.items and not trigger.match.matches_event(event):
                    continue
                if trigger.match_related and related_why_not(trigger.match_related, event) is not None:
                    continue
                if trigger.where is not None and not trigger.where.holds(event, now, values):
                    continue
            key = keys.get(trigger.for_each)
            if key is None:
                key = keys[trigger.for_each] = bucket_key(trigger, event)
            if leaf.instant:
                if trace is not None:
                    self._note(f"{name} {leaf.path} [{key}]: event {ident} fires (threshold 1)")
                fired = [self._fire(leaf, key, (ident,), t, "threshold reached", (t, t), ident)]
            elif trigger.posture == "reactive":
                fired = self._reactive(leaf, key, t, ident, expected, opens)
            else:
                fired = self._proactive_event(leaf, key, t, ident, expected, opens, now)
            for firing in fired:
                if leaf.parents or trace is not None:
                    out.extend(self._propagate(leaf, firing))
                else:
                    out.append(firing)
        return out

    def _interested(self, event: Event) -> list[tuple[_Leaf, bool, bool]]:
        """The leaves whose ``expect`` or ``after`` take this event type, computed once per type."""
        found = self._by_type.get(event.type)
        if found is None:
            found = []
            for position in self._index.candidates(event.type):
                leaf = self._leaves[position]
                expected, opens = leaf.trigger.expects(event), leaf.trigger.opens(event)
                if expected or opens:
                    found.append((leaf, expected, opens))
            if len(self._by_type) > 10_000:
                self._by_type.clear()
            self._by_type[event.type] = found
        return found

    def _reactive(self, leaf: _Leaf, key: str, t: float, ident: int, expected: bool, opens: bool) -> list[Firing]:
        trig, name = leaf.trigger, leaf.name
        skey = (name, leaf.path, key)
        trace = self.trace
        where = f"{name} {leaf.path} [{key}]" if trace is not None else ""
        if trig.after:
            bucket = self.state.get(skey)
            if opens and (bucket is None or (bucket["end"] is not None and t >= bucket["end"])):
                end = t + trig.within if trig.within else None
                self._put(skey, {"start": t, "end": end, "times": [], "wm": t})
                if trace is not None:
                    self._note(f"{where}: event {ident} opens a window until {end}")
                return []
            if not expected:
                return []
            if bucket is None:
                if trace is not None:
                    self._note(f"{where}: event {ident} expected, but no {list(trig.after)} event opened a window")
                return []
            if t < bucket["start"] or (bucket["end"] is not None and t >= bucket["end"]):
                if trace is not None:
                    shown = f"[{bucket['start']}, {bucket['end']})"
                    self._note(f"{where}: event {ident} at {t} is outside the window {shown}")
                return []
            insort(bucket["times"], [t, ident])
            self.dirty.add(skey)
            if len(bucket["times"]) < trig.threshold:
                if trace is not None:
                    self._note(f"{where}: event {ident} counted, {len(bucket['times'])} of {trig.threshold}")
                return []
            self._drop(skey)
            ids = tuple(i for _, i in bucket["times"])
            return [self._fire(leaf, key, ids, t, "threshold reached", (bucket["start"], bucket["end"] or t), ident)]
        if trig.threshold == 1:
            if trace is not None:
                self._note(f"{where}: event {ident} fires (threshold 1)")
            return [self._fire(leaf, key, (ident,), t, "threshold reached", (t, t), ident)]
        bucket = self.state.get(skey)
        if bucket is None:  # the first event of a bucket cannot reach a threshold above 1
            self._put(skey, {"times": [[t, ident]], "wm": t})
            if trace is not None:
                self._note(f"{where}: event {ident} counted, 1 of {trig.threshold} within {trig.within:g} s")
            return []
        wm = max(bucket["wm"], t)
        within = trig.within
        if within and t < wm - within - self.lateness:
            if trace is not None:
                self._note(f"{where}: event {ident} is later than the allowed lateness ({self.lateness:g} s); ignored")
            return []
        times: list[list[Any]] = bucket["times"]
        insort(times, [t, ident])
        bucket["wm"] = wm
        fired: list[Firing] = []
        n = trig.threshold
        for i in range(max(0, len(times) - n + 1)):
            if not within or times[i + n - 1][0] - times[i][0] <= within:
                chosen = times[i : i + n]
                del times[i : i + n]
                ids = tuple(x[1] for x in chosen)
                span = (chosen[0][0], chosen[-1][0])
                fired.append(self._fire(leaf, key, ids, chosen[-1][0], "threshold reached", span, ident))
                break
        if within:
            horizon = wm - within - self.lateness
            while times and times[0][0] < horizon:
                times.pop(0)
        if not fired and trace is not None:
            self._note(f"{where}: event {ident} counted, {len(times)} of {n} within {within:g} s")
        if times:
            self.dirty.add(skey)
        else:
            self._drop(skey)
        return fired

    # -- proactive windows -------------------------------------------------------------------------

    def _proactive_event(
        self, leaf: _Leaf, key: str, t: float, ident: int, expected: bool, opens: bool, now: float
    ) -> list[Firing]:
        trig, name = leaf.trigger, leaf.name
        skey = (name, leaf.path, key)
        trace = self.trace
        where = f"{name} {leaf.path} [{key}]" if trace is not None else ""
        chained = not trig.after and not trig.for_each
        if not trig.after and trig.for_each:
            opens = expected
        bucket = self.state.get(skey)
        if chained and bucket is None:
            bucket = self._chain_start(skey, trig, now)
        windows: list[dict[str, Any]] = bucket["windows"] if bucket else []
        if chained:
            self._chain_extend(trig, windows, t)
        counted_in = None
        if expected:
            for window in windows:
                if window["s"] <= t < window["e"] and window["by"] != ident:
                    window["n"] += 1
                    window["ev"] = [*window["ev"], ident][-trig.threshold :]
                    counted_in = window
                    break
            if counted_in is None:
                if trace is not None:
                    self._note(f"{where}: event {ident} at {t} is in no open window")
            elif counted_in["n"] >= trig.threshold:
                if trace is not None:
                    self._note(f"{where}: window [{counted_in['s']}, {counted_in['e']}) satisfied by event {ident}")
                if not chained:
                    windows.remove(counted_in)
            else:
                if trace is not None:
                    self._note(f"{where}: event {ident} counted, {counted_in['n']} of {trig.threshold}")
        if opens and not chained and not any(w["s"] <= t < w["e"] for w in windows):
            windows.append({"s": t, "e": t + trig.within, "n": 0, "ev": [], "by": ident})
            if trace is not None:
                self._note(f"{where}: event {ident} opens a window until {t + trig.within}")
        if windows:
            self._put(skey, {"windows": windows, "p": 1, "c": 1} if chained else {"windows": windows, "p": 1})
        else:
            self._drop(skey)
        return []

    def _chain_start(self, skey: StateKey, trig: EventTrigger, now: float) -> dict[str, Any]:
        bucket = {"windows": [{"s": now, "e": now + trig.within, "n": 0, "ev": [], "by": None}], "p": 1, "c": 1}
        self._put(skey, bucket)
        return bucket

    @staticmethod
    def _chain_extend(trig: EventTrigger, windows: list[dict[str, Any]], t: float) -> None:
        for _ in range(MAX_WINDOWS_PER_SWEEP):
            last = windows[-1]
            if t < last["e"]:
                return
            windows.append({"s": last["e"], "e": last["e"] + trig.within, "n": 0, "ev": [], "by": None})

    def start(self, now: float) -> None:
        """Open the back-to-back windows of proactive triggers that have neither ``after`` nor ``for_each``."""
        for leaf in self._leaves:
            trig = leaf.trigger
            if trig.posture == "proactive" and not trig.after and not trig.for_each:
                skey = (leaf.automation.name, leaf.path, "")
                if skey not in self.state:
                    self._chain_start(skey, trig, now)

    def sweep(self, now: float) -> list[Firing]:
        """Fire every proactive window that ended at least ``lateness`` seconds before ``now``, exactly once.

        Buckets are visited by key from a snapshot of the keys, and a fired window is removed from its
        bucket in the same step, so nothing is skipped or fired twice however often this runs.
        """
        out: list[Firing] = self._sweep_windows(now) if now >= self._next_due else []
        for leader, keys in list(self._parked.items()):
            late = [k for k in keys if now - self.state[k]["since"] >= self.follow_bound]
            for skey in late:
                self._note(f"event {skey[2]}: its leader {leader} never came; released")
                keys.remove(skey)
            if not keys:
                self._parked.pop(leader, None)
            out.extend(self._release(late, now))
        return out

    def _sweep_windows(self, now: float) -> list[Firing]:
        out: list[Firing] = []
        leaves = {(leaf.automation.name, leaf.path): leaf for leaf in self._leaves}
        self._next_due = float("inf")
        for skey in sorted(self._proactive):
            leaf = leaves.get((skey[0], skey[1]))
            if leaf is None or skey not in self.state:
                continue
            trig = leaf.trigger
            bucket = self.state[skey]
            windows: list[dict[str, Any]] = bucket["windows"]
            chained = bool(bucket.get("c"))
            if chained:
                self._chain_extend(trig, windows, now - self.lateness)
            changed = False
            for window in list(windows):
                if window["e"] + self.lateness > now:
                    continue
                windows.remove(window)
                changed = True
                if window["n"] >= trig.threshold:
                    continue
                reason = f"only {window['n']} of {trig.threshold} expected events within {trig.within:g} s"
                ids = tuple(([window["by"]] if window["by"] else []) + window["ev"])
                firing = self._fire(leaf, skey[2], ids, window["e"], reason, (window["s"], window["e"]), window["by"])
                self._note(f"{skey[0]} {skey[1]} [{skey[2]}]: {reason}: fires")
                out.extend(self._propagate(leaf, firing))
            if changed:
                if windows:
                    self._put(skey, bucket)
                else:
                    self._drop(skey)
            for window in windows:
                self._next_due = min(self._next_due, window["e"] + self.lateness)
        return out

    # -- firing and composition ----------------------------------------------------------------------

    def _fire(
        self,
        leaf: _Leaf,
        key: str,
        ids: tuple[int, ...],
        at: float,
        reason: str,
        window: tuple[float, float],
        triggering: int | None,
    ) -> Firing:
        name = leaf.automation.name
        return Firing(
            _fid(name, leaf.path, key, window[0], window[1], *ids),
            name,
            leaf.path,
            key,
            at,
            reason,
            ids,
            len(ids),
            window,
            triggering,
        )

    def _propagate(self, leaf: _Leaf, firing: Firing) -> list[Firing]:
        current = firing
        for path, parent, index in leaf.parents:
            combined = self._child_fired(leaf.automation.name, path, parent, index, current)
            if combined is None:
                return []
            current = combined
        self._note(f"{current.automation}: fires ({current.reason}) with events {list(current.events)}")
        return [current]

    def _child_fired(
        self, name: str, path: str, parent: CompoundTrigger | SequenceTrigger, index: int, child: Firing
    ) -> Firing | None:
        skey = (name, path, child.key)
        bucket = self.state.get(skey) or {"children": {}}
        children: dict[str, list[Any]] = bucket["children"]
        children[str(index)] = [child.at, list(child.events), child.triggering_event]
        latest = max(c[0] for c in children.values())
        if parent.within:
            for k in [k for k, c in children.items() if c[0] < latest - parent.within]:
                del children[k]
        where = f"{name} {path} [{child.key}]"
        if isinstance(parent, CompoundTrigger):
            ready = len(children) >= parent.require
            reason = f"{len(children)} of {len(parent.triggers)} triggers fired (require {parent.require})"
        else:
            order = [children.get(str(i)) for i in range(len(parent.triggers))]
            ready = all(o is not None for o in order) and all(
                a[0] <= b[0] for a, b in itertools.pairwise(order) if a is not None and b is not None
            )
            reason = "all triggers fired in order"
        if not ready:
            self._note(f"{where}: child {index} fired; waiting ({reason})")
            self._put(skey, bucket)
            return None
        self._drop(skey)
        parts = sorted(children.values(), key=lambda c: c[0])
        ids = tuple(dict.fromkeys(i for part in parts for i in part[1]))
        earliest = min(p[0] for p in parts)
        return Firing(
            _fid(name, path, child.key, *ids),
            name,
            path,
            child.key,
            latest,
            reason,
            ids,
            len(ids),
            (earliest, latest),
            child.triggering_event,
        )
