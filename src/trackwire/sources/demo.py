"""A demo source: a believable stream of ShotGrid-style events for a small show.

Shots move through statuses, tasks change hands, versions are created for review. Each event has the
shape of a ShotGrid ``EventLogEntry`` (the ``data`` is what shotgunEvents plugins would receive), so
the bundled example plugins read it exactly as they would read the real thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime
from typing import Any

from trackwire.core.event import Event, Ref
from trackwire.ports import Store

__all__ = ["DemoSource"]

STATUSES = ["wtg", "rdy", "ip", "rev", "fin"]
STEPS = ["Layout", "Anim", "Light", "Comp"]
ARTISTS = [(101, "Ada Park"), (102, "Bo Lindqvist"), (103, "Chen Wei"), (104, "Dana Okafor")]
PROJECT = {"type": "Project", "id": 70, "name": "Moonfall"}


class DemoSource:
    name = "demo"

    def __init__(self, rate: float = 5.0, shots: int = 12, seed: int | None = None) -> None:
        self.rate = rate
        self.shots = shots
        self.rng = random.Random(seed)
        self.status: dict[int, str] = {}

    def _entry(self, entry_id: int) -> dict[str, Any]:
        rng = self.rng
        shot_id = 1000 + rng.randrange(self.shots)
        user_id, user_name = rng.choice(ARTISTS)
        user = {"type": "HumanUser", "id": user_id, "name": user_name}
        shot = {"type": "Shot", "id": shot_id, "name": f"MF_{(shot_id - 1000 + 1) * 10:04d}"}
        roll = rng.random()
        if roll < 0.5:
            task_id = shot_id * 10 + rng.randrange(len(STEPS))
            old = self.status.get(task_id, "wtg")
            forward = STATUSES[min(STATUSES.index(old) + 1, len(STATUSES) - 1)]
            new = forward if forward != old and rng.random() < 0.8 else rng.choice([s for s in STATUSES if s != old])
            self.status[task_id] = new
            entity = {"type": "Task", "id": task_id, "name": STEPS[task_id % len(STEPS)]}
            event_type, attribute = "Shotgun_Task_Change", "sg_status_list"
            meta = {
                "type": "attribute_change",
                "attribute_name": attribute,
                "entity_type": "Task",
                "entity_id": task_id,
                "field_data_type": "status_list",
                "old_value": old,
                "new_value": new,
            }
        elif roll < 0.8:
            version_id = 5000 + entry_id
            entity = {
                "type": "Version",
                "id": version_id,
                "name": f"{shot['name']}_comp_v{entry_id % 40 + 1:03d}",
            }
            event_type, attribute = "Shotgun_Version_New", None
            meta = {"type": "new_entity", "entity_type": "Version", "entity_id": version_id}
        else:
            entity = shot
            old = self.status.get(shot_id, "wtg")
            new = rng.choice([s for s in STATUSES if s != old])  # ShotGrid logs no change to the same value
            self.status[shot_id] = new
            event_type, attribute = "Shotgun_Shot_Change", "sg_status_list"
            meta = {
                "type": "attribute_change",
                "attribute_name": attribute,
                "entity_type": "Shot",
                "entity_id": shot_id,
                "field_data_type": "status_list",
                "old_value": old,
                "new_value": new,
            }
        return {
            "type": "EventLogEntry",
            "id": entry_id,
            "event_type": event_type,
            "attribute_name": attribute,
            "meta": meta,
            "entity": entity,
            "user": user,
            "project": PROJECT,
            "session_uuid": None,
            "created_at": datetime.now(UTC),
        }

    def event(self, entry_id: int) -> Event:
        entry = self._entry(entry_id)
        meta = entry["meta"]
        return Event(
            source=self.name,
            source_id=str(entry_id),
            type=entry["event_type"],
            entity=Ref.from_json(entry["entity"]),
            project=Ref.from_json(entry["project"]),
            user=Ref.from_json(entry["user"]),
            attribute=entry["attribute_name"],
            old=meta.get("old_value"),
            new=meta.get("new_value"),
            occurred=entry["created_at"],
            data=entry,
        )

    async def run(self, store: Store, stop: asyncio.Event, appended: asyncio.Event) -> None:
        cursor = await asyncio.to_thread(store.get_cursor, self.name)
        next_id = int(cursor["last_id"]) + 1 if cursor else 1
        interval = 1.0 / self.rate
        while not stop.is_set():
            event = self.event(next_id)
            await asyncio.to_thread(store.append, [event], source=self.name, cursor={"last_id": next_id})
            appended.set()
            next_id += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval * self.rng.uniform(0.5, 1.5))
