"""The demo source's events look like ShotGrid's: a status change always changes the status."""

from __future__ import annotations

from trackwire.sources.demo import DemoSource


def test_every_status_change_moves_to_a_different_status_and_follows_the_previous_one() -> None:
    source = DemoSource(seed=3)
    last: dict[tuple[str, int], str] = {}
    changes = 0
    for entry_id in range(1, 3001):
        entry = source._entry(entry_id)
        meta = entry["meta"]
        if meta["type"] != "attribute_change":
            continue
        changes += 1
        key = (meta["entity_type"], meta["entity_id"])
        assert meta["old_value"] != meta["new_value"], entry
        assert meta["old_value"] == last.get(key, "wtg"), entry
        last[key] = meta["new_value"]
    assert changes > 1000
