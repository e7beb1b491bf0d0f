"""The shotgunEvents compatibility surface is frozen: what legacy plugins call must not drift."""

from __future__ import annotations

import hashlib
import hmac
import inspect
from datetime import UTC, datetime

import pytest

from trackwire.core.event import Event
from trackwire.plugins.shotgunevents import Registrar, sg_event_dict
from trackwire.sources.shotgrid import EVENT_FIELDS, event_from_entry
from trackwire.sources.shotgrid_webhook import WebhookError, entry_from_delivery, signature_ok


def test_the_registrar_offers_exactly_the_shotgunevents_methods() -> None:
    public = {name for name in dir(Registrar) if not name.startswith("_")}
    assert public == {"getLogger", "logger", "registerCallback", "setEmails"}


def test_register_callback_keeps_shotgunevents_parameter_names_order_and_defaults() -> None:
    params = list(inspect.signature(Registrar.registerCallback).parameters.values())[1:]
    assert [(p.name, p.default) for p in params] == [
        ("sgScriptName", inspect.Parameter.empty),
        ("sgScriptKey", inspect.Parameter.empty),
        ("callback", inspect.Parameter.empty),
        ("matchEvents", None),
        ("args", None),
        ("stopOnError", True),
    ]


def test_the_poller_reads_the_same_fields_as_shotgunevents() -> None:
    assert EVENT_FIELDS == [
        "id", "event_type", "attribute_name", "meta", "entity", "user", "project", "session_uuid", "created_at"
    ]  # fmt: skip


def test_an_entry_becomes_an_event_keyed_by_its_entity_with_the_whole_entry_as_data() -> None:
    entry = {
        "type": "EventLogEntry",
        "id": 42,
        "event_type": "Shotgun_Task_Change",
        "attribute_name": "sg_status_list",
        "meta": {"old_value": "wtg", "new_value": "ip"},
        "entity": {"type": "Task", "id": 7, "name": "Anim"},
        "user": None,
        "project": {"type": "Project", "id": 70, "name": "Moonfall"},
        "session_uuid": None,
        "created_at": datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
    }
    event = event_from_entry(entry, "shotgrid")
    assert (event.source_id, event.type, event.attribute, event.old, event.new) == (
        "42", "Shotgun_Task_Change", "sg_status_list", "wtg", "ip"
    )  # fmt: skip
    assert event.ordering_key == "Task:7"
    assert event.data is entry


def test_the_plugin_dict_has_created_at_in_shotgun_api3s_local_time_zone() -> None:
    from shotgun_api3.lib.sgtimezone import LocalTimezone

    moment = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    event = Event(source="shotgrid", source_id="1", type="X", data={"id": 1, "created_at": moment, "meta": {}})
    entry = sg_event_dict(event)
    assert isinstance(entry["created_at"].tzinfo, LocalTimezone)
    assert entry["created_at"] == moment
    assert entry["type"] == "EventLogEntry"


def test_signatures_are_hmac_sha1_of_the_raw_body() -> None:
    good = "sha1=" + hmac.new(b"secret", b"body", hashlib.sha1).hexdigest()
    assert signature_ok(b"body", good, "secret") is True
    assert signature_ok(b"body ", good, "secret") is False
    assert signature_ok(b"body", good.upper().replace("SHA1=", "sha1="), "secret") is True


def test_a_webhook_delivery_without_an_entry_id_is_refused() -> None:
    with pytest.raises(WebhookError, match="event_log_entry_id"):
        entry_from_delivery({"event_type": "Shotgun_Shot_New", "created_at": "2024-05-01 10:00:00"})
