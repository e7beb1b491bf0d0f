"""Differential check: shotgunEvents' example plugins on shotgunEvents' daemon and on Trackwire.

    .venv/bin/python scripts/compare_shotgunevents.py --shotgunevents ~/src/shotgunEvents/src
    SHOTGUNEVENTS_SRC=~/src/shotgunEvents/src .venv/bin/python scripts/compare_shotgunevents.py

The checkout (its ``src`` folder) is only read: its daemon and its ``examplePlugins`` folder are copied
into a temporary folder for each run, never into this repository.

Each daemon runs once against its own fake ShotGrid (``tests/fakes/shotgrid_server.py``, the real JSON
wire protocol, answered here also for ``schema_field_read`` and dotted ``link.Type.field`` paths),
seeded identically: a project, a sequence, shots, an asset, tasks, versions, notes, statuses, and a
scripted list of ``EventLogEntry`` rows that match the examples' ``matchEvents`` (ShotGrid's
``attribute_change`` / ``new_entity`` meta shapes). Every example reads its script name and key from
``SGDAEMON_<X>_NAME`` / ``_KEY``: all are set, and each script is known to the fake. The plugins'
own writes create no new events (``log_events=False``), so both runs see the same events.

Three plugin folders, in this order: a probe (counts ``registerCallback`` calls per plugin, by wrapping
the daemon's own registration method from its ``registerCallbacks(reg)``), the examples, and a marker
that notes when the last event reached it. When every event is handled the daemon is stopped, and the
fake's tables (the site after the callbacks' writes) are kept.

Printed: per plugin, loaded or not, callbacks registered, callback errors and log lines in each daemon;
then the site-state difference, per entity type, id and field; then a verdict. Exit code 0 when the
sites are identical and every plugin loaded and registered the same in both daemons, 1 otherwise.
Date-time values written by a callback from the clock (not from the event) are compared as "a time
of this run".

The verdict runs Trackwire with ``concurrency = 1`` (``--concurrency``): events in log order across
entities, as shotgunEvents runs them. Then Trackwire runs again with 4 entities at once (``--parallel``,
0 to skip), for information: what differs there comes from plugins whose result depends on the order of
different entities' events (the examples ``version_finaled`` and ``sharedStateA/B/C`` do).

``--plugins DIR`` (repeatable) runs your own plugin folders instead of the examples, with
``--events FILE``: a JSON list of ``{"event_type", "entity", "attribute_name", "meta"}`` objects, and
``--seed FILE``: a JSON object ``{entity_type: [records...]}`` (and optionally ``--schema FILE``:
``{entity_type: {field: data_type}}``, plus ``--scripts NAME=KEY`` for the scripts they use).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.shotgrid_server import ApiError, FakeShotgrid
from tests.fakes.shotgunevents_conf import shotgunevents_conf

from trackwire.store.sqlite import SqliteStore

# -- the site --------------------------------------------------------------------------------------

# The scripts the examples authenticate with (their SGDAEMON_<X>_NAME / _KEY variables).
EXAMPLE_SCRIPTS = [
    "ASSIGNTOPROJECT", "CALCFIELD", "CALCSUMMARIES", "CALCULATECUTLENGTH", "CNFVF", "CONVERTCURRENCY",
    "DATESTAMP", "ESUTS", "FIELDTOFIELD", "INITENTITY", "INITSHOTHANDLES", "LINKSHOTTOSEQUENCE", "LOGARGS",
    "SHAREDSTATEA", "SHAREDSTATEB", "SHAREDSTATEC", "TASKSAPPROVED", "TSUES", "TSUVS", "USWNIC", "UTFF",
    "UTTE", "UVCV", "UVTF", "VERSIONFINALED", "VSUTS",
]  # fmt: skip

TASK_STATUSES = ["wtg", "rdy", "ip", "rev", "apr", "fin", "na", "hld"]
VERSION_STATUSES = ["na", "rev", "vwd", "apr", "fna", "fin", "ip"]

# entity type -> field -> (data_type, properties). Enough of ShotGrid's default schema for the examples'
# default args (each validates its fields' types at registration).
SCHEMA: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "Project": {
        "id": ("number", {}),
        "name": ("text", {}),
        "sg_description": ("text", {}),
        "users": ("multi_entity", {"valid_types": ["HumanUser"]}),
    },
    "HumanUser": {
        "firstname": ("text", {}),
        "name": ("text", {}),
        "projects": ("multi_entity", {"valid_types": ["Project"]}),
    },
    "Group": {"users": ("multi_entity", {"valid_types": ["HumanUser"]})},
    "Step": {"short_name": ("text", {}), "code": ("text", {})},
    "Sequence": {
        "code": ("text", {}),
        "project": ("entity", {"valid_types": ["Project"]}),
        "sg_status_list": ("status_list", {"valid_values": ["wtg", "ip", "fin", "na"]}),
    },
    "Shot": {
        "code": ("text", {}),
        "description": ("text", {}),
        "project": ("entity", {"valid_types": ["Project"]}),
        "sg_sequence": ("entity", {"valid_types": ["Sequence"]}),
        "sg_status_list": ("status_list", {"valid_values": ["wtg", "ip", "hld", "fin", "na"]}),
        "sg_cut_in": ("number", {}),
        "sg_cut_out": ("number", {}),
        "sg_cut_duration": ("number", {}),
        "sg_cut_length_r_t": ("timecode", {}),
        "sg_cut_length_tc": ("timecode", {}),
        "sg_head_in": ("number", {}),
        "sg_tail_out": ("number", {}),
        "smart_head_in": ("number", {}),
        "smart_head_duration": ("number", {}),
        "smart_tail_duration": ("number", {}),
        "sg_finaled_on": ("date", {}),
        "sg_vfx_status": ("list", {"valid_values": ["In Progress", "Final Approved"]}),
        "sg_shot_type": ("list", {"valid_values": ["VFX", "Plate"]}),
    },
    "Asset": {
        "code": ("text", {}),
        "description": ("text", {}),
        "project": ("entity", {"valid_types": ["Project"]}),
        "sg_source_id": ("number", {}),
        "sg_status_list": ("status_list", {"valid_values": ["wtg", "ip", "hld", "fin", "na"]}),
        "task_template": ("entity", {"valid_types": ["TaskTemplate"]}),
        "sg_asset_type": ("list", {"valid_values": ["Character", "Prop"]}),
    },
    "Task": {
        "content": ("text", {}),
        "entity": ("entity", {"valid_types": ["Shot", "Asset"]}),
        "project": ("entity", {"valid_types": ["Project"]}),
        "step": ("entity", {"valid_types": ["Step"]}),
        "sg_status_list": ("status_list", {"valid_values": TASK_STATUSES}),
        "task_assignees": ("multi_entity", {"valid_types": ["HumanUser", "Group"]}),
        "upstream_tasks": ("multi_entity", {"valid_types": ["Task"]}),
        "downstream_tasks": ("multi_entity", {"valid_types": ["Task"]}),
        "duration": ("duration", {}),
        "start_date": ("date", {}),
        "due_date": ("date", {}),
        "task_template": ("entity", {"valid_types": ["TaskTemplate"]}),
        "template_task": ("entity", {"valid_types": ["Task"]}),
    },
    "TaskTemplate": {
        "code": ("text", {}),
        "entity_type": ("entity_type", {}),
        "sg_plugins": ("list", {"valid_values": ["Update linked entities", "N/A"]}),
    },
    "Version": {
        "code": ("text", {}),
        "description": ("text", {}),
        "entity": ("entity", {"valid_types": ["Shot", "Asset"]}),
        "project": ("entity", {"valid_types": ["Project"]}),
        "sg_task": ("entity", {"valid_types": ["Task"]}),
        "user": ("entity", {"valid_types": ["HumanUser"]}),
        "sg_status_list": ("status_list", {"valid_values": VERSION_STATUSES}),
        "client_approved_at": ("date_time", {}),
        "sg_first_frame": ("number", {}),
        "sg_last_frame": ("number", {}),
        "frame_count": ("number", {}),
        "sg_cut_in": ("number", {}),
        "sg_cut_out": ("number", {}),
        "sg_cut_length": ("number", {}),
        "sg_head_duration": ("number", {}),
        "sg_tail_duration": ("number", {}),
        "sg_timecode_cut_in": ("text", {}),
        "sg_timecode_cut_out": ("text", {}),
        "sg_timecode_in": ("text", {}),
        "sg_timecode_out": ("text", {}),
        "created_at": ("date_time", {}),
    },
    "Note": {
        "content": ("text", {}),
        "subject": ("text", {}),
        "note_links": ("multi_entity", {"valid_types": ["Version", "Shot", "Asset"]}),
        "tasks": ("multi_entity", {"valid_types": ["Task"]}),
        "sg_status_list": ("status_list", {"valid_values": ["opn", "ip", "clsd"]}),
        "sg_note_type": ("list", {"valid_values": ["Client", "Internal"]}),
        "user": ("entity", {"valid_types": ["HumanUser"]}),
        "addressings_to": ("multi_entity", {"valid_types": ["HumanUser"]}),
        "project": ("entity", {"valid_types": ["Project"]}),
    },
    "Status": {
        "code": ("text", {}),
        "sg_version_status_mapping": ("text", {}),
        "sg_task_status_mapping": ("text", {}),
    },
    "CustomEntity02": {
        "code": ("text", {}),
        "sg_base_amount": ("currency", {}),
        "sg_amount": ("currency", {}),
        "sg_exchange_rate": ("list", {"valid_values": ["1.0", "1.1", "0.9"]}),
        "sg_status_list": ("status_list", {"valid_values": ["ip", "na", "fin"]}),
    },
    "EventLogEntry": {"description": ("text", {}), "event_type": ("text", {})},
}

PROJECT = {"type": "Project", "id": 70, "name": "Moonfall"}
ADA = {"type": "HumanUser", "id": 1, "name": "Ada Lovelace"}
BOB = {"type": "HumanUser", "id": 2, "name": "Bob Marley"}


def _link(entity_type: str, entity_id: int, name: str) -> dict[str, Any]:
    return {"type": entity_type, "id": entity_id, "name": name}


SEQ = _link("Sequence", 1, "ABC")
SH1, SH2, SH3, SH4 = (
    _link("Shot", 1, "ABC0010"),
    _link("Shot", 2, "ABC0020"),
    _link("Shot", 3, "XYZ0030"),
    _link("Shot", 4, "ABC0040"),
)
ASSET = _link("Asset", 1, "hero")
ASSET2 = _link("Asset", 2, "rock")
T1, T2, T3, T4, T5 = (
    _link("Task", 1, "Anim"),
    _link("Task", 2, "Comp"),
    _link("Task", 3, "Model"),
    _link("Task", 4, "Light"),
    _link("Task", 5, "Art"),
)
V1, V2, V3, V4 = (
    _link("Version", 1, "ABC0010_anim_v001"),
    _link("Version", 2, "ABC0010_anim_v002"),
    _link("Version", 3, "ABC0020_light_v001"),
    _link("Version", 4, "hero_art_v001"),
)
SEEDED_AT = "2026-01-05T10:00:00Z"


def seed_examples(fake: FakeShotgrid) -> None:
    """The site the example plugins work on: every record is in the state its event describes."""
    add = fake.add_entity
    add("Project", id=70, name="Moonfall", sg_description=None, users=[ADA])
    add("Project", id=97, name="Templates", sg_description=None, users=[])
    add("HumanUser", id=1, name="Ada Lovelace", firstname="Ada", projects=[PROJECT])
    add("HumanUser", id=2, name="Bob Marley", firstname="Bob", projects=[])
    add("HumanUser", id=3, name="Cy Twombly", firstname="Cy", projects=[])
    add("Group", id=1, name="Lighters", users=[_link("HumanUser", 3, "Cy Twombly")])
    add("Step", id=1, code="Art", short_name="ART")
    add("Step", id=2, code="Animation", short_name="ANM")
    add("Sequence", id=1, code="ABC", project=PROJECT, sg_status_list="ip")
    shot = {"project": PROJECT, "sg_sequence": None, "sg_status_list": "ip", "description": None}
    add("Shot", id=1, code="ABC0010", sg_cut_in=1009, sg_cut_out=1056, sg_cut_duration=48, **shot)
    add("Shot", id=2, code="ABC0020", sg_cut_in=1009, sg_cut_out=1032, sg_cut_duration=24, **shot)
    add("Shot", id=3, code="XYZ0030", sg_cut_in=None, sg_cut_out=None, sg_cut_duration=None, **shot)
    add("Shot", id=4, code="ABC0040", sg_cut_in=None, sg_cut_out=None, sg_cut_duration=None, **shot)
    fake.tables["Shot"][2]["sg_status_list"] = "fin"
    for record in fake.tables["Shot"].values():
        record.update(sg_vfx_status="In Progress", sg_shot_type="VFX", sg_finaled_on=None, sg_cut_length_tc=None)
    add("Asset", id=1, code="hero", project=PROJECT, sg_source_id=12, sg_status_list="hld", description=None)
    add("Asset", id=2, code="rock", project=PROJECT, sg_source_id=30, sg_status_list="ip", description=None)
    task = {"project": PROJECT, "duration": 480, "upstream_tasks": [], "downstream_tasks": []}
    add("Task", id=1, content="Anim", entity=SH1, step=_link("Step", 2, "Animation"), sg_status_list="fin", **task)
    add("Task", id=2, content="Comp", entity=SH1, step=_link("Step", 2, "Animation"), sg_status_list="wtg", **task)
    add("Task", id=3, content="Model", entity=ASSET, step=_link("Step", 1, "Art"), sg_status_list="ip", **task)
    add("Task", id=4, content="Light", entity=SH2, step=_link("Step", 2, "Animation"), sg_status_list="na", **task)
    add("Task", id=5, content="Art", entity=ASSET, step=_link("Step", 1, "Art"), sg_status_list="rev", **task)
    tasks = fake.tables["Task"]
    tasks[1].update(downstream_tasks=[T2], task_assignees=[ADA, BOB, _link("Group", 1, "Lighters")])
    tasks[2].update(upstream_tasks=[T1], task_assignees=[ADA])
    tasks[3].update(task_assignees=[BOB])
    tasks[4].update(task_assignees=[ADA])
    tasks[5].update(task_assignees=[BOB])
    version = {"project": PROJECT, "description": None, "client_approved_at": None, "created_at": SEEDED_AT}
    frames = {"sg_first_frame": 1001, "sg_last_frame": 1064, "frame_count": 64, "sg_head_duration": 8}
    add("Version", id=1, code=V1["name"], entity=SH1, sg_task=T1, user=ADA, sg_status_list="rev", **version, **frames)
    add("Version", id=2, code=V2["name"], entity=SH1, sg_task=T1, user=ADA, sg_status_list="fna", **version)
    add("Version", id=3, code=V3["name"], entity=SH2, sg_task=None, user=BOB, sg_status_list="apr", **version)
    add("Version", id=4, code=V4["name"], entity=ASSET, sg_task=None, user=BOB, sg_status_list="rev", **version)
    versions = fake.tables["Version"]
    versions[1].update(sg_tail_duration=8, sg_cut_in=None, sg_cut_out=None)
    versions[1]["description"] = "Please tighten the arc on frame 1030."
    versions[2]["created_at"] = "2026-01-06T10:00:00Z"
    versions[4]["description"] = "Turntable for review."
    note = {"project": PROJECT, "sg_status_list": "opn", "user": ADA}
    add("Note", id=1, subject="arc", content="Tighten the arc", note_links=[V1, SH1], tasks=[T1], **note)
    add("Note", id=2, subject="rock", content="Looks good", note_links=[V4], tasks=[T5], **note)
    add("Status", id=1, code="fin", sg_version_status_mapping="apr", sg_task_status_mapping=None)
    add("Status", id=2, code="rev", sg_version_status_mapping="rev", sg_task_status_mapping="rev")
    add("Status", id=3, code="apr", sg_version_status_mapping=None, sg_task_status_mapping="fin")
    add("Status", id=4, code="ip", sg_version_status_mapping=None, sg_task_status_mapping=None)
    add("Status", id=5, code="fna", sg_version_status_mapping=None, sg_task_status_mapping="fin")
    add("CustomEntity02", id=1, code="Hotel", sg_base_amount=120.0, sg_amount=None, sg_exchange_rate="1.1")
    add("CustomEntity02", id=2, code="Taxi", sg_base_amount=30.0, sg_amount=None, sg_exchange_rate="0.9")
    fake.tables["CustomEntity02"][1]["sg_status_list"] = "ip"
    fake.tables["CustomEntity02"][2]["sg_status_list"] = "na"
    add("TaskTemplate", id=1, code="Asset basic", sg_plugins="Update linked entities")
    fake.tables["TaskTemplate"][1]["entity_type"] = "Asset"  # (a keyword of add_entity)


def change(
    entity: dict[str, Any], attribute: str, old: Any, new: Any, data_type: str = "text", **extra: Any
) -> dict[str, Any]:
    """One ``Shotgun_<Type>_Change`` event in ShotGrid's attribute_change shape."""
    meta = {
        "type": "attribute_change",
        "attribute_name": attribute,
        "entity_type": entity["type"],
        "entity_id": entity["id"],
        "field_data_type": data_type,
        "old_value": old,
        "new_value": new,
        **extra,
    }
    if data_type == "multi_entity":
        meta.pop("old_value")
        meta.pop("new_value")
    return {
        "event_type": f"Shotgun_{entity['type']}_Change",
        "entity": entity,
        "attribute_name": attribute,
        "meta": meta,
    }


def new(entity: dict[str, Any]) -> dict[str, Any]:
    """One ``Shotgun_<Type>_New`` event in ShotGrid's new_entity shape."""
    meta = {"type": "new_entity", "entity_type": entity["type"], "entity_id": entity["id"]}
    return {"event_type": f"Shotgun_{entity['type']}_New", "entity": entity, "attribute_name": None, "meta": meta}


def example_events() -> list[dict[str, Any]]:
    """The scripted events: each example's matchEvents is hit at least once, on several entities."""
    return [
        # assign_to_project: Bob (direct) and Cy (through a group) join Moonfall
        change(T1, "task_assignees", None, None, "multi_entity", added=[BOB, _link("Group", 1, "Lighters")]),
        # calc_field: Project id change (its default args watch 'id')
        change(PROJECT, "id", 69, 70, "number"),
        # calc_summaries: the project's sum of Asset source ids and Shot cut ins
        change(ASSET, "sg_source_id", 10, 12, "number"),
        change(SH1, "sg_cut_in", 1001, 1009, "number"),
        # calculate_cut_length, update_timecode_from_frames
        change(SH1, "sg_cut_out", 1050, 1056, "number"),
        change(SH2, "sg_cut_duration", 20, 24, "number"),
        # convert_currency (one ignored status)
        change(_link("CustomEntity02", 1, "Hotel"), "sg_base_amount", 100.0, 120.0, "currency"),
        change(_link("CustomEntity02", 2, "Taxi"), "sg_exchange_rate", "1.0", "0.9", "list"),
        # create_note_from_version_field, update_status_when_note_is_created
        change(V1, "description", None, "Please tighten the arc on frame 1030."),
        change(V4, "description", None, "Turntable for review."),
        new(_link("Note", 1, "arc")),
        new(_link("Note", 2, "rock")),
        # datestamp (Shot finaled), version_finaled
        change(SH2, "sg_status_list", "ip", "fin", "status_list"),
        change(V2, "sg_status_list", "rev", "fna", "status_list"),
        # entity_status_update_task_status: an asset on hold
        change(ASSET, "sg_status_list", "ip", "hld", "status_list"),
        # field_to_field, task_status_update_*, tasks_approved
        change(T4, "sg_status_list", "ip", "na", "status_list"),
        change(T1, "sg_status_list", "ip", "fin", "status_list"),
        change(T5, "sg_status_list", "ip", "rev", "status_list"),
        # init_entity, init_shot_handles
        new(ASSET2),
        new(SH3),
        new(SH4),
        # link_shot_to_sequence
        change(SH1, "code", "SH0010", "ABC0010"),
        change(SH3, "code", "SH0030", "XYZ0030"),
        change(SH4, "code", "SH0040", "ABC0040"),
        # update_task_template_entities
        change(_link("TaskTemplate", 1, "Asset basic"), "sg_plugins", None, "Update linked entities", "list"),
        # update_timecode_values, update_version_cut_values
        change(V1, "sg_first_frame", 1000, 1001, "number"),
        change(V1, "sg_head_duration", 0, 8, "number"),
        # update_version_task_field
        change(V4, "entity", None, ASSET, "entity"),
        change(T5, "task_assignees", None, None, "multi_entity", added=[BOB], removed=[]),
        # version_status_update_task_status
        change(V3, "sg_status_list", "rev", "apr", "status_list"),
        change(V1, "sg_status_list", "ip", "rev", "status_list"),
    ]


# -- the fake site, with the schema and dotted paths -----------------------------------------------


class SchemaShotgrid(FakeShotgrid):
    """The fake site, plus ``schema_field_read``/``schema_entity_read`` and ``link.Type.field`` paths."""

    def __init__(self, schema: dict[str, dict[str, tuple[str, dict[str, Any]]]], scripts: dict[str, str]) -> None:
        super().__init__(scripts, log_events=False)
        self.schema = schema
        self.writers: dict[str, set[str]] = {}  # "Type id field" -> the scripts that wrote it

    def handle(self, body: bytes) -> tuple[int, Any]:
        try:
            request = json.loads(body)
            method = request["method_name"]
            params = request.get("params") or []
        except (ValueError, KeyError, TypeError):
            return super().handle(body)
        if method in ("create", "update", "batch") and len(params) > 1:
            self._note_writes(params[0].get("script_name"), params[1] if method == "batch" else [params[1]])
        if method not in ("schema_field_read", "schema_entity_read"):
            return super().handle(body)
        self.calls[method] += 1
        try:
            self._authenticate(params[0] if params and isinstance(params[0], dict) else {})
            args = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
            if method == "schema_entity_read":
                return 200, {"results": {t: {"name": {"value": t, "editable": False}} for t in self.schema}}
            return 200, {"results": self._schema_fields(str(args.get("type")), args.get("field_name"))}
        except ApiError as exc:
            return 200, {"exception": True, "message": str(exc), "error_code": exc.code}

    def _schema_fields(self, entity_type: str, field_name: Any) -> dict[str, Any]:
        fields = self.schema.get(entity_type)
        if fields is None:
            raise ApiError(f"API schema_field_read() Entity type {entity_type!r} does not exist", 103)
        if field_name is not None and field_name not in fields:
            raise ApiError(f"API schema_field_read() {entity_type}.{field_name} doesn't exist", 103)
        names = [field_name] if field_name is not None else list(fields)
        out = {}
        for name in names:
            data_type, props = fields[name]
            properties: dict[str, Any] = {"default_value": {"value": None, "editable": False}}
            for key, value in props.items():
                properties[key] = {"value": value, "editable": True}
            out[name] = {
                "data_type": {"value": data_type, "editable": False},
                "entity_type": {"value": entity_type, "editable": False},
                "name": {"value": name.replace("sg_", "").replace("_", " ").title(), "editable": True},
                "description": {"value": "", "editable": True},
                "editable": {"value": True, "editable": False},
                "mandatory": {"value": False, "editable": False},
                "unique": {"value": False, "editable": False},
                "visible": {"value": True, "editable": False},
                "properties": properties,
            }
        return out

    def _note_writes(self, script: Any, requests: Any) -> None:
        with self.lock:
            for request in requests if isinstance(requests, list) else []:
                entity = f"{request.get('type')} {request.get('id') or 'new'}"
                for item in request.get("fields") or []:
                    self.writers.setdefault(f"{entity} {item.get('field_name')}", set()).add(str(script))

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        """Also ``link.Type.field`` (a field of the linked entity), as ShotGrid allows on a single-entity link."""
        fields = args.get("fields") or []
        deep = [f for f in fields if "." in str(f.get("field_name"))]
        out = super()._update({**args, "fields": [f for f in fields if f not in deep]})
        record = self.tables.get(str(args.get("type")), {}).get(int(args.get("id") or 0), {})
        for item in deep:
            link_field, entity_type, name = str(item["field_name"]).split(".", 2)
            link = record.get(link_field)
            target = self.tables.get(entity_type, {}).get(int(link.get("id") or 0)) if isinstance(link, dict) else None
            if target is None or link.get("type") != entity_type:  # type: ignore[union-attr]
                raise ApiError(f"API update() cannot set {item['field_name']}: no linked {entity_type}", 103)
            target[name] = item["value"]
            out[item["field_name"]] = item["value"]
        return out

    def _resolve(self, record: dict[str, Any], path: str) -> list[Any]:
        """The value(s) at ``link.Type.field[.Type.field...]`` (several through a multi-entity link)."""
        parts = path.split(".")
        values: list[Any] = [record]
        name = parts[0]
        rest = parts[1:]
        values = [record.get(name)]
        while rest:
            entity_type, name, rest = rest[0], rest[1], rest[2:]
            found = []
            for value in values:
                links = value if isinstance(value, list) else [value]
                for link in links:
                    if isinstance(link, dict) and link.get("type") == entity_type:
                        target = self.tables.get(entity_type, {}).get(int(link.get("id") or 0))
                        if target is not None:
                            found.append(target.get(name) if name not in ("type", "id") else target[name])
            values = found
        return values

    def _test(self, record: dict[str, Any], condition: dict[str, Any]) -> bool:
        path = condition["path"]
        values = self._resolve(record, path) if "." in path else [record.get(path)]
        if len(values) == 1 and isinstance(values[0], list):  # a multi-entity field: "is" means "contains"
            values = values[0]
        negated = condition["relation"] in ("is_not", "not_in")
        if negated:
            condition = {**condition, "relation": condition["relation"].replace("_not", "").replace("not_", "")}
        found = any(super(SchemaShotgrid, self)._test({path: v}, condition) for v in values or [None])
        return not found if negated else found

    def _shape(self, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out = super()._shape(record, [f for f in fields if "." not in f])
        for name in fields:
            if "." in name:
                values = self._resolve(record, name)
                out[name] = values[0] if values else None
        return out


# -- running the daemons ---------------------------------------------------------------------------

PROBE = """
import json
import os


def registerCallbacks(reg):
    plugin = getattr(reg, "_plugin", None)
    owner = type(reg) if "registerCallback" in vars(type(reg)) else type(plugin)
    original = owner.registerCallback
    if getattr(original, "_compare_probe", False):
        return

    def counting(self, *args, **kwargs):
        logger = self.logger if hasattr(self, "logger") else None
        name = logger.name.split(".", 1)[1] if logger is not None else "?"
        original(self, *args, **kwargs)
        with open(os.environ["COMPARE_REGISTRATIONS"], "a") as handle:
            handle.write(json.dumps({"plugin": name}) + "\\n")

    counting._compare_probe = True
    owner.registerCallback = counting
"""

MARKER = """
import os


def registerCallbacks(reg):
    reg.registerCallback(os.environ["COMPARE_SCRIPT"], os.environ["COMPARE_KEY"], mark)


def mark(sg, logger, event, args):
    if event["id"] == int(os.environ["COMPARE_LAST"]):
        with open(os.environ["COMPARE_DONE"], "w") as handle:
            handle.write("done")
"""

TW_CONF = """
[store]
url = "sqlite:///{folder}/tw.db"
[web]
enabled = false
[log]
file = ""
level = "INFO"
[engine]
shutdown_grace = 5.0
[shotgrid]
site = "{url}"
script_name = "compare"
script_key = "compare-key"
use_session_uuid = false
start = 2
fetch_interval = 1.0
{plugins}
"""


Site = dict[str, dict[str, dict[str, Any]]]  # entity type -> id (as JSON gives it) -> record


@dataclass
class Scenario:
    folders: list[Path]  # the user's plugin folders (copied for each run)
    seed: Any  # seed(fake) or a {type: [records]} dict
    events: list[dict[str, Any]]
    schema: dict[str, dict[str, tuple[str, dict[str, Any]]]]
    scripts: dict[str, str]
    concurrency: int = 1


@dataclass
class RunResult:
    daemon: str
    tables: Site
    registrations: Counter[str]
    plugins: list[str]
    load_failures: dict[str, str] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    log_lines: Counter[str] = field(default_factory=Counter)
    messages: dict[str, Counter[str]] = field(default_factory=dict)
    log_text: str = ""
    elapsed: float = 0.0
    writers: dict[str, set[str]] = field(default_factory=dict)


def _new_site(scenario: Scenario) -> SchemaShotgrid:
    fake = SchemaShotgrid(scenario.schema, {**scenario.scripts, "compare": "compare-key"})
    fake.add_event("Shotgun_Compare_Start", entity=None, meta={"type": "compare_start"})  # id 1: skipped by both
    if callable(scenario.seed):
        scenario.seed(fake)
    else:
        for entity_type, records in scenario.seed.items():
            for record in records:
                fake.add_entity(entity_type, **record)
    start = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
    for n, spec in enumerate(scenario.events):
        fake.add_event(
            spec["event_type"],
            entity=spec.get("entity"),
            attribute_name=spec.get("attribute_name"),
            meta=spec.get("meta"),
            user=spec.get("user") or ADA,
            project=spec.get("project") or PROJECT,
            session_uuid=spec.get("session_uuid"),
            created_at=start.replace(minute=n % 60, second=n // 60),
        )
    fake.start()
    return fake


def _layout(folder: Path, scenario: Scenario) -> list[Path]:
    """probe, the plugin folders (copied), marker: the paths in the daemons' order."""
    probe = folder / "compare_probe"
    probe.mkdir()
    (probe / "compare_probe.py").write_text(PROBE)
    copies = []
    for n, source in enumerate(scenario.folders):
        copy = folder / f"plugins{n}"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "docs"))
        copies.append(copy)
    marker = folder / "compare_marker"
    marker.mkdir()
    (marker / "zz_compare_marker.py").write_text(MARKER)
    return [probe, *copies, marker]


def _env(folder: Path, url: str, last: int, scenario: Scenario) -> dict[str, str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", SG_SERVER=url, TZ="UTC")
    for name in EXAMPLE_SCRIPTS:
        env[f"SGDAEMON_{name}_NAME"] = f"compare_{name.lower()}"
        env[f"SGDAEMON_{name}_KEY"] = f"key-{name.lower()}"
    env.update(
        COMPARE_REGISTRATIONS=str(folder / "registrations.jsonl"),
        COMPARE_DONE=str(folder / "done"),
        COMPARE_LAST=str(last),
        COMPARE_SCRIPT="compare",
        COMPARE_KEY="compare-key",
    )
    return env


def _plugin_names(paths: list[Path]) -> list[str]:
    return [p.stem for folder in paths[1:-1] for p in sorted(folder.glob("*.py")) if not p.name.startswith(".")]


def _registrations(folder: Path) -> Counter[str]:
    path = folder / "registrations.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(json.loads(line)["plugin"] for line in lines)


SED_LINE = re.compile(r"^\S+ \S+ - (?P<name>\S+) - (?P<level>[A-Z]+) - (?P<message>.*)$")
TW_LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+)\s+(?P<name>[^\s:]+)[^:]*: (?P<message>.*)$")


CALLBACK_SUFFIX = re.compile(r"(_0x[0-9a-f]+|#\d+)$")
ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
DAEMON_SIDE = ("Dispatching event", "Skipping: inactive", "is deactivated after an error", "Could not load the plugin")


def _read_log(result: RunResult, text: str, pattern: re.Pattern[str], plugins: list[str]) -> None:
    """Load failures, callback errors, and what each plugin logged itself (not the daemon's own lines)."""
    result.log_text = text
    failure_marks = (
        "Could not load the plugin at",
        "Error running register callback function from plugin at",
        "Did not find a registerCallbacks function",
        "failed to load",
    )
    for line in text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        name, level, message = match["name"], match["level"], match["message"]
        if any(mark in message for mark in failure_marks):
            for plugin in plugins:
                if f"/{plugin}.py" in message or f"plugin {plugin} " in message:
                    result.load_failures[plugin] = message[:160]
        if not name.startswith("plugin.") or name.split(".")[1] not in plugins:
            continue
        plugin = name.split(".")[1]
        if level == "CRITICAL" and len(name.split(".")) > 2:
            result.errors[plugin] += 1  # the callback's error, as each daemon reports it
            continue
        if any(mark in message for mark in DAEMON_SIDE):
            continue
        result.log_lines[plugin] += 1
        # Callable objects are named <Class>_<hex id> by shotgunEvents and <Class>, <Class>#2... by Trackwire,
        # and object addresses in a repr differ from process to process: neither is the plugin's doing.
        name = CALLBACK_SUFFIX.sub("", name)
        message = ADDRESS.sub("0x…", message)
        result.messages.setdefault(plugin, Counter())[f"{level} {name} {message}"] += 1


def _wait(proc: subprocess.Popen[bytes], done: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before handling every event")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not handle every event within {timeout:.0f} s")
        time.sleep(0.05)


def run_shotgunevents(src: Path, scenario: Scenario, timeout: float) -> RunResult:
    """shotgunEvents' own daemon (``foreground``) over event ids 2..last, then the site it leaves."""
    fake = _new_site(scenario)
    try:
        with tempfile.TemporaryDirectory(prefix="compare-sed-") as tmp:
            folder = Path(tmp)
            shutil.copytree(src, folder / "src", ignore=shutil.ignore_patterns("examplePlugins", "__pycache__"))
            paths = _layout(folder, scenario)
            conf = shotgunevents_conf(
                folder, fake.url, ",".join(str(p) for p in paths), name="compare", key="compare-key", level=20
            )
            (folder / "src" / "shotgunEventDaemon.conf").write_text(conf)
            state: dict[str, dict[str, tuple[int, dict[int, Any]]]] = {
                str(p): {f.stem: (1, {}) for f in p.glob("*.py")} for p in paths
            }
            (folder / "sed.id").write_bytes(pickle.dumps(state))
            last = fake.last_event_id()
            started = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, str(folder / "src" / "shotgunEventDaemon.py"), "foreground"],
                env=_env(folder, fake.url, last, scenario),
                cwd=folder,
                stdout=subprocess.DEVNULL,
                stderr=(folder / "stderr").open("wb"),
            )
            try:
                _wait(proc, (folder / "done").exists, timeout, "shotgunEvents")
            except (RuntimeError, TimeoutError):
                tail = (folder / "sed.log").read_text(errors="replace").splitlines()[-80:]
                print("\n".join(["shotgunEvents' last log lines:", *tail]), file=sys.stderr)
                raise
            finally:
                proc.terminate()
                proc.wait(30)
            with fake.lock:
                tables = json.loads(json.dumps(fake.tables))
            plugins = _plugin_names(paths)
            result = RunResult("shotgunEvents", tables, _registrations(folder), plugins, writers=fake.writers)
            result.elapsed = time.monotonic() - started
            _read_log(result, (folder / "sed.log").read_text(errors="replace"), SED_LINE, plugins)
            return result
    finally:
        fake.stop()


def run_trackwire(scenario: Scenario, timeout: float) -> RunResult:
    """``trackwire run`` (a subprocess) over event ids 2..last, then the site it leaves."""
    fake = _new_site(scenario)
    try:
        with tempfile.TemporaryDirectory(prefix="compare-tw-") as tmp:
            folder = Path(tmp)
            paths = _layout(folder, scenario)
            entries = "".join(
                f'[[plugins]]\npath = "{p}"\nkind = "shotgunevents"\nconcurrency = {scenario.concurrency}\n'
                for p in paths
            )
            (folder / "trackwire.toml").write_text(TW_CONF.format(folder=folder, url=fake.url, plugins=entries))
            last = fake.last_event_id()
            started = time.monotonic()
            output = (folder / "daemon.out").open("wb")
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "trackwire"), "run", "-c", str(folder / "trackwire.toml")],
                env=_env(folder, fake.url, last, scenario),
                cwd=folder,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait(proc, lambda: (folder / "tw.db").exists(), timeout, "Trackwire")
                _wait(proc, (folder / "done").exists, timeout, "Trackwire")
                store = SqliteStore(folder / "tw.db")
                try:

                    def settled() -> bool:
                        groups, appended = store.groups(), store.last_id()  # Trackwire's log ids, not ShotGrid's
                        return bool(groups) and all(g.position >= appended for g in groups)

                    _wait(proc, settled, timeout, "Trackwire")
                finally:
                    store.close()
            except (RuntimeError, TimeoutError):
                tail = (folder / "daemon.out").read_text(errors="replace").splitlines()[-80:]
                if (folder / "tw.db").exists():
                    probe = SqliteStore(folder / "tw.db")
                    tail.append(f"done={(folder / 'done').exists()} last={last} groups={probe.groups()!r}")
                    probe.close()
                print("\n".join(["Trackwire's last log lines:", *tail]), file=sys.stderr)
                raise
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
                output.close()
            with fake.lock:
                tables = json.loads(json.dumps(fake.tables))
            plugins = _plugin_names(paths)
            result = RunResult("Trackwire", tables, _registrations(folder), plugins, writers=fake.writers)
            result.elapsed = time.monotonic() - started
            _read_log(result, (folder / "daemon.out").read_text(errors="replace"), TW_LINE, plugins)
            return result
    finally:
        fake.stop()


# -- comparing -------------------------------------------------------------------------------------

DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\dZ)?$")
RUN_DAY = datetime.now(UTC).strftime("%Y-%m-%d")


def _clock_value(a: Any, b: Any) -> bool:
    """Both values are dates or date-times a callback took from the clock while the check ran."""
    return all(isinstance(v, str) and DATE_TIME.match(v) and v >= RUN_DAY for v in (a, b))


def diff_tables(left: Site, right: Site) -> list[tuple[str, str, str, Any, Any]]:
    """(type, id, field, left value, right value) wherever the two sites differ."""
    out: list[tuple[str, str, str, Any, Any]] = []
    for entity_type in sorted(set(left) | set(right)):
        if entity_type == "EventLogEntry":
            continue
        a_table, b_table = left.get(entity_type, {}), right.get(entity_type, {})
        for entity_id in sorted(set(a_table) | set(b_table), key=int):
            a, b = a_table.get(entity_id), b_table.get(entity_id)
            if a is None or b is None:
                out.append(
                    (
                        entity_type,
                        entity_id,
                        "*",
                        "absent" if a is None else "present",
                        "absent" if b is None else "present",
                    )
                )
                continue
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name) and not _clock_value(a.get(name), b.get(name)):
                    out.append((entity_type, entity_id, name, a.get(name), b.get(name)))
    return out


def _log_difference(sed: RunResult, tw: RunResult, plugin: str) -> int:
    """How many of the plugin's own log lines one daemon printed and the other did not."""
    a, b = sed.messages.get(plugin, Counter()), tw.messages.get(plugin, Counter())
    return sum(((a - b) + (b - a)).values())


def report(sed: RunResult, tw: RunResult, seeded: Site, verbose: bool) -> int:
    """Print the table, the site's changes and differences, and the verdict; return the exit code."""
    plugins = sed.plugins
    print(f"\n{'plugin':<36} {'loaded':^9}  {'callbacks':^9}  {'errors':^9}  {'log lines':^11}  log lines not in both")
    print(f"{'':<36} {'sE / TW':^9}  {'sE / TW':^9}  {'sE / TW':^9}  {'sE / TW':^11}")
    problems = 0
    for name in plugins:
        loaded = ("no" if name in sed.load_failures else "yes", "no" if name in tw.load_failures else "yes")
        regs = (sed.registrations[name], tw.registrations[name])
        errors = (sed.errors[name], tw.errors[name])
        lines = (sed.log_lines[name], tw.log_lines[name])
        same = loaded[0] == loaded[1] and regs[0] == regs[1]
        problems += not same
        flag = "" if same and errors[0] == errors[1] else "  <-- differs"
        print(
            f"{name:<36} {loaded[0]:>3} / {loaded[1]:<3}  {regs[0]:>3} / {regs[1]:<3}  {errors[0]:>3} / {errors[1]:<3}"
            f"  {lines[0]:>4} / {lines[1]:<4}  {_log_difference(sed, tw, name):>4}{flag}"
        )
    for name in plugins:
        if name in sed.load_failures:
            print(f"  {name} did not load under shotgunEvents: {sed.load_failures[name]}")
        if name in tw.load_failures:
            print(f"  {name} did not load under Trackwire: {tw.load_failures[name]}")
        if verbose and _log_difference(sed, tw, name):
            a, b = sed.messages.get(name, Counter()), tw.messages.get(name, Counter())
            for line in sorted((a - b).elements())[:6]:
                print(f"  {name} only under shotgunEvents: {line[:200]}")
            for line in sorted((b - a).elements())[:6]:
                print(f"  {name} only under Trackwire:      {line[:200]}")
    diffs = diff_tables(sed.tables, tw.tables)
    changed = diff_tables(seeded, sed.tables)
    print(f"\nsite state: the callbacks changed {len(changed)} field(s) under shotgunEvents:")
    for entity_type, entity_id, name, before, after in changed:
        print(f"  {entity_type} {entity_id} {name}: {before!r} -> {after!r}")
    if diffs:
        print(f"\nsite state differs in {len(diffs)} field(s) (shotgunEvents | Trackwire):")
        for entity_type, entity_id, name, a_value, b_value in diffs:
            key = f"{entity_type} {entity_id} {name}"
            deep = f".{entity_type}.{name}"  # also written through a link (``entity.Shot.sg_vfx_status``)
            scripts = sorted(
                {w for run in (sed, tw) for k, ws in run.writers.items() if k == key or k.endswith(deep) for w in ws}
            )
            print(f"  {key}: {a_value!r} | {b_value!r}   (written by {', '.join(scripts) or 'no script'})")
    else:
        print("\nsite state after both daemons: identical")
    print(f"(shotgunEvents {sed.elapsed:.1f} s, Trackwire {tw.elapsed:.1f} s, each including start-up)")
    ok = not diffs and not problems
    print(
        f"verdict: {'SAME' if ok else 'DIFFERENT'}: {len(plugins)} plugins, {problems} load/registration"
        f" difference(s), {len(diffs)} site field difference(s),"
        f" {sum(1 for p in plugins if _log_difference(sed, tw, p))} plugin(s) whose own log lines differ"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--shotgunevents",
        type=Path,
        default=os.environ.get("SHOTGUNEVENTS_SRC") or None,
        help="a shotgunEvents checkout's src folder (default: $SHOTGUNEVENTS_SRC)",
    )
    parser.add_argument("--plugins", type=Path, action="append", help="your plugin folder(s) instead of the examples")
    parser.add_argument("--events", type=Path, help="with --plugins: a JSON list of events")
    parser.add_argument("--seed", type=Path, help="with --plugins: a JSON {entity_type: [records]}")
    parser.add_argument("--schema", type=Path, help="with --plugins: a JSON {entity_type: {field: data_type}}")
    parser.add_argument("--scripts", action="append", default=[], metavar="NAME=KEY", help="scripts the site knows")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="Trackwire's entities at once for the verdict (default 1)"
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=4,
        help="then again with this many entities at once, to show order-dependent plugins (0: skip)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds each daemon may take")
    parser.add_argument("--show-logs", action="store_true", help="print both daemons' logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the log lines that differ")
    args = parser.parse_args()
    if args.shotgunevents is None:
        parser.error("give --shotgunevents PATH_TO_SRC (or set SHOTGUNEVENTS_SRC)")
    src = args.shotgunevents.expanduser().resolve()
    if not (src / "shotgunEventDaemon.py").is_file():
        parser.error(f"{src} has no shotgunEventDaemon.py: give the checkout's src folder")
    scripts = {f"compare_{n.lower()}": f"key-{n.lower()}" for n in EXAMPLE_SCRIPTS}
    scripts.update(dict(s.split("=", 1) for s in args.scripts))
    if args.plugins:
        if not args.events:
            parser.error("--plugins needs --events FILE (and usually --seed FILE)")
        schema = SCHEMA
        if args.schema:
            raw = json.loads(args.schema.read_text())
            schema = {t: {f: (str(d), {}) for f, d in fields.items()} for t, fields in raw.items()}
        scenario = Scenario(
            folders=[p.expanduser().resolve() for p in args.plugins],
            seed=json.loads(args.seed.read_text()) if args.seed else {},
            events=json.loads(args.events.read_text()),
            schema=schema,
            scripts=scripts,
            concurrency=args.concurrency,
        )
    else:
        scenario = Scenario(
            [src / "examplePlugins"], seed_examples, example_events(), SCHEMA, scripts, args.concurrency
        )
    seeded_site = _new_site(scenario)
    seeded_site.stop()
    seeded = json.loads(json.dumps(seeded_site.tables))
    print(
        f"{len(scenario.events)} events, plugins from {', '.join(str(f) for f in scenario.folders)};"
        f" load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    sed = run_shotgunevents(src, scenario, args.timeout)
    tw = run_trackwire(scenario, args.timeout)
    if args.show_logs:
        print("---- shotgunEvents log ----\n" + sed.log_text + "\n---- Trackwire log ----\n" + tw.log_text)
    print(f"\nTrackwire with concurrency = {scenario.concurrency} (entities at once):")
    code = report(sed, tw, seeded, args.verbose)
    if args.parallel > 1 and args.parallel != scenario.concurrency:
        scenario.concurrency = args.parallel
        parallel = run_trackwire(scenario, args.timeout)
        print(f"\nAgain with concurrency = {args.parallel} (information only: the exit code does not depend on it)")
        order_dependent(sed, parallel)
    return code


def order_dependent(sed: RunResult, tw: RunResult) -> None:
    """What changes when different entities run at once: plugins whose results depend on cross-entity order."""
    diffs = diff_tables(sed.tables, tw.tables)
    plugins = [p for p in sed.plugins if _log_difference(sed, tw, p) or sed.errors[p] != tw.errors[p]]
    for entity_type, entity_id, name, a_value, b_value in diffs:
        deep = f".{entity_type}.{name}"
        key = f"{entity_type} {entity_id} {name}"
        scripts = sorted(
            {w for run in (sed, tw) for k, ws in run.writers.items() if k == key or k.endswith(deep) for w in ws}
        )
        print(f"  {key}: {a_value!r} | {b_value!r}   (written by {', '.join(scripts) or 'no script'})")
    print(
        f"  site: {len(diffs)} field(s) differ; plugins whose log lines or errors differ:"
        f" {', '.join(plugins) or 'none'}"
    )


if __name__ == "__main__":
    sys.exit(main())
