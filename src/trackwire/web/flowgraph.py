"""A run's flow drawn as a layered graph: pure geometry for the dashboard's server-side SVG.

Nodes are the flow's events (pills; an event with an expression is a join, drawn with its ``all of`` or
``any of``) and steps (boxes coloured by their state in one sequence). Edges are associations (event to
step or event, with their delay), triggers (step to event, labelled with the status) and the inputs of
joins. Layout is the classic layered one: edges that close a cycle are set aside, every node goes one
layer right of its furthest predecessor, and a few barycentre sweeps order each layer to uncross edges.
No JavaScript: the page draws what :func:`layout` returns.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Edge", "Graph", "Node", "layout"]

STEP_W, STEP_H = 176, 58
EVENT_W, EVENT_H = 156, 34
GAP_X, GAP_Y = 70, 22
MARGIN = 16
SWEEPS = 4


@dataclass
class Node:
    id: str
    kind: str  # "step" | "event" | "join"
    name: str
    status: str  # steps: pending|ready|active|success|failure (+ skipped); events: raised|waiting
    lines: list[str] = field(default_factory=list)
    title: str = ""
    layer: int = 0
    order: float = 0.0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Edge:
    source: str
    target: str
    kind: str  # "assoc" | "trigger" | "input"
    label: str = ""
    back: bool = False
    path: str = ""
    lx: float = 0.0
    ly: float = 0.0
    lit: bool = False  # the edge has fired in this sequence


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float


def _expr_inputs(expr: Any) -> tuple[str, list[str]]:
    """(``all`` | ``any``, the event names an expression reads)."""
    names: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value not in names:
                names.append(value)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(expr)
    op = "any" if isinstance(expr, dict) and next(iter(expr), "") in ("any", "or") else "all"
    return op, names


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _step_node(name: str, info: dict[str, Any] | None) -> Node:
    if info is None:
        return Node(f"s:{name}", "step", name, "pending", [name, "not reached"], f"step {name}: not reached")
    status = str(info.get("status") or "pending")
    started, finished = info.get("started"), info.get("finished")
    took = _seconds(finished - started) if started is not None and finished is not None else ""
    second = status + (" (skipped)" if info.get("skipped") else "")
    if info.get("attempt"):
        second += f" · #{info['attempt']}"
    if took:
        second += f" · {took}"
    title = f"step {name}: {second}"
    if status == "failure" and info.get("error"):
        title += f"\n{info['error']}"
    elif info.get("result") is not None:
        title += f"\nresult: {str(info['result'])[:300]}"
    node = Node(f"s:{name}", "step", name, status, [name, second], title)
    if info.get("skipped"):
        node.status = f"{status} skipped"
    return node


def layout(graph: dict[str, Any], seq: dict[str, Any] | None) -> Graph:
    """Place the nodes of a run view's ``graph`` with their state in the sequence ``seq``
    (``{"events": {name: at}, "steps": {name: step json}}``, or None for the bare flow)."""
    raised: dict[str, Any] = dict((seq or {}).get("events", {}))
    steps: dict[str, Any] = dict((seq or {}).get("steps", {}))
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    events: dict[str, Any] = dict(graph.get("events", {}))
    for name, expr in events.items():
        state = "raised" if name in raised else "waiting"
        if expr is None:
            nodes[f"e:{name}"] = Node(f"e:{name}", "event", name, state, [name], f"event {name}: {state}")
            continue
        op, inputs = _expr_inputs(expr)
        label = f"{op} of {len(inputs)}"
        nodes[f"e:{name}"] = Node(f"e:{name}", "join", name, state, [name, label], f"event {name} ({label}): {state}")
        for source in inputs:
            edges.append(Edge(f"e:{source}", f"e:{name}", "input", op, lit=source in raised))
    for name, spec in dict(graph.get("steps", {})).items():
        nodes[f"s:{name}"] = _step_node(name, steps.get(name))
        for status, targets in dict(spec.get("triggers", {})).items():
            for target in targets:
                edges.append(Edge(f"s:{name}", f"e:{target}", "trigger", status, lit=target in raised))
    for assoc in graph.get("assocs", ()):
        target = f"{'s' if assoc['kind'] == 'step' else 'e'}:{assoc['target']}"
        delay = float(assoc.get("delay") or 0)
        label = f"after {_seconds(delay)}" if delay else ""
        edges.append(Edge(f"e:{assoc['event']}", target, "assoc", label, lit=assoc["event"] in raised))
    for edge in edges:  # names a definition never declared still get a node (never silently dropped)
        for end in (edge.source, edge.target):
            if end not in nodes:
                kind, _, name = end.partition(":")
                nodes[end] = Node(end, "event" if kind == "e" else "step", name, "waiting", [name], name)
    _place(list(nodes.values()), edges)
    return Graph(
        list(nodes.values()),
        edges,
        max((n.x + n.w for n in nodes.values()), default=0) + MARGIN,
        max((n.y + n.h for n in nodes.values()), default=0) + MARGIN,
    )


def _place(nodes: list[Node], edges: list[Edge]) -> None:
    by_id = {n.id: n for n in nodes}
    out: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        if e.source != e.target:
            out[e.source].append(e.target)
        else:
            e.back = True
    # Edges closing a cycle (found by a depth-first walk from the nodes nothing points to) are set aside.
    incoming = {e.target for e in edges if e.source != e.target}
    roots = [n.id for n in nodes if n.id not in incoming] + [n.id for n in nodes]
    colour: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in roots:
        if root in colour:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        colour[root] = 1
        while stack:
            node, i = stack[-1]
            children = out[node]
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if colour.get(child) == 1:
                    back.add((node, child))
                elif child not in colour:
                    colour[child] = 1
                    stack.append((child, 0))
            else:
                colour[node] = 2
                stack.pop()
    forward: dict[str, list[str]] = defaultdict(list)
    preds: dict[str, list[str]] = defaultdict(list)
    indegree: dict[str, int] = {n.id: 0 for n in nodes}
    for e in edges:
        if e.source == e.target:
            continue
        if (e.source, e.target) in back:
            e.back = True
            continue
        forward[e.source].append(e.target)
        preds[e.target].append(e.source)
        indegree[e.target] += 1
    # Longest-path layering in topological order.
    ready = [n.id for n in nodes if indegree[n.id] == 0]
    while ready:
        current = ready.pop()
        for child in forward[current]:
            by_id[child].layer = max(by_id[child].layer, by_id[current].layer + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    layers: dict[int, list[Node]] = defaultdict(list)
    for n in nodes:
        layers[n.layer].append(n)
    for members in layers.values():
        for i, n in enumerate(members):
            n.order = i
    succs = forward
    for sweep in range(SWEEPS):
        keys = sorted(layers) if sweep % 2 == 0 else sorted(layers, reverse=True)
        for key in keys:
            members = layers[key]
            for n in members:
                near = preds[n.id] if sweep % 2 == 0 else succs[n.id]
                if near:
                    n.order = sum(by_id[m].order for m in near) / len(near)
            members.sort(key=lambda n: n.order)
            for i, n in enumerate(members):
                n.order = i
    # Coordinates: layers left to right, each layer centred vertically.
    column = STEP_W + GAP_X
    tallest = max((sum(_size(n)[1] + GAP_Y for n in m) for m in layers.values()), default=0)
    for key, members in layers.items():
        height = sum(_size(n)[1] + GAP_Y for n in members)
        y = MARGIN + (tallest - height) / 2
        for n in members:
            n.w, n.h = _size(n)
            n.x = MARGIN + key * column + (STEP_W - n.w) / 2
            n.y = y
            y += n.h + GAP_Y
    for e in edges:
        _route(e, by_id[e.source], by_id[e.target])


def _size(n: Node) -> tuple[float, float]:
    return (STEP_W, STEP_H) if n.kind == "step" else (EVENT_W, EVENT_H if n.kind == "event" else STEP_H - 8)


def _route(e: Edge, a: Node, b: Node) -> None:
    if e.back or b.layer <= a.layer:
        # back to an earlier layer (or a self loop): leave below the source, come in below the target
        x1, y1 = a.cx, a.y + a.h
        x2, y2 = b.cx, b.y + b.h
        drop = max(y1, y2) + 30
        e.path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{drop:.1f} {x2:.1f},{drop:.1f} {x2:.1f},{y2 + 6:.1f}"
        e.lx, e.ly = (x1 + x2) / 2, drop - 4
        return
    x1, y1 = a.x + a.w, a.cy
    x2, y2 = b.x - 6, b.cy
    bend = max(24.0, (x2 - x1) / 2)
    e.path = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    e.lx, e.ly = (x1 + x2) / 2, (y1 + y2) / 2 - 4
