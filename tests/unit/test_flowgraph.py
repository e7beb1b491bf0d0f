"""The run graph's layout: layers follow the flow left to right, joins sit after all their inputs,
cycles (a failure that loops back) neither hang nor lose an edge, and every node gets its state."""

from __future__ import annotations

from typing import Any

from trackwire.web.flowgraph import layout

GRAPH: dict[str, Any] = {
    "events": {"go": None, "a.done": None, "b.done": None, "join": {"all": ["a.done", "b.done"]}, "again": None},
    "steps": {
        "a": {"triggers": {"success": ["a.done"]}},
        "b": {"triggers": {"success": ["b.done"], "failure": ["again"]}},
        "c": {"triggers": {}},
    },
    "assocs": [
        {"event": "go", "target": "a", "kind": "step", "delay": 0},
        {"event": "go", "target": "b", "kind": "step", "delay": 0},
        {"event": "join", "target": "c", "kind": "step", "delay": 10},
        {"event": "again", "target": "b", "kind": "step", "delay": 0},
    ],
}


def test_layers_follow_the_flow_and_a_join_comes_after_all_its_inputs() -> None:
    g = layout(GRAPH, None)
    nodes = {n.id: n for n in g.nodes}
    assert nodes["e:go"].layer == 0
    assert nodes["s:a"].layer == nodes["s:b"].layer == 1
    assert nodes["e:join"].layer > max(nodes["e:a.done"].layer, nodes["e:b.done"].layer)
    assert nodes["s:c"].layer == nodes["e:join"].layer + 1
    assert nodes["e:join"].kind == "join" and "all of 2" in nodes["e:join"].lines
    assert all(n.x + n.w <= g.width and n.y + n.h <= g.height for n in g.nodes)
    delayed = next(e for e in g.edges if e.source == "e:join")
    assert delayed.label == "after 10.0 s"


def test_a_cycle_is_drawn_as_a_back_edge_and_no_node_overlaps_another() -> None:
    g = layout(GRAPH, None)
    back = [e for e in g.edges if e.back]
    assert [(e.source, e.target) for e in back] == [("e:again", "s:b")]
    assert len(g.edges) == 9 and all(e.path.startswith("M") for e in g.edges)
    boxes = [(n.x, n.y, n.x + n.w, n.y + n.h) for n in g.nodes]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_nodes_carry_their_state_in_the_sequence() -> None:
    seq = {
        "events": {"go": 1.0, "a.done": 2.0},
        "steps": {
            "a": {"status": "success", "attempt": 1, "started": 1.0, "finished": 1.25, "result": "ok"},
            "b": {"status": "failure", "attempt": 2, "started": 1.0, "finished": 3.0, "error": "boom"},
        },
    }
    nodes = {n.id: n for n in layout(GRAPH, seq).nodes}
    assert nodes["s:a"].status == "success" and nodes["s:a"].lines[1] == "success · #1 · 250 ms"
    assert nodes["s:b"].status == "failure" and "boom" in nodes["s:b"].title
    assert nodes["s:c"].status == "pending" and nodes["s:c"].lines[1] == "not reached"
    assert nodes["e:go"].status == "raised" and nodes["e:join"].status == "waiting"


def test_an_association_to_an_undeclared_name_still_gets_a_node() -> None:
    graph = {"events": {"go": None}, "steps": {}, "assocs": [{"event": "go", "target": "x", "kind": "step"}]}
    assert {n.id for n in layout(graph, None).nodes} == {"e:go", "s:x"}


def test_a_long_chain_is_laid_out_in_linear_layers() -> None:
    events = {f"e{i}": None for i in range(300)}
    steps = {f"s{i}": {"triggers": {"success": [f"e{i + 1}"]}} for i in range(299)}
    assocs = [{"event": f"e{i}", "target": f"s{i}", "kind": "step", "delay": 0} for i in range(299)]
    g = layout({"events": events, "steps": steps, "assocs": assocs}, None)
    assert max(n.layer for n in g.nodes) == 598
